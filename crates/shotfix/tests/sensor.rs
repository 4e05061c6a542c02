//! The sensor agent end to end (issue 8), as separate processes talking to a
//! real `shotfix serve` over HTTP.
//!
//! 1. `six_agents_replaying_fp1_give_analyzes_incidents`: one agent per
//!    recording of a Pittsburgh FP1 live-fire test, each playing its WAV in
//!    real time: the server's incidents are `shotfix analyze`'s on the same
//!    folder (shots, times, positions, rounds). FP1 test_001 by default; all 18
//!    FP1 tests with `SHOTFIX_SLOW=1`.
//! 2. `a_network_cut_loses_and_duplicates_nothing`: the same, through a proxy
//!    that cuts the network 2 s into the replay (20 s by default, 5 minutes with
//!    `SHOTFIX_SLOW=1`); one agent is killed (SIGKILL) during the cut and
//!    restarted with `--drain`. Every pulse the detector finds arrives once.
//! 3. `bad_configs_unreachable_servers_and_full_disks_are_said_plainly`.
//! 4. `a_real_full_disk_evicts_the_oldest_audio_and_keeps_every_report`
//!    (ignored: it mounts a 2 MB tmpfs, which needs root; run with
//!    `--ignored`): the agent fills a real file system with its audio buffer.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use server::config::ServerConfig;

mod common;
use common::{free_port, ok, pittsburgh_test, s, Proc};

const ORIGIN: &str = "40.4406,-79.9959,250";

fn slow() -> bool {
    std::env::var_os("SHOTFIX_SLOW").is_some()
}

fn shotfix(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shotfix"))
        .args(args)
        .output()
        .expect("run shotfix")
}

/// A server for one live-fire test's sensors, its URL, a reader's token,
/// and each sensor's key (hex).
struct Server {
    _proc: Proc,
    base: String,
    token: String,
    keys: std::collections::HashMap<String, String>,
}

async fn server_for(test: &Path, dir: &Path) -> Server {
    server_with(test, dir, None).await
}

/// [`server_for`], also subscribed to an MQTT broker (URL, topic filter).
async fn server_with(test: &Path, dir: &Path, mqtt: Option<(&str, &str)>) -> Server {
    let config_path = dir.join("server.toml");
    ok(
        &shotfix(&[
            "replay",
            s(test),
            "--write-config",
            s(&config_path),
            "--db",
            s(&dir.join("s.db")),
            "--origin",
            ORIGIN,
        ]),
        "replay --write-config",
    );
    let port = free_port();
    // The sensors stand where their recordings' metadata puts them (what
    // `analyze` uses): the pulse reports' own positions differ by metres.
    let audio = formats::read_analyze_input(test).unwrap();
    let origin = model::Geodetic {
        lat_deg: 40.4406,
        lon_deg: -79.9959,
        alt_m: 250.0,
    };
    let frame = model::LocalFrame::new(origin);
    let mut config: toml::Table = std::fs::read_to_string(&config_path)
        .unwrap()
        .parse()
        .unwrap();
    config.insert("listen".into(), format!("127.0.0.1:{port}").into());
    if let Some((url, topic)) = mqtt {
        let mut m = toml::Table::new();
        m.insert("url".into(), url.into());
        m.insert("topic".into(), topic.into());
        m.insert("client_id".into(), format!("sensor-test-{port}").into());
        config.insert("mqtt".into(), m.into());
        // Settings for the sensors to take from their heartbeats' answers.
        let mut a = toml::Table::new();
        a.insert("suppress_speech".into(), true.into());
        a.insert("clip_post_s".into(), 0.5.into());
        config.insert("agent".into(), a.into());
    }
    let sensors = config["sensors"].as_array_mut().unwrap();
    for a in &audio.sensors {
        // A recording sensor that reported no pulse is registered too.
        if !sensors
            .iter()
            .any(|s| s["id"].as_str() == Some(a.id.0.as_str()))
        {
            let mut t = toml::Table::new();
            t.insert("id".into(), a.id.0.clone().into());
            t.insert("key".into(), "ab".repeat(32).into());
            sensors.push(t.into());
        }
    }
    for sensor in sensors.iter_mut() {
        let id = sensor["id"].as_str().unwrap().to_string();
        if let Some(a) = audio.sensors.iter().find(|a| a.id.0 == id) {
            let g = frame.to_geodetic(a.position);
            let t = sensor.as_table_mut().unwrap();
            t.insert("lat".into(), g.lat_deg.into());
            t.insert("lon".into(), g.lon_deg.into());
            t.insert("alt_m".into(), g.alt_m.into());
        }
    }
    std::fs::write(&config_path, toml::to_string(&config).unwrap()).unwrap();
    let config = ServerConfig::from_toml(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    let keys = config
        .sensors
        .iter()
        .map(|s| (s.id.clone(), s.key.clone()))
        .collect();
    let token = ok(
        &shotfix(&[
            "token",
            "add",
            "sensor-test",
            "--role",
            "investigator",
            "--config",
            s(&config_path),
        ]),
        "token add",
    )
    .trim()
    .to_string();
    let log = std::fs::File::create(dir.join("serve.log")).unwrap();
    let proc = Proc(
        Command::new(env!("CARGO_BIN_EXE_shotfix"))
            .args(["serve", "--config", s(&config_path)])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{base}/v1/health")).await.is_err() {
        assert!(Instant::now() < deadline, "server did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Server {
        _proc: proc,
        base,
        token,
        keys,
    }
}

/// The research-layout recordings of a test: (sensor, WAV path).
fn recordings(test: &Path) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(test)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_str().unwrap().to_string();
            let sensor = name.split(".audio.").nth(1).unwrap().to_string();
            (sensor, p)
        })
        .collect();
    out.sort();
    out
}

