//! Sensor heartbeats, pushed settings and clock quality (issue 8, server side).

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::time::Duration;

use serde_json::Value;
use server::config::ServerConfig;
use server::replay;

fn beat(sensor: &str, settings_version: &str) -> wire::HeartbeatV1 {
    wire::HeartbeatV1 {
        version: wire::HEARTBEAT_VERSION,
        sensor: sensor.into(),
        t_utc: "2026-11-22T05:00:00Z".into(),
        software_version: "9.9.9".into(),
        uptime_s: 12.5,
        clock: wire::ClockV1 {
            synced: true,
            est_error_ms: Some(0.004),
            source: "chrony".into(),
        },
        noise_floor_dbfs: Some(-61.5),
        disk_free_bytes: 5_000_000_000,
        buffer_s: 3600.0,
        queue_reports: 2,
        queue_bytes: 900,
        input_overruns: 0,
        settings_version: settings_version.into(),
    }
}

/// A configuration with one sensor, `S1`, signing with `key`.
fn one_sensor(dir: &std::path::Path, key: &[u8]) -> ServerConfig {
    let mut config = ServerConfig::new(dir.join("s.db"));
    config.sensors.push(server::config::SensorConfig {
        id: "S1".into(),
        key: hex::encode(key),
        lat: 40.0,
        lon: -80.0,
        alt_m: 10.0,
    });
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_are_kept_and_answered_with_signed_settings() {
    let dir = tempfile::tempdir().unwrap();
    let key = vec![9u8; 32];
    let mut config = one_sensor(dir.path(), &key);
    config.agent = wire::AgentSettingsV1 {
        heartbeat_s: Some(30.0),
        suppress_speech: Some(true),
        ..Default::default()
    };
    let version = config.agent.version();
    let running = server::start(config).await.unwrap();
    common::authorize(&running).await;
    let base = format!("http://{}", running.addr);
    let client = reqwest::Client::new();
    let send = |b: &wire::HeartbeatV1, key: &[u8]| {
        replay::post_signed(
            &client,
            &format!("{base}/v1/heartbeats"),
            key,
            "S1",
            serde_json::to_string(b).unwrap(),
        )
        .send()
    };
    // An old settings version: the answer carries the settings, signed with
    // the sensor's key.
    let r = send(&beat("S1", ""), &key).await.unwrap();
    assert_eq!(r.status(), 200);
    let ts: i64 = r.headers()["x-shotfix-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let signature = r.headers()["x-shotfix-signature"]
        .to_str()
        .unwrap()
        .to_string();
    let body = r.bytes().await.unwrap();
    assert!(wire::verify(&key, ts, &body, &signature));
    assert!(!wire::verify(&[1u8; 32], ts, &body, &signature));
    let reply: wire::HeartbeatReplyV1 = serde_json::from_slice(&body).unwrap();
    assert_eq!(reply.settings_version, version);
    assert_eq!(reply.settings.unwrap().suppress_speech, Some(true));
    // The current version: nothing to push.
    let r = send(&beat("S1", &version), &key).await.unwrap();
    let reply: wire::HeartbeatReplyV1 = r.json().await.unwrap();
    assert_eq!(reply.settings, None);
    // A forged heartbeat and one that lies about its sensor are refused.
    assert_eq!(
        send(&beat("S1", ""), &[1u8; 32]).await.unwrap().status(),
        401
    );
    assert_eq!(send(&beat("S2", ""), &key).await.unwrap().status(), 422);
    let mut bad = beat("S1", "");
    bad.uptime_s = -1.0;
    assert_eq!(send(&bad, &key).await.unwrap().status(), 422);
    // The sensors list shows the latest heartbeat.
    let sensors: Value = common::get(format!("{base}/v1/sensors")).await;
    let s1 = &sensors["sensors"][0];
    assert_eq!(s1["heartbeat"]["software_version"], "9.9.9");
    assert_eq!(s1["heartbeat"]["noise_floor_dbfs"], -61.5);
    assert!(s1["heartbeat_received_utc"].is_string());
    running.stop().await;
}

/// Replays a live-fire test with every report saying `clock`; the incidents
/// the server makes of it and the stored pulses.
async fn replay_with_clock(clock: wire::ClockV1) -> (Value, Value, usize) {
    let dir = tempfile::tempdir().unwrap();
    let test = common::pittsburgh().join("FP1/test_004");
    let input = replay::read(&test, Some(common::ORIGIN)).unwrap();
    let config = replay::server_config(&input, dir.path().join("s.db"));
    let keys = replay::keys(&config);
    let running = server::start(config).await.unwrap();
    common::authorize(&running).await;
    let base = format!("http://{}", running.addr);
    let client = reqwest::Client::new();
    let mut sent = 0;
    for (_, mut report) in replay::reports(&input) {
        report.clock = Some(clock.clone());
        sent += report.pulses.len();
        let r = replay::post_signed(
            &client,
            &format!("{base}/v1/reports"),
            &keys[&report.sensor],
            &report.sensor.clone(),
            serde_json::to_string(&report).unwrap(),
        )
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), 202);
    }
    let incidents = common::settled(&base, Duration::from_secs(12)).await;
    let pulses = common::get(format!("{base}/v1/pulses?limit=100000")).await;
    running.stop().await;
    (incidents, pulses, sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulses_timed_by_a_bad_clock_are_kept_but_not_located() {
    let good = wire::ClockV1 {
        synced: true,
        est_error_ms: Some(0.05),
        source: "chrony".into(),
    };
    let (incidents, pulses, sent) = replay_with_clock(good).await;
    assert!(!incidents["incidents"].as_array().unwrap().is_empty());
    assert_eq!(pulses["pulses"].as_array().unwrap().len(), sent);
    for bad in [
        wire::ClockV1 {
            synced: false,
            est_error_ms: None,
            source: "adjtimex".into(),
        },
        wire::ClockV1 {
            synced: true,
            est_error_ms: Some(5.0),
            source: "chrony".into(),
        },
    ] {
        let (incidents, pulses, sent) = replay_with_clock(bad.clone()).await;
        assert_eq!(incidents["incidents"], serde_json::json!([]), "{bad:?}");
        let pulses = pulses["pulses"].as_array().unwrap();
        assert_eq!(pulses.len(), sent, "every pulse is kept");
        assert!(pulses
            .iter()
            .all(|p| p["features"]["clock"]["excluded"] == true));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clip_requests_ask_only_for_recorded_audio_within_a_daily_budget() {
    let dir = tempfile::tempdir().unwrap();
    let key = vec![5u8; 32];
    let config = one_sensor(dir.path(), &key);
    let running = server::start(config).await.unwrap();
    let token = common::authorize(&running).await;
    let base = format!("http://{}", running.addr);
    let client = reqwest::Client::new();
    let ask = |from: model::UtcNanos, seconds: f64| {
        client
            .post(format!("{base}/v1/sensors/S1/clip-requests"))
            .bearer_auth(&token)
            .json(&serde_json::json!({
                "from_utc": from.to_rfc3339(), "seconds": seconds, "reason": "case 7"
            }))
            .send()
    };
    let now = model::UtcNanos(server::now_ns());
    // The future is never asked for: that would be listening live.
    let future = ask(now.offset_by_seconds(3600.0), 10.0).await.unwrap();
    assert_eq!(future.status(), 400);
    assert!(future.text().await.unwrap().contains("already recorded"));
    // An absurd time is refused, not a crash.
    let far = ask(model::UtcNanos(i64::MAX - 1), 30.0).await.unwrap();
    assert_eq!(far.status(), 400);
    // Twenty 30 s stretches a day, then no more.
    for k in 0..20 {
        let r = ask(now.offset_by_seconds(-3600.0 + 60.0 * f64::from(k)), 30.0)
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "request {k}");
    }
    let over = ask(now.offset_by_seconds(-60.0), 1.0).await.unwrap();
    assert_eq!(over.status(), 400);
    assert!(over.text().await.unwrap().contains("a day"));
    // The sensor is handed four at a time, oldest first.
    let beat = beat("S1", "");
    let r = replay::post_signed(
        &client,
        &format!("{base}/v1/heartbeats"),
        &key,
        "S1",
        serde_json::to_string(&beat).unwrap(),
    )
    .send()
    .await
    .unwrap();
    let reply: wire::HeartbeatReplyV1 = r.json().await.unwrap();
    assert_eq!(reply.clip_requests.len(), 4);
    // A sender that is not a registered sensor is refused before the server
    // reads an upload's body (up to 16 MiB): by the header check, which names
    // the header, not by the signature check after the read.
    let stranger = client
        .post(format!("{base}/v1/clip-uploads"))
        .header("x-shotfix-sensor", "S9")
        .header("x-shotfix-timestamp", "0")
        .header("x-shotfix-signature", "00")
        .body(vec![b' '; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), 401);
    let why = stranger.text().await.unwrap();
    assert!(why.contains("must name a registered sensor"), "{why}");
    running.stop().await;
}
