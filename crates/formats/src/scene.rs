//! The shotfix scene folder (CONTRACT.md §5): `scene.json`, an optional
//! `pulses.jsonl`, optional recordings (`audio/`, listed in `scene.json`), and
//! `truth.json`, which this reader never opens (it is the simulator's answer).
//!
//! Sensors may give local `x`/`y`/`z` or WGS84 `lat`/`lon`/`alt_m`, mixed; the
//! `origin` ties the two together. In the `wgs84` frame everything is converted
//! into a local east-north-up frame at the origin (or, without one, at the mean of
//! the sensors), located there, and converted back for output.

use std::path::{Component, Path, PathBuf};

use model::{Geodetic, LocalFrame, Point3, Pulse, PulseId, Sensor, SensorId, UtcNanos, Weather};
use serde::Deserialize;

use crate::audio::{read_wav, AnalyzeInput, AudioClip};
use crate::{parse_json, read_to_string, FormatError, Frame, LocateInput};

#[derive(Debug, Deserialize)]
struct WireScene {
    #[serde(default)]
    frame: Option<String>,
    origin: Option<WireGeodetic>,
    #[serde(default)]
    weather: Option<Weather>,
    sensors: Vec<WireSensor>,
    pulses: Option<String>,
    #[serde(default)]
    audio: Option<Vec<WireAudio>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
struct WireGeodetic {
    lat: f64,
    lon: f64,
    #[serde(default)]
    alt_m: f64,
}

#[derive(Debug, Deserialize)]
struct WireSensor {
    id: String,
    x: Option<f64>,
    y: Option<f64>,
    z: Option<f64>,
    lat: Option<f64>,
    lon: Option<f64>,
    alt_m: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct WirePulseLine {
    id: Option<String>,
    sensor: String,
    t_utc: String,
    snr_db: Option<f64>,
    peak_db_spl: Option<f64>,
}

/// One entry of the `audio` list: which sensor recorded which file, from when.
#[derive(Debug, Deserialize)]
struct WireAudio {
    sensor: String,
    file: String,
    start_utc: String,
    /// Extension: the peak SPL of digital full scale, when the recorder is calibrated.
    #[serde(default)]
    full_scale_db_spl: Option<f64>,
}

/// What `scene.json` says, checked, with every position in the scene's local
/// frame. `locate` and `analyze` both start here, so the two commands cannot
/// disagree about where a scene's sensors are.
#[derive(Debug)]
struct Scene {
    /// The `scene.json` file, for error messages.
    path: PathBuf,
    frame: Frame,
    sensors: Vec<Sensor>,
    weather: Weather,
    pulses: Option<String>,
    audio: Vec<WireAudio>,
}

fn geodetic(w: WireGeodetic) -> Option<Geodetic> {
    let g = Geodetic {
        lat_deg: w.lat,
        lon_deg: w.lon,
        alt_m: w.alt_m,
    };
    g.is_valid().then_some(g)
}

/// A local east-north-up frame at the mean of `points` (latitude, longitude and
/// height averaged); `None` when there are none. Used where the input is WGS84 and
/// names no origin: the mean keeps local coordinates small (metres to kilometres),
/// so the solver works far from the precision limits of f64.
pub(crate) fn frame_at_mean(points: &[Geodetic]) -> Option<LocalFrame> {
    if points.is_empty() {
        return None;
    }
    let n = points.len() as f64;
    Some(LocalFrame::new(Geodetic {
        lat_deg: points.iter().map(|g| g.lat_deg).sum::<f64>() / n,
        lon_deg: points.iter().map(|g| g.lon_deg).sum::<f64>() / n,
        alt_m: points.iter().map(|g| g.alt_m).sum::<f64>() / n,
    }))
}

/// Reads and checks `dir/scene.json`: frame, sensors and weather; the pulses
/// file and audio list are returned unread for the command that needs them.
fn read_scene_json(dir: &Path) -> Result<Scene, FormatError> {
    let scene_path = dir.join("scene.json");
    let scene: WireScene = parse_json(&scene_path, &read_to_string(&scene_path)?)?;
    let invalid = |m: String| FormatError::invalid(&scene_path, m);
    let origin = match scene.origin {
        Some(o) => Some(geodetic(o).ok_or_else(|| {
            invalid(format!(
                "origin {}, {} is not a valid latitude/longitude",
                o.lat, o.lon
            ))
        })?),
        None => None,
    };
    let wgs84 = match scene.frame.as_deref().unwrap_or("local") {
        "local" => false,
        "wgs84" => true,
        other => {
            return Err(invalid(format!(
                "frame {other:?}: expected \"local\" or \"wgs84\""
            )))
        }
    };
    // The local frame: the origin, or for wgs84 scenes without one, the sensors' mean.
    let anchor = match origin {
        Some(o) => Some(LocalFrame::new(o)),
        None if wgs84 => {
            let geo: Vec<Geodetic> = scene
                .sensors
                .iter()
                .filter_map(|s| {
                    Some(Geodetic {
                        lat_deg: s.lat?,
                        lon_deg: s.lon?,
                        alt_m: s.alt_m.unwrap_or(0.0),
                    })
                })
                .filter(|g| g.is_valid())
                .collect();
            Some(frame_at_mean(&geo).ok_or_else(|| {
                invalid("a wgs84 scene needs sensors with lat/lon or an origin".into())
            })?)
        }
        None => None,
    };
    let mut sensors = Vec::with_capacity(scene.sensors.len());
    for s in &scene.sensors {
        let position = match (s.x, s.y, s.lat, s.lon) {
            (Some(x), Some(y), _, _) => Point3::new(x, y, s.z.unwrap_or(0.0)),
            (_, _, Some(lat), Some(lon)) => {
                let g = Geodetic {
                    lat_deg: lat,
                    lon_deg: lon,
                    alt_m: s.alt_m.unwrap_or(0.0),
                };
                if !g.is_valid() {
                    return Err(invalid(format!(
                        "sensor {}: {lat}, {lon} is not a valid latitude/longitude",
                        s.id
                    )));
                }
                let frame = anchor.ok_or_else(|| {
                    invalid(format!(
                        "sensor {} gives lat/lon but the local scene has no origin",
                        s.id
                    ))
                })?;
                frame.to_local(g)
            }
            _ => {
                return Err(invalid(format!(
                    "sensor {}: needs x and y, or lat and lon",
                    s.id
                )))
            }
        };
        if !position.is_finite() {
            return Err(invalid(format!("sensor {}: position is not finite", s.id)));
        }
        sensors.push(Sensor {
            id: SensorId(s.id.clone()),
            position,
        });
    }
    let weather = scene.weather.unwrap_or_default();
    for (name, v) in [
        ("temperature_c", weather.temperature_c),
        ("wind_speed_m_s", weather.wind_speed_m_s),
        ("wind_from_deg", weather.wind_from_deg),
    ] {
        if v.is_some_and(|v| !v.is_finite()) {
            return Err(invalid(format!("weather.{name} is not finite")));
        }
    }
    if weather
        .temperature_c
        .is_some_and(|t| !(-90.0..=70.0).contains(&t))
    {
        return Err(invalid("weather.temperature_c outside -90..70 °C".into()));
    }
    let frame = if wgs84 {
        Frame::Wgs84 {
            frame: anchor.ok_or_else(|| invalid("wgs84 scene without a frame".into()))?,
        }
    } else {
        Frame::Local { anchor }
    };
    Ok(Scene {
        path: scene_path.clone(),
        frame,
        sensors,
        weather,
        pulses: scene.pulses,
        audio: scene.audio.unwrap_or_default(),
    })
}

/// Reads a scene folder's sensors, weather and pulses.
pub fn read_scene(dir: &Path) -> Result<LocateInput, FormatError> {
    let scene = read_scene_json(dir)?;
    let pulses = match &scene.pulses {
        Some(name) => {
            // Only plain names below the folder: a scene must not reach outside itself.
            let inside = !name.trim().is_empty()
                && Path::new(name)
                    .components()
                    .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
            if !inside {
                return Err(FormatError::invalid(
                    &scene.path,
                    format!("pulses file {name:?} must be a relative path inside the scene folder"),
                ));
            }
            let path = dir.join(name);
            parse_pulses_jsonl(&path, &read_to_string(&path)?)?
        }
        None => {
            return Err(FormatError::invalid(
                &scene.path,
                "names no pulses file (\"pulses\"): nothing to locate",
            ))
        }
    };
    Ok(LocateInput {
        frame: scene.frame,
        sensors: scene.sensors,
        pulses,
        weather: scene.weather,
    })
}

/// Reads a scene folder's sensors, weather and recordings (the `audio` list) for
/// `shotfix analyze`. Each file is read relative to the folder and must stay
/// inside it; its start time is the entry's `start_utc` (an `smj0` chunk in the
/// file only contributes its full-scale calibration). Every entry must name a
/// sensor of the scene, at most once.
pub fn read_scene_audio(dir: &Path) -> Result<AnalyzeInput, FormatError> {
    let scene = read_scene_json(dir)?;
    let invalid = |m: String| FormatError::invalid(&scene.path, m);
    if scene.audio.is_empty() {
        return Err(invalid(
            "names no recordings (\"audio\"): nothing to analyze".into(),
        ));
    }
    let mut clips: Vec<AudioClip> = Vec::with_capacity(scene.audio.len());
    for (i, a) in scene.audio.iter().enumerate() {
        let entry = format!("audio entry {} (sensor {:?})", i + 1, a.sensor);
        if !scene.sensors.iter().any(|s| s.id.0 == a.sensor) {
            return Err(invalid(format!("{entry}: no such sensor in \"sensors\"")));
        }
        if clips.iter().any(|c| c.sensor.0 == a.sensor) {
            return Err(invalid(format!(
                "{entry}: a second recording for this sensor (one file per sensor)"
            )));
        }
        let start =
            UtcNanos::parse_rfc3339(&a.start_utc).map_err(|e| invalid(format!("{entry}: {e}")))?;
        let file = Path::new(&a.file);
        // Only plain names below the folder: a scene must not reach outside itself.
        let inside = !a.file.trim().is_empty()
            && file
                .components()
                .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        if !inside {
            return Err(invalid(format!(
                "{entry}: file {:?} must be a relative path inside the scene folder",
                a.file
            )));
        }
        let path = dir.join(file);
        let wav = read_wav(&path)?;
        let mut clip = AudioClip::from_wav(SensorId(a.sensor.clone()), path, start, wav);
        if let Some(fs) = a.full_scale_db_spl {
            if !(fs.is_finite() && (60.0..=200.0).contains(&fs)) {
                return Err(invalid(format!(
                    "{entry}: full_scale_db_spl {fs} is not a plausible level (60–200 dB SPL)"
                )));
            }
            clip.full_scale_db_spl = Some(fs);
        }
        clips.push(clip);
    }
    clips.sort_by(|a, b| a.sensor.cmp(&b.sensor));
    Ok(AnalyzeInput {
        frame: scene.frame,
        sensors: scene.sensors,
        clips,
        weather: scene.weather,
    })
}

/// Parses `pulses.jsonl`: one JSON object a line; blank lines are skipped. A pulse
/// without an `id` is named after its line (`pulses.jsonl:12`).
pub fn parse_pulses_jsonl(path: &Path, text: &str) -> Result<Vec<Pulse>, FormatError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("pulses");
    let mut pulses = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let w: WirePulseLine = serde_json::from_str(line)
            .map_err(|e| FormatError::invalid(path, format!("line {}: {e}", i + 1)))?;
        let t = UtcNanos::parse_rfc3339(&w.t_utc)
            .map_err(|e| FormatError::invalid(path, format!("line {}: {e}", i + 1)))?;
        pulses.push(Pulse {
            id: PulseId(w.id.unwrap_or_else(|| format!("{name}:{}", i + 1))),
            sensor: SensorId(w.sensor),
            t,
            snr_db: w.snr_db,
            level_db_spl: w.peak_db_spl,
        });
    }
    Ok(pulses)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_a_mixed_scene() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("scene.json"),
            r#"{"name":"t","frame":"local","origin":{"lat":40.4406,"lon":-79.9959,"alt_m":250.0},
               "weather":{"temperature_c":4.0},
               "sensors":[{"id":"S01","x":0.0,"y":0.0,"z":12.0},{"id":"S02","lat":40.4410,"lon":-79.9950,"alt_m":262.0}],
               "pulses":"pulses.jsonl"}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("pulses.jsonl"),
            "{\"sensor\":\"S01\",\"t_utc\":\"2026-07-04T21:30:00.1Z\",\"snr_db\":12.5}\n\n{\"sensor\":\"S02\",\"t_utc\":\"2026-07-04T21:30:00.2Z\"}\n",
        )
        .unwrap();
        let input = read_scene(dir.path()).unwrap();
        assert_eq!(input.sensors.len(), 2);
        assert!(
            (input.sensors[1].position.y - 44.4).abs() < 0.5,
            "{:?}",
            input.sensors[1]
        );
        assert!((input.sensors[1].position.z - 12.0).abs() < 0.01);
        assert_eq!(input.pulses[1].id.0, "pulses.jsonl:3");
        assert_eq!(input.weather.temperature_c, Some(4.0));
    }

    #[test]
    fn a_pulses_file_outside_the_folder_is_refused() {
        let outer = tempfile::tempdir().unwrap();
        let dir = outer.path().join("scene");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(outer.path().join("elsewhere.jsonl"), "").unwrap();
        for name in ["../elsewhere.jsonl", "/etc/hostname", " "] {
            std::fs::write(
                dir.join("scene.json"),
                format!(
                    r#"{{"sensors":[{{"id":"S01","x":0,"y":0}}],"pulses":{}}}"#,
                    serde_json::to_string(name).unwrap()
                ),
            )
            .unwrap();
            let err = read_scene(&dir).unwrap_err().to_string();
            assert!(err.contains("inside the scene folder"), "{name}: {err}");
        }
    }

    #[test]
    fn bad_lines_are_named() {
        let e = parse_pulses_jsonl(
            Path::new("pulses.jsonl"),
            "{\"sensor\":\"a\",\"t_utc\":\"2026-01-01T00:00:00Z\"}\n{oops}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 2"), "{e}");
    }

    proptest! {
        #[test]
        fn jsonl_never_panics(text in "(\\{.{0,60}\\}\n){0,5}") {
            let _ = parse_pulses_jsonl(Path::new("p.jsonl"), &text);
        }
    }
}
