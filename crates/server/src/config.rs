//! The server's configuration file (TOML). Every field is optional except the
//! sensors; unknown fields are an error, so a typo never silently does nothing.
//!
//! ```toml
//! listen = "127.0.0.1:8080"
//! database = "shotfix.db"            # or "postgres://shotfix:…@db.example/shotfix"
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

use std::borrow::Cow;
use std::ffi::OsStr;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use store::{Db, StoreError};

/// Where the server keeps its data. The configuration's `database` is one
/// string: a `postgres://` or `postgresql://` URL is a PostgreSQL database,
/// anything else the path of an SQLite file (created if missing), exactly as
/// before PostgreSQL was supported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// An SQLite file: the embedded default.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL, as libpq takes it
    /// (`postgres://user:password@host:5432/dbname?connect_timeout=5`).
    Postgres(String),
}

impl Database {
    /// Reads a `database` setting (the configuration's, or `--db`): a
    /// PostgreSQL URL by its scheme, otherwise an SQLite path taken as it is.
    pub fn parse(setting: impl AsRef<OsStr>) -> Database {
        let setting = setting.as_ref();
        match setting.to_str() {
            Some(url) if is_postgres_url(url) => Database::Postgres(url.to_string()),
            _ => Database::Sqlite(PathBuf::from(setting)),
        }
    }

    /// Opens the database, creating the SQLite file or the schema as needed.
    /// Blocking: on PostgreSQL this connects, and the `postgres` client panics
    /// when it blocks on an async runtime's thread, so call it from a plain
    /// thread (as the writer and reader threads do), never from a task.
    pub fn open(&self) -> Result<Db, StoreError> {
        match self {
            Database::Sqlite(path) => Db::open_sqlite(path),
            Database::Postgres(url) => Db::open_postgres(url),
        }
    }

    /// Opens the database as it is, creating and migrating nothing (checks
    /// such as `shotfix verify`).
    pub fn open_existing(&self) -> Result<Db, StoreError> {
        match self {
            Database::Sqlite(path) => Db::open_existing_sqlite(path),
            Database::Postgres(url) => Db::open_existing_postgres(url),
        }
    }

    /// The setting that [`Database::parse`] reads back as this database, for
    /// writing a configuration file: the URL unchanged (password included), or
    /// the path (with `./` in front in the odd case that it looks like a URL).
    pub fn setting(&self) -> Cow<'_, str> {
        match self {
            Database::Postgres(url) => Cow::Borrowed(url),
            Database::Sqlite(path) => {
                let text = path.to_string_lossy();
                if is_postgres_url(&text) {
                    Cow::Owned(format!("./{text}"))
                } else {
                    text
                }
            }
        }
    }
}

fn is_postgres_url(text: &str) -> bool {
    text.starts_with("postgres://") || text.starts_with("postgresql://")
}

/// For messages and logs: the path, or the URL with its password as `***`.
impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "{}", path.display()),
            Database::Postgres(url) => f.write_str(&store::redact(url)),
        }
    }
}

/// A path is an SQLite file, whatever its text.
impl From<PathBuf> for Database {
    fn from(path: PathBuf) -> Database {
        Database::Sqlite(path)
    }
}

impl From<&PathBuf> for Database {
    fn from(path: &PathBuf) -> Database {
        Database::Sqlite(path.clone())
    }
}

impl From<&Path> for Database {
    fn from(path: &Path) -> Database {
        Database::Sqlite(path.to_path_buf())
    }
}

impl<'de> Deserialize<'de> for Database {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Database, D::Error> {
        String::deserialize(d).map(Database::parse)
    }
}

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
    /// Pulses timed by a clock whose estimated error is larger than this,
    /// milliseconds, or that says it is not synchronised, are stored but left
    /// out of locating. 1 ms is 0.34 m of range at the speed of sound, about
    /// three times the arrival-time spread the solver already allows for a
    /// GPS-timed onset (0.29 ms): a larger clock error would move shots further
    /// than the uncertainty the solver reports for them.
    pub max_clock_error_ms: f64,
    /// Largest clip upload (a sensor's answer to a clip request), bytes: 30 s
    /// of 48 kHz 16-bit audio is 2.9 MB, 3.8 MB in base64.
    pub max_clip_upload_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> LimitsConfig {
        LimitsConfig {
            max_body_bytes: 1 << 20,
            max_pulses_per_report: 1_000,
            reports_per_s: 20.0,
            burst: 100.0,
            max_clock_skew_s: 300.0,
            max_clock_error_ms: 1.0,
            max_clip_upload_bytes: 16 << 20,
        }
    }
}

