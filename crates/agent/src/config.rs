//! The agent's configuration file (TOML), and the settings a server may push
//! on top of it. `docs/sensor.md` documents every key; `packaging/sensor.toml`
//! is a complete example.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Longest clip, seconds (before plus after the pulse). A hard limit, not a
/// setting: a sensor must never become a way to listen to a street. 4 s holds
/// a burst's first round with its echoes and the rounds around it.
pub const MAX_CLIP_S: f64 = 4.0;

/// How far before a pulse's onset its clip starts, seconds: the wire
/// convention (a clip's first sample is 1 s before the onset), which the
/// server's evidence reports rely on. A shorter `pre_s` is padded with silence.
pub const CLIP_LEAD_S: f64 = 1.0;

/// Most clips a sensor sends per minute, whatever its file or its server says.
/// With [`MAX_CLIP_S`] this caps uploaded audio at 20 % of the time even in a
/// firework display: never a continuous stream.
pub const MAX_CLIPS_PER_MINUTE: u32 = 3;

/// A configuration that cannot be used; the agent exits with status 2.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    pub path: PathBuf,
    pub message: String,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// This sensor's id, as registered on the server.
    pub sensor: String,
    /// The sensor's signing key, hex (as in the server's `[[sensors]]`); or
    /// `key_file`, a file holding it.
    pub key_hex: Option<String>,
    pub key_file: Option<PathBuf>,
    /// Where the agent keeps its queue, audio buffer and pushed settings.
    pub state_dir: PathBuf,
    pub server: ServerLink,
    pub input: Input,
    #[serde(default)]
    pub clock: ClockConfig,
    #[serde(default)]
    pub buffer: BufferConfig,
    #[serde(default)]
    pub queue: QueueConfig,
    #[serde(default)]
    pub clips: ClipConfig,
    #[serde(default)]
    pub heartbeat: HeartbeatConfig,
    #[serde(default)]
    pub detector: DetectorSettings,
}

/// Where reports go.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerLink {
    /// The server's base URL (`http://…` or `https://…`): reports go to
    /// `/v1/reports` unless `mqtt` is set, heartbeats always to `/v1/heartbeats`.
    pub url: String,
    /// An MQTT broker (`mqtt://host:port`): reports are published there (QoS 1)
    /// instead of posted.
    pub mqtt: Option<String>,
    /// The report topic filter the server subscribes to.
    #[serde(default = "default_topic")]
    pub mqtt_topic: String,
    /// Per-request timeout, seconds.
    #[serde(default = "default_timeout")]
    pub timeout_s: f64,
}

fn default_topic() -> String {
    "shotfix/v1/reports/+".into()
}

fn default_timeout() -> f64 {
    10.0
}

/// The audio input.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Input {
    /// A WAV file played in real time (or `speed` times faster; 0: as fast as
    /// it can be read). The time of its first sample is `start_utc`, or the
    /// file's own: a ShotSpotter `smj0` chunk, or the research layout's
    /// `<name>.json` beside it.
    Wav {
        path: PathBuf,
        start_utc: Option<String>,
        #[serde(default = "one")]
        speed: f64,
        full_scale_db_spl: Option<f64>,
    },
    /// Raw little-endian PCM on standard input, timed by the system clock.
    Stdin {
        sample_rate_hz: u32,
        #[serde(default)]
        format: PcmFormat,
        #[serde(default = "one_channel")]
        channels: u16,
        full_scale_db_spl: Option<f64>,
    },
    /// Live capture from an ALSA device (the `alsa` cargo feature).
    Alsa {
        #[serde(default = "default_device")]
        device: String,
        sample_rate_hz: u32,
        #[serde(default = "one_channel")]
        channels: u16,
        full_scale_db_spl: Option<f64>,
    },
}

fn one() -> f64 {
    1.0
}

fn one_channel() -> u16 {
    1
}

fn default_device() -> String {
    "default".into()
}

/// Raw PCM sample formats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PcmFormat {
    #[default]
    S16le,
    S32le,
    F32le,
}

impl PcmFormat {
    pub fn bytes(self) -> usize {
        match self {
            PcmFormat::S16le => 2,
            PcmFormat::S32le | PcmFormat::F32le => 4,
        }
    }
}

