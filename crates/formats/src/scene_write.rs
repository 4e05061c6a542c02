//! Writes a scene folder (CONTRACT.md §5): `scene.json`, `audio/<sensor>.wav`,
//! `pulses.jsonl`, `truth.json`, and `buildings.json` (an extension: the city the
//! scene was simulated in, for maps and coverage planning). Reads `truth.json`
//! back for evaluation code, which alone may open it.
//!
//! Scenes are always written in the `local` frame, anchored by `origin`.

use std::io::Write;
use std::path::Path;

use model::{Geodetic, Point3, Pulse, Sensor, SensorId, TruthEvent, UtcNanos, Weather};
use serde::{Deserialize, Serialize};

use crate::{parse_json, read_to_string, FormatError};

/// One sensor's recording to write.
#[derive(Debug, Clone, Copy)]
pub struct AudioOut<'a> {
    pub sensor: &'a SensorId,
    pub start: UtcNanos,
    pub sample_rate_hz: u32,
    /// Written to `scene.json` so that `analyze` can give levels in dB SPL.
    pub full_scale_db_spl: Option<f64>,
    /// Full scale ±1; written as 16-bit PCM.
    pub samples: &'a [f32],
}

/// A building footprint (counter-clockwise, local metres) and height.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildingOut {
    pub footprint: Vec<[f64; 2]>,
    pub height_m: f64,
}

/// Everything a scene folder holds.
#[derive(Debug, Clone, Copy)]
pub struct SceneOut<'a> {
    pub name: &'a str,
    pub origin: Option<Geodetic>,
    pub weather: Weather,
    pub sensors: &'a [Sensor],
    pub audio: &'a [AudioOut<'a>],
    /// Written as `pulses.jsonl` when `Some` (even if empty).
    pub pulses: Option<&'a [Pulse]>,
    pub truth: &'a [TruthEvent],
    pub buildings: &'a [BuildingOut],
}

#[derive(Serialize)]
struct WireSceneOut<'a> {
    name: &'a str,
    frame: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    origin: Option<WireOrigin>,
    weather: Weather,
    sensors: Vec<WireSensorOut<'a>>,
    audio: Vec<WireAudioOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pulses: Option<&'static str>,
}

#[derive(Serialize)]
pub(crate) struct WireOrigin {
    pub(crate) lat: f64,
    pub(crate) lon: f64,
    pub(crate) alt_m: f64,
}

#[derive(Serialize)]
struct WireSensorOut<'a> {
    id: &'a str,
    x: f64,
    y: f64,
    z: f64,
}

#[derive(Serialize)]
struct WireAudioOut {
    sensor: String,
    file: String,
    start_utc: String,
    sample_rate_hz: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    full_scale_db_spl: Option<f64>,
}

#[derive(Serialize)]
struct WirePulseOut<'a> {
    id: &'a str,
    sensor: &'a str,
    t_utc: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    snr_db: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    peak_db_spl: Option<f64>,
}

#[derive(Serialize, Deserialize)]
struct WireTruth {
    events: Vec<WireTruthEvent>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireTruthEvent {
    t_utc: String,
    x: f64,
    y: f64,
    z: f64,
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    weapon: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shooter: Option<u32>,
}

#[derive(Serialize)]
struct WireBuildings<'a> {
    buildings: &'a [BuildingOut],
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FormatError + '_ {
    move |source| FormatError::Io {
        path: path.to_owned(),
        source,
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), FormatError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| FormatError::invalid(path, format!("cannot serialise: {e}")))?;
    std::fs::write(path, text + "\n").map_err(io(path))
}

/// A file name for a sensor's audio: its id with anything but letters, digits,
/// `-`, `_` and `.` replaced, so an id can never reach outside `audio/`.
fn audio_file_name(id: &SensorId) -> String {
    let safe: String =
        id.0.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
    format!("audio/{}.wav", safe.trim_start_matches('.'))
}

/// Writes `scene` into `dir` (created if missing).
pub fn write_scene(dir: &Path, scene: &SceneOut) -> Result<(), FormatError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut audio_entries = Vec::with_capacity(scene.audio.len());
    if !scene.audio.is_empty() {
        let audio_dir = dir.join("audio");
        std::fs::create_dir_all(&audio_dir).map_err(io(&audio_dir))?;
    }
    for a in scene.audio {
        let file = audio_file_name(a.sensor);
        write_wav_16(&dir.join(&file), a.sample_rate_hz, a.samples)?;
        audio_entries.push(WireAudioOut {
            sensor: a.sensor.0.clone(),
            file,
            start_utc: a.start.to_rfc3339(),
            sample_rate_hz: a.sample_rate_hz,
            full_scale_db_spl: a.full_scale_db_spl,
        });
    }
    if let Some(pulses) = scene.pulses {
        let path = dir.join("pulses.jsonl");
        let file = std::fs::File::create(&path).map_err(io(&path))?;
        let mut out = std::io::BufWriter::new(file);
        for p in pulses {
            let line = WirePulseOut {
                id: &p.id.0,
                sensor: &p.sensor.0,
                t_utc: p.t.to_rfc3339(),
                snr_db: p.snr_db,
                peak_db_spl: p.level_db_spl,
            };
            let text = serde_json::to_string(&line)
                .map_err(|e| FormatError::invalid(&path, format!("cannot serialise: {e}")))?;
            writeln!(out, "{text}").map_err(io(&path))?;
        }
        out.flush().map_err(io(&path))?;
    }
    let wire = WireSceneOut {
        name: scene.name,
        frame: "local",
        origin: scene.origin.map(|o| WireOrigin {
            lat: o.lat_deg,
            lon: o.lon_deg,
            alt_m: o.alt_m,
        }),
        weather: scene.weather,
        sensors: scene
            .sensors
            .iter()
            .map(|s| WireSensorOut {
                id: &s.id.0,
                x: s.position.x,
                y: s.position.y,
                z: s.position.z,
            })
            .collect(),
        audio: audio_entries,
        pulses: scene.pulses.map(|_| "pulses.jsonl"),
    };
    write_json(&dir.join("scene.json"), &wire)?;
    let truth = WireTruth {
        events: scene
            .truth
            .iter()
            .map(|e| WireTruthEvent {
                t_utc: e.t.to_rfc3339(),
                x: e.position.x,
                y: e.position.y,
                z: e.position.z,
                kind: e.kind.clone(),
                weapon: e.weapon.clone(),
                shooter: e.shooter,
            })
            .collect(),
    };
    write_json(&dir.join("truth.json"), &truth)?;
    write_json(
        &dir.join("buildings.json"),
        &WireBuildings {
            buildings: scene.buildings,
        },
    )
}

