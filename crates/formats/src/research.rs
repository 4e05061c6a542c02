//! The ShotSpotter research layout (`../shared/data/pittsburgh-dev/FPn/test_NNN/`).
//!
//! `test_NNN.allpulses.json`: an array of pulses, each with `pulse_uuid`,
//! `serial_number`, `arrival_time_utc`, sensor `location` {x, y, z} (local metres),
//! `signal_to_noise_dB` and `power_dB_SPL`. `test_NNN.weather.json` (optional):
//! METAR `temperature` (°C), wind `speed` (m/s) and `direction` (from, degrees).

use std::path::{Path, PathBuf};

use model::{Point3, Pulse, PulseId, Sensor, SensorId, UtcNanos, Weather};
use serde::Deserialize;

use crate::{parse_json, read_to_string, FormatError, Frame, LocateInput};

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
    let entries = std::fs::read_dir(dir).map_err(|source| FormatError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(suffix))
        })
        .collect();
    found.sort();
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
    for (name, v) in [
        ("temperature", w.temperature),
        ("speed", w.speed),
        ("direction", w.direction),
    ] {
        if v.is_some_and(|v| !v.is_finite()) {
            return Err(FormatError::invalid(path, format!("{name} is not finite")));
        }
    }
    if w.temperature.is_some_and(|t| !(-90.0..=70.0).contains(&t)) {
        return Err(FormatError::invalid(path, "temperature outside -90..70 °C"));
    }
    if w.speed.is_some_and(|s| !(0.0..=100.0).contains(&s)) {
        return Err(FormatError::invalid(path, "wind speed outside 0..100 m/s"));
    }
    Ok(Weather {
        temperature_c: w.temperature,
        wind_speed_m_s: w.speed,
        wind_from_deg: w.direction,
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
