//! The replay source: plays a scene folder or a research-layout test to a running
//! server as live sensor reports, signed with each sensor's key, with the real
//! timing (or faster), over HTTP or through an MQTT broker. Local frames are anchored at an origin so the server,
//! which works in WGS84, puts every sensor back where it was.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use formats::{Frame, LocateInput};
use model::{Geodetic, LocalFrame, Pulse};
use rand::RngCore;

use crate::config::{Database, OriginConfig, SensorConfig, ServerConfig};
use crate::wire::{self, PulseV1, ReportV1};

/// A folder ready to replay: sensors on the earth, pulses in time order.
#[derive(Debug, Clone)]
pub struct ReplayInput {
    pub frame: LocalFrame,
    /// (id, WGS84 position).
    pub sensors: Vec<(String, Geodetic)>,
    pub pulses: Vec<Pulse>,
    pub weather: model::Weather,
    /// Each pulse's clip (a mono 16-bit WAV starting [`CLIP_LEAD_S`] before
    /// it), aligned with `pulses`; empty when the replay sends none
    /// ([`attach_clips`]).
    pub clips: Vec<Option<std::sync::Arc<[u8]>>>,
    /// Each recording sensor's noise floor and recording length (seconds),
    /// measured by [`attach_clips`] for [`send_heartbeats`].
    pub recordings: BTreeMap<String, (Option<f64>, f64)>,
}

/// Where a pulse falls in its clip, seconds: the clip convention of
/// [`crate::wire::PulseV1::clip_wav_b64`].
pub const CLIP_LEAD_S: f64 = 1.0;
/// Audio after the pulse in a replayed clip, seconds: the sensor agent's
/// default (docs/sensor.md).
pub const CLIP_POST_S: f64 = 1.0;
/// Most clip bytes (before base64) in one replayed report, well inside the
/// server's default 1 MiB body limit.
const MAX_REPORT_CLIP_BYTES: usize = 512 << 10;

/// Moves the replay in time so that its first pulse is heard at `start`,
/// and renames every pulse (`ID-SHIFT`, the shift in nanoseconds) so that the
/// same folder can be played to one server again and again, as the demo does,
/// without its pulses being taken for ones already received. Clips move with
/// their pulses.
pub fn shift_to(input: &mut ReplayInput, start: model::UtcNanos) {
    let Some(first) = input.pulses.first().map(|p| p.t.0) else {
        return;
    };
    let shift = start.0.saturating_sub(first);
    for p in &mut input.pulses {
        p.t = model::UtcNanos(p.t.0.saturating_add(shift));
        p.id = model::PulseId(format!("{}-{shift}", p.id.0));
    }
}

/// Cuts each pulse's clip from the folder's recordings (a scene folder with
/// audio, or a research-layout test), as the sensors that heard them would
/// upload it. Pulses of sensors without a recording, or outside it, get none.
/// Returns how many clips there are.
pub fn attach_clips(path: &Path, input: &mut ReplayInput) -> Result<usize, String> {
    let audio = formats::read_analyze_input(path).map_err(|e| e.to_string())?;
    let by_sensor: HashMap<&str, &formats::AudioClip> = audio
        .clips
        .iter()
        .map(|c| (c.sensor.0.as_str(), c))
        .collect();
    // The noise floor a sensor agent would report: its detector's, over the
    // whole recording.
    input.recordings = audio
        .clips
        .iter()
        .map(|c| {
            let floor = dsp::Detector::new(dsp::DetectorConfig::new(c.sample_rate_hz))
                .ok()
                .and_then(|mut d| {
                    d.process(&c.samples, &mut |_| {});
                    d.noise_floor_dbfs()
                });
            let seconds = c.samples.len() as f64 / f64::from(c.sample_rate_hz);
            (
                c.sensor.0.clone(),
                (floor.map(|f| (f * 10.0).round() / 10.0), seconds),
            )
        })
        .collect();
    input.clips = input
        .pulses
        .iter()
        .map(|p| {
            let rec = by_sensor.get(p.sensor.0.as_str())?;
            let rate = f64::from(rec.sample_rate_hz);
            let at = p.t.seconds_since(rec.start) * rate;
            let (from, to) = (
                (at - CLIP_LEAD_S * rate).round(),
                (at + CLIP_POST_S * rate).round(),
            );
            if from < 0.0 || to > rec.samples.len() as f64 {
                return None;
            }
            let wav =
                formats::wav_bytes(&rec.samples[from as usize..to as usize], rec.sample_rate_hz);
            // A clip too big for one report is not sent, its pulse still is
            // (a safety net: 2 s at 96 kHz, the highest rate read, is 384 KB).
            (wav.len() <= MAX_REPORT_CLIP_BYTES).then(|| std::sync::Arc::from(wav))
        })
        .collect();
    Ok(input.clips.iter().flatten().count())
}

