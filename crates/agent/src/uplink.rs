//! Sending: queued reports to the server (HTTP) or its broker (MQTT), and the
//! heartbeat, whose signed answer may carry new settings.
//!
//! A report is signed when it is sent, not when it is queued, so one that
//! waited out a long network cut is still fresh to the server; its body (and
//! so its id) never changes. Failures back off exponentially from 0.5 s to
//! 30 s with jitter, so a fleet of sensors coming back after an outage does not
//! arrive at once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, EventLoop, Incoming, MqttOptions, QoS};
use tokio::sync::Notify;

use crate::config::AgentConfig;
use crate::queue::Queue;
use crate::Status;

/// First and longest wait between tries, seconds.
pub const BACKOFF_S: (f64, f64) = (0.5, 30.0);

/// What became of one try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Acknowledged (stored, or already stored).
    Done,
    /// Not now: try again later.
    Retry(String),
    /// Refused for good: the report is set aside.
    Refused(String),
}

/// `host:port` of an `mqtt://` URL.
pub fn mqtt_address(url: &str) -> Result<(String, u16), String> {
    let rest = url
        .strip_prefix("mqtt://")
        .or_else(|| url.strip_prefix("tcp://"))
        .ok_or_else(|| format!("{url:?}: must start with mqtt://"))?;
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("{url:?}: the port is not a number"))?,
        ),
        None => (rest, 1883),
    };
    if host.is_empty() {
        return Err(format!("{url:?}: no host"));
    }
    Ok((host.to_string(), port))
}

/// One transport.
pub enum Link {
    Http {
        client: reqwest::Client,
        url: String,
    },
    Mqtt {
        address: (String, u16),
        topic: String,
        timeout: Duration,
        session: Option<Box<(AsyncClient, EventLoop)>>,
        client_id: String,
    },
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Link::Http { url, .. } => write!(f, "HTTP {url}"),
            Link::Mqtt { address, .. } => write!(f, "MQTT {}:{}", address.0, address.1),
        }
    }
}

impl Link {
    pub fn new(config: &AgentConfig, http: reqwest::Client) -> Result<Link, String> {
        Ok(match &config.server.mqtt {
            None => Link::Http {
                client: http,
                url: format!("{}/v1/reports", config.server.url.trim_end_matches('/')),
            },
            Some(m) => Link::Mqtt {
                address: mqtt_address(m)?,
                topic: wire::mqtt_topic(&config.server.mqtt_topic, &config.sensor),
                timeout: Duration::from_secs_f64(config.server.timeout_s),
                session: None,
                client_id: format!("shotfix-sensor-{}", config.sensor),
            },
        })
    }

    /// Sends one report body, signed now.
    pub async fn send(&mut self, sensor: &str, key: &[u8], body: &[u8]) -> Sent {
        let ts = crate::now().0 / 1_000_000;
        match self {
            Link::Http { client, url } => {
                let request = client
                    .post(url.as_str())
                    .header("content-type", "application/json")
                    .header(wire::SENSOR_HEADER, sensor)
                    .header(wire::TIMESTAMP_HEADER, ts.to_string())
                    .header(wire::SIGNATURE_HEADER, wire::sign(key, ts, body))
                    .body(body.to_vec());
                match request.send().await {
                    Err(e) => Sent::Retry(one_line(&e)),
                    Ok(r) => {
                        let status = r.status();
                        let text = r.text().await.unwrap_or_default();
                        http_outcome(status.as_u16(), &text)
                    }
                }
            }
            Link::Mqtt {
                address,
                topic,
                timeout,
                session,
                client_id,
            } => {
                let Ok(report) = String::from_utf8(body.to_vec()) else {
                    return Sent::Refused("a queued report is not UTF-8".into());
                };
                let envelope = wire::MqttEnvelopeV1::sign(key, sensor, ts, report);
                let (client, events) = &mut **session.get_or_insert_with(|| {
                    let mut o = MqttOptions::new(client_id.clone(), address.0.clone(), address.1);
                    o.set_keep_alive(Duration::from_secs(30));
                    o.set_max_packet_size(4 << 20, 4 << 20);
                    Box::new(AsyncClient::new(o, 16))
                });
                let result = publish(client, events, topic, envelope.to_payload(), *timeout).await;
                if result.is_err() {
                    // Start clean next time: the broker may have lost the
                    // session, and a resend carries the same report id.
                    *session = None;
                }
                match result {
                    Ok(()) => Sent::Done,
                    Err(e) => Sent::Retry(e),
                }
            }
        }
    }
}