/// People's sessions (docs/access.md).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessConfig {
    /// How long a login lasts, hours: one shift.
    pub session_hours: f64,
}

impl Default for AccessConfig {
    fn default() -> AccessConfig {
        AccessConfig {
            session_hours: 12.0,
        }
    }
}

/// Human review (docs/access.md).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReviewConfig {
    /// Hold a first alert for review while P(gunfire) is below this (0: never
    /// hold, the default: review confirms without holding the alert back).
    pub hold_below_p: f64,
    /// A held alert goes out anyway after this many seconds without a review.
    pub hold_timeout_s: f64,
}

impl Default for ReviewConfig {
    fn default() -> ReviewConfig {
        ReviewConfig {
            hold_below_p: 0.0,
            hold_timeout_s: 60.0,
        }
    }
}

/// How long each kind of data is kept, days (0: kept until deleted by hand).
/// The defaults and their reasons are in docs/access.md.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Pulses no incident uses (noise, echoes, unlocated sounds).
    pub pulses_days: f64,
    /// Audio clips no incident uses.
    pub clips_days: f64,
    /// Incidents, from their last shot, with their pulses, clips, versions and alerts.
    pub incidents_days: f64,
    /// Audit records.
    pub audit_days: f64,
    /// How often the job runs, seconds.
    pub interval_s: f64,
}

impl Default for RetentionConfig {
    fn default() -> RetentionConfig {
        RetentionConfig {
            pulses_days: 30.0,
            clips_days: 30.0,
            incidents_days: 3.0 * 365.0,
            audit_days: 3.0 * 365.0,
            interval_s: 3_600.0,
        }
    }
}

/// The public view (docs/access.md).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PublicConfig {
    /// Incidents appear in the public view this long after they happened, hours.
    pub delay_hours: f64,
    /// Side of the square blocks incidents are counted in, metres.
    pub block_m: f64,
    /// H3 resolution of the public cells (`GET /v1/public/cells`), at most
    /// [`PublicConfig::MAX_H3_RES`].
    pub h3_res: u8,
    /// Least distance a partner's per-incident row is moved from the
    /// incident, metres (it is moved between this and twice this).
    pub coarsen_m: f64,
}

impl Default for PublicConfig {
    fn default() -> PublicConfig {
        PublicConfig {
            delay_hours: 24.0,
            block_m: 250.0,
            // Resolution 8: hexagons of 0.74 km², about 530 m a side.
            h3_res: 8,
            // About a block, as the Chicago portal moves its points.
            coarsen_m: 100.0,
        }
    }
}

/// The public view's coarsening (docs/analytics.md): how incidents are
/// counted, and how far a partner's per-incident row is moved.
impl PublicConfig {
    /// Smallest H3 cells (largest resolution) the public view counts in.
    pub const MAX_H3_RES: u8 = 9;
}

/// Areas of interest (docs/analytics.md): GeoJSON layers counted per area,
/// and the school calendar the counts are split by.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AreasConfig {
    pub layers: Vec<AreaLayerConfig>,
    pub school_hours: Option<SchoolHoursConfig>,
}

/// One GeoJSON file of polygons (districts, beats, community areas) or points
/// (schools, parks), each point counted within `buffer_m`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AreaLayerConfig {
    pub name: String,
    pub file: PathBuf,
    /// The feature property holding an area's name (default: `name`, `NAME`,
    /// `Name`, then the feature's id).
    #[serde(default)]
    pub name_property: Option<String>,
    /// Radius around a point feature, metres.
    #[serde(default = "default_buffer_m")]
    pub buffer_m: f64,
}

/// 300 m: the school-safety zone radius many US cities use (about three
/// blocks), and the issue's default.
fn default_buffer_m() -> f64 {
    300.0
}