/// An agent's configuration file.
fn agent_config(
    dir: &Path,
    sensor: &str,
    key: &str,
    url: &str,
    input: &str,
    extra: &str,
) -> PathBuf {
    agent_config_mqtt(dir, sensor, key, url, "", input, extra)
}

/// [`agent_config`] with more `[server]` lines (`mqtt = …`).
fn agent_config_mqtt(
    dir: &Path,
    sensor: &str,
    key: &str,
    url: &str,
    server_lines: &str,
    input: &str,
    extra: &str,
) -> PathBuf {
    let state = dir.join("agents").join(sensor);
    std::fs::create_dir_all(&state).unwrap();
    let path = state.join("sensor.toml");
    std::fs::write(
        &path,
        format!(
            "sensor = \"{sensor}\"\nkey_hex = \"{key}\"\nstate_dir = \"{}\"\n\n[server]\nurl = \"{url}\"\ntimeout_s = 2\n{server_lines}\n\n[input]\n{input}\n\n[clock]\nsource = \"recording\"\n\n[heartbeat]\ninterval_s = 1\n{extra}\n",
            state.display()
        ),
    )
    .unwrap();
    path
}

fn spawn_agent(config: &Path, args: &[&str]) -> Proc {
    let log = std::fs::File::create(config.with_extension("log")).unwrap();
    let mut all = vec!["sensor", "--config", s(config)];
    all.extend_from_slice(args);
    Proc(
        Command::new(env!("CARGO_BIN_EXE_shotfix"))
            .args(&all)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

/// Reports waiting in an agent's queue (its state folder's `queue/`).
fn queued_reports(state: &Path) -> usize {
    std::fs::read_dir(state.join("queue"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "json")
        })
        .count()
}

/// Waits for an agent to exit; its status and log.
async fn finish(
    mut agent: Proc,
    config: &Path,
    within: Duration,
) -> (std::process::ExitStatus, String) {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = agent.0.try_wait().unwrap() {
            let log = std::fs::read_to_string(config.with_extension("log")).unwrap_or_default();
            return (status, log);
        }
        assert!(
            Instant::now() < deadline,
            "agent {} did not finish: {}",
            config.display(),
            std::fs::read_to_string(config.with_extension("log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn get(server: &Server, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{}{path}", server.base))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Every stored pulse as (sensor, t_utc), in the server's order.
async fn stored_pulses(server: &Server) -> Vec<(String, String)> {
    get(server, "/v1/pulses?limit=100000").await["pulses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["sensor"].as_str().unwrap().to_string(),
                p["t_utc"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// (t_utc, x, y, rounds of its incident) of every shot, in time order.
fn shots(incidents: &Value) -> Vec<(String, f64, f64, u64)> {
    let mut out: Vec<_> = incidents
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| {
            let rounds = i["rounds"].as_u64().unwrap();
            i["shots"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |s| {
                    (
                        s["t_utc"].as_str().unwrap().to_string(),
                        s["x"].as_f64().unwrap(),
                        s["y"].as_f64().unwrap(),
                        rounds,
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn seconds(t: &str) -> f64 {
    model::UtcNanos::parse_rfc3339(t).unwrap().0 as f64 / 1e9
}

/// Replays one test through six agents and compares with `analyze`: the
/// number of shots that agree, and the number analyze found.
async fn agents_against_analyze(n: usize) -> (usize, usize, Vec<String>) {
    let test = pittsburgh_test("FP1", n);
    let dir = tempfile::tempdir().unwrap();
    let server = server_for(&test, dir.path()).await;
    let mut agents = Vec::new();
    for (sensor, wav) in recordings(&test) {
        let key = server
            .keys
            .get(&sensor)
            .expect("the sensor is registered")
            .clone();
        let config = agent_config(
            dir.path(),
            &sensor,
            &key,
            &server.base,
            &format!("kind = \"wav\"\npath = \"{}\"\nspeed = 1.0", wav.display()),
            "",
        );
        agents.push((spawn_agent(&config, &[]), config));
    }
    // Most FP1 tests have six recordings; a few have fewer.
    assert!(
        agents.len() >= 4,
        "FP1 test {n}: {} recordings",
        agents.len()
    );
    for (agent, config) in agents {
        let (status, log) = finish(agent, &config, Duration::from_secs(60)).await;
        assert!(status.success(), "{}: {log}", config.display());
    }
    // Event time moves on while idle: the shots become final.
    tokio::time::sleep(Duration::from_secs(14)).await;
    let served = get(&server, "/v1/incidents").await;
    let analyzed: Value =
        serde_json::from_str(&ok(&shotfix(&["analyze", s(&test), "--json"]), "analyze")).unwrap();
    let (a, b) = (shots(&analyzed["incidents"]), shots(&served["incidents"]));
    let mut notes = Vec::new();
    let mut agree = 0;
    for shot in &a {
        let found = b
            .iter()
            .find(|o| (seconds(&o.0) - seconds(&shot.0)).abs() < 1e-3);
        match found {
            Some(o) if (o.1 - shot.1).hypot(o.2 - shot.2) < 0.5 && o.3 == shot.3 => agree += 1,
            other => notes.push(format!("test {n}: analyze {shot:?}, server {other:?}")),
        }
    }
    if std::env::var_os("SHOTFIX_DEBUG").is_some() {
        eprintln!("server shots {b:?}");
    }
    if b.len() != a.len() {
        notes.push(format!(
            "test {n}: analyze {} shots, server {}",
            a.len(),
            b.len()
        ));
    }
    // Every pulse the detector finds in the recordings was stored, once.
    let stored = stored_pulses(&server).await;
    let want = detected(&test);
    if stored.len() != want.len() || stored.iter().cloned().collect::<BTreeSet<_>>() != want {
        notes.push(format!(
            "test {n}: {} pulses stored, {} detected by `shotfix pulses`",
            stored.len(),
            want.len()
        ));
    }
    // Heartbeats arrived, and the sensors page shows them.
    let sensors = get(&server, "/v1/sensors").await;
    let beating = sensors["sensors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["heartbeat"]["software_version"].is_string())
        .count();
    assert_eq!(beating, recordings(&test).len(), "{sensors:#}");
    eprintln!(
        "FP1 test {n}: {} recordings, {} pulses",
        recordings(&test).len(),
        want.len()
    );
    (agree, a.len(), notes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_agents_replaying_fp1_give_analyzes_incidents() {
    let tests: Vec<usize> = if slow() { (1..=18).collect() } else { vec![1] };
    let (mut agree, mut total, mut notes) = (0, 0, Vec::new());
    for n in tests {
        let (a, t, mut why) = agents_against_analyze(n).await;
        eprintln!("FP1 test {n}: {a} of {t} shots as analyze gives them");
        agree += a;
        total += t;
        notes.append(&mut why);
    }
    eprintln!("all: {agree} of {total} shots agree");
    assert!(total > 0);
    assert_eq!(agree, total, "{notes:#?}");
    assert!(notes.is_empty(), "{notes:#?}");
}

/// A TCP proxy whose network can be cut: while cut, every open connection is
/// dropped and new ones are closed at once.
struct Proxy {
    port: u16,
    cut: tokio::sync::watch::Sender<bool>,
}

async fn proxy(to: u16) -> Proxy {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (cut, watch) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                continue;
            };
            if *watch.borrow() {
                drop(inbound);
                continue;
            }
            let mut watch = watch.clone();
            tokio::spawn(async move {
                let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", to)).await
                else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    _ = watch.wait_for(|&c| c) => {}
                }
            });
        }
    });
    Proxy { port, cut }
}

/// Every pulse the detector finds in a test's recordings: (sensor, t_utc).
fn detected(test: &Path) -> BTreeSet<(String, String)> {
    let v: Value =
        serde_json::from_str(&ok(&shotfix(&["pulses", s(test), "--json"]), "pulses")).unwrap();
    v["sensors"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            let sensor = s["sensor"].as_str().unwrap().to_string();
            s["pulses"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |p| (sensor.clone(), p["t_utc"].as_str().unwrap().to_string()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_cut_loses_and_duplicates_nothing() {
    let cut_s = if slow() { 300.0 } else { 20.0 };
    let test = pittsburgh_test("FP1", 2);
    let dir = tempfile::tempdir().unwrap();
    let server = server_for(&test, dir.path()).await;
    let server_port: u16 = server.base.rsplit(':').next().unwrap().parse().unwrap();
    let proxy = Arc::new(proxy(server_port).await);
    let url = format!("http://127.0.0.1:{}", proxy.port);
    let mut agents = Vec::new();
    for (sensor, wav) in recordings(&test) {
        let key = server.keys.get(&sensor).unwrap().clone();
        let config = agent_config(
            dir.path(),
            &sensor,
            &key,
            &url,
            &format!("kind = \"wav\"\npath = \"{}\"\nspeed = 1.0", wav.display()),
            "",
        );
        agents.push((spawn_agent(&config, &[]), config));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.cut.send_replace(true);
    let cut_at = Instant::now();
    // The replay ends during the cut; one sensor "reboots" with its reports
    // still queued: killed, then started again to send what it holds.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let (mut killed, killed_config) = agents.remove(0);
    killed.0.kill().unwrap();
    killed.0.wait().unwrap();
    let queued = queued_reports(killed_config.parent().unwrap());
    assert!(queued > 0, "the killed agent had reports queued on disk");
    let log = std::fs::read_to_string(killed_config.with_extension("log")).unwrap();
    assert!(log.contains("cannot deliver reports"), "{log}");
    let rest = Duration::from_secs_f64(cut_s).saturating_sub(cut_at.elapsed());
    tokio::time::sleep(rest).await;
    proxy.cut.send_replace(false);
    let restarted = spawn_agent(&killed_config, &["--drain"]);
    agents.push((restarted, killed_config));
    for (agent, config) in agents {
        let (status, log) = finish(agent, &config, Duration::from_secs(90)).await;
        assert!(status.success(), "{}: {log}", config.display());
        assert!(
            log.contains("server reachable again") || log.contains("queued from before"),
            "{log}"
        );
    }
    let want = detected(&test);
    let stored = stored_pulses(&server).await;
    let unique: BTreeSet<(String, String)> = stored.iter().cloned().collect();
    assert_eq!(unique.len(), stored.len(), "a pulse stored twice");
    assert_eq!(unique, want, "every detected pulse arrives");
    eprintln!(
        "network cut {cut_s:.0} s: {} pulses detected, {} stored, none twice",
        want.len(),
        stored.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_report_through_an_mqtt_broker_and_take_pushed_settings() {
    let broker =
        std::env::var("SHOTFIX_MQTT_URL").unwrap_or_else(|_| "mqtt://127.0.0.1:1883".into());
    let test = pittsburgh_test("FP1", 5);
    let dir = tempfile::tempdir().unwrap();
    let topic = format!("sensor-test-{}/shotfix/v1/reports/+", free_port());
    let server = server_with(&test, dir.path(), Some((&broker, &topic))).await;
    let mut agents = Vec::new();
    for (sensor, wav) in recordings(&test) {
        let key = server.keys.get(&sensor).unwrap().clone();
        let config = agent_config_mqtt(
            dir.path(),
            &sensor,
            &key,
            &server.base,
            &format!("mqtt = \"{broker}\"\nmqtt_topic = \"{topic}\""),
            &format!("kind = \"wav\"\npath = \"{}\"\nspeed = 4.0", wav.display()),
            "",
        );
        agents.push((spawn_agent(&config, &[]), config));
    }
    for (agent, config) in agents {
        let (status, log) = finish(agent, &config, Duration::from_secs(60)).await;
        assert!(status.success(), "{}: {log}", config.display());
        // The server's settings were pushed, taken and kept for a restart.
        assert!(log.contains("the server pushed settings"), "{log}");
        let kept: server::wire::AgentSettingsV1 = serde_json::from_str(
            &std::fs::read_to_string(config.parent().unwrap().join("settings.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(kept.suppress_speech, Some(true));
        assert_eq!(kept.clip_post_s, Some(0.5));
    }
    let want = detected(&test);
    // The server takes reports off the broker asynchronously.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got: BTreeSet<(String, String)> = stored_pulses(&server).await.into_iter().collect();
        if got == want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} pulses arrived over MQTT",
            got.len(),
            want.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configs_unreachable_servers_and_full_disks_are_said_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let wav = recordings(&pittsburgh_test("FP1", 3)).remove(0).1;
    let key = "00112233445566778899aabbccddeeff";
    // A bad configuration: exit 2 (the unit does not restart), one line.
    for (extra, says) in [
        ("[clips]\npre_s = 1.0\npost_s = 3.5", "privacy"),
        ("[buffer]\nhourz = 3", "unknown field"),
        ("[detector]\ntrigger_db = 1", "detector.trigger_db"),
    ] {
        let config = agent_config(
            dir.path(),
            "BAD",
            key,
            "http://127.0.0.1:9",
            "kind = \"wav\"\npath = \"x.wav\"",
            extra,
        );
        let out = shotfix(&["sensor", "--config", s(&config), "--check"]);
        assert_eq!(out.status.code(), Some(2), "{extra}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(says), "{err}");
    }
    let missing = shotfix(&["sensor", "--config", "/nonexistent/sensor.toml"]);
    assert_eq!(missing.status.code(), Some(2));
    let no_file = agent_config(
        dir.path(),
        "NOFILE",
        key,
        "http://127.0.0.1:9",
        "kind = \"wav\"\npath = \"/nonexistent.wav\"",
        "",
    );
    let out = shotfix(&["sensor", "--config", s(&no_file)]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // An unreachable server and a disk under its reserve: the agent says so,
    // keeps its reports, keeps running, and deletes the oldest audio first.
    let closed = free_port();
    let config = agent_config(
        dir.path(),
        "LONELY",
        key,
        &format!("http://127.0.0.1:{closed}"),
        &format!("kind = \"wav\"\npath = \"{}\"\nspeed = 5.0", wav.display()),
        "[buffer]\nsegment_s = 1\nmin_free_mb = 1e7\n",
    );
    let agent = spawn_agent(&config, &[]);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut agent = agent;
    assert!(
        agent.0.try_wait().unwrap().is_none(),
        "still running: no crash, no exit"
    );
    // SIGTERM: a clean stop, reports left on disk.
    Command::new("kill")
        .args(["-TERM", &agent.0.id().to_string()])
        .status()
        .unwrap();
    let (status, log) = finish(agent, &config, Duration::from_secs(10)).await;
    assert!(status.success(), "{log}");
    assert!(log.contains("cannot deliver reports"), "{log}");
    assert!(log.contains("reserve"), "{log}");
    assert!(log.contains("SIGTERM"), "{log}");
    let state = config.parent().unwrap();
    let queued = queued_reports(state);
    assert!(queued > 0, "{log}");
    let audio = agent::buffer::segments(&state.join("audio"));
    assert!(audio.is_empty(), "the disk's reserve is kept: {audio:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "mounts a tmpfs (needs root): cargo test --test sensor -- --ignored"]
async fn a_real_full_disk_evicts_the_oldest_audio_and_keeps_every_report() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk");
    std::fs::create_dir_all(&disk).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs", s(&disk)])
        .status()
        .unwrap();
    assert!(mounted.success(), "mount a 2 MB tmpfs");
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(disk.clone());
    // 60 s at 48 kHz (5.8 MB as the buffer keeps it): three times the disk.
    let rate = 48_000u32;
    let mut seed = 7u32;
    let samples: Vec<f32> = (0..60 * rate)
        .map(|n| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
            let since = (n % (2 * rate)) as f32 / rate as f32 - 1.0;
            let burst = if (0.0..0.05).contains(&since) {
                0.8 * noise.signum() * (-since / 0.003).exp()
            } else {
                0.0
            };
            0.002 * noise + burst
        })
        .collect();
    let wav = dir.path().join("street.wav");
    std::fs::write(&wav, agent::clip::wav_bytes(&samples, rate)).unwrap();
    let test = pittsburgh_test("FP1", 6);
    let server = server_for(&test, dir.path()).await;
    let key = server.keys.values().next().unwrap().clone();
    let sensor = server
        .keys
        .iter()
        .find(|(_, k)| **k == key)
        .unwrap()
        .0
        .clone();
    let state = disk.join("state");
    let config = dir.path().join("full.toml");
    std::fs::write(
        &config,
        format!(
            "sensor = \"{sensor}\"\nkey_hex = \"{key}\"\nstate_dir = \"{}\"\n\n[server]\nurl = \"{}\"\n\n[input]\nkind = \"wav\"\npath = \"{}\"\nstart_utc = \"2026-11-22T02:00:00Z\"\nspeed = 0\n\n[clock]\nsource = \"recording\"\n\n[buffer]\nsegment_s = 5\nmin_free_mb = 0\n",
            state.display(),
            server.base,
            wav.display()
        ),
    )
    .unwrap();
    let agent = spawn_agent(&config, &[]);
    let (status, log) = finish(agent, &config, Duration::from_secs(60)).await;
    assert!(status.success(), "{log}");
    assert!(log.contains("disk nearly full"), "{log}");
    // The newest audio is what is left, in whole segments, up to the end.
    let kept = agent::buffer::segments(&state.join("audio"));
    assert!(!kept.is_empty() && kept.len() < 12, "{kept:?}");
    let start = model::UtcNanos::parse_rfc3339("2026-11-22T02:00:00Z").unwrap();
    let first_kept = kept[0].start.seconds_since(start);
    assert!(first_kept >= 20.0, "the oldest audio went first: {kept:?}");
    for pair in kept.windows(2) {
        assert!(
            (pair[1].start.seconds_since(pair[0].start) - 5.0).abs() < 1e-3,
            "{kept:?}"
        );
    }
    // Every burst's first arrival reached the server.
    let stored = get(&server, &format!("/v1/pulses?limit=100000&sensor={sensor}")).await;
    let firsts = stored["pulses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["features"]["rank"] == 0)
        .count();
    assert_eq!(firsts, 30, "{log}");
    eprintln!(
        "2 MB disk: {} segments kept from {first_kept:.0} s of 60 s; 30 of 30 bursts reported",
        kept.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_investigator_gets_a_stretch_of_a_sensors_buffered_audio() {
    let test = pittsburgh_test("FP1", 7);
    let dir = tempfile::tempdir().unwrap();
    let server = server_for(&test, dir.path()).await;
    let (sensor, wav) = recordings(&test).remove(0);
    let key = server.keys.get(&sensor).unwrap().clone();
    let config = agent_config(
        dir.path(),
        &sensor,
        &key,
        &server.base,
        &format!("kind = \"wav\"\npath = \"{}\"\nspeed = 1.0", wav.display()),
        "[buffer]\nsegment_s = 1\n",
    );
    let agent = spawn_agent(&config, &[]);
    let source = formats::read_wav(&wav).unwrap();
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(wav.with_extension("json")).unwrap())
            .unwrap();
    let start = model::UtcNanos::parse_rfc3339(meta["timestamp"].as_str().unwrap()).unwrap();
    let client = reqwest::Client::new();
    let ask = |from: model::UtcNanos, seconds: f64| {
        client
            .post(format!("{}/v1/sensors/{sensor}/clip-requests", server.base))
            .bearer_auth(&server.token)
            .json(&serde_json::json!({
                "from_utc": from.to_rfc3339(), "seconds": seconds,
                "reason": "case 26-1234: the second before the first round"
            }))
            .send()
    };
    let too_long = ask(start, 31.0).await.unwrap();
    assert_eq!(too_long.status(), 400);
    let asked: Value = ask(start.offset_by_seconds(0.5), 2.0)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = asked["id"].as_str().unwrap().to_string();
    let absent: Value = ask(start.offset_by_seconds(-3600.0), 2.0)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let absent = absent["id"].as_str().unwrap().to_string();
    let (status, log) = finish(agent, &config, Duration::from_secs(60)).await;
    assert!(status.success(), "{log}");
    let state = get(&server, &format!("/v1/clip-requests/{id}")).await;
    assert_eq!(state["status"], "answered", "{state:#}\n{log}");
    assert!(state["requested_by"]
        .as_str()
        .unwrap()
        .contains("sensor-test"));
    let refused = get(&server, &format!("/v1/clip-requests/{absent}")).await;
    assert_eq!(refused["status"], "refused", "{refused:#}");
    assert!(refused["error"]
        .as_str()
        .unwrap()
        .contains("not in the audio buffer"));
    let bytes = reqwest::Client::new()
        .get(format!("{}/v1/clip-requests/{id}/wav", server.base))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let got = formats::parse_wav_bytes(Path::new("clip.wav"), &bytes).unwrap();
    let rate = source.sample_rate_hz as usize;
    assert_eq!(got.sample_rate_hz, source.sample_rate_hz);
    assert_eq!(got.samples.len(), 2 * rate);
    // The sensor's own audio, sample for sample (16-bit in, 16-bit kept).
    let want = &source.samples[rate / 2..rate / 2 + 2 * rate];
    let worst = got
        .samples
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst <= 1.0 / 32_768.0, "{worst}");
    // Audio needs a caller with the audio permission.
    let anonymous = reqwest::get(format!("{}/v1/clip-requests/{id}/wav", server.base))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}