async fn publish(
    client: &AsyncClient,
    events: &mut EventLoop,
    topic: &str,
    payload: Vec<u8>,
    timeout: Duration,
) -> Result<(), String> {
    client
        .publish(topic, QoS::AtLeastOnce, false, payload)
        .await
        .map_err(|e| format!("MQTT: {e}"))?;
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.poll()).await {
            Err(_) => return Err("MQTT: no acknowledgement in time".into()),
            Ok(Err(e)) => return Err(format!("MQTT broker: {e}")),
            Ok(Ok(Event::Incoming(Incoming::PubAck(_)))) => return Ok(()),
            Ok(Ok(_)) => {}
        }
    }
}

/// What an HTTP answer means for the queued report.
pub fn http_outcome(status: u16, body: &str) -> Sent {
    let why = || {
        let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        let detail = v["error"]
            .as_str()
            .or(v["message"].as_str())
            .map_or_else(|| body.chars().take(200).collect(), str::to_string);
        format!("HTTP {status}: {detail}")
    };
    match status {
        200..=299 => Sent::Done,
        // Wrong key or clock: fixable on the sensor, so keep the report.
        401 | 403 | 408 | 429 => Sent::Retry(why()),
        400..=499 => Sent::Refused(why()),
        _ => Sent::Retry(why()),
    }
}

fn one_line(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s.replace('\n', " ")
}

/// Sends the queue's reports in order until `stop`; with `drain`, returns once
/// the input has ended and the queue is empty.
pub async fn send_queue(
    mut link: Link,
    queue: Arc<Mutex<Queue>>,
    status: Arc<Status>,
    wake: Arc<Notify>,
    sensor: String,
    key: Vec<u8>,
) {
    let mut backoff = BACKOFF_S.0;
    let mut failing_since: Option<Instant> = None;
    let mut last_said = Instant::now();
    let mut tries = 0u64;
    loop {
        if status.stopping() {
            return;
        }
        // Read before the queue: once the input has ended, everything it
        // queued is on disk, so an empty queue then means all is delivered.
        let ended = status.input_ended();
        let next = queue.lock().ok().and_then(|q| q.oldest());
        let Some((entry, body)) = next else {
            if ended {
                return;
            }
            // Woken by a new report, or every second to check for a stop.
            let _ = tokio::time::timeout(Duration::from_secs(1), wake.notified()).await;
            continue;
        };
        match link.send(&sensor, &key, &body).await {
            Sent::Done => {
                if let Ok(mut q) = queue.lock() {
                    q.remove(&entry);
                }
                status
                    .sent
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if let Some(since) = failing_since.take() {
                    let (n, _) = queue.lock().map(|q| q.depth()).unwrap_or_default();
                    crate::say(&format!(
                        "server reachable again after {:.0} s ({tries} tries); sending the {n} reports still queued",
                        since.elapsed().as_secs_f64()
                    ));
                }
                backoff = BACKOFF_S.0;
                tries = 0;
            }
            Sent::Refused(why) => {
                crate::say(&format!(
                    "the server refused report {} for good ({why}); kept in {}",
                    entry.path.display(),
                    "queue/rejected/"
                ));
                if let Ok(mut q) = queue.lock() {
                    q.set_aside(&entry);
                }
            }
            Sent::Retry(why) => {
                tries += 1;
                let (n, bytes) = queue.lock().map(|q| q.depth()).unwrap_or_default();
                if failing_since.is_none() {
                    failing_since = Some(Instant::now());
                    last_said = Instant::now();
                    crate::say(&format!(
                        "cannot deliver reports to {link:?}: {why}; {n} reports ({bytes} bytes) kept on disk, retrying with backoff up to {} s",
                        BACKOFF_S.1
                    ));
                } else if last_said.elapsed() >= Duration::from_secs(60) {
                    last_said = Instant::now();
                    crate::say(&format!(
                        "still cannot deliver reports: {why}; {n} queued ({bytes} bytes)"
                    ));
                }
                let jitter = 0.75 + 0.5 * rand::random::<f64>();
                let wait = Duration::from_secs_f64(backoff * jitter);
                backoff = (backoff * 2.0).min(BACKOFF_S.1);
                let end = Instant::now() + wait;
                while Instant::now() < end && !status.stopping() {
                    tokio::time::sleep(Duration::from_millis(200).min(end - Instant::now())).await;
                }
            }
        }
    }
}

