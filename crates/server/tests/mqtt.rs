//! MQTT ingest against a real Mosquitto broker (127.0.0.1:1883, anonymous; CI
//! starts it in `.ci/run`; `SHOTFIX_MQTT_URL` points elsewhere). An unreachable
//! broker fails these tests, never skips them. Every test uses its own topic
//! prefix and client ids, so parallel runs do not see each other's reports.
//! Contents:
//! - signed reports over MQTT are stored; a resent one counts as a duplicate,
//!   also across transports; forged, replayed, unknown-sensor, topic/sensor
//!   mismatch, oversized and malformed messages are refused and counted;
//! - reports published while the server is down arrive after it restarts
//!   (persistent session), and acknowledged ones are not delivered again;
//! - the source survives the broker going away (and starting after the server)
//!   while HTTP ingest goes on;
//! - a Pittsburgh test replayed over MQTT gives the same shots as over HTTP.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use server::config::{MqttConfig, SensorConfig, ServerConfig};
use server::mqtt::Publisher;
use server::replay;
use server::wire::{self, MqttEnvelopeV1};

use common::{counters, get, get_text, pittsburgh, settled, shots_of, ORIGIN};

/// The broker the tests use.
fn broker_url() -> String {
    std::env::var("SHOTFIX_MQTT_URL").unwrap_or_else(|_| "mqtt://127.0.0.1:1883".into())
}

/// Fails (does not skip) when the broker is not there.
fn require_broker(url: &str) {
    let (host, port) = server::config::parse_mqtt_url(url).unwrap();
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
        .unwrap()
        .next()
        .unwrap();
    if let Err(e) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
        panic!(
            "the MQTT broker at {url} is not reachable ({e}); these tests need it: \
             start it with `mosquitto -d -c /etc/mosquitto/mosquitto.conf` (.ci/run does)"
        );
    }
}

/// A name no other run or test uses.
fn unique(test: &str) -> String {
    format!(
        "shotfix-test-{test}-{}-{}",
        std::process::id(),
        server::now_ns() % 1_000_000_000_000
    )
}

/// An `[mqtt]` section with its own topic prefix and client id.
fn mqtt_config(url: &str, name: &str) -> MqttConfig {
    let mut m = MqttConfig::new(url);
    m.topic = format!("{name}/shotfix/v1/reports/+");
    m.client_id = name.to_string();
    m
}

/// The server's persistent session at the broker, ended when the test ends
/// (passed or failed), so test runs leave no sessions behind.
struct Session {
    url: String,
    client_id: String,
}

impl Drop for Session {
    /// A clean-session connection under the same client id discards the
    /// session. Raw MQTT 3.1.1 over a blocking socket: this runs in `drop`,
    /// also while a failed test unwinds.
    fn drop(&mut self) {
        use std::io::{Read, Write};
        let Ok((host, port)) = server::config::parse_mqtt_url(&self.url) else {
            return;
        };
        let Ok(mut tcp) = std::net::TcpStream::connect((host.as_str(), port)) else {
            return;
        };
        let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
        let id = self.client_id.as_bytes();
        // CONNECT: "MQTT", level 4, clean session, keep-alive 60 s, client id.
        let mut connect = vec![0x10, (12 + id.len()) as u8, 0, 4];
        connect.extend_from_slice(b"MQTT");
        connect.extend_from_slice(&[4, 0x02, 0, 60, 0, id.len() as u8]);
        connect.extend_from_slice(id);
        let mut connack = [0u8; 4];
        if tcp.write_all(&connect).is_ok() && tcp.read_exact(&mut connack).is_ok() {
            let _ = tcp.write_all(&[0xe0, 0]); // DISCONNECT
        }
    }
}

const KEY: [u8; 32] = [7; 32];

