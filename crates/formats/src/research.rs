//! The ShotSpotter research layout (`../shared/data/pittsburgh-dev/FPn/test_NNN/`).
//!
//! `test_NNN.allpulses.json`: an array of pulses, each with `pulse_uuid`,
//! `serial_number`, `arrival_time_utc`, sensor `location` {x, y, z} (local metres),
//! `signal_to_noise_dB` and `power_dB_SPL`. `test_NNN.weather.json` (optional):
//! METAR `temperature` (°C), wind `speed` (m/s) and `direction` (from, degrees).
//! `test_NNN.audio.<serial>.wav` with `test_NNN.audio.<serial>.json`: a sensor's
//! recording and its `serial_number`, `timestamp` (UTC of the first sample) and
//! `location` {x, y, z}, for `shotfix analyze`.
//!
//! `locate` reads the pulses and weather, `analyze` the recordings and weather;
//! neither ever opens `*.survey.json` or `*.nlos-tuples.json` (the answers).

use std::path::{Path, PathBuf};

use model::{Point3, Pulse, PulseId, Sensor, SensorId, UtcNanos, Weather};
use serde::Deserialize;

use crate::audio::{read_wav, AnalyzeInput, AudioClip};
use crate::{list_dir, parse_json, read_to_string, FormatError, Frame, LocateInput};

#[derive(Debug, Deserialize)]
struct WirePulse {
    pulse_uuid: String,
    serial_number: String,
    arrival_time_utc: String,
    location: WireLocation,
    #[serde(rename = "signal_to_noise_dB")]
    snr_db: Option<f64>,
    #[serde(rename = "power_dB_SPL")]
    power_db_spl: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct WireLocation {
    x: f64,
    y: f64,
    z: f64,
}

#[derive(Debug, Deserialize)]
struct WireWeather {
    temperature: Option<f64>,
    speed: Option<f64>,
    direction: Option<f64>,
}

/// The one file in `dir` whose name ends with `suffix`; an error if there are several.
pub fn find_one(dir: &Path, suffix: &str) -> Result<Option<PathBuf>, FormatError> {
    let mut found: Vec<PathBuf> = list_dir(dir)?
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(suffix))
        })
        .collect();
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        n => Err(FormatError::invalid(
            dir,
            format!("{n} files end with {suffix}: expected one"),
        )),
    }
}

/// Parses the text of an `*.allpulses.json` file.
pub fn parse_allpulses(path: &Path, text: &str) -> Result<(Vec<Sensor>, Vec<Pulse>), FormatError> {
    let wire: Vec<WirePulse> = parse_json(path, text)?;
    let mut sensors = Vec::new();
    let mut pulses = Vec::with_capacity(wire.len());
    for (i, w) in wire.into_iter().enumerate() {
        let t = UtcNanos::parse_rfc3339(&w.arrival_time_utc).map_err(|e| {
            FormatError::invalid(path, format!("pulse {} ({}): {e}", i + 1, w.pulse_uuid))
        })?;
        let position = Point3::new(w.location.x, w.location.y, w.location.z);
        if !position.is_finite() {
            return Err(FormatError::invalid(
                path,
                format!("pulse {} ({}): location is not finite", i + 1, w.pulse_uuid),
            ));
        }
        if w.serial_number.trim().is_empty() || w.pulse_uuid.trim().is_empty() {
            return Err(FormatError::invalid(
                path,
                format!("pulse {}: empty serial_number or pulse_uuid", i + 1),
            ));
        }
        let sensor = SensorId(w.serial_number);
        sensors.push(Sensor {
            id: sensor.clone(),
            position,
        });
        pulses.push(Pulse {
            id: PulseId(w.pulse_uuid),
            sensor,
            t,
            snr_db: w.snr_db,
            level_db_spl: w.power_db_spl,
        });
    }
    Ok((sensors, pulses))
}

/// Parses the text of a `*.weather.json` file.
pub fn parse_weather(path: &Path, text: &str) -> Result<Weather, FormatError> {
    let w: WireWeather = parse_json(path, text)?;
    checked_weather(w.temperature, w.speed, w.direction).map_err(|m| FormatError::invalid(path, m))
}

