//! The MQTT ingest source, beside HTTP, through the same [`ingest::submit`].
//!
//! The server subscribes to the report topic filter (`shotfix/v1/reports/+` by
//! default) at QoS 1 with a persistent session (`clean_session = false` under a
//! fixed client id), so the broker queues reports while the server is down and
//! delivers them when it is back. Each message is one [`MqttEnvelopeV1`]; its
//! topic's `+` level must name the envelope's sensor.
//!
//! Durability is the HTTP source's: acknowledgements are manual, and a message
//! is acknowledged (PUBACK) only after [`ingest::submit`] has committed it, or
//! refused it for good. A message the store could not take is not acknowledged;
//! the connection is dropped so the broker delivers it again on the next
//! session. A crash before the PUBACK means the same; a report delivered twice
//! is a duplicate by id and changes nothing. PUBACKs go out in the order the
//! messages came (MQTT 3.1.1 §4.6) while many are committed in one group.
//!
//! Refusals are counted per reason under `mqtt_…` and logged on one line each;
//! the sender hears nothing back (MQTT has no reply), so a rate-limited report
//! over MQTT is dropped, not retried. When the broker goes away the source
//! retries with backoff (0.5 s doubling to 30 s); HTTP ingest is not affected.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, EventLoop, Incoming, MqttOptions, Outgoing, Publish, QoS};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;

use crate::config::{self, MqttConfig};
use crate::ingest::{self, Outcome, Reason, Rejection, Signed, Transport};
use crate::wire::{self, MqttEnvelopeV1};
use crate::App;

/// Reconnect backoff: first wait, and the longest.
const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Messages being checked and committed at once (they commit as one group).
const IN_FLIGHT: usize = 256;
/// The largest MQTT packet (the protocol's limit). The client reads anything
/// the broker delivers, and this source refuses what is too big (counted,
/// acknowledged): a message the client could not read would end the connection
/// and come back on every reconnect. Set the broker's `max_packet_size` to
/// bound memory.
const MAX_PACKET_BYTES: usize = 268_435_455 + 5;
/// Longest topic quoted in a log line, characters.
const MAX_LOGGED_TOPIC: usize = 160;
/// At most one forced reconnect (after a store failure) this often.
const RECONNECT_AFTER_STORE_ERROR: Duration = Duration::from_secs(5);

/// The running MQTT source.
#[derive(Debug)]
pub struct MqttSource {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl MqttSource {
    /// Starts the source; it connects (and reconnects) in the background.
    pub fn start(app: Arc<App>, config: MqttConfig) -> Result<MqttSource, String> {
        let options = options(&config)?;
        let level = config::topic_sensor_level(&config.topic)?;
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(run(app, config, options, level, stopped));
        Ok(MqttSource {
            stop: Some(stop),
            task,
        })
    }

    /// Stops taking messages, lets those in flight commit and be acknowledged,
    /// and disconnects (the broker keeps the session and queues what follows).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = self.task.await;
    }
}

fn options(config: &MqttConfig) -> Result<MqttOptions, String> {
    config.validate()?;
    let (host, port) = config.broker()?;
    let mut options = MqttOptions::new(config.client_id.clone(), host, port);
    options
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_keep_alive(Duration::from_secs(30))
        .set_max_packet_size(MAX_PACKET_BYTES, 64 * 1024);
    if let Some(user) = &config.username {
        options.set_credentials(user.clone(), config.password.clone().unwrap_or_default());
    }
    Ok(options)
}