/// When school is in: on `days`, from `start` to `end` local time, on dates
/// within a term (every date if `terms` is empty) and not `closed`. The
/// hours from `end` to `after_end` on those days are "after school".
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchoolHoursConfig {
    #[serde(default = "default_school_days")]
    pub days: Vec<String>,
    pub start: String,
    pub end: String,
    #[serde(default = "default_after_end")]
    pub after_end: String,
    /// First and last day of each term, YYYY-MM-DD, both included.
    #[serde(default)]
    pub terms: Vec<[String; 2]>,
    /// Holidays and closures within terms.
    #[serde(default)]
    pub closed: Vec<String>,
}

fn default_school_days() -> Vec<String> {
    ["mon", "tue", "wed", "thu", "fri"]
        .map(String::from)
        .to_vec()
}

fn default_after_end() -> String {
    "19:00".into()
}

/// The performance measures (docs/analytics.md).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MeasuresConfig {
    /// What the system costs a year (contract, staff, hosting), for the cost
    /// per alert and per outcome; absent, no cost is reported.
    pub cost_per_year: Option<f64>,
    pub currency: String,
    /// A 911 call matches an alert within this distance, metres.
    pub call_match_m: f64,
    /// … and from this long before the alert's first shot …
    pub call_before_s: f64,
    /// … to this long after it.
    pub call_after_s: f64,
}

impl Default for MeasuresConfig {
    fn default() -> MeasuresConfig {
        // 400 m: a caller gives their own address, and people report shots
        // they hear from a few blocks away. 2 min before (the call centre's
        // clock against GPS time, and a call that is logged as it is
        // answered) to 10 min after (people wait, then call).
        MeasuresConfig {
            cost_per_year: None,
            currency: "USD".into(),
            call_match_m: 400.0,
            call_before_s: 120.0,
            call_after_s: 600.0,
        }
    }
}

/// The dashboard's map (docs/dashboard.md).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MapConfig {
    /// Raster tile URL template with `{z}`, `{x}`, `{y}` (and optionally
    /// `{s}`); empty: no tiles, the map is drawn from its vector overlays
    /// alone (offline use).
    pub tiles: String,
    /// Credit the tile provider requires, shown on the map.
    pub attribution: String,
    pub max_zoom: u8,
    /// A GeoJSON file (WGS84) of streets, buildings or districts drawn on
    /// every map; `shotfix demo` writes its simulated city's.
    pub overlay: Option<PathBuf>,
    /// The city's IANA time zone: displayed times and the hour-of-day and
    /// day-of-week analytics use it.
    pub timezone: String,
}

/// OpenStreetMap's standard tiles (their tile usage policy applies: a city's
/// deployment should use its own tile server or a provider's).
pub const OSM_TILES: &str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png";

impl Default for MapConfig {
    fn default() -> MapConfig {
        MapConfig {
            tiles: OSM_TILES.into(),
            attribution: "© OpenStreetMap contributors".into(),
            max_zoom: 19,
            overlay: None,
            timezone: "UTC".into(),
        }
    }
}

