//! The server's configuration file (TOML). Every field is optional except the
//! sensors; unknown fields are an error, so a typo never silently does nothing.
//!
//! ```toml
//! listen = "127.0.0.1:8080"
//! database = "shotfix.db"
//! origin = { lat = 40.4406, lon = -79.9959, alt_m = 250.0 }
//! weather = { temperature_c = 4.0 }
//! webhooks = [{ url = "https://cad.example/shotfix", secret = "…" }]
//! addresses = "addresses.csv"
//! [[sensors]]
//! id = "S01"
//! key = "64 hex digits"
//! lat = 40.44
//! lon = -79.99
//! alt_m = 262.0
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// A sensor the server accepts reports from.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorConfig {
    pub id: String,
    /// The sensor's HMAC-SHA256 key, hex (at least 16 bytes).
    pub key: String,
    pub lat: f64,
    pub lon: f64,
    pub alt_m: f64,
}

/// A webhook receiver (a CAD system, a notification service).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// Shared secret for the `X-Shotfix-Signature` HMAC.
    pub secret: String,
}

/// Where the local frame is anchored.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OriginConfig {
    pub lat: f64,
    pub lon: f64,
    #[serde(default)]
    pub alt_m: f64,
}

/// Weather for the speed of sound (and wind correction).
#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeatherConfig {
    pub temperature_c: Option<f64>,
    pub wind_speed_m_s: Option<f64>,
    pub wind_from_deg: Option<f64>,
}

/// Ingest limits.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest report body, bytes. A report of 100 pulses is ~20 kB; a 2 s clip
    /// at 16 kHz as 16-bit WAV in base64 is ~85 kB.
    pub max_body_bytes: usize,
    /// Largest number of pulses in one report.
    pub max_pulses_per_report: usize,
    /// Reports per second one sensor may send, sustained. A sensor batches its
    /// pulses; even a firework display needs a few reports per second.
    pub reports_per_s: f64,
    /// Burst allowance, reports.
    pub burst: f64,
    /// How far a report's signed timestamp may be from the server's clock,
    /// seconds. Older reports are replays; GPS-disciplined sensors are far closer.
    pub max_clock_skew_s: f64,
}

impl Default for LimitsConfig {
    fn default() -> LimitsConfig {
        LimitsConfig {
            max_body_bytes: 1 << 20,
            max_pulses_per_report: 1_000,
            reports_per_s: 20.0,
            burst: 100.0,
            max_clock_skew_s: 300.0,
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// SQLite database file.
    #[serde(default = "default_database")]
    pub database: PathBuf,
    /// Anchor of the local frame; default: the first sensor.
    pub origin: Option<OriginConfig>,
    #[serde(default)]
    pub weather: WeatherConfig,
    #[serde(default)]
    pub sensors: Vec<SensorConfig>,
    #[serde(default)]
    pub webhooks: Vec<WebhookConfig>,
    /// CSV of address points (`address,lat,lon` header) for the nearest address.
    pub addresses: Option<PathBuf>,
    #[serde(default)]
    pub limits: LimitsConfig,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_database() -> PathBuf {
    PathBuf::from("shotfix.db")
}

impl ServerConfig {
    /// A configuration with defaults and no sensors (tests, the demo).
    pub fn new(database: PathBuf) -> ServerConfig {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database,
            origin: None,
            weather: WeatherConfig::default(),
            sensors: Vec::new(),
            webhooks: Vec::new(),
            addresses: None,
            limits: LimitsConfig::default(),
        }
    }

    /// Parses and checks a configuration file's text.
    pub fn from_toml(text: &str) -> Result<ServerConfig, String> {
        let config: ServerConfig = toml::from_str(text).map_err(|e| e.message().to_string())?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values a type cannot: keys, coordinates, limits.
    pub fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for s in &self.sensors {
            if s.id.is_empty() || s.id.len() > 64 {
                return Err(format!("sensor id {:?}: must be 1–64 characters", s.id));
            }
            if !seen.insert(&s.id) {
                return Err(format!("sensor {} is listed twice", s.id));
            }
            match hex::decode(&s.key) {
                Ok(k) if k.len() >= 16 => {}
                _ => {
                    return Err(format!(
                        "sensor {}: key must be at least 32 hex digits (16 bytes)",
                        s.id
                    ))
                }
            }
            if !(-90.0..=90.0).contains(&s.lat)
                || !(-180.0..=180.0).contains(&s.lon)
                || !s.alt_m.is_finite()
            {
                return Err(format!(
                    "sensor {}: position {}, {}, {} m is not a valid latitude, longitude and height",
                    s.id, s.lat, s.lon, s.alt_m
                ));
            }
        }
        for w in &self.webhooks {
            if !(w.url.starts_with("http://") || w.url.starts_with("https://")) {
                return Err(format!(
                    "webhook {}: must be an http:// or https:// URL",
                    w.url
                ));
            }
            if w.secret.len() < 16 {
                return Err(format!(
                    "webhook {}: secret must be at least 16 characters",
                    w.url
                ));
            }
        }
        let l = &self.limits;
        if !(l.reports_per_s > 0.0 && l.burst >= 1.0 && l.max_clock_skew_s > 0.0) {
            return Err("limits: reports_per_s and max_clock_skew_s must be > 0, burst ≥ 1".into());
        }
        if let Some(o) = self.origin {
            if !(-90.0..=90.0).contains(&o.lat) || !(-180.0..=180.0).contains(&o.lon) {
                return Err(format!(
                    "origin {}, {} is not a valid latitude and longitude",
                    o.lat, o.lon
                ));
            }
        }
        Ok(())
    }
}