/// The connection loop: reads messages and hands each to a task that submits
/// it, in order, to the acknowledger.
async fn run(
    app: Arc<App>,
    config: MqttConfig,
    options: MqttOptions,
    level: usize,
    mut stop: oneshot::Receiver<()>,
) {
    // Acknowledgements travel through the request channel; room for every
    // message in flight, so the acknowledger never waits on this loop.
    let (client, mut events) = AsyncClient::new(options, 2 * IN_FLIGHT);
    let (to_acker, from_loop) = mpsc::channel(IN_FLIGHT);
    let reconnect = Arc::new(Notify::new());
    let mut acker = tokio::spawn(acknowledge_in_order(
        client.clone(),
        from_loop,
        Arc::clone(&reconnect),
    ));
    let url = &config.url;
    let mut backoff = MIN_BACKOFF;
    loop {
        let event = tokio::select! {
            _ = &mut stop => break,
            () = reconnect.notified() => {
                // A store failure: drop the connection so the broker delivers
                // the unacknowledged messages again.
                events.clean();
                eprintln!("shotfix serve: mqtt: store failed; reconnecting to {url} in {backoff:?} for redelivery");
                tokio::select! {
                    _ = &mut stop => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                continue;
            }
            event = events.poll() => event,
        };
        match event {
            Ok(Event::Incoming(Incoming::ConnAck(ack))) => {
                backoff = MIN_BACKOFF;
                eprintln!(
                    "shotfix serve: mqtt: connected to {url} as {:?} ({} session), subscribing to {}",
                    config.client_id,
                    if ack.session_present { "resumed" } else { "new" },
                    config.topic
                );
                if let Err(e) = client.try_subscribe(config.topic.clone(), QoS::AtLeastOnce) {
                    eprintln!("shotfix serve: mqtt: subscribe: {e}");
                }
            }
            Ok(Event::Incoming(Incoming::SubAck(ack))) => {
                if ack
                    .return_codes
                    .iter()
                    .all(|c| matches!(c, rumqttc::SubscribeReasonCode::Success(_)))
                {
                    app.counters
                        .mqtt_subscriptions
                        .fetch_add(1, Ordering::Relaxed);
                } else {
                    eprintln!(
                        "shotfix serve: mqtt: {url} refused the subscription to {}",
                        config.topic
                    );
                }
            }
            Ok(Event::Incoming(Incoming::Publish(publish))) => {
                let task = {
                    let app = Arc::clone(&app);
                    let publish = publish.clone();
                    tokio::spawn(async move { receive(&app, level, &publish).await })
                };
                tokio::select! {
                    _ = &mut stop => break,
                    sent = to_acker.send((task, publish)) => if sent.is_err() { break },
                }
            }
            Ok(_) => {}
            Err(e) => {
                app.counters
                    .mqtt_connection_errors
                    .fetch_add(1, Ordering::Relaxed);
                eprintln!("shotfix serve: mqtt: {url}: {e}; retrying in {backoff:?}");
                tokio::select! {
                    _ = &mut stop => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    // Stopping: take no more messages (the broker delivers them next session),
    // let those in flight commit and their PUBACKs go out, then disconnect.
    drop(to_acker);
    let drained = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            tokio::select! {
                _ = &mut acker => break,
                event = events.poll() => if event.is_err() { break },
            }
        }
    })
    .await;
    if drained.is_err() {
        acker.abort();
    }
    if client.try_disconnect().is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Ok(event) = events.poll().await {
                if event == Event::Outgoing(Outgoing::Disconnect) {
                    break;
                }
            }
        })
        .await;
    }
}

/// Acknowledges messages in arrival order, each once its outcome is known.
async fn acknowledge_in_order(
    client: AsyncClient,
    mut from_loop: mpsc::Receiver<(JoinHandle<Outcome>, Publish)>,
    reconnect: Arc<Notify>,
) {
    let mut last_reconnect: Option<Instant> = None;
    while let Some((task, publish)) = from_loop.recv().await {
        let acknowledge = match task.await {
            Ok(Outcome::Rejected(r)) if r.reason == Reason::Unavailable => false,
            Ok(_) => true,
            // Checking the message panicked (a bug): dropped, logged, so that
            // it does not come back on every reconnect.
            Err(e) => {
                eprintln!(
                    "shotfix serve: mqtt: message on {:?} dropped: {e}",
                    publish
                        .topic
                        .chars()
                        .take(MAX_LOGGED_TOPIC)
                        .collect::<String>()
                );
                true
            }
        };
        if acknowledge {
            if client.ack(&publish).await.is_err() {
                return;
            }
        } else if last_reconnect.is_none_or(|t| t.elapsed() >= RECONNECT_AFTER_STORE_ERROR) {
            last_reconnect = Some(Instant::now());
            reconnect.notify_one();
        }
    }
}

/// Checks one message and submits its report; logs a refusal on one line.
async fn receive(app: &App, level: usize, publish: &Publish) -> Outcome {
    let outcome = match open(app, level, &publish.topic, &publish.payload) {
        Ok(envelope) => {
            let signed = Signed {
                sensor: &envelope.sensor,
                timestamp_ms: envelope.timestamp_ms,
                signature: &envelope.signature,
                body: envelope.report.as_bytes(),
            };
            ingest::submit(app, Transport::Mqtt, signed).await
        }
        Err(rejection) => Outcome::Rejected(ingest::refuse(app, Transport::Mqtt, rejection)),
    };
    if let Outcome::Rejected(r) = &outcome {
        let topic: String = publish.topic.chars().take(MAX_LOGGED_TOPIC).collect();
        let note = if r.reason == Reason::Unavailable {
            "; not acknowledged, the broker delivers it again"
        } else {
            ""
        };
        eprintln!(
            "shotfix serve: mqtt: report on {topic:?} refused ({}): {}{note}",
            r.reason.name(),
            r.message
        );
    }
    outcome
}

