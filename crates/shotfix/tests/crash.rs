//! Kill -9 of `shotfix serve` in the middle of a replay, then a restart on the
//! same database: no accepted pulse is lost, no incident is alerted twice, and
//! every alert reaches the webhook receiver (at least once; a delivery cut short
//! by the kill goes again under the same delivery id).

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use model::Geodetic;
use serde_json::Value;
use server::replay;

const ORIGIN: Geodetic = Geodetic {
    lat_deg: 40.4406,
    lon_deg: -79.9959,
    alt_m: 250.0,
};

fn pittsburgh_test(fp: &str, n: usize) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/pittsburgh-dev")
        .join(fp)
        .join(format!("test_{n:03}"))
}

fn serve(config: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_shotfix"))
        .arg("serve")
        .arg("--config")
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_up(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{base}/v1/health")).await.is_err() {
        assert!(Instant::now() < deadline, "server did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An investigator's token, made with `shotfix token add` on the server's database.
fn token(config: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_shotfix"))
        .args([
            "token",
            "add",
            "crash-test",
            "--role",
            "investigator",
            "--config",
        ])
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

async fn get(url: String, token: &str) -> Value {
    let response = reqwest::Client::new()
        .get(&url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "GET {url}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_replay_loses_nothing_and_alerts_once() {
    // The webhook receiver: (delivery id, alert kind, incident id) per receipt.
    type Receipts = Arc<Mutex<Vec<(String, String, String)>>>;
    let receipts: Receipts = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = listener.local_addr().unwrap();
    let sink = receipts.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let sink = sink.clone();
                async move {
                    let v: Value = serde_json::from_slice(&body).unwrap_or_default();
                    let delivery = headers
                        .get("x-shotfix-delivery")
                        .and_then(|h| h.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    sink.lock().unwrap().push((
                        delivery,
                        v["kind"].as_str().unwrap_or_default().to_string(),
                        v["incident"]["id"].as_str().unwrap_or_default().to_string(),
                    ));
                    "ok"
                }
            },
        ),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    // Three live-fire tests from one firing position, played back to back.
    let inputs: Vec<replay::ReplayInput> = (19..=21)
        .map(|n| replay::read(&pittsburgh_test("FP2", n), Some(ORIGIN)).unwrap())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let mut config = replay::server_config(&inputs[0], db.as_path());
    for input in &inputs[1..] {
        for s in replay::server_config(input, db.as_path()).sensors {
            if !config.sensors.iter().any(|c| c.id == s.id) {
                config.sensors.push(s);
            }
        }
    }
    let keys = replay::keys(&config);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut toml = format!(
        "listen = \"127.0.0.1:{port}\"\ndatabase = {}\n\n[[webhooks]]\nurl = \"http://{hook}/hook\"\nsecret = \"crash-test-secret-0123\"\n",
        toml::Value::String(db.display().to_string())
    );
    for s in &config.sensors {
        toml.push_str(&format!(
            "\n[[sensors]]\nid = \"{}\"\nkey = \"{}\"\nlat = {}\nlon = {}\nalt_m = {}\n",
            s.id, s.key, s.lat, s.lon, s.alt_m
        ));
    }
    let config_path = dir.path().join("server.toml");
    std::fs::write(&config_path, toml).unwrap();
    let token = token(&config_path);

    let mut child = serve(&config_path);
    wait_up(&base).await;

    // Replay in the background (the replayer retries while the server is down).
    let total_pulses: usize = inputs.iter().map(|i| i.pulses.len()).sum();
    let player = {
        let keys = keys.clone();
        let base = base.clone();
        tokio::spawn(async move {
            let mut pulses = 0;
            for input in &inputs {
                pulses += replay::replay(&base, &keys, input, 0.0)
                    .await
                    .unwrap()
                    .pulses;
            }
            pulses
        })
    };
    // Kill -9 once a third of the pulses are in and an alert went out.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let m = get(format!("{base}/v1/health"), &token).await["counters"].clone();
        let accepted = m["pulses_accepted"].as_u64().unwrap_or(0) as usize;
        if accepted * 3 >= total_pulses && !receipts.lock().unwrap().is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no progress before the kill: {m}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let pulses_before_kill = {
        let db = store::Db::open_sqlite(&db).unwrap();
        db.pulse_count().unwrap()
    };
    assert!(pulses_before_kill > 0);

    let mut child = serve(&config_path);
    wait_up(&base).await;
    let sent = player.await.unwrap();
    assert_eq!(sent, total_pulses);

    // Everything final and delivered: event time moves on while idle, and the
    // outbox drains.
    tokio::time::sleep(Duration::from_secs(14)).await;
    let stored = get(format!("{base}/v1/pulses?limit=100000"), &token).await;
    let alerts = get(format!("{base}/v1/alerts?limit=10000"), &token).await;
    child.kill().unwrap();
    child.wait().unwrap();

    // No accepted pulse lost: every pulse the replayer had acknowledged is stored.
    let stored = stored["pulses"].as_array().unwrap().len();
    assert_eq!(stored, total_pulses, "pulses stored vs sent");

    // No incident alerted twice, and each alert reached the receiver.
    let alerts = alerts["alerts"].as_array().unwrap();
    assert!(!alerts.is_empty());
    let mut first_alerts: BTreeMap<String, usize> = BTreeMap::new();
    for a in alerts.iter().filter(|a| a["kind"] == "alert") {
        *first_alerts
            .entry(a["incident"]["id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert!(
        first_alerts.values().all(|&n| n == 1),
        "an incident alerted twice: {first_alerts:?}"
    );
    let receipts = receipts.lock().unwrap().clone();
    let received: BTreeSet<(String, String)> = receipts
        .iter()
        .map(|(_, kind, id)| (kind.clone(), id.clone()))
        .collect();
    for a in alerts {
        let key = (
            a["kind"].as_str().unwrap().to_string(),
            a["incident"]["id"].as_str().unwrap().to_string(),
        );
        assert!(received.contains(&key), "alert {key:?} never delivered");
    }
    // The receiver never saw two different first alerts for one incident.
    let mut firsts: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (delivery, kind, id) in &receipts {
        if kind == "alert" {
            firsts.entry(id).or_default().insert(delivery);
        }
    }
    assert!(
        firsts.values().all(|d| d.len() == 1),
        "two deliveries of first alerts for one incident: {firsts:?}"
    );
    eprintln!(
        "kill -9 after {pulses_before_kill} of {total_pulses} pulses: {stored} stored, {} alerts, {} webhook receipts",
        alerts.len(),
        receipts.len()
    );
}
