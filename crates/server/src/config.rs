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
//! [mqtt]                      # optional: also take reports from an MQTT broker
//! url = "mqtt://127.0.0.1:1883"
//! topic = "shotfix/v1/reports/+"
//! client_id = "shotfix-server"
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

/// The MQTT ingest source (docs/server.md): the server subscribes to the
/// sensors' report topic on a broker, QoS 1 with a persistent session, so
/// reports published while it is down are delivered when it is back.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// The broker, `mqtt://HOST[:PORT]` (or `tcp://`); port 1883 by default.
    pub url: String,
    /// The subscription: exactly one `+` level, which is the sensor id.
    #[serde(default = "default_mqtt_topic")]
    pub topic: String,
    /// The session's client id. The broker keeps the subscription and queues
    /// reports under it while the server is down, so it must stay the same
    /// across restarts and be unique among the broker's clients.
    #[serde(default = "default_mqtt_client_id")]
    pub client_id: String,
    /// Broker login, if the broker wants one.
    pub username: Option<String>,
    pub password: Option<String>,
}

/// The default report topic filter.
pub const MQTT_TOPIC: &str = "shotfix/v1/reports/+";

fn default_mqtt_topic() -> String {
    MQTT_TOPIC.to_string()
}

fn default_mqtt_client_id() -> String {
    "shotfix-server".to_string()
}

impl MqttConfig {
    /// A configuration with the default topic and client id.
    pub fn new(url: &str) -> MqttConfig {
        MqttConfig {
            url: url.to_string(),
            topic: default_mqtt_topic(),
            client_id: default_mqtt_client_id(),
            username: None,
            password: None,
        }
    }

    /// The broker's host and port from `url`.
    pub fn broker(&self) -> Result<(String, u16), String> {
        parse_mqtt_url(&self.url)
    }

    /// Checks the URL, the topic filter and the client id.
    pub fn validate(&self) -> Result<(), String> {
        self.broker()?;
        topic_sensor_level(&self.topic)?;
        if self.client_id.is_empty() || self.client_id.len() > 64 {
            return Err(format!(
                "mqtt client_id {:?}: must be 1–64 characters (a persistent session needs one)",
                self.client_id
            ));
        }
        if self.password.is_some() && self.username.is_none() {
            return Err("mqtt: a password needs a username".into());
        }
        Ok(())
    }
}

/// Splits `mqtt://HOST[:PORT]` (or `tcp://`) into host and port.
pub fn parse_mqtt_url(url: &str) -> Result<(String, u16), String> {
    let rest = if let Some(r) = url.strip_prefix("mqtt://") {
        r
    } else if let Some(r) = url.strip_prefix("tcp://") {
        r
    } else if url.starts_with("mqtts://") || url.starts_with("ssl://") {
        return Err(format!(
            "mqtt url {url:?}: TLS to the broker is not supported yet; use mqtt:// (reports are signed either way)"
        ));
    } else {
        return Err(format!("mqtt url {url:?}: must be mqtt://HOST[:PORT]"));
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        // [::1]:1883
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("mqtt url {url:?}: unclosed '['"))?;
        (host, after.strip_prefix(':'))
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if host.is_empty() || host.contains('/') || host.contains('@') {
        return Err(format!(
            "mqtt url {url:?}: must be mqtt://HOST[:PORT] (credentials go in username and password)"
        ));
    }
    let port = match port {
        None => 1883,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| format!("mqtt url {url:?}: port {p:?} is not a port number"))?,
    };
    Ok((host.to_string(), port))
}

/// The index of the topic filter's one `+` level (which names the sensor).
pub fn topic_sensor_level(filter: &str) -> Result<usize, String> {
    let levels: Vec<&str> = filter.split('/').collect();
    let plus: Vec<usize> = (0..levels.len()).filter(|&i| levels[i] == "+").collect();
    let wrong = filter.contains('#')
        || plus.len() != 1
        || levels
            .iter()
            .any(|l| *l != "+" && (l.contains('+') || l.is_empty()));
    match plus.as_slice() {
        [i] if !wrong => Ok(*i),
        _ => Err(format!(
            "mqtt topic {filter:?}: must have exactly one '+' level (the sensor id), no '#' and no empty level, e.g. {MQTT_TOPIC:?}"
        )),
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
    /// MQTT ingest beside HTTP; absent, no broker is needed.
    pub mqtt: Option<MqttConfig>,
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
            mqtt: None,
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
        if let Some(m) = &self.mqtt {
            m.validate()?;
            // A sensor id is one topic level.
            if let Some(s) = self.sensors.iter().find(|s| s.id.contains(['/', '+', '#'])) {
                return Err(format!(
                    "sensor {:?}: an id with '/', '+' or '#' cannot be an MQTT topic level",
                    s.id
                ));
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mqtt_urls() {
        let ok = |u: &str| parse_mqtt_url(u).unwrap();
        assert_eq!(ok("mqtt://127.0.0.1:1883"), ("127.0.0.1".into(), 1883));
        assert_eq!(
            ok("mqtt://broker.example/"),
            ("broker.example".into(), 1883)
        );
        assert_eq!(ok("tcp://[::1]:1884"), ("::1".into(), 1884));
        assert!(parse_mqtt_url("mqtts://broker:8883")
            .unwrap_err()
            .contains("TLS"));
        for bad in [
            "http://broker",
            "mqtt://",
            "mqtt://broker:0",
            "mqtt://broker:x",
            "mqtt://user:pw@broker",
            "mqtt://broker/path",
            "mqtt://[::1",
        ] {
            assert!(parse_mqtt_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mqtt_topic_filters() {
        assert_eq!(topic_sensor_level(MQTT_TOPIC), Ok(3));
        assert_eq!(topic_sensor_level("+"), Ok(0));
        assert_eq!(topic_sensor_level("city/+/reports"), Ok(1));
        for bad in ["a/b", "a/#", "+/+", "a//+", "a/x+/+", "/+/", ""] {
            assert!(topic_sensor_level(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_mqtt_table_is_optional_and_checked() {
        let sensor = "[[sensors]]\nid = \"S1\"\nkey = \"000102030405060708090a0b0c0d0e0f\"\nlat = 40.0\nlon = -80.0\nalt_m = 1.0\n";
        assert_eq!(ServerConfig::from_toml(sensor).unwrap().mqtt, None);
        let with = |mqtt: &str| ServerConfig::from_toml(&format!("[mqtt]\n{mqtt}\n{sensor}"));
        let m = with("url = \"mqtt://127.0.0.1\"").unwrap().mqtt.unwrap();
        assert_eq!(m, MqttConfig::new("mqtt://127.0.0.1"));
        assert_eq!(m.topic, "shotfix/v1/reports/+");
        assert!(with("url = \"mqtt://h\"\nqos = 1").is_err(), "unknown key");
        assert!(with("topic = \"a/+\"").is_err(), "no url");
        assert!(with("url = \"mqtt://h\"\ntopic = \"a/#\"").is_err());
        assert!(with("url = \"mqtt://h\"\nclient_id = \"\"").is_err());
        assert!(with("url = \"mqtt://h\"\npassword = \"p\"").is_err());
        let slash = sensor.replace("\"S1\"", "\"city/S1\"");
        assert!(ServerConfig::from_toml(&slash).is_ok(), "fine over HTTP");
        assert!(
            ServerConfig::from_toml(&format!("[mqtt]\nurl = \"mqtt://h\"\n{slash}")).is_err(),
            "not a topic level"
        );
    }
}