/// Reads a folder `locate` reads, anchoring a local frame at `origin` (or the
/// folder's own anchor).
pub fn read(path: &Path, origin: Option<Geodetic>) -> Result<ReplayInput, String> {
    let input: LocateInput = formats::read_locate_input(path).map_err(|e| e.to_string())?;
    let frame = match (&input.frame, origin) {
        (Frame::Wgs84 { frame }, _) => *frame,
        (Frame::Local { .. }, Some(o)) => LocalFrame::new(o),
        (Frame::Local { anchor: Some(a) }, None) => *a,
        (Frame::Local { anchor: None }, None) => {
            return Err(format!(
            "{}: positions are in a local frame with no anchor on the earth: give --origin LAT,LON",
            path.display()
        ))
        }
    };
    let mut sensors: Vec<(String, Geodetic)> = input
        .sensors
        .iter()
        .map(|s| (s.id.0.clone(), frame.to_geodetic(s.position)))
        .collect();
    sensors.sort_by(|a, b| a.0.cmp(&b.0));
    sensors.dedup_by(|a, b| a.0 == b.0);
    let mut pulses = input.pulses;
    pulses.sort_by(|a, b| a.t.cmp(&b.t).then_with(|| a.id.cmp(&b.id)));
    Ok(ReplayInput {
        frame,
        sensors,
        pulses,
        weather: input.weather,
        clips: Vec::new(),
        recordings: BTreeMap::new(),
    })
}

/// A server configuration for these sensors, each with a fresh random key, on
/// `database` (an SQLite path, or a [`Database`] such as a PostgreSQL URL).
pub fn server_config(input: &ReplayInput, database: impl Into<Database>) -> ServerConfig {
    let mut config = ServerConfig::new(database);
    let o = input.frame.origin();
    config.origin = Some(OriginConfig {
        lat: o.lat_deg,
        lon: o.lon_deg,
        alt_m: o.alt_m,
    });
    config.weather.temperature_c = input.weather.temperature_c;
    config.weather.wind_speed_m_s = input.weather.wind_speed_m_s;
    config.weather.wind_from_deg = input.weather.wind_from_deg;
    let mut rng = rand::rngs::OsRng;
    config.sensors = input
        .sensors
        .iter()
        .map(|(id, g)| {
            let mut key = [0u8; 32];
            rng.fill_bytes(&mut key);
            SensorConfig {
                id: id.clone(),
                key: hex::encode(key),
                lat: g.lat_deg,
                lon: g.lon_deg,
                alt_m: g.alt_m,
            }
        })
        .collect();
    config
}

/// What a replay sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayStats {
    pub reports: usize,
    pub pulses: usize,
    pub retries: usize,
}

/// Pulses of one sensor within this long of each other go in one report, as a
/// sensor batches what it hears in one uplink interval.
const BATCH_S: f64 = 0.05;

/// Where a replay sends its reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A server's base URL (`POST {url}/v1/reports`); retried on 429 and 5xx.
    Http(String),
    /// An MQTT broker (`mqtt://HOST[:PORT]`) and the server's report topic
    /// filter (`shotfix/v1/reports/+`): signed envelopes at QoS 1, done when
    /// the broker has acknowledged them all.
    Mqtt { url: String, topic: String },
}

/// Sends every pulse as signed reports over HTTP, in time order. `speed` 1 is
/// real time, 10 ten times faster; 0 sends as fast as the server accepts.
pub async fn replay(
    server: &str,
    keys: &HashMap<String, Vec<u8>>,
    input: &ReplayInput,
    speed: f64,
) -> Result<ReplayStats, String> {
    replay_to(&Target::Http(server.to_string()), keys, input, speed).await
}

