//! ShotSpotter's `smj0` WAV chunk ("ShotSpotter JSON metadata, version 0"), and
//! folders of ShotSpotter WAV files that carry it (`../shared/data/shotspotter-wav`).
//!
//! The chunk follows the `data` chunk and holds zlib-compressed JSON: the sensor's
//! `serialNumber`, `startTimeUTC` (the first sample), `geolocation` (WGS84
//! latitude, longitude, elevation above mean sea level), METAR `weather`, the
//! `transducers` with their full-scale level in dB SPL, and on newer firmware the
//! GPS `pdop` and the clock's error bound `lambda` (seconds). `smj0.schema.json`
//! beside the data describes it.
//!
//! We are strict about what placing a recording needs (serial number, start time,
//! position) and lenient about the rest, because the schema marks a dozen fields
//! required that shotfix never uses and firmware versions differ: a field shotfix
//! does not need that is missing, `null` or of another type is treated as absent.
//! A value that is present and well typed but physically impossible (a negative
//! clock error, a full scale of 900 dB SPL) is an error, because using it silently
//! would bias the result.

use std::io::Read;
use std::path::{Path, PathBuf};

use model::{Geodetic, Sensor, SensorId, UtcNanos, Weather};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::audio::{read_wav, AnalyzeInput, AudioClip, Wav};
use crate::{list_dir, research, scene, FormatError, Frame};

/// The most JSON one `smj0` chunk may inflate to. Real chunks hold about 1 kB;
/// the cap keeps a few hundred compressed bytes (a "zip bomb") from claiming
/// gigabytes of memory.
pub const MAX_SMJ0_JSON_BYTES: u64 = 1 << 20;