/// The METAR fields `temperature` (°C), `speed` (m/s) and `direction` (from,
/// degrees) as a [`Weather`], after the plausibility checks every reader applies;
/// the error names the rule broken. The smj0 chunk of ShotSpotter WAV files uses
/// the same three names.
pub(crate) fn checked_weather(
    temperature: Option<f64>,
    speed: Option<f64>,
    direction: Option<f64>,
) -> Result<Weather, String> {
    for (name, v) in [
        ("temperature", temperature),
        ("speed", speed),
        ("direction", direction),
    ] {
        if v.is_some_and(|v| !v.is_finite()) {
            return Err(format!("{name} is not finite"));
        }
    }
    if temperature.is_some_and(|t| !(-90.0..=70.0).contains(&t)) {
        return Err("temperature outside -90..70 °C".into());
    }
    if speed.is_some_and(|s| !(0.0..=100.0).contains(&s)) {
        return Err("wind speed outside 0..100 m/s".into());
    }
    Ok(Weather {
        temperature_c: temperature,
        wind_speed_m_s: speed,
        wind_from_deg: direction,
    })
}

/// Reads a test folder: pulses and, when present, weather. Never the answer files.
pub fn read_test_folder(dir: &Path) -> Result<LocateInput, FormatError> {
    let pulses_path = find_one(dir, ".allpulses.json")?
        .ok_or_else(|| FormatError::invalid(dir, "no *.allpulses.json in this folder"))?;
    let (sensors, pulses) = parse_allpulses(&pulses_path, &read_to_string(&pulses_path)?)?;
    let weather = match find_one(dir, ".weather.json")? {
        Some(path) => parse_weather(&path, &read_to_string(&path)?)?,
        None => Weather::default(),
    };
    Ok(LocateInput {
        frame: Frame::Local { anchor: None },
        sensors,
        pulses,
        weather,
    })
}

/// The metadata beside a research-layout recording, `test_NNN.audio.<serial>.json`.
#[derive(Debug, Deserialize)]
struct WireAudioMeta {
    serial_number: String,
    /// UTC of the first sample.
    timestamp: String,
    location: WireLocation,
}

/// True for a research-layout recording, `<test>.audio.<serial>.wav`.
pub fn is_recording_wav(path: &Path) -> bool {
    recording_name(path).is_some_and(|(_, ext)| ext == "wav")
}

/// For `<test>.audio.<serial>.wav` or `.json`: the serial and the extension.
fn recording_name(path: &Path) -> Option<(&str, &str)> {
    let name = path.file_name()?.to_str()?;
    let (stem, ext) = name.rsplit_once('.')?;
    let (_, serial) = stem.split_once(".audio.")?;
    matches!(ext, "wav" | "json").then_some((serial, ext))
}

/// The recordings of a test folder as (`.wav`, `.json`) pairs, sorted. A
/// recording without its metadata, or metadata without its recording, is an error
/// naming the file: silently dropping a sensor would change the result.
pub fn find_recordings(dir: &Path) -> Result<Vec<(PathBuf, PathBuf)>, FormatError> {
    let files = list_dir(dir)?;
    let mut pairs = Vec::new();
    for path in &files {
        let Some((_, ext)) = recording_name(path) else {
            continue;
        };
        let (other_ext, what) = match ext {
            "wav" => ("json", "its metadata"),
            _ => ("wav", "its recording"),
        };
        let other = path.with_extension(other_ext);
        if !files.contains(&other) {
            return Err(FormatError::invalid(
                path,
                format!(
                    "{what} {} is missing",
                    other.file_name().and_then(|n| n.to_str()).unwrap_or("?")
                ),
            ));
        }
        if ext == "wav" {
            pairs.push((path.clone(), other));
        }
    }
    Ok(pairs)
}