/// Sends every pulse as signed reports to `target`, in time order, paced as
/// [`replay`].
pub async fn replay_to(
    target: &Target,
    keys: &HashMap<String, Vec<u8>>,
    input: &ReplayInput,
    speed: f64,
) -> Result<ReplayStats, String> {
    let reports = batch(input);
    let mut stats = ReplayStats::default();
    let (Some(first), start) = (reports.first().map(|r| r.0), Instant::now()) else {
        return Ok(stats);
    };
    let mut sender = Sender::open(target).await?;
    for (t, report) in &reports {
        if speed > 0.0 {
            let due = Duration::from_secs_f64((t.seconds_since(first) / speed).max(0.0));
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        let key = keys
            .get(&report.sensor)
            .ok_or_else(|| format!("no key for sensor {}", report.sensor))?;
        let body = serde_json::to_string(report).map_err(|e| e.to_string())?;
        stats.retries += sender.send(key, report, body).await?;
        stats.reports += 1;
        stats.pulses += report.pulses.len();
    }
    sender.finish().await?;
    Ok(stats)
}

/// One heartbeat from each sensor of the replay (`POST /v1/heartbeats`,
/// signed with its key), as the sensors that made the recordings would send:
/// the clock is the recording's GPS time (`source: recording`), the noise
/// floor and buffered audio are the recording's ([`attach_clips`]; none
/// without it), and nothing is queued. Returns how many the server accepted.
pub async fn send_heartbeats(
    server: &str,
    keys: &HashMap<String, Vec<u8>>,
    input: &ReplayInput,
) -> Result<usize, String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let url = format!("{}/v1/heartbeats", server.trim_end_matches('/'));
    let mut accepted = 0;
    for (sensor, _) in &input.sensors {
        let Some(key) = keys.get(sensor) else {
            return Err(format!("no key for sensor {sensor}"));
        };
        let (floor, seconds) = input.recordings.get(sensor).copied().unwrap_or((None, 0.0));
        let beat = wire::HeartbeatV1 {
            version: wire::HEARTBEAT_VERSION,
            sensor: sensor.clone(),
            t_utc: model::UtcNanos(crate::now_ns()).to_rfc3339(),
            software_version: format!("shotfix replay {}", env!("CARGO_PKG_VERSION")),
            uptime_s: seconds,
            clock: wire::ClockV1 {
                synced: true,
                est_error_ms: None,
                source: "recording".into(),
            },
            noise_floor_dbfs: floor,
            disk_free_bytes: 0,
            buffer_s: seconds,
            queue_reports: 0,
            queue_bytes: 0,
            input_overruns: 0,
            settings_version: String::new(),
        };
        let body = serde_json::to_string(&beat).map_err(|e| e.to_string())?;
        let r = post_signed(&client, &url, key, sensor, body)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if r.status().is_success() {
            accepted += 1;
        } else {
            return Err(format!("{url}: sensor {sensor}: {}", r.status()));
        }
    }
    Ok(accepted)
}

/// A sensor's `POST /v1/reports` of `body`, signed now with its key (the
/// headers of docs/server.md), ready to send.
pub fn post_signed(
    client: &reqwest::Client,
    url: &str,
    key: &[u8],
    sensor: &str,
    body: String,
) -> reqwest::RequestBuilder {
    let ts = crate::ingest::now_ms();
    client
        .post(url)
        .header("content-type", "application/json")
        .header(wire::SENSOR_HEADER, sensor)
        .header(wire::TIMESTAMP_HEADER, ts.to_string())
        .header(wire::SIGNATURE_HEADER, wire::sign(key, ts, body.as_bytes()))
        .body(body)
}

/// The reports a replay sends, in time order, each with the time its first
/// pulse was heard: per sensor, pulses within [`BATCH_S`] of the report's first.
pub fn reports(input: &ReplayInput) -> Vec<(model::UtcNanos, ReportV1)> {
    batch(input)
}

