//! Versioned wire types: what sensors send, and the signature that covers it.
//! Domain types ([`model`]) are not the wire format; conversions are here, so a
//! sensor firmware change and a solver change stay independent.
//!
//! A report is one HTTP request body (or one MQTT message's `report`), JSON:
//!
//! ```json
//! {"version": 1, "id": "S01-000042", "sensor": "S01",
//!  "pulses": [{"id": "S01-p-1234", "t_utc": "2026-07-04T21:30:00.123456789Z",
//!              "snr_db": 21.5, "peak_db_spl": 96.0,
//!              "features": {"rise_ms": 0.4}, "clip_wav_b64": "UklGR…"}]}
//! ```
//!
//! It is signed with the sensor's key: `X-Shotfix-Signature` is the hex
//! HMAC-SHA256 of `"{timestamp_ms}.{body}"`, where `X-Shotfix-Timestamp` is the
//! sending time in Unix milliseconds, and `X-Shotfix-Sensor` names the sensor.
//!
//! MQTT 3.1.1 has no headers, so over MQTT the same three values and the body
//! travel in an envelope ([`MqttEnvelopeV1`]), published at QoS 1 to
//! `shotfix/v1/reports/{sensor}`:
//!
//! ```json
//! {"v": 1, "sensor": "S01", "timestamp_ms": 1795262400123,
//!  "signature": "5d41402abc4b2a76…",
//!  "report": "{\"version\":1,\"id\":\"S01-000042\",…}"}
//! ```
//!
//! `report` is the report's exact JSON text as a string, and `signature` the hex
//! HMAC-SHA256 of `"{timestamp_ms}.{report}"`: it covers the string's UTF-8
//! bytes exactly as it covers an HTTP body, so one signing routine serves both
//! transports. The topic's sensor level must equal `sensor`.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The only report version this server reads.
pub const REPORT_VERSION: u32 = 1;

pub const SENSOR_HEADER: &str = "x-shotfix-sensor";
pub const TIMESTAMP_HEADER: &str = "x-shotfix-timestamp";
pub const SIGNATURE_HEADER: &str = "x-shotfix-signature";

/// A sensor report, version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportV1 {
    pub version: u32,
    /// Unique per sensor and report; a report resent with the same id changes nothing.
    pub id: String,
    pub sensor: String,
    pub pulses: Vec<PulseV1>,
    /// The sensor clock's state when these pulses were timed. A report without
    /// it (older sensors, replays of GPS-timed recordings) is taken as timed by
    /// a disciplined clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<ClockV1>,
}

/// What the sensor knows about its clock (chrony's tracking report, or the
/// kernel's `adjtimex` state).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockV1 {
    /// The clock is disciplined (chrony or the kernel says it is synchronised).
    pub synced: bool,
    /// Estimated error of the clock against UTC, milliseconds, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub est_error_ms: Option<f64>,
    /// Where the estimate came from: `chrony`, `adjtimex`, `recording` (the
    /// timestamps of a GPS-timed recording being replayed) or `none`.
    pub source: String,
}

/// The heartbeat version this server reads.
pub const HEARTBEAT_VERSION: u32 = 1;

/// A sensor's periodic health report: `POST /v1/heartbeats`, signed like a
/// report (same three headers, same HMAC over `"{timestamp_ms}.{body}"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatV1 {
    pub version: u32,
    pub sensor: String,
    /// When the sensor sent it, RFC 3339 UTC.
    pub t_utc: String,
    pub software_version: String,
    pub uptime_s: f64,
    pub clock: ClockV1,
    /// Median 1 ms energy of the filtered input, dB relative to full scale
    /// (`null` before the detector has settled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_floor_dbfs: Option<f64>,
    /// Free space on the sensor's data disk, bytes.
    pub disk_free_bytes: u64,
    /// Audio held in the rolling buffer, seconds.
    pub buffer_s: f64,
    /// Reports waiting in the store-and-forward queue.
    pub queue_reports: u64,
    pub queue_bytes: u64,
    /// Audio blocks the input lost (overruns), since the agent started.
    pub input_overruns: u64,
    /// The version of the pushed settings the sensor runs ("" for none).
    pub settings_version: String,
}

/// Settings the server pushes to its sensors (in a heartbeat's answer). Every
/// field is optional: a sensor keeps its own file's value for the ones not
/// given. A sensor never lets pushed settings loosen its privacy limits (see
/// the agent's documentation).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSettingsV1 {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_s: Option<f64>,
    /// Audio before and after a pulse in its clip, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_pre_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_post_s: Option<f64>,
    /// Most clips sent per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clips_per_minute: Option<u32>,
    /// Remove the speech band (300–3400 Hz) from clips.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppress_speech: Option<bool>,
    /// Detector trigger, dB over the noise floor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_db: Option<f64>,
}

impl AgentSettingsV1 {
    /// A version name for these settings: the first 16 hex digits of the
    /// SHA-256 of their JSON ("" for no settings).
    pub fn version(&self) -> String {
        if *self == AgentSettingsV1::default() {
            return String::new();
        }
        use sha2::Digest;
        let json = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(&Sha256::digest(&json)[..8])
    }
}

/// The server's answer to a heartbeat, signed with the sensor's key: the
/// response carries `X-Shotfix-Timestamp` and `X-Shotfix-Signature` over
/// `"{timestamp_ms}.{body}"`, so a sensor takes settings only from its server.
/// Unknown fields are ignored, so a newer server can add to it without
/// breaking older sensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatReplyV1 {
    pub version: u32,
    pub sensor: String,
    /// The settings version the sensor should run.
    pub settings_version: String,
    /// The settings, when the heartbeat named another version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<AgentSettingsV1>,
    /// Stretches of buffered audio the server asks for (an investigation);
    /// the sensor answers each with `POST /v1/clip-uploads`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clip_requests: Vec<ClipRequestV1>,
}

