//! Server integration tests, against a real server on a loopback port with a
//! real SQLite file. Contents:
//! - replay of the Pittsburgh live-fire tests gives the same shots as `locate`;
//! - bad reports are refused with the right status and counted;
//! - a flood from one sensor is rate-limited without starving the others;
//! - alerts reach SSE subscribers and a webhook receiver; CAP and GeoJSON outputs.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use server::config::ServerConfig;
use server::replay;

use common::{
    counters, get, get_text, locate_shots, pittsburgh, receiver, settled, shots_of, sse_text,
    ORIGIN,
};

/// Wall time after a replay until its shots are final.
const FINAL_AFTER: Duration = Duration::from_secs(13);

/// Replays one test folder into a fresh server; returns (server shots in the
/// server's frame converted to the test's local frame, locate's shots).
async fn replay_one(test: &Path) -> (Vec<(f64, f64, String)>, Vec<(f64, f64, String)>) {
    let dir = tempfile::tempdir().unwrap();
    let input = replay::read(test, Some(ORIGIN)).unwrap();
    let config = replay::server_config(&input, dir.path().join("s.db"));
    let keys = replay::keys(&config);
    let running = server::start(config).await.unwrap();
    common::authorize(&running).await;
    let base = format!("http://{}", running.addr);
    replay::replay(&base, &keys, &input, 0.0).await.unwrap();
    // Shots are compared once final: event time moves on with the wall clock
    // while the server is idle, and a shot is final one longest travel time plus
    // the allowed lateness after its emission (under 12 s with the defaults).
    tokio::time::sleep(FINAL_AFTER).await;
    let got = shots_of(&settled(&base, Duration::from_millis(1500)).await);
    running.stop().await;
    // locate on the same folder, in the test's own local frame.
    let want = locate_shots(test);
    (got, want)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_pittsburgh_gives_the_same_shots_as_locate() {
    let root = pittsburgh();
    let mut tests: Vec<PathBuf> = Vec::new();
    for fp in ["FP1", "FP2", "FP3", "FP4"] {
        let mut list: Vec<PathBuf> = std::fs::read_dir(root.join(fp))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        list.sort();
        // Every test in the slow tier; the first three of each position by default.
        if std::env::var_os("SHOTFIX_SLOW").is_none() {
            list.truncate(3);
        }
        tests.extend(list);
    }
    let (mut compared, mut worst) = (0, 0.0f64);
    // Every test on its own server at once: the wait for finality overlaps.
    let results = futures_util::future::join_all(tests.iter().map(|t| replay_one(t))).await;
    for (test, (got, want)) in tests.iter().zip(results) {
        assert_eq!(
            got.len(),
            want.len(),
            "{}: server {got:?} vs locate {want:?}",
            test.display()
        );
        for (g, w) in got.iter().zip(&want) {
            let d = ((g.0 - w.0).powi(2) + (g.1 - w.1).powi(2)).sqrt();
            worst = worst.max(d);
            assert!(
                d <= 1.0,
                "{}: shot at {} differs by {d:.3} m\nserver {got:?}\nlocate {want:?}",
                test.display(),
                w.2
            );
            compared += 1;
        }
    }
    eprintln!(
        "{compared} shots over {} tests, worst difference {worst:.4} m",
        tests.len()
    );
    assert!(compared >= 20);
}

/// A server with one sensor `S1` and a tight rate limit; returns it with the key.
async fn one_sensor_server(dir: &Path) -> (server::Running, Vec<u8>) {
    let mut config = ServerConfig::new(dir.join("s.db"));
    let key = vec![7u8; 32];
    for (i, id) in ["S1", "S2"].iter().enumerate() {
        config.sensors.push(server::config::SensorConfig {
            id: id.to_string(),
            key: hex::encode(&key),
            lat: 40.0 + i as f64 * 0.001,
            lon: -80.0,
            alt_m: 10.0,
        });
    }
    config.limits.reports_per_s = 5.0;
    config.limits.burst = 5.0;
    config.limits.max_body_bytes = 10_000;
    let running = server::start(config).await.unwrap();
    common::authorize(&running).await;
    (running, key)
}

async fn post(base: &str, sensor: &str, ts: i64, signature: &str, body: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{base}/v1/reports"))
        .header("x-shotfix-sensor", sensor)
        .header("x-shotfix-timestamp", ts.to_string())
        .header("x-shotfix-signature", signature)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn report(sensor: &str, id: &str) -> String {
    format!(
        r#"{{"version":1,"id":"{id}","sensor":"{sensor}","pulses":[{{"id":"{id}-p","t_utc":"2026-11-21T12:00:00.5Z","snr_db":20.0}}]}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_reports_are_refused_with_the_right_status_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (running, key) = one_sensor_server(dir.path()).await;
    let base = format!("http://{}", running.addr);
    let now = server::ingest::now_ms();
    let good = report("S1", "r1");
    let sign = |ts: i64, body: &str| server::wire::sign(&key, ts, body.as_bytes());
    assert_eq!(post(&base, "S1", now, &sign(now, &good), &good).await, 202);
    assert_eq!(
        post(&base, "S1", now, &sign(now, &good), &good).await,
        200,
        "duplicate id: idempotent"
    );
    assert_eq!(
        post(&base, "S9", now, &sign(now, &good), &good).await,
        401,
        "unknown sensor"
    );
    let forged = report("S1", "r2");
    assert_eq!(
        post(&base, "S1", now, &sign(now, &good), &forged).await,
        401,
        "signature of another body"
    );
    let old = now - 3_600_000;
    let replayed = report("S1", "r3");
    assert_eq!(
        post(&base, "S1", old, &sign(old, &replayed), &replayed).await,
        401,
        "an hour-old signature"
    );
    let big = format!("{}{}", report("S1", "r4"), " ".repeat(20_000));
    assert_eq!(post(&base, "S1", now, &sign(now, &big), &big).await, 413);
    let broken = "{\"version\":1,";
    assert_eq!(
        post(&base, "S1", now, &sign(now, broken), broken).await,
        400
    );
    let wrong_sensor = report("S2", "r5");
    assert_eq!(
        post(&base, "S1", now, &sign(now, &wrong_sensor), &wrong_sensor).await,
        422
    );
    let bad_time = report("S1", "r6").replace("2026-11-21T12:00:00.5Z", "yesterday");
    assert_eq!(
        post(&base, "S1", now, &sign(now, &bad_time), &bad_time).await,
        422
    );
    // Flood from S1: refused with 429 once its bucket is empty, while S2 goes through.
    let mut limited = 0;
    for i in 0..30 {
        let b = report("S1", &format!("f{i}"));
        if post(&base, "S1", now, &sign(now, &b), &b).await == 429 {
            limited += 1;
        }
    }
    assert!(limited >= 20, "{limited} of 30 limited");
    let other = report("S2", "s2-1");
    assert_eq!(
        post(&base, "S2", now, &sign(now, &other), &other).await,
        202,
        "S2 not starved"
    );
    let c = &counters(&base).await;
    assert_eq!(c["rejected_unauthenticated"], 1);
    assert_eq!(c["rejected_forged"], 1);
    assert_eq!(c["rejected_replayed"], 1);
    assert_eq!(c["rejected_oversized"], 1);
    assert_eq!(c["rejected_malformed"], 3);
    assert_eq!(c["rejected_rate_limited"], limited);
    assert_eq!(c["reports_duplicate"], 1);
    running.stop().await;
}

/// The CAP 1.2 schema, fetched by scripts/test.sh (see scripts/fetch-cap-schema.sh).
fn cap_schema() -> PathBuf {
    std::env::var_os("SHOTFIX_CAP_XSD")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/shotfix-cap/CAP-v1.2.xsd")
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_sse_and_webhooks_and_validate_as_cap_and_geojson() {
    let dir = tempfile::tempdir().unwrap();
    let input = replay::read(&pittsburgh().join("FP1/test_001"), Some(ORIGIN)).unwrap();
    let mut config = replay::server_config(&input, dir.path().join("s.db"));
    let (hook, delivered) = receiver().await;
    config.webhooks.push(server::config::WebhookConfig {
        url: hook,
        secret: "0123456789abcdef".into(),
    });
    let keys = replay::keys(&config);
    let running = server::start(config).await.unwrap();
    common::authorize(&running).await;
    let base = format!("http://{}", running.addr);
    // An SSE subscriber from the start.
    let sse_task = sse_text(&base).await;
    replay::replay(&base, &keys, &input, 0.0).await.unwrap();
    let list = settled(&base, Duration::from_millis(1500)).await;
    let alerts = get(format!("{base}/v1/alerts")).await;
    let alerts = alerts["alerts"].as_array().unwrap().clone();
    assert!(!alerts.is_empty());
    // Every alert reached the webhook receiver (within a few seconds).
    let deadline = Instant::now() + Duration::from_secs(10);
    while delivered.lock().unwrap().len() < alerts.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut seqs: Vec<i64> = delivered
        .lock()
        .unwrap()
        .iter()
        .map(|(_, d)| d["seq"].as_i64().unwrap_or(0))
        .collect();
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs.len(), alerts.len(), "every alert delivered");
    let sse_text = sse_task.await.unwrap();
    for a in &alerts {
        assert!(
            sse_text.contains(&format!("id: {}", a["seq"])),
            "SSE carried alert {}",
            a["seq"]
        );
    }
    // GeoJSON validates (RFC 7946 structure, via the geojson crate).
    let gj = get_text(format!("{base}/v1/incidents.geojson")).await;
    let parsed: geojson::GeoJson = gj.parse().unwrap();
    let geojson::GeoJson::FeatureCollection(fc) = parsed else {
        panic!("not a FeatureCollection")
    };
    assert_eq!(
        fc.features.len(),
        list["incidents"].as_array().unwrap().len()
    );
    // CAP validates against the OASIS CAP 1.2 schema.
    let id = alerts[0]["incident"]["id"].as_str().unwrap();
    let cap = get_text(format!("{base}/v1/incidents/{id}/cap")).await;
    let file = dir.path().join("alert.xml");
    std::fs::write(&file, &cap).unwrap();
    let schema = cap_schema();
    assert!(
        schema.is_file(),
        "{} missing: run scripts/fetch-cap-schema.sh",
        schema.display()
    );
    let out = std::process::Command::new("xmllint")
        .args(["--noout", "--nonet", "--schema"])
        .arg(&schema)
        .arg(&file)
        .output()
        .expect("xmllint (Debian libxml2-utils)");
    assert!(
        out.status.success(),
        "CAP invalid: {}\n{cap}",
        String::from_utf8_lossy(&out.stderr)
    );
    // And a broken one does not (the check can fail).
    std::fs::write(&file, cap.replace("<status>Actual</status>", "")).unwrap();
    let out = std::process::Command::new("xmllint")
        .args(["--noout", "--nonet", "--schema"])
        .arg(&schema)
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    running.stop().await;
}