/// 16-bit PCM with rounding; the simulator has already clipped to ±1.
fn write_wav_16(path: &Path, sample_rate_hz: u32, samples: &[f32]) -> Result<(), FormatError> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: sample_rate_hz,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let wav = |e: hound::Error| FormatError::invalid(path, format!("cannot write WAV: {e}"));
    let mut w = hound::WavWriter::create(path, spec).map_err(wav)?;
    {
        let mut w16 = w.get_i16_writer(samples.len() as u32);
        for &v in samples {
            w16.write_sample((v.clamp(-1.0, 1.0) * 32767.0).round() as i16);
        }
        w16.flush().map_err(wav)?;
    }
    w.finalize().map_err(wav)
}

/// Reads a scene folder's `truth.json`. Evaluation code only: `locate` and
/// `analyze` never open it.
pub fn read_truth(dir: &Path) -> Result<Vec<TruthEvent>, FormatError> {
    let path = dir.join("truth.json");
    let wire: WireTruth = parse_json(&path, &read_to_string(&path)?)?;
    wire.events
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let t = UtcNanos::parse_rfc3339(&e.t_utc)
                .map_err(|err| FormatError::invalid(&path, format!("event {}: {err}", i + 1)))?;
            let position = Point3::new(e.x, e.y, e.z);
            if !position.is_finite() {
                return Err(FormatError::invalid(
                    &path,
                    format!("event {}: position is not finite", i + 1),
                ));
            }
            Ok(TruthEvent {
                t,
                position,
                kind: e.kind,
                weapon: e.weapon,
                shooter: e.shooter,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::PulseId;

    #[test]
    fn a_written_scene_reads_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let sensors: Vec<Sensor> = (0..4)
            .map(|i| Sensor {
                id: SensorId(format!("S{i}")),
                position: Point3::new(100.0 * f64::from(i), 50.0, 12.0),
            })
            .collect();
        let start = UtcNanos::parse_rfc3339("2026-07-04T21:30:00Z").expect("time");
        let pulses: Vec<Pulse> = sensors
            .iter()
            .map(|s| Pulse {
                id: PulseId(format!("{}-1", s.id)),
                sensor: s.id.clone(),
                t: start.offset_by_seconds(1.0 + s.position.x / 343.0),
                snr_db: Some(20.0),
                level_db_spl: Some(90.0),
            })
            .collect();
        let samples: Vec<f32> = (0..12_000)
            .map(|i| ((i as f32) * 0.01).sin() * 0.5)
            .collect();
        let audio: Vec<AudioOut> = sensors
            .iter()
            .map(|s| AudioOut {
                sensor: &s.id,
                start,
                sample_rate_hz: 12_000,
                full_scale_db_spl: Some(120.0),
                samples: &samples,
            })
            .collect();
        let truth = vec![TruthEvent {
            t: start.offset_by_seconds(1.0),
            position: Point3::new(0.0, 0.0, 1.5),
            kind: "gunshot".into(),
            weapon: Some("9mm".into()),
            shooter: Some(1),
        }];
        let scene = SceneOut {
            name: "round trip",
            origin: Some(Geodetic {
                lat_deg: 40.44,
                lon_deg: -80.0,
                alt_m: 250.0,
            }),
            weather: Weather::default(),
            sensors: &sensors,
            audio: &audio,
            pulses: Some(&pulses),
            truth: &truth,
            buildings: &[],
        };
        write_scene(dir.path(), &scene).expect("written");
        let located = crate::read_locate_input(dir.path()).expect("locate input");
        assert_eq!(located.sensors, sensors);
        assert_eq!(located.pulses, pulses);
        let analyzed = crate::read_analyze_input(dir.path()).expect("analyze input");
        assert_eq!(analyzed.clips.len(), 4);
        assert_eq!(analyzed.clips[0].full_scale_db_spl, Some(120.0));
        let back = &analyzed.clips[0].samples;
        assert!(back
            .iter()
            .zip(&samples)
            .all(|(a, b)| (a - b).abs() <= 1.0 / 32767.0));
        assert_eq!(read_truth(dir.path()).expect("truth"), truth);
    }
}