/// Sensors S1 and S2 with [`KEY`], a 10 kB body limit, and `mqtt`.
fn config(dir: &Path, mqtt: MqttConfig) -> ServerConfig {
    let mut config = ServerConfig::new(dir.join("s.db"));
    for (i, id) in ["S1", "S2"].iter().enumerate() {
        config.sensors.push(SensorConfig {
            id: id.to_string(),
            key: hex::encode(KEY),
            lat: 40.0 + i as f64 * 0.001,
            lon: -80.0,
            alt_m: 10.0,
        });
    }
    config.limits.max_body_bytes = 10_000;
    config.mqtt = Some(mqtt);
    config
}

fn report(sensor: &str, id: &str) -> String {
    format!(
        r#"{{"version":1,"id":"{id}","sensor":"{sensor}","pulses":[{{"id":"{id}-p","t_utc":"2026-11-21T12:00:00.5Z","snr_db":20.0}}]}}"#
    )
}

/// A signed envelope for `body`, as a sensor would publish it.
fn envelope(key: &[u8], sensor: &str, timestamp_ms: i64, body: &str) -> Vec<u8> {
    MqttEnvelopeV1::sign(key, sensor, timestamp_ms, body.to_string()).to_payload()
}

/// Waits until `done` holds for the counters, or fails with `what`.
async fn wait_for(base: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let c = counters(base).await;
        if done(&c) {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {c}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn subscribed(base: &str, n: u64) {
    wait_for(base, "the MQTT subscription", |c| {
        c["mqtt_subscriptions"].as_u64() >= Some(n)
    })
    .await;
}

/// Every MQTT outcome counted so far.
fn mqtt_outcomes(c: &Value) -> u64 {
    [
        "reports_accepted",
        "reports_duplicate",
        "rejected_unauthenticated",
        "rejected_forged",
        "rejected_replayed",
        "rejected_oversized",
        "rejected_malformed",
        "rejected_rate_limited",
        "store_errors",
    ]
    .iter()
    .map(|k| c[format!("mqtt_{k}")].as_u64().unwrap())
    .sum()
}

async fn pulses(base: &str) -> Vec<(String, String)> {
    let v = get(format!("{base}/v1/pulses?limit=1000")).await;
    let mut out: Vec<(String, String)> = v["pulses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["sensor"].as_str().unwrap().to_string(),
                p["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_over_mqtt_are_stored_and_bad_ones_refused_and_counted() {
    let url = broker_url();
    require_broker(&url);
    let name = unique("ingest");
    let _session = Session {
        url: url.clone(),
        client_id: name.clone(),
    };
    let dir = tempfile::tempdir().unwrap();
    let mqtt = mqtt_config(&url, &name);
    let topic = |sensor: &str| wire::mqtt_topic(&mqtt.topic, sensor);
    let running = server::start(config(dir.path(), mqtt.clone()))
        .await
        .unwrap();
    common::authorize(&running).await;
    let base = format!("http://{}", running.addr);
    subscribed(&base, 1).await;
    let mut sensor = Publisher::connect(&url, &format!("{name}-sensor"))
        .await
        .unwrap();
    let now = server::ingest::now_ms();
    let good = report("S1", "r1");
    let sent = [
        // (topic, payload, what it is)
        (topic("S1"), envelope(&KEY, "S1", now, &good), "good"),
        (
            topic("S1"),
            envelope(&KEY, "S1", now, &good),
            "the same again",
        ),
        (
            topic("S1"),
            envelope(&[8; 32], "S1", now, &report("S1", "r2")),
            "wrong key",
        ),
        (
            topic("S1"),
            {
                let mut e = MqttEnvelopeV1::sign(&KEY, "S1", now, report("S1", "r3"));
                e.report = report("S1", "r3-changed");
                e.to_payload()
            },
            "report changed after signing",
        ),
        (
            topic("S1"),
            envelope(&KEY, "S1", now - 3_600_000, &report("S1", "r4")),
            "an hour-old signature",
        ),
        (
            topic("S2"),
            envelope(&KEY, "S1", now, &report("S1", "r5")),
            "S1's report on S2's topic",
        ),
        (
            topic("S9"),
            envelope(&KEY, "S9", now, &report("S9", "r6")),
            "unknown sensor",
        ),
        (
            topic("S1"),
            envelope(
                &KEY,
                "S1",
                now,
                &format!("{}{}", report("S1", "r7"), " ".repeat(20_000)),
            ),
            "report over the body limit",
        ),
        (topic("S1"), vec![b'x'; 200_000], "payload over the limit"),
        (topic("S1"), b"not json".to_vec(), "not JSON"),
        (topic("S1"), vec![0xff, 0xfe, 0x00, 0x80], "not UTF-8"),
        (
            topic("S1"),
            format!(
                r#"{{"v":1,"sensor":"S1","timestamp_ms":{now},"signature":"00","report":{}}}"#,
                report("S1", "r8")
            )
            .into_bytes(),
            "report as an object, not a string",
        ),
        (
            topic("S1"),
            {
                let mut e = MqttEnvelopeV1::sign(&KEY, "S1", now, report("S1", "r9"));
                e.v = 2;
                e.to_payload()
            },
            "envelope version 2",
        ),
        (
            topic("S1"),
            envelope(&KEY, "S1", i64::MIN, &report("S1", "r13")),
            "signed at the earliest time there is",
        ),
        (
            topic("S1"),
            envelope(&KEY, "S1", i64::MAX, &report("S1", "r14")),
            "signed at the latest time there is",
        ),
        (
            topic("S1"),
            envelope(&KEY, "S1", now, "{\"version\":1,"),
            "signed, but not a report",
        ),
        (
            topic("S1"),
            envelope(&KEY, "S1", now, &report("S2", "r10")),
            "signed by S1, names S2",
        ),
        (
            topic("S1"),
            envelope(
                &KEY,
                "S1",
                now,
                &report("S1", "r11").replace("2026-11-21T12:00:00.5Z", "yesterday"),
            ),
            "a time that is not RFC 3339",
        ),
        (
            topic("S2"),
            envelope(&KEY, "S2", now, &report("S2", "r12")),
            "good, after all that",
        ),
    ];
    for (t, payload, _) in &sent {
        sensor.publish(t, payload.clone()).await.unwrap();
    }
    sensor.close(Duration::from_secs(10)).await.unwrap();
    let c = wait_for(&base, "every message's outcome", |c| {
        mqtt_outcomes(c) >= sent.len() as u64
    })
    .await;
    let expect = [
        ("reports_accepted", 2),
        ("pulses_accepted", 2),
        ("reports_duplicate", 1),
        ("rejected_forged", 3),
        ("rejected_replayed", 3),
        ("rejected_unauthenticated", 1),
        ("rejected_oversized", 2),
        ("rejected_malformed", 7),
        ("rejected_rate_limited", 0),
        ("store_errors", 0),
    ];
    for (name, n) in expect {
        assert_eq!(c[format!("mqtt_{name}")], n, "mqtt_{name} in {c}");
        // No HTTP traffic: the totals are the MQTT share.
        assert_eq!(c[name], n, "{name} in {c}");
    }
    assert_eq!(mqtt_outcomes(&c), sent.len() as u64, "{c}");
    // Stored, as over HTTP.
    assert_eq!(
        pulses(&base).await,
        vec![
            ("S1".to_string(), "r1-p".to_string()),
            ("S2".to_string(), "r12-p".to_string())
        ]
    );
    // One ingest path: the report accepted over MQTT is a duplicate over HTTP.
    let ts = server::ingest::now_ms();
    let status = reqwest::Client::new()
        .post(format!("{base}/v1/reports"))
        .header("x-shotfix-sensor", "S1")
        .header("x-shotfix-timestamp", ts.to_string())
        .header("x-shotfix-signature", wire::sign(&KEY, ts, good.as_bytes()))
        .body(good.clone())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200, "duplicate across transports");
    let metrics = get_text(format!("{base}/metrics")).await;
    assert!(
        metrics.contains("shotfix_mqtt_rejected_forged_total 3\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("shotfix_reports_duplicate_total 2\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("shotfix_mqtt_reports_duplicate_total 1\n"),
        "{metrics}"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_published_while_the_server_is_down_arrive_after_restart() {
    let url = broker_url();
    require_broker(&url);
    let name = unique("restart");
    let _session = Session {
        url: url.clone(),
        client_id: name.clone(),
    };
    let dir = tempfile::tempdir().unwrap();
    let mqtt = mqtt_config(&url, &name);
    let config = config(dir.path(), mqtt.clone());
    // The first run creates the session (the subscription) at the broker.
    let running = server::start(config.clone()).await.unwrap();
    common::authorize(&running).await;
    subscribed(&format!("http://{}", running.addr), 1).await;
    running.stop().await;
    // Down: three reports, which the broker acknowledges and queues.
    let mut sensor = Publisher::connect(&url, &format!("{name}-sensor"))
        .await
        .unwrap();
    for i in 0..3 {
        let sensor_id = ["S1", "S2"][i % 2];
        let body = report(sensor_id, &format!("down-{i}"));
        let payload = envelope(&KEY, sensor_id, server::ingest::now_ms(), &body);
        sensor
            .publish(&wire::mqtt_topic(&mqtt.topic, sensor_id), payload)
            .await
            .unwrap();
    }
    sensor.close(Duration::from_secs(10)).await.unwrap();
    // Back: the session resumes and the queued reports are delivered.
    let running = server::start(config.clone()).await.unwrap();
    common::authorize(&running).await;
    let base = format!("http://{}", running.addr);
    let c = wait_for(&base, "the queued reports", |c| {
        c["mqtt_reports_accepted"].as_u64() >= Some(3)
    })
    .await;
    assert_eq!(c["mqtt_reports_accepted"], 3, "{c}");
    assert_eq!(
        pulses(&base).await,
        vec![
            ("S1".to_string(), "down-0-p".to_string()),
            ("S1".to_string(), "down-2-p".to_string()),
            ("S2".to_string(), "down-1-p".to_string()),
        ]
    );
    running.stop().await;
    // Acknowledged after the commit: a third run gets nothing again.
    let running = server::start(config).await.unwrap();
    common::authorize(&running).await;
    let base = format!("http://{}", running.addr);
    subscribed(&base, 1).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let c = counters(&base).await;
    assert_eq!(mqtt_outcomes(&c), 0, "delivered again: {c}");
    assert_eq!(pulses(&base).await.len(), 3);
    running.stop().await;
}

/// A Mosquitto of this test's own on a free port, which it can stop.
struct OwnBroker {
    child: std::process::Child,
    conf: PathBuf,
}

impl OwnBroker {
    fn start(conf: &Path) -> OwnBroker {
        let child = std::process::Command::new("mosquitto")
            .arg("-c")
            .arg(conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("mosquitto (the broker binary) is needed: {e}"));
        OwnBroker {
            child,
            conf: conf.to_path_buf(),
        }
    }

    fn stop(mut self) -> PathBuf {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.conf.clone()
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "mosquitto did not listen on {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_source_reconnects_when_the_broker_goes_away_and_http_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
    )
    .unwrap();
    let url = format!("mqtt://127.0.0.1:{port}");
    let name = unique("reconnect");
    let mqtt = mqtt_config(&url, &name);
    // The server starts while the broker is not there yet: HTTP works.
    let running = server::start(config(dir.path(), mqtt.clone()))
        .await
        .unwrap();
    common::authorize(&running).await;
    let base = format!("http://{}", running.addr);
    let post = |id: &str| {
        let body = report("S1", id);
        let base = base.clone();
        async move {
            let ts = server::ingest::now_ms();
            reqwest::Client::new()
                .post(format!("{base}/v1/reports"))
                .header("x-shotfix-sensor", "S1")
                .header("x-shotfix-timestamp", ts.to_string())
                .header("x-shotfix-signature", wire::sign(&KEY, ts, body.as_bytes()))
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(post("h1").await, 202);
    wait_for(&base, "a failed connection", |c| {
        c["mqtt_connection_errors"].as_u64() >= Some(1)
    })
    .await;
    let publish = |id: String| {
        let (url, topic, name) = (url.clone(), mqtt.topic.clone(), name.clone());
        async move {
            let mut p = Publisher::connect(&url, &format!("{name}-sensor"))
                .await
                .unwrap();
            let body = report("S2", &id);
            let payload = envelope(&KEY, "S2", server::ingest::now_ms(), &body);
            p.publish(&wire::mqtt_topic(&topic, "S2"), payload)
                .await
                .unwrap();
            p.close(Duration::from_secs(10)).await.unwrap();
        }
    };
    // The broker comes up: the source connects and subscribes.
    let broker = OwnBroker::start(&conf);
    wait_listening(port).await;
    subscribed(&base, 1).await;
    publish("m1".into()).await;
    wait_for(&base, "m1", |c| {
        c["mqtt_reports_accepted"].as_u64() >= Some(1)
    })
    .await;
    // It goes away: HTTP goes on.
    let errors = counters(&base).await["mqtt_connection_errors"]
        .as_u64()
        .unwrap();
    let conf = broker.stop();
    wait_for(&base, "the lost connection", |c| {
        c["mqtt_connection_errors"].as_u64() > Some(errors)
    })
    .await;
    assert_eq!(post("h2").await, 202);
    // It comes back (with no memory of the session): the source subscribes again.
    let _broker = OwnBroker::start(&conf);
    wait_listening(port).await;
    subscribed(&base, 2).await;
    publish("m2".into()).await;
    let c = wait_for(&base, "m2", |c| {
        c["mqtt_reports_accepted"].as_u64() >= Some(2)
    })
    .await;
    assert_eq!(
        c["reports_accepted"], 4,
        "two over HTTP, two over MQTT: {c}"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_pittsburgh_over_mqtt_gives_the_same_shots_as_over_http() {
    let url = broker_url();
    require_broker(&url);
    let test = pittsburgh().join("FP1/test_001");
    let input = replay::read(&test, Some(ORIGIN)).unwrap();
    let mut shots = Vec::new();
    for over_mqtt in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let name = unique("pittsburgh");
        let _session = Session {
            url: url.clone(),
            client_id: name.clone(),
        };
        let mut config = replay::server_config(&input, dir.path().join("s.db"));
        // MQTT has no 429 to retry on: room for the whole test at once.
        config.limits.burst = 10_000.0;
        config.mqtt = Some(mqtt_config(&url, &name));
        let topic = config.mqtt.as_ref().unwrap().topic.clone();
        let keys = replay::keys(&config);
        let running = server::start(config).await.unwrap();
        common::authorize(&running).await;
        let base = format!("http://{}", running.addr);
        subscribed(&base, 1).await;
        let target = if over_mqtt {
            replay::Target::Mqtt {
                url: url.clone(),
                topic,
            }
        } else {
            replay::Target::Http(base.clone())
        };
        let stats = replay::replay_to(&target, &keys, &input, 0.0)
            .await
            .unwrap();
        let c = wait_for(&base, "every report", |c| {
            c["reports_accepted"].as_u64() >= Some(stats.reports as u64)
        })
        .await;
        assert_eq!(c["reports_accepted"], stats.reports, "{c}");
        assert_eq!(
            c["mqtt_reports_accepted"],
            if over_mqtt { stats.reports } else { 0 }
        );
        shots.push(shots_of(&settled(&base, Duration::from_millis(1500)).await));
        running.stop().await;
    }
    let (http, mqtt) = (&shots[0], &shots[1]);
    assert!(http.len() >= 2, "{http:?}");
    assert_eq!(http.len(), mqtt.len(), "HTTP {http:?}\nMQTT {mqtt:?}");
    for (h, m) in http.iter().zip(mqtt) {
        // Streaming association anchors on each batch of new pulses, so shots
        // still provisional depend a little on how the pulses were batched in
        // transit; within the issue's 1 m of one another, at the same instant
        // to the millisecond.
        let d = ((h.0 - m.0).powi(2) + (h.1 - m.1).powi(2)).sqrt();
        assert!(
            d <= 1.0 && h.2[..23] == m.2[..23],
            "HTTP {h:?} vs MQTT {m:?}"
        );
    }
}