/// Reads a test folder for `shotfix analyze`: every `*.audio.<serial>.wav` with
/// its `.json` (sensor, start time, position in the test's local frame) and, when
/// present, `*.weather.json`. Never the pulses (`*.allpulses.json`) nor the
/// answer files.
pub fn read_audio_test_folder(dir: &Path) -> Result<AnalyzeInput, FormatError> {
    let recordings = find_recordings(dir)?;
    if recordings.is_empty() {
        return Err(FormatError::invalid(dir, "no *.audio.*.wav in this folder"));
    }
    let mut sensors: Vec<Sensor> = Vec::with_capacity(recordings.len());
    let mut clips: Vec<AudioClip> = Vec::with_capacity(recordings.len());
    for (wav_path, json_path) in recordings {
        let meta: WireAudioMeta = parse_json(&json_path, &read_to_string(&json_path)?)?;
        let invalid = |m: String| FormatError::invalid(&json_path, m);
        let in_name = recording_name(&json_path).map_or("", |(serial, _)| serial);
        if meta.serial_number.trim().is_empty() || meta.serial_number != in_name {
            return Err(invalid(format!(
                "serial_number {:?} does not match the file name ({in_name})",
                meta.serial_number
            )));
        }
        let start = UtcNanos::parse_rfc3339(&meta.timestamp)
            .map_err(|e| invalid(format!("timestamp: {e}")))?;
        let position = Point3::new(meta.location.x, meta.location.y, meta.location.z);
        if !position.is_finite() {
            return Err(invalid("location is not finite".into()));
        }
        let sensor = SensorId(meta.serial_number);
        if sensors.iter().any(|s| s.id == sensor) {
            return Err(invalid(format!(
                "a second recording from sensor {sensor}: one file per sensor"
            )));
        }
        let wav = read_wav(&wav_path)?;
        sensors.push(Sensor {
            id: sensor.clone(),
            position,
        });
        clips.push(AudioClip::from_wav(sensor, wav_path, start, wav));
    }
    let weather = match find_one(dir, ".weather.json")? {
        Some(path) => parse_weather(&path, &read_to_string(&path)?)?,
        None => Weather::default(),
    };
    sensors.sort_by(|a, b| a.id.cmp(&b.id));
    clips.sort_by(|a, b| a.sensor.cmp(&b.sensor));
    Ok(AnalyzeInput {
        frame: Frame::Local { anchor: None },
        sensors,
        clips,
        weather,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ONE: &str = r#"[{"arrival_time_utc":"2018-12-19T00:49:27.467Z","location":{"x":-11784.3,"y":3135.6,"z":-102.0},
        "location_error":0.03,"power_dB_SPL":76.9,"pulse_uuid":"3e94","serial_number":"SCP-00-BNG-5028","signal_to_noise_dB":4.3}]"#;

    #[test]
    fn reads_a_pulse() {
        let (sensors, pulses) = parse_allpulses(Path::new("x.json"), ONE).unwrap();
        assert_eq!(sensors[0].id.0, "SCP-00-BNG-5028");
        assert_eq!(pulses[0].t.to_rfc3339(), "2018-12-19T00:49:27.467Z");
        assert_eq!(pulses[0].level_db_spl, Some(76.9));
    }

    #[test]
    fn errors_name_the_problem() {
        let p = Path::new("t.allpulses.json");
        let bad_time = ONE.replace("2018-12-19T00:49:27.467Z", "soon");
        let e = parse_allpulses(p, &bad_time).unwrap_err().to_string();
        assert!(e.contains("t.allpulses.json") && e.contains("soon"), "{e}");
        let e = parse_allpulses(p, "[{").unwrap_err().to_string();
        assert!(e.contains("malformed JSON"), "{e}");
        let e = parse_allpulses(p, &ONE.replace("-11784.3", "1e999"))
            .unwrap_err()
            .to_string();
        assert!(!e.is_empty());
        let e = parse_weather(p, r#"{"temperature": 500}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("temperature"), "{e}");
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(text in ".{0,300}") {
            let _ = parse_allpulses(Path::new("p"), &text);
            let _ = parse_weather(Path::new("w"), &text);
        }

        #[test]
        fn never_panics_on_mangled_pulses(cut in 0usize..300, byte in 0u8..128) {
            let mut text = ONE.as_bytes().to_vec();
            let cut = cut.min(text.len().saturating_sub(1));
            text[cut] = byte;
            if let Ok(text) = String::from_utf8(text) {
                let _ = parse_allpulses(Path::new("p"), &text);
            }
        }

        #[test]
        fn numbers_round_trip(x in -1e6f64..1e6, y in -1e6f64..1e6, snr in -50.0f64..100.0) {
            let text = format!(r#"[{{"arrival_time_utc":"2020-01-01T00:00:00.5Z","location":{{"x":{x},"y":{y},"z":0}},
                "pulse_uuid":"a","serial_number":"s","signal_to_noise_dB":{snr}}}]"#);
            let (sensors, pulses) = parse_allpulses(Path::new("p"), &text).unwrap();
            prop_assert_eq!(sensors[0].position.x, x);
            prop_assert_eq!(sensors[0].position.y, y);
            prop_assert_eq!(pulses[0].snr_db, Some(snr));
        }
    }
}