/// The metadata of one ShotSpotter recording, from its `smj0` chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct Smj0 {
    /// `serialNumber`: the sensor (`SCP-00-BNG-5688`).
    pub serial_number: String,
    /// `startTimeUTC`: UTC of the first sample.
    pub start: UtcNanos,
    /// `duration`, seconds, when given. The sample count is authoritative.
    pub duration_s: Option<f64>,
    /// `geolocation`: WGS84 latitude and longitude; `alt_m` is the `elevation`
    /// above mean sea level, used consistently for every sensor of a folder.
    pub geolocation: Geodetic,
    /// `weather`: METAR `temperature` (°C), wind `speed` (m/s) and `direction`
    /// (from, degrees). Fields that are absent stay `None` (the defaults apply).
    pub weather: Weather,
    /// `weather.observationTime`, when readable: lets a folder use its most recent
    /// observation.
    pub weather_observed: Option<UtcNanos>,
    /// `fullScale` of the active transducer on channel 0: the sound pressure level,
    /// dB SPL, of a digital full-scale signal.
    pub full_scale_db_spl: Option<f64>,
    /// `pdop`: position dilution of precision of the GPS fix, when given.
    pub pdop: Option<f64>,
    /// `lambda`: the bound on the sensor clock's absolute error, seconds (RFC 5905
    /// |θ| + ε + δ/2 from `chronyc tracking`), when given.
    pub lambda_s: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireSmj0 {
    serial_number: String,
    #[serde(rename = "startTimeUTC")]
    start_time_utc: String,
    geolocation: WireGeolocation,
    #[serde(default, deserialize_with = "lenient")]
    duration: Option<f64>,
    #[serde(default, deserialize_with = "lenient")]
    weather: Option<WireWeather>,
    #[serde(default, deserialize_with = "lenient")]
    transducers: Option<Vec<WireTransducer>>,
    #[serde(default, deserialize_with = "lenient")]
    pdop: Option<f64>,
    #[serde(default, deserialize_with = "lenient")]
    lambda: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct WireGeolocation {
    latitude: f64,
    longitude: f64,
    elevation: f64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireWeather {
    #[serde(default, deserialize_with = "lenient")]
    temperature: Option<f64>,
    #[serde(default, deserialize_with = "lenient")]
    speed: Option<f64>,
    #[serde(default, deserialize_with = "lenient")]
    direction: Option<f64>,
    #[serde(default, deserialize_with = "lenient")]
    observation_time: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireTransducer {
    #[serde(default, deserialize_with = "lenient")]
    channel: Option<i64>,
    #[serde(default, deserialize_with = "lenient")]
    full_scale: Option<f64>,
    #[serde(default, deserialize_with = "lenient")]
    active: Option<bool>,
}

/// A field shotfix can do without: any JSON value is accepted, and one that does
/// not have the expected shape reads as absent.
fn lenient<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let value = serde_json::Value::deserialize(deserializer)?;
    Ok(serde_json::from_value(value).ok())
}

/// Inflates and reads the body of an `smj0` chunk. `path` names the WAV file in
/// errors.
pub fn parse_smj0(path: &Path, compressed: &[u8]) -> Result<Smj0, FormatError> {
    let invalid = |m: String| FormatError::invalid(path, format!("smj0 chunk: {m}"));
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(compressed)
        .take(MAX_SMJ0_JSON_BYTES + 1)
        .read_to_end(&mut json)
        .map_err(|e| invalid(format!("not valid zlib data: {e}")))?;
    if json.len() as u64 > MAX_SMJ0_JSON_BYTES {
        return Err(invalid(format!(
            "inflates to more than {MAX_SMJ0_JSON_BYTES} bytes: not metadata"
        )));
    }
    let wire: WireSmj0 =
        serde_json::from_slice(&json).map_err(|e| invalid(format!("malformed JSON: {e}")))?;

    if wire.serial_number.trim().is_empty() {
        return Err(invalid("serialNumber is empty".into()));
    }
    let start = UtcNanos::parse_rfc3339(&wire.start_time_utc)
        .map_err(|e| invalid(format!("startTimeUTC: {e}")))?;
    let g = &wire.geolocation;
    let geolocation = Geodetic {
        lat_deg: g.latitude,
        lon_deg: g.longitude,
        alt_m: g.elevation,
    };
    // Real sensors stand between the Dead Sea and the highest cities.
    if !geolocation.is_valid() || !(-500.0..=9000.0).contains(&geolocation.alt_m) {
        return Err(invalid(format!(
            "geolocation {}, {}, {} m is not a valid latitude, longitude and elevation",
            g.latitude, g.longitude, g.elevation
        )));
    }
    let (weather, weather_observed) = match &wire.weather {
        Some(w) => (
            research::checked_weather(w.temperature, w.speed, w.direction)
                .map_err(|m| invalid(format!("weather: {m}")))?,
            w.observation_time
                .as_deref()
                .and_then(|t| UtcNanos::parse_rfc3339(t).ok()),
        ),
        None => (Weather::default(), None),
    };
    // The active transducer recorded on channel 0, the channel shotfix reads.
    let full_scale_db_spl = wire
        .transducers
        .iter()
        .flatten()
        .find(|t| t.channel == Some(0) && t.active != Some(false))
        .and_then(|t| t.full_scale);
    let checks = [
        ("duration", wire.duration, 0.0, 86_400.0),
        ("fullScale", full_scale_db_spl, 0.0, 250.0),
        ("pdop", wire.pdop, 0.0, 1000.0),
        ("lambda", wire.lambda, 0.0, 3600.0),
    ];
    for (name, value, lo, hi) in checks {
        if let Some(v) = value.filter(|v| !(lo..=hi).contains(v)) {
            return Err(invalid(format!("{name} {v} outside {lo}..{hi}")));
        }
    }
    Ok(Smj0 {
        serial_number: wire.serial_number,
        start,
        duration_s: wire.duration,
        geolocation,
        weather,
        weather_observed,
        full_scale_db_spl,
        pdop: wire.pdop,
        lambda_s: wire.lambda,
    })
}

/// Reads a folder of ShotSpotter WAV files, each carrying an `smj0` chunk: one
/// recording per sensor, positions from the chunks converted into a local frame
/// at the mean of the sensors ([`Frame::Wgs84`]), and the weather of the most
/// recent observation among them. Files other than `*.wav` are ignored.
pub fn read_smj0_folder(dir: &Path) -> Result<AnalyzeInput, FormatError> {
    let wavs = wav_files(dir)?
        .into_iter()
        .map(|path| read_wav(&path).map(|wav| (path, wav)))
        .collect::<Result<Vec<_>, _>>()?;
    if wavs.is_empty() {
        return Err(FormatError::invalid(dir, "no .wav files in this folder"));
    }
    from_wavs(dir, wavs)
}

/// The `*.wav` files in `dir` (any case of the extension), sorted.
pub(crate) fn wav_files(dir: &Path) -> Result<Vec<PathBuf>, FormatError> {
    Ok(list_dir(dir)?
        .into_iter()
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| e.eq_ignore_ascii_case("wav"))
        })
        .collect())
}