/// Takes the envelope apart: size, shape, version, topic against sensor.
fn open(app: &App, level: usize, topic: &str, payload: &[u8]) -> Result<MqttEnvelopeV1, Rejection> {
    // The report inside may be escaped (`"` as `\"`, non-ASCII as `\uXXXX`):
    // the envelope may be up to six times the body limit; the body itself is
    // held to the limit by `submit`.
    let max_body = app.config.limits.max_body_bytes;
    let max_payload = max_body.saturating_mul(6).saturating_add(64 * 1024);
    if payload.len() > max_payload {
        return Err(Rejection::new(
            Reason::Oversized,
            format!(
                "MQTT payload of {} bytes: at most {max_payload} (a report of at most {max_body} bytes)",
                payload.len()
            ),
        ));
    }
    let envelope: MqttEnvelopeV1 = serde_json::from_slice(payload).map_err(|e| {
        Rejection::new(
            Reason::Malformed,
            format!("MQTT payload is not a v1 envelope {{v, sensor, timestamp_ms, signature, report}}: {e}"),
        )
    })?;
    if envelope.v != wire::MQTT_ENVELOPE_VERSION {
        return Err(Rejection::new(
            Reason::Malformed,
            format!(
                "MQTT envelope version {}: this server reads version {}",
                envelope.v,
                wire::MQTT_ENVELOPE_VERSION
            ),
        ));
    }
    let topic_sensor = topic.split('/').nth(level).unwrap_or_default();
    if topic_sensor != envelope.sensor {
        let shown: String = envelope.sensor.chars().take(MAX_LOGGED_TOPIC).collect();
        return Err(Rejection::new(
            Reason::Forged,
            format!("topic names sensor {topic_sensor:?} but the envelope {shown:?}"),
        ));
    }
    Ok(envelope)
}

/// A QoS 1 publisher that knows when the broker has every message: for
/// `shotfix replay --mqtt` and the tests. No reconnection: a lost connection
/// is an error.
#[derive(Debug)]
pub struct Publisher {
    client: AsyncClient,
    acked: tokio::sync::watch::Receiver<Result<u64, String>>,
    sent: u64,
    task: JoinHandle<()>,
}

impl Publisher {
    /// Connects (clean session) and waits for the broker's CONNACK.
    pub async fn connect(url: &str, client_id: &str) -> Result<Publisher, String> {
        let (host, port) = config::parse_mqtt_url(url)?;
        let mut options = MqttOptions::new(client_id, host, port);
        options
            .set_keep_alive(Duration::from_secs(30))
            .set_max_packet_size(64 * 1024, MAX_PACKET_BYTES);
        let (client, mut events) = AsyncClient::new(options, 1024);
        let connected = tokio::time::timeout(Duration::from_secs(10), events.poll())
            .await
            .map_err(|_| format!("MQTT broker {url}: no answer within 10 s"))?;
        match connected {
            Ok(Event::Incoming(Incoming::ConnAck(_))) => {}
            Ok(other) => return Err(format!("MQTT broker {url}: unexpected {other:?}")),
            Err(e) => return Err(format!("MQTT broker {url}: {e}")),
        }
        let (tx, acked) = tokio::sync::watch::channel(Ok(0));
        let task = tokio::spawn(count_acks(events, tx, url.to_string()));
        Ok(Publisher {
            client,
            acked,
            sent: 0,
            task,
        })
    }

    /// Publishes at QoS 1 (the broker's PUBACK is awaited by [`Publisher::flush`]).
    pub async fn publish(&mut self, topic: &str, payload: Vec<u8>) -> Result<(), String> {
        if let Err(e) = &*self.acked.borrow() {
            return Err(e.clone());
        }
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .map_err(|e| format!("MQTT publish: {e}"))?;
        self.sent += 1;
        Ok(())
    }

    /// Waits until the broker has acknowledged every message published.
    pub async fn flush(&mut self, timeout: Duration) -> Result<(), String> {
        let sent = self.sent;
        let waited = tokio::time::timeout(
            timeout,
            self.acked
                .wait_for(|a| a.as_ref().map_or(true, |&n| n >= sent)),
        )
        .await
        .map(|r| r.map(|a| a.clone()));
        match waited {
            Err(_) => Err(format!(
                "MQTT: the broker acknowledged {} of {sent} messages within {timeout:?}",
                self.acked.borrow().as_ref().map_or(0, |n| *n)
            )),
            Ok(Err(_)) => Err("MQTT: the connection task ended".into()),
            Ok(Ok(a)) => a.map(|_| ()),
        }
    }

    /// Flushes and disconnects.
    pub async fn close(mut self, timeout: Duration) -> Result<(), String> {
        let flushed = self.flush(timeout).await;
        let _ = self.client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut self.task).await;
        self.task.abort();
        flushed
    }
}

async fn count_acks(
    mut events: EventLoop,
    tx: tokio::sync::watch::Sender<Result<u64, String>>,
    url: String,
) {
    let mut acked = 0;
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Incoming::PubAck(_))) => {
                acked += 1;
                let _ = tx.send(Ok(acked));
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(e) => {
                let _ = tx.send(Err(format!("MQTT broker {url}: {e}")));
                return;
            }
        }
    }
}