/// Posts a signed JSON body to `path` on the server; the answer's status and
/// body.
async fn post_signed(
    client: &reqwest::Client,
    url: &str,
    path: &str,
    sensor: &str,
    key: &[u8],
    body: Vec<u8>,
) -> Result<reqwest::Response, String> {
    let ts = crate::now().0 / 1_000_000;
    client
        .post(format!("{}{path}", url.trim_end_matches('/')))
        .header("content-type", "application/json")
        .header(wire::SENSOR_HEADER, sensor)
        .header(wire::TIMESTAMP_HEADER, ts.to_string())
        .header(wire::SIGNATURE_HEADER, wire::sign(key, ts, &body))
        .body(body)
        .send()
        .await
        .map_err(|e| one_line(&e))
}

/// Why a clip upload did not go through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadError {
    /// Try again later (network, 5xx, 401, 429).
    #[error("{0}")]
    Retry(String),
    /// The server will not take it (another 4xx).
    #[error("{0}")]
    Refused(String),
}

/// Answers a clip request (`POST /v1/clip-uploads`).
pub async fn upload_clip(
    client: &reqwest::Client,
    url: &str,
    sensor: &str,
    key: &[u8],
    upload: &wire::ClipUploadV1,
) -> Result<(), UploadError> {
    let body = serde_json::to_vec(upload).map_err(|e| UploadError::Refused(e.to_string()))?;
    let r = post_signed(client, url, "/v1/clip-uploads", sensor, key, body)
        .await
        .map_err(UploadError::Retry)?;
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    match http_outcome(status, &text) {
        Sent::Done => Ok(()),
        Sent::Retry(why) => Err(UploadError::Retry(format!("clip upload: {why}"))),
        Sent::Refused(why) => Err(UploadError::Refused(format!("clip upload: {why}"))),
    }
}

/// Sends one heartbeat; the server's answer, checked against its signature
/// (pushed settings, clip requests).
pub async fn heartbeat(
    client: &reqwest::Client,
    url: &str,
    sensor: &str,
    key: &[u8],
    beat: &wire::HeartbeatV1,
) -> Result<wire::HeartbeatReplyV1, String> {
    let body = serde_json::to_vec(beat).map_err(|e| e.to_string())?;
    let r = post_signed(client, url, "/v1/heartbeats", sensor, key, body).await?;
    let status = r.status();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (ts, signature) = (
        header(wire::TIMESTAMP_HEADER),
        header(wire::SIGNATURE_HEADER),
    );
    let text = r.bytes().await.map_err(|e| one_line(&e))?;
    if !status.is_success() {
        return Err(format!(
            "heartbeat: HTTP {status}: {}",
            String::from_utf8_lossy(&text)
                .chars()
                .take(200)
                .collect::<String>()
        ));
    }
    let (Some(ts), Some(signature)) = (ts.and_then(|t| t.parse::<i64>().ok()), signature) else {
        return Err("heartbeat: the answer is not signed".into());
    };
    if !wire::verify(key, ts, &text, &signature) {
        return Err("heartbeat: the answer's signature does not match this sensor's key".into());
    }
    let reply: wire::HeartbeatReplyV1 =
        serde_json::from_slice(&text).map_err(|e| format!("heartbeat answer: {e}"))?;
    if reply.sensor != sensor {
        return Err(format!("heartbeat answer is for sensor {:?}", reply.sensor));
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_answers_sort_into_done_retry_and_refused() {
        assert_eq!(http_outcome(202, "{}"), Sent::Done);
        assert_eq!(http_outcome(200, r#"{"duplicate":true}"#), Sent::Done);
        assert!(matches!(http_outcome(503, ""), Sent::Retry(_)));
        assert!(matches!(http_outcome(429, ""), Sent::Retry(_)));
        assert!(
            matches!(http_outcome(401, r#"{"error":"replayed"}"#), Sent::Retry(m) if m.contains("replayed"))
        );
        assert!(
            matches!(http_outcome(422, r#"{"error":"bad time"}"#), Sent::Refused(m) if m.contains("bad time"))
        );
        assert_eq!(
            mqtt_address("mqtt://broker:1884").unwrap(),
            ("broker".into(), 1884)
        );
        assert_eq!(mqtt_address("mqtt://broker").unwrap().1, 1883);
        assert!(mqtt_address("http://x").is_err());
    }
}