fn batch(input: &ReplayInput) -> Vec<(model::UtcNanos, ReportV1)> {
    use base64::Engine;
    let mut reports: Vec<(model::UtcNanos, ReportV1)> = Vec::new();
    // Sensor → (open report, its clip bytes so far).
    let mut open: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (k, p) in input.pulses.iter().enumerate() {
        let sensor = p.sensor.0.clone();
        let clip = input.clips.get(k).and_then(|c| c.as_ref());
        let clip_len = clip.map_or(0, |c| c.len());
        let pulse = PulseV1 {
            id: p.id.0.replace('/', "_"),
            t_utc: p.t.to_rfc3339(),
            snr_db: p.snr_db,
            peak_db_spl: p.level_db_spl,
            features: None,
            clip_wav_b64: clip.map(|c| base64::engine::general_purpose::STANDARD.encode(c)),
        };
        match open.get_mut(&sensor) {
            Some((i, bytes))
                if p.t.seconds_since(reports[*i].0) <= BATCH_S
                    && *bytes + clip_len <= MAX_REPORT_CLIP_BYTES =>
            {
                *bytes += clip_len;
                reports[*i].1.pulses.push(pulse)
            }
            _ => {
                let id = format!(
                    "{sensor}-{}",
                    crate::pipeline::short_hash(&format!("{}{}", sensor, p.id.0))
                );
                open.insert(sensor.clone(), (reports.len(), clip_len));
                reports.push((
                    p.t,
                    ReportV1 {
                        version: wire::REPORT_VERSION,
                        id,
                        sensor,
                        pulses: vec![pulse],
                        clock: None,
                    },
                ));
            }
        }
    }
    reports
}

/// An open connection to a [`Target`].
enum Sender {
    Http {
        client: reqwest::Client,
        url: String,
    },
    Mqtt {
        publisher: crate::mqtt::Publisher,
        topic: String,
    },
}

impl Sender {
    async fn open(target: &Target) -> Result<Sender, String> {
        Ok(match target {
            Target::Http(server) => Sender::Http {
                client: reqwest::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .map_err(|e| e.to_string())?,
                url: format!("{}/v1/reports", server.trim_end_matches('/')),
            },
            Target::Mqtt { url, topic } => {
                crate::config::topic_sensor_level(topic)?;
                let client_id = format!("shotfix-replay-{:016x}", rand::rngs::OsRng.next_u64());
                Sender::Mqtt {
                    publisher: crate::mqtt::Publisher::connect(url, &client_id).await?,
                    topic: topic.clone(),
                }
            }
        })
    }

    /// Sends one signed report; returns the number of retries it took.
    async fn send(&mut self, key: &[u8], report: &ReportV1, body: String) -> Result<usize, String> {
        match self {
            Sender::Http { client, url } => {
                let mut attempt = 0;
                loop {
                    let sent = post_signed(client, url, key, &report.sensor, body.clone())
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status().is_success() => return Ok(attempt),
                        Ok(r) if r.status().is_client_error() && r.status().as_u16() != 429 => {
                            let status = r.status();
                            let text = r.text().await.unwrap_or_default();
                            return Err(format!("report {} refused: {status} {text}", report.id));
                        }
                        other => {
                            attempt += 1;
                            if attempt > 20 {
                                return Err(format!(
                                    "report {}: gave up after 20 attempts ({other:?})",
                                    report.id
                                ));
                            }
                            tokio::time::sleep(Duration::from_millis(50 << attempt.min(6))).await;
                        }
                    }
                }
            }
            Sender::Mqtt { publisher, topic } => {
                let envelope =
                    wire::MqttEnvelopeV1::sign(key, &report.sensor, crate::ingest::now_ms(), body);
                publisher
                    .publish(
                        &wire::mqtt_topic(topic, &report.sensor),
                        envelope.to_payload(),
                    )
                    .await?;
                Ok(0)
            }
        }
    }

    /// Waits until everything sent has arrived (MQTT: the broker's PUBACKs).
    async fn finish(self) -> Result<(), String> {
        match self {
            Sender::Http { .. } => Ok(()),
            Sender::Mqtt { publisher, .. } => publisher.close(Duration::from_secs(60)).await,
        }
    }
}

/// Keys by sensor from a server configuration.
pub fn keys(config: &ServerConfig) -> HashMap<String, Vec<u8>> {
    config
        .sensors
        .iter()
        .map(|s| (s.id.clone(), hex::decode(&s.key).unwrap_or_default()))
        .collect()
}