/// Longest stretch of buffered audio one request may ask for, seconds. A
/// sensor refuses longer ones: its buffer is for cutting out a moment, not
/// for listening to a street.
pub const MAX_REQUEST_S: f64 = 30.0;

/// A request for a stretch of a sensor's rolling audio buffer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClipRequestV1 {
    pub id: String,
    /// Start, RFC 3339 UTC.
    pub from_utc: String,
    /// Length, seconds (at most [`MAX_REQUEST_S`]).
    pub seconds: f64,
}

/// A sensor's answer to a [`ClipRequestV1`], `POST /v1/clip-uploads`, signed
/// like a report: the audio as a WAV file, or why there is none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClipUploadV1 {
    pub version: u32,
    pub sensor: String,
    /// The request's id.
    pub request: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wav_b64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One pulse in a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PulseV1 {
    pub id: String,
    /// Onset time, RFC 3339 UTC.
    pub t_utc: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snr_db: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_db_spl: Option<f64>,
    /// Detector features, kept as evidence and for the classifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<serde_json::Map<String, serde_json::Value>>,
    /// A short WAV clip around the pulse, base64, whose first sample is 1 s
    /// before the pulse's onset (the clip convention: evidence reports place
    /// the clip's waveform by it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_wav_b64: Option<String>,
}

/// The MQTT envelope version this server reads.
pub const MQTT_ENVELOPE_VERSION: u32 = 1;

/// One report as an MQTT message (the payload), version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttEnvelopeV1 {
    pub v: u32,
    /// The sending sensor; must equal the topic's sensor level.
    pub sensor: String,
    /// Sending time, Unix milliseconds (`X-Shotfix-Timestamp` over HTTP).
    pub timestamp_ms: i64,
    /// Hex HMAC-SHA256 of `"{timestamp_ms}.{report}"` (`X-Shotfix-Signature`).
    pub signature: String,
    /// The report's exact JSON text (the HTTP body), as a string.
    pub report: String,
}

impl MqttEnvelopeV1 {
    /// Signs `report` (a [`ReportV1`]'s JSON text) for `sensor` at `timestamp_ms`.
    pub fn sign(key: &[u8], sensor: &str, timestamp_ms: i64, report: String) -> MqttEnvelopeV1 {
        MqttEnvelopeV1 {
            v: MQTT_ENVELOPE_VERSION,
            sensor: sensor.to_string(),
            timestamp_ms,
            signature: sign(key, timestamp_ms, report.as_bytes()),
            report,
        }
    }

    /// The MQTT payload.
    pub fn to_payload(&self) -> Vec<u8> {
        // Strings and an integer: serialising cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The report topic of `sensor` under a subscription filter such as
/// `shotfix/v1/reports/+` (its `+` level replaced by the sensor id).
pub fn mqtt_topic(filter: &str, sensor: &str) -> String {
    filter
        .split('/')
        .map(|level| if level == "+" { sensor } else { level })
        .collect::<Vec<_>>()
        .join("/")
}

/// The signature of a body sent at `timestamp_ms`, hex.
pub fn sign(key: &[u8], timestamp_ms: i64, body: &[u8]) -> String {
    hex::encode(mac(key, timestamp_ms, body).finalize().into_bytes())
}

/// Checks a signature in constant time.
pub fn verify(key: &[u8], timestamp_ms: i64, body: &[u8], signature_hex: &str) -> bool {
    let Ok(signature) = hex::decode(signature_hex) else {
        return false;
    };
    mac(key, timestamp_ms, body)
        .verify_slice(&signature)
        .is_ok()
}

fn mac(key: &[u8], timestamp_ms: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(timestamp_ms.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_signs_the_same_bytes_as_http() {
        let key = [3u8; 32];
        let report = r#"{"version":1,"id":"r\"1","sensor":"S1","pulses":[{"id":"é","t_utc":"2026-11-21T12:00:00Z"}]}"#;
        let envelope = MqttEnvelopeV1::sign(&key, "S1", 1_795_262_400_123, report.to_string());
        assert_eq!(
            envelope.signature,
            sign(&key, 1_795_262_400_123, report.as_bytes())
        );
        let back: MqttEnvelopeV1 = serde_json::from_slice(&envelope.to_payload()).unwrap();
        assert_eq!(back, envelope);
        assert!(verify(
            &key,
            back.timestamp_ms,
            back.report.as_bytes(),
            &back.signature
        ));
        // Another encoder's escapes (ASCII-only: `\u00e9` for é) decode to the same bytes.
        let escaped = format!(
            r#"{{"v":1,"sensor":"S1","timestamp_ms":1795262400123,"signature":"{}","report":"{{\"version\":1,\"id\":\"r\\\"1\",\"sensor\":\"S1\",\"pulses\":[{{\"id\":\"\u00e9\",\"t_utc\":\"2026-11-21T12:00:00Z\"}}]}}"}}"#,
            envelope.signature
        );
        let other: MqttEnvelopeV1 = serde_json::from_str(&escaped).unwrap();
        assert_eq!(other.report, report);
        assert!(verify(
            &key,
            other.timestamp_ms,
            other.report.as_bytes(),
            &other.signature
        ));
    }

    #[test]
    fn topics_put_the_sensor_in_the_plus_level() {
        assert_eq!(
            mqtt_topic("shotfix/v1/reports/+", "S1"),
            "shotfix/v1/reports/S1"
        );
        assert_eq!(
            mqtt_topic("run-7/shotfix/v1/reports/+", "S1"),
            "run-7/shotfix/v1/reports/S1"
        );
    }
}