/// Builds the analyze input from the WAV files already read from `dir`; every one
/// must carry an `smj0` chunk and come from a different sensor.
pub(crate) fn from_wavs(
    dir: &Path,
    wavs: Vec<(PathBuf, Wav)>,
) -> Result<AnalyzeInput, FormatError> {
    let mut places: Vec<(SensorId, Geodetic)> = Vec::with_capacity(wavs.len());
    let mut clips: Vec<AudioClip> = Vec::with_capacity(wavs.len());
    let mut latest: Option<(Option<UtcNanos>, Weather)> = None;
    for (path, wav) in wavs {
        let Some(meta) = &wav.smj0 else {
            return Err(FormatError::invalid(
                &path,
                "no smj0 metadata chunk, unlike the other WAV files in this folder: \
                 its sensor, start time and position are unknown",
            ));
        };
        let sensor = SensorId(meta.serial_number.clone());
        let (start, place) = (meta.start, meta.geolocation);
        if let Some(other) = clips.iter().find(|c| c.sensor == sensor) {
            return Err(FormatError::invalid(
                &path,
                format!(
                    "a second recording from sensor {sensor} (also {}): one file per sensor",
                    other.path.display()
                ),
            ));
        }
        // Ties and unknown observation times keep the earlier file's weather.
        let newer = match &latest {
            Some((seen, _)) => meta.weather_observed > *seen,
            None => true,
        };
        if newer {
            latest = Some((meta.weather_observed, meta.weather));
        }
        places.push((sensor.clone(), place));
        clips.push(AudioClip::from_wav(sensor, path, start, wav));
    }
    let geo: Vec<Geodetic> = places.iter().map(|(_, g)| *g).collect();
    let frame = scene::frame_at_mean(&geo)
        .ok_or_else(|| FormatError::invalid(dir, "no WAV files to take positions from"))?;
    let mut sensors: Vec<Sensor> = places
        .into_iter()
        .map(|(id, g)| Sensor {
            id,
            position: frame.to_local(g),
        })
        .collect();
    sensors.sort_by(|a, b| a.id.cmp(&b.id));
    clips.sort_by(|a, b| a.sensor.cmp(&b.sensor));
    Ok(AnalyzeInput {
        frame: Frame::Wgs84 { frame },
        sensors,
        clips,
        weather: latest.map(|(_, w)| w).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Write;

    /// The example in `smj0.schema.json`, with the clock fields of newer firmware.
    const EXAMPLE: &str = r#"{"serialNumber": "SCP-00-BNG-8319", "startTimeUTC": "2021-09-29T15:37:47.000Z",
        "duration": 8.0, "utcOffset": -14400.0, "spoolFormat": 10, "recordStatus": -1,
        "friendlyName": "SCP-00-BNG-8319", "friendlyNumber": -1, "sensorType": "Scepter2",
        "firmwareVersion": "ECO1774rc24-9.1.0.77147-0p5",
        "geolocation": {"latitude": 41.290138, "longitude": -82.226468, "elevation": 257.88016086756},
        "pdop": 2.00000, "lambda": 2.40720000000000E-5,
        "zone": {"name": "OberlinOH", "zoneId": 404, "host": "SSI-EASTERN-DEV", "instanceId": 40,
                 "instanceVersion": "9.8.12.77116", "displayName": "OberlinOH", "localTzid": "America/New_York"},
        "weather": {"medium": "air", "temperature": 18.3, "relativeHumidity": null, "salinity": 0.0,
                    "speed": 3.5, "direction": 290.0, "precipitation": "clear",
                    "observationTime": "2021-09-29T14:51:00.000Z",
                    "observationDetails": {"provider": "METAR station", "station": "KCLE"}},
        "transducers": [{"name": "Microphone (SCP Standard)", "channel": 0, "fullScale": 93.09,
                         "noise": 0.0, "active": true}]}"#;

    fn zlib(bytes: &[u8]) -> Vec<u8> {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(bytes).unwrap();
        z.finish().unwrap()
    }

    fn parse(json: &str) -> Result<Smj0, FormatError> {
        parse_smj0(Path::new("r.wav"), &zlib(json.as_bytes()))
    }

    fn err(json: &str) -> String {
        parse(json).unwrap_err().to_string()
    }

    #[test]
    fn reads_the_schema_example() {
        let m = parse(EXAMPLE).unwrap();
        assert_eq!(m.serial_number, "SCP-00-BNG-8319");
        assert_eq!(m.start.to_rfc3339(), "2021-09-29T15:37:47.000Z");
        assert_eq!(m.duration_s, Some(8.0));
        assert_eq!(
            m.geolocation,
            Geodetic {
                lat_deg: 41.290138,
                lon_deg: -82.226468,
                alt_m: 257.88016086756
            }
        );
        assert_eq!(
            m.weather,
            Weather {
                temperature_c: Some(18.3),
                wind_speed_m_s: Some(3.5),
                wind_from_deg: Some(290.0)
            }
        );
        assert_eq!(
            m.weather_observed.map(UtcNanos::to_rfc3339).as_deref(),
            Some("2021-09-29T14:51:00.000Z")
        );
        assert_eq!(m.full_scale_db_spl, Some(93.09));
        assert_eq!((m.pdop, m.lambda_s), (Some(2.0), Some(2.4072e-5)));
    }

    #[test]
    fn lenient_on_what_shotfix_does_not_need() {
        let m = parse(
            r#"{"serialNumber":"S","startTimeUTC":"2022-01-01T00:00:00Z",
                "geolocation":{"latitude":1,"longitude":2,"elevation":3},
                "duration":"long","weather":"fine","transducers":{"0":1},"pdop":null,"zone":7}"#,
        )
        .unwrap();
        assert_eq!(m.duration_s, None);
        assert_eq!(m.weather, Weather::default());
        assert_eq!(
            (m.full_scale_db_spl, m.pdop, m.lambda_s),
            (None, None, None)
        );
        let m = parse(
            r#"{"serialNumber":"S","startTimeUTC":"2022-01-01T00:00:00Z",
                "geolocation":{"latitude":1,"longitude":2,"elevation":3},
                "weather":{"temperature":null,"speed":"calm","direction":90,"observationTime":"dawn"}}"#,
        )
        .unwrap();
        assert_eq!(
            m.weather,
            Weather {
                temperature_c: None,
                wind_speed_m_s: None,
                wind_from_deg: Some(90.0)
            }
        );
        assert_eq!(m.weather_observed, None);
    }

    #[test]
    fn full_scale_comes_from_the_active_channel_0_transducer() {
        let with = |transducers: &str| {
            parse(&EXAMPLE.replace(
                r#""transducers": [{"name": "Microphone (SCP Standard)", "channel": 0, "fullScale": 93.09,
                         "noise": 0.0, "active": true}]"#,
                &format!(r#""transducers": {transducers}"#),
            ))
            .unwrap()
            .full_scale_db_spl
        };
        assert_eq!(
            with(
                r#"[{"channel":1,"fullScale":80,"active":true},{"channel":0,"fullScale":70,"active":false},
                    {"channel":0,"fullScale":94.5,"active":true}]"#
            ),
            Some(94.5)
        );
        assert_eq!(with(r#"[{"channel":0,"fullScale":91}]"#), Some(91.0));
        assert_eq!(with(r#"[{"channel":1,"fullScale":91}]"#), None);
        assert_eq!(with("[]"), None);
    }

    #[test]
    fn corrupt_chunks_are_errors_that_say_why() {
        let p = Path::new("r.wav");
        let e = parse_smj0(p, EXAMPLE.as_bytes()).unwrap_err().to_string();
        assert!(e.starts_with("r.wav: smj0 chunk: not valid zlib"), "{e}");
        let mut cut = zlib(EXAMPLE.as_bytes());
        cut.truncate(cut.len() / 2);
        assert!(parse_smj0(p, &cut).is_err());
        assert!(parse_smj0(p, &[]).is_err());
        let e = err("sensor SCP-00 at the corner");
        assert!(e.contains("smj0 chunk: malformed JSON"), "{e}");
        for (from, to, rule) in [
            (
                r#""startTimeUTC""#,
                r#""start""#,
                "missing field `startTimeUTC`",
            ),
            (
                r#""serialNumber""#,
                r#""serial""#,
                "missing field `serialNumber`",
            ),
            (
                r#""geolocation""#,
                r#""geo""#,
                "missing field `geolocation`",
            ),
            (r#""elevation""#, r#""height""#, "missing field `elevation`"),
            ("41.290138", "\"north\"", "invalid type: string \"north\""),
            ("41.290138", "91.5", "not a valid latitude"),
            ("257.88016086756", "25788.0", "elevation"),
            (
                r#""SCP-00-BNG-8319", "startTime"#,
                r#"" ", "startTime"#,
                "serialNumber is empty",
            ),
            (
                "2021-09-29T15:37:47.000Z",
                "yesterday",
                "startTimeUTC: bad UTC timestamp",
            ),
            ("93.09", "930.9", "fullScale 930.9 outside"),
            ("2.40720000000000E-5", "-1", "lambda -1 outside"),
            ("18.3", "180", "weather: temperature outside"),
        ] {
            assert!(EXAMPLE.contains(from), "{from}");
            let e = err(&EXAMPLE.replacen(from, to, 1));
            assert!(
                e.starts_with("r.wav: smj0 chunk: ") && e.contains(rule),
                "{rule}: {e}"
            );
        }
    }

    #[test]
    fn a_zip_bomb_is_refused() {
        let bomb = zlib(&vec![b' '; 2 << 20]);
        assert!(bomb.len() < 10_000);
        let e = parse_smj0(Path::new("r.wav"), &bomb)
            .unwrap_err()
            .to_string();
        assert!(e.contains("inflates to more than 1048576 bytes"), "{e}");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            // Random bytes are never zlib-compressed JSON holding the required fields.
            prop_assert!(parse_smj0(Path::new("r"), &bytes).is_err());
        }

        #[test]
        fn compressed_text_never_panics(text in ".{0,200}") {
            let _ = parse(&text);
        }

        #[test]
        fn mangled_metadata_never_panics(at in 0usize..1500, byte in 0u8..128) {
            let mut json = EXAMPLE.as_bytes().to_vec();
            let at = at % json.len();
            json[at] = byte;
            let _ = parse_smj0(Path::new("r"), &zlib(&json));
        }
    }
}
