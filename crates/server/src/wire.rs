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
    /// A short WAV clip around the pulse, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_wav_b64: Option<String>,
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