/// Where the clock's quality comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockSource {
    /// The kernel's own estimate (`adjtimex`), which chrony keeps up to date.
    #[default]
    Adjtimex,
    /// `chronyc -c tracking`.
    Chrony,
    /// The input's timestamps are a GPS-timed recording's (replays): the
    /// system clock is not used for timing.
    Recording,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClockConfig {
    pub source: ClockSource,
    /// How often the clock's state is read, seconds.
    pub refresh_s: f64,
}

impl Default for ClockConfig {
    fn default() -> ClockConfig {
        ClockConfig {
            source: ClockSource::Adjtimex,
            refresh_s: 10.0,
        }
    }
}

/// The rolling on-disk audio buffer.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BufferConfig {
    /// Audio kept, hours (0: none). 30 h covers a night and the next day's
    /// investigation; at 48 kHz, 16-bit, it is 10.4 GB.
    pub hours: f64,
    /// Length of one buffer file, seconds.
    pub segment_s: f64,
    /// Space always left free on the disk, megabytes: the oldest audio goes
    /// first when the disk is fuller than that.
    pub min_free_mb: f64,
}

impl Default for BufferConfig {
    fn default() -> BufferConfig {
        BufferConfig {
            hours: 30.0,
            segment_s: 60.0,
            min_free_mb: 200.0,
        }
    }
}

/// The store-and-forward queue.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Largest queue, megabytes. Pulse reports are a few hundred bytes: 64 MB
    /// holds days of a busy sensor's pulses; clips are dropped first.
    pub max_mb: f64,
}