impl MapConfig {
    /// The time zone, checked by [`ServerConfig::validate`].
    pub fn tz(&self) -> chrono_tz::Tz {
        self.timezone.parse().unwrap_or(chrono_tz::UTC)
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
    /// An SQLite file or a PostgreSQL URL (see [`Database`]).
    #[serde(default = "default_database")]
    pub database: Database,
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
    #[serde(default)]
    pub access: AccessConfig,
    #[serde(default)]
    pub review: ReviewConfig,
    #[serde(default)]
    pub retention: RetentionConfig,
    #[serde(default)]
    pub public: PublicConfig,
    #[serde(default)]
    pub map: MapConfig,
    #[serde(default)]
    pub areas: AreasConfig,
    #[serde(default)]
    pub measures: MeasuresConfig,
    /// Settings pushed to every sensor agent in its heartbeat's answer.
    #[serde(default)]
    pub agent: wire::AgentSettingsV1,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_database() -> Database {
    Database::Sqlite(PathBuf::from("shotfix.db"))
}

impl ServerConfig {
    /// A configuration with defaults and no sensors (tests, the demo).
    pub fn new(database: impl Into<Database>) -> ServerConfig {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database: database.into(),
            origin: None,
            weather: WeatherConfig::default(),
            sensors: Vec::new(),
            webhooks: Vec::new(),
            addresses: None,
            limits: LimitsConfig::default(),
            mqtt: None,
            access: AccessConfig::default(),
            review: ReviewConfig::default(),
            retention: RetentionConfig::default(),
            public: PublicConfig::default(),
            areas: AreasConfig::default(),
            measures: MeasuresConfig::default(),
            map: MapConfig::default(),
            agent: wire::AgentSettingsV1::default(),
        }
    }

    /// Parses and checks a configuration file's text.
    pub fn from_toml(text: &str) -> Result<ServerConfig, String> {
        // One line: the parser's message can span several.
        let config: ServerConfig = toml::from_str(text)
            .map_err(|e| e.message().trim().lines().collect::<Vec<_>>().join(": "))?;
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
        let fine = |v: f64, lo: f64, hi: f64| v.is_finite() && (lo..=hi).contains(&v);
        if !fine(self.access.session_hours, 0.01, 24.0 * 30.0) {
            return Err("access.session_hours: must be between 0.01 and 720".into());
        }
        if !fine(self.review.hold_below_p, 0.0, 1.0)
            || !fine(self.review.hold_timeout_s, 1.0, 3_600.0)
        {
            return Err("review: hold_below_p must be 0–1 and hold_timeout_s 1–3600".into());
        }
        let r = &self.retention;
        for (name, days) in [
            ("pulses_days", r.pulses_days),
            ("clips_days", r.clips_days),
            ("incidents_days", r.incidents_days),
            ("audit_days", r.audit_days),
        ] {
            if !fine(days, 0.0, 36_500.0) {
                return Err(format!("retention.{name}: must be 0 (keep) to 36500 days"));
            }
        }
        if !fine(r.interval_s, 1.0, 86_400.0) {
            return Err("retention.interval_s: must be 1–86400".into());
        }
        let m = &self.map;
        if !m.tiles.is_empty()
            && !((m.tiles.starts_with("https://")
                || m.tiles.starts_with("http://")
                || m.tiles.starts_with('/'))
                && ["{z}", "{x}", "{y}"].iter().all(|k| m.tiles.contains(k)))
        {
            return Err(format!(
                "map.tiles {:?}: an http(s):// or /path URL template with {{z}}, {{x}} and {{y}}, or \"\" for none",
                m.tiles
            ));
        }
        if !(1..=24).contains(&m.max_zoom) {
            return Err("map.max_zoom: must be 1–24".into());
        }
        if m.timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(format!(
                "map.timezone {:?}: not an IANA time zone name (e.g. America/New_York)",
                m.timezone
            ));
        }
        if !fine(self.public.delay_hours, 0.0, 24.0 * 365.0)
            || !fine(self.public.block_m, 50.0, 10_000.0)
        {
            return Err("public: delay_hours must be 0–8760 and block_m 50–10000".into());
        }
        if !(5..=PublicConfig::MAX_H3_RES).contains(&self.public.h3_res)
            || !fine(self.public.coarsen_m, 10.0, 5_000.0)
        {
            return Err(format!(
                "public: h3_res must be 5–{} and coarsen_m 10–5000",
                PublicConfig::MAX_H3_RES
            ));
        }
        for layer in &self.areas.layers {
            if layer.name.is_empty() || !fine(layer.buffer_m, 1.0, 10_000.0) {
                return Err(format!(
                    "areas layer {:?}: needs a name, and buffer_m 1–10000",
                    layer.name
                ));
            }
        }
        if let Some(h) = &self.areas.school_hours {
            crate::areas::SchoolCalendar::new(h)?;
        }
        let ms = &self.measures;
        if ms.cost_per_year.is_some_and(|c| !fine(c, 0.0, 1e12))
            || !fine(ms.call_match_m, 1.0, 10_000.0)
            || !fine(ms.call_before_s, 0.0, 86_400.0)
            || !fine(ms.call_after_s, 0.0, 86_400.0)
        {
            return Err("measures: cost_per_year 0–1e12, call_match_m 1–10000, call_before_s and call_after_s 0–86400".into());
        }
        let l = &self.limits;
        if !(l.reports_per_s > 0.0 && l.burst >= 1.0 && l.max_clock_skew_s > 0.0) {
            return Err("limits: reports_per_s and max_clock_skew_s must be > 0, burst ≥ 1".into());
        }
        if l.max_clip_upload_bytes < 1 << 16 {
            return Err("limits.max_clip_upload_bytes: at least 65536".into());
        }
        if !fine(l.max_clock_error_ms, 0.0, 60_000.0) {
            return Err("limits.max_clock_error_ms: must be 0–60000".into());
        }
        let a = &self.agent;
        for (name, v, lo, hi) in [
            ("heartbeat_s", a.heartbeat_s, 1.0, 86_400.0),
            ("clip_pre_s", a.clip_pre_s, 0.0, 2.0),
            ("clip_post_s", a.clip_post_s, 0.0, 2.0),
            ("trigger_db", a.trigger_db, 3.0, 60.0),
        ] {
            if let Some(v) = v {
                if !fine(v, lo, hi) {
                    return Err(format!("agent.{name}: must be {lo}–{hi}"));
                }
            }
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
    fn map_settings_are_checked() {
        let with = |extra: &str| {
            ServerConfig::from_toml(&format!(
                "[[sensors]]\nid = \"S1\"\nkey = \"00112233445566778899aabbccddeeff\"\nlat = 40.4\nlon = -80.0\nalt_m = 0\n\n[map]\n{extra}\n"
            ))
        };
        let c = with("").unwrap();
        assert_eq!(c.map, MapConfig::default());
        assert_eq!(c.map.tz(), chrono_tz::UTC);
        let c = with("tiles = \"\"\ntimezone = \"America/New_York\"").unwrap();
        assert!(c.map.tiles.is_empty());
        assert_eq!(c.map.tz(), chrono_tz::America::New_York);
        with("tiles = \"/tiles/{z}/{x}/{y}.png\"").unwrap();
        for (bad, says) in [
            ("tiles = \"https://tiles.example/{z}/{x}.png\"", "map.tiles"),
            (
                "tiles = \"ftp://tiles.example/{z}/{x}/{y}.png\"",
                "map.tiles",
            ),
            ("timezone = \"Pittsburgh\"", "map.timezone"),
            ("max_zoom = 0", "map.max_zoom"),
            ("colour = \"red\"", "unknown field"),
        ] {
            let e = with(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
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

    const SENSOR: &str = "[[sensors]]\nid = \"S1\"\nkey = \"00112233445566778899aabbccddeeff\"\nlat = 40.0\nlon = -80.0\nalt_m = 1.0\n";

    fn database(line: &str) -> Database {
        ServerConfig::from_toml(&format!("{line}\n{SENSOR}"))
            .unwrap_or_else(|e| panic!("{line}: {e}"))
            .database
    }

    #[test]
    fn a_path_is_an_sqlite_file_as_before() {
        assert_eq!(database(""), Database::Sqlite("shotfix.db".into()));
        for path in [
            "shotfix.db",
            "/var/lib/shotfix/shotfix.db",
            "data/postgres.db",
            "sqlite:x.db",
            "postgres:/x.db",
        ] {
            assert_eq!(
                database(&format!("database = {path:?}")),
                Database::Sqlite(path.into()),
                "{path}"
            );
        }
    }

    #[test]
    fn a_postgres_url_is_postgresql_unchanged() {
        for url in [
            "postgres://shotfix:s3cret@db.example:5432/shotfix",
            "postgresql://shotfix@127.0.0.1/shotfix?connect_timeout=5",
        ] {
            assert_eq!(
                database(&format!("database = {url:?}")),
                Database::Postgres(url.into())
            );
        }
    }

    #[test]
    fn a_setting_reads_back_as_the_same_database() {
        for db in [
            Database::Sqlite("shotfix.db".into()),
            Database::Sqlite("/var/lib/shotfix/shotfix.db".into()),
            Database::Postgres("postgres://u:p@h/d".into()),
        ] {
            assert_eq!(Database::parse(db.setting().as_ref()), db, "{db:?}");
        }
        // A file whose name looks like a URL stays a file (the same one).
        let odd = Database::Sqlite("postgres://not-a-server.db".into());
        assert_eq!(
            Database::parse(odd.setting().as_ref()),
            Database::Sqlite(Path::new(".").join("postgres://not-a-server.db"))
        );
    }

    #[test]
    fn messages_hide_the_password() {
        let db = Database::parse("postgres://shotfix:s3cret@db.example/shotfix");
        assert_eq!(db.to_string(), "postgres://shotfix:***@db.example/shotfix");
        assert_eq!(db.setting(), "postgres://shotfix:s3cret@db.example/shotfix");
    }
}