impl Default for QueueConfig {
    fn default() -> QueueConfig {
        QueueConfig { max_mb: 64.0 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClipConfig {
    /// Audio before a pulse's onset in its clip, seconds.
    pub pre_s: f64,
    /// Audio after it, seconds.
    pub post_s: f64,
    /// Most clips per minute (at most [`MAX_CLIPS_PER_MINUTE`]).
    pub per_minute: u32,
    /// Remove 300–3400 Hz (the telephone speech band) from clips.
    pub suppress_speech: bool,
}

impl Default for ClipConfig {
    fn default() -> ClipConfig {
        ClipConfig {
            pre_s: 1.0,
            post_s: 1.0,
            per_minute: MAX_CLIPS_PER_MINUTE,
            suppress_speech: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeartbeatConfig {
    pub interval_s: f64,
}

impl Default for HeartbeatConfig {
    fn default() -> HeartbeatConfig {
        HeartbeatConfig { interval_s: 60.0 }
    }
}

/// Detector settings the file may change (the rest are the DSP's physically
/// motivated defaults).
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorSettings {
    pub trigger_db: Option<f64>,
}

impl Input {
    pub fn full_scale_db_spl(&self) -> Option<f64> {
        match self {
            Input::Wav {
                full_scale_db_spl, ..
            }
            | Input::Stdin {
                full_scale_db_spl, ..
            }
            | Input::Alsa {
                full_scale_db_spl, ..
            } => *full_scale_db_spl,
        }
    }
}

impl AgentConfig {
    /// Reads and checks a configuration file.
    pub fn read(path: &Path) -> Result<AgentConfig, ConfigError> {
        let error = |message: String| ConfigError {
            path: path.to_owned(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        let config: AgentConfig = toml::from_str(&text).map_err(|e| {
            // toml's message spans lines; the first names the problem.
            error(
                e.message()
                    .lines()
                    .next()
                    .unwrap_or("not valid TOML")
                    .to_string(),
            )
        })?;
        config.check().map_err(error)?;
        Ok(config)
    }

    /// The signing key's bytes.
    pub fn key(&self) -> Result<Vec<u8>, String> {
        let text = match (&self.key_hex, &self.key_file) {
            (Some(k), None) => k.clone(),
            (None, Some(f)) => {
                std::fs::read_to_string(f).map_err(|e| format!("key_file {}: {e}", f.display()))?
            }
            _ => return Err("give exactly one of key_hex and key_file".into()),
        };
        let key = hex::decode(text.trim()).map_err(|e| format!("the key is not hex: {e}"))?;
        if key.len() < 16 {
            return Err("the key must be at least 16 bytes (32 hex digits)".into());
        }
        Ok(key)
    }

    /// Checks every value; the message names the key.
    pub fn check(&self) -> Result<(), String> {
        let fine = |v: f64, lo: f64, hi: f64| v.is_finite() && (lo..=hi).contains(&v);
        if self.sensor.is_empty()
            || self.sensor.len() > 64
            || self.sensor.contains(['/', '+', '#'])
            || self.sensor.chars().any(char::is_whitespace)
        {
            return Err(format!(
                "sensor {:?}: 1–64 characters, no spaces, '/', '+' or '#'",
                self.sensor
            ));
        }
        self.key()?;
        let url = &self.server.url;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!(
                "server.url {url:?}: must start with http:// or https://"
            ));
        }
        if let Some(m) = &self.server.mqtt {
            crate::uplink::mqtt_address(m).map_err(|e| format!("server.mqtt: {e}"))?;
            if !self.server.mqtt_topic.contains('+') {
                return Err("server.mqtt_topic: needs a '+' level for the sensor id".into());
            }
        }
        if !fine(self.server.timeout_s, 0.1, 600.0) {
            return Err("server.timeout_s: must be 0.1–600".into());
        }
        let rate = |hz: u32| {
            if (8_000..=96_000).contains(&hz) {
                Ok(())
            } else {
                Err(format!("input.sample_rate_hz {hz}: must be 8000–96000"))
            }
        };
        match &self.input {
            Input::Wav {
                speed, start_utc, ..
            } => {
                if !fine(*speed, 0.0, 1000.0) {
                    return Err("input.speed: must be 0 (as fast as possible) to 1000".into());
                }
                if let Some(t) = start_utc {
                    model::UtcNanos::parse_rfc3339(t)
                        .map_err(|e| format!("input.start_utc: {e}"))?;
                }
            }
            Input::Stdin {
                sample_rate_hz,
                channels,
                ..
            }
            | Input::Alsa {
                sample_rate_hz,
                channels,
                ..
            } => {
                rate(*sample_rate_hz)?;
                if !(1..=32).contains(channels) {
                    return Err("input.channels: must be 1–32".into());
                }
            }
        }
        if let Some(fs) = self.input.full_scale_db_spl() {
            if !fine(fs, 60.0, 200.0) {
                return Err("input.full_scale_db_spl: must be 60–200".into());
            }
        }
        if !fine(self.clock.refresh_s, 0.1, 3600.0) {
            return Err("clock.refresh_s: must be 0.1–3600".into());
        }
        let b = &self.buffer;
        if !fine(b.hours, 0.0, 24.0 * 31.0) {
            return Err("buffer.hours: must be 0–744".into());
        }
        if !fine(b.segment_s, 1.0, 3600.0) {
            return Err("buffer.segment_s: must be 1–3600".into());
        }
        if !fine(b.min_free_mb, 0.0, 1e7) {
            return Err("buffer.min_free_mb: must be ≥ 0".into());
        }
        if !fine(self.queue.max_mb, 1.0, 1e6) {
            return Err("queue.max_mb: must be at least 1".into());
        }
        let c = &self.clips;
        if !fine(c.pre_s, 0.0, CLIP_LEAD_S) {
            return Err(format!("clips.pre_s: must be 0–{CLIP_LEAD_S} s"));
        }
        if !fine(c.post_s, 0.0, MAX_CLIP_S) || c.pre_s + c.post_s > MAX_CLIP_S {
            return Err(format!(
                "clips: pre_s + post_s must be at most {MAX_CLIP_S} s (a privacy limit)"
            ));
        }
        if c.per_minute > MAX_CLIPS_PER_MINUTE {
            return Err(format!(
                "clips.per_minute: at most {MAX_CLIPS_PER_MINUTE} (a privacy limit)"
            ));
        }
        if !fine(self.heartbeat.interval_s, 1.0, 86_400.0) {
            return Err("heartbeat.interval_s: must be 1–86400".into());
        }
        if let Some(t) = self.detector.trigger_db {
            if !fine(t, 3.0, 60.0) {
                return Err("detector.trigger_db: must be 3–60".into());
            }
        }
        Ok(())
    }
}

/// What the agent runs with: its file's values, with the server's pushed
/// settings on top where they stay inside the file's privacy limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Effective {
    pub heartbeat_s: f64,
    pub clip_pre_s: f64,
    pub clip_post_s: f64,
    pub clips_per_minute: u32,
    pub suppress_speech: bool,
    pub trigger_db: Option<f64>,
    /// The pushed settings' version ("" for none).
    pub settings_version: String,
}

impl Effective {
    /// Applies `pushed` to `file`. A pushed value that would send more audio
    /// than the file allows (longer clips, more of them, speech kept where the
    /// file removes it) is held to the file's value; so is one out of range.
    pub fn new(file: &AgentConfig, pushed: &wire::AgentSettingsV1) -> Effective {
        let fine = |v: f64, lo: f64, hi: f64| v.is_finite() && (lo..=hi).contains(&v);
        let c = &file.clips;
        Effective {
            heartbeat_s: pushed
                .heartbeat_s
                .filter(|&v| fine(v, 1.0, 86_400.0))
                .unwrap_or(file.heartbeat.interval_s),
            clip_pre_s: pushed
                .clip_pre_s
                .filter(|&v| fine(v, 0.0, c.pre_s))
                .unwrap_or(c.pre_s),
            clip_post_s: pushed
                .clip_post_s
                .filter(|&v| fine(v, 0.0, c.post_s))
                .unwrap_or(c.post_s),
            clips_per_minute: pushed
                .clips_per_minute
                .map_or(c.per_minute, |v| v.min(c.per_minute)),
            suppress_speech: c.suppress_speech || pushed.suppress_speech.unwrap_or(false),
            trigger_db: pushed
                .trigger_db
                .filter(|&v| fine(v, 3.0, 60.0))
                .or(file.detector.trigger_db),
            settings_version: pushed.version(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Result<AgentConfig, String> {
        let text = format!(
            r#"
sensor = "S1"
key_hex = "00112233445566778899aabbccddeeff"
state_dir = "/tmp/x"
[server]
url = "http://127.0.0.1:1"
[input]
kind = "stdin"
sample_rate_hz = 48000
{extra}
"#
        );
        let c: AgentConfig = toml::from_str(&text).map_err(|e| e.to_string())?;
        c.check()?;
        Ok(c)
    }

    #[test]
    fn privacy_limits_are_enforced_by_the_file_check() {
        assert!(config("").is_ok());
        let long = config("[clips]\npre_s = 1.0\npost_s = 3.5").unwrap_err();
        assert!(long.contains("privacy"), "{long}");
        let many = config("[clips]\nper_minute = 60").unwrap_err();
        assert!(many.contains("privacy"), "{many}");
        let rate = config("[input]\n").unwrap_err();
        assert!(rate.contains("input"), "{rate}");
    }

    #[test]
    fn the_packaged_example_is_a_valid_configuration() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../packaging/sensor.toml");
        let text = std::fs::read_to_string(path).unwrap();
        // Its key file lives on a sensor; give the key inline instead.
        let text = text.replace(
            "key_file = \"/etc/shotfix/sensor.key\"",
            "key_hex = \"00112233445566778899aabbccddeeff\"",
        );
        let c: AgentConfig = toml::from_str(&text).unwrap();
        c.check().unwrap();
        assert_eq!(c.clips.per_minute, MAX_CLIPS_PER_MINUTE);
        assert!(matches!(
            c.input,
            Input::Alsa {
                sample_rate_hz: 48_000,
                ..
            }
        ));
    }

    #[test]
    fn pushed_settings_never_loosen_the_files_privacy() {
        let file =
            config("[clips]\npre_s = 0.5\npost_s = 0.5\nper_minute = 2\nsuppress_speech = true")
                .unwrap();
        let pushed = wire::AgentSettingsV1 {
            heartbeat_s: Some(5.0),
            clip_pre_s: Some(2.0),
            clip_post_s: Some(0.25),
            clips_per_minute: Some(3),
            suppress_speech: Some(false),
            trigger_db: Some(1.0),
        };
        let e = Effective::new(&file, &pushed);
        assert_eq!(e.heartbeat_s, 5.0);
        assert_eq!(e.clip_pre_s, 0.5, "longer than the file allows: held");
        assert_eq!(e.clip_post_s, 0.25, "shorter: taken");
        assert_eq!(e.clips_per_minute, 2);
        assert!(e.suppress_speech);
        assert_eq!(e.trigger_db, None, "out of range: ignored");
        assert!(!e.settings_version.is_empty());
    }
}
