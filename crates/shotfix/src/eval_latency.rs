//! `shotfix eval latency`: how long from the last pulse a location needs to the
//! alert, on the SSE feed and at a webhook receiver, while a simulated city of
//! sensors keeps the server busy.
//!
//! The scenario is simulated to pulse reports; a server runs in this process on
//! a fresh SQLite database, with a webhook receiver beside it; every sensor's
//! reports are sent over HTTP, signed, at their real times (many in flight at
//! once, as from a city of independent sensors). For every first alert of an
//! incident, the pulses of its shots are looked up in the send log: the location
//! it carries could be made no earlier than the moment the last of the arrivals
//! it was made from was sent (the "last pulse needed"), so the alert's latency
//! is measured from the earliest such moment over its shots to the alert's
//! receipt. A second figure starts at the shot's `min_sensors`-th arrival, the
//! soonest any location is possible: it also holds the wait for more sensors
//! while the first few are not conclusive. That counts everything after the sensor let the
//! pulse go: HTTP, authentication, the group commit, association, locating, the
//! incident store and the delivery itself.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::Value;
use server::config::WebhookConfig;
use server::replay;

/// Reports in flight at once, at most: a city's sensors send independently; the
/// cap only keeps the benchmark's own socket count sane.
const IN_FLIGHT: usize = 512;

/// Quiet time after the last report for the last alerts and deliveries, s.
const DRAIN_S: u64 = 5;

#[derive(Debug, Default, serde::Serialize)]
pub struct LatencyReport {
    pub scenario: String,
    pub sensors: usize,
    /// Wall time the sensors took to send everything, s.
    pub duration_s: f64,
    pub reports: usize,
    pub pulses: usize,
    pub pulses_per_s: f64,
    pub refused_reports: usize,
    /// Largest delay of a send behind its real time, s (the load generator keeping up).
    pub worst_send_lag_s: f64,
    pub alerts: usize,
    /// From the last pulse the alerted location used.
    pub sse: Percentiles,
    pub webhook: Percentiles,
    /// From the `min_sensors`-th arrival of the alerted shot (also holds the
    /// wait for further sensors while the first few are not conclusive).
    pub sse_from_min_sensors: Percentiles,
    pub webhook_from_min_sensors: Percentiles,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct Percentiles {
    pub count: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    fn of(mut ms: Vec<f64>) -> Percentiles {
        ms.sort_by(f64::total_cmp);
        let q = |p: f64| crate::eval::quantile(&ms, p);
        Percentiles {
            count: ms.len(),
            p50_ms: q(0.5),
            p90_ms: q(0.9),
            p99_ms: q(0.99),
            max_ms: ms.last().copied().unwrap_or(f64::NAN),
        }
    }
}

/// `path` is a scenario file (simulated first) or a scene folder already
/// simulated from one (`shotfix simulate`), to time several runs on one load.
pub fn run(path: &Path, json: bool) -> Result<()> {
    let dir = tempfile::tempdir().context("create a temporary directory")?;
    let scene_dir = if path.is_dir() {
        path.to_path_buf()
    } else {
        let scenario = crate::simulate_cmd::load_scenario(path)?;
        eprintln!("simulating {} ...", path.display());
        let scene = sim::simulate(&scenario).with_context(|| format!("{}", path.display()))?;
        let out = dir.path().join("scene");
        crate::simulate_cmd::write(&scene, &out)?;
        out
    };
    let input = replay::read(&scene_dir, None).map_err(anyhow::Error::msg)?;
    let name = scene_name(&scene_dir)?;
    let mut report = crate::serve_cmd::runtime()?.block_on(measure(input, dir.path()))?;
    report.scenario = name;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print(&report);
    }
    Ok(())
}

/// The scene's name, from its `scene.json`.
fn scene_name(dir: &Path) -> Result<String> {
    let path = dir.join("scene.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    let v: Value = serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
    Ok(v["name"].as_str().unwrap_or("scene").to_string())
}

fn print(r: &LatencyReport) {
    println!(
        "{}: {} sensors, {} pulses in {} reports over {:.0} s = {:.0} pulses/s ({} refused, send lag ≤ {:.3} s)",
        r.scenario, r.sensors, r.pulses, r.reports, r.duration_s, r.pulses_per_s, r.refused_reports, r.worst_send_lag_s
    );
    println!("{} first alerts", r.alerts);
    println!(
        "{:<10} {:>6} {:>9} {:>9} {:>9} {:>9}",
        "to", "alerts", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    let note = "from the last pulse the location used; * from the shot's min_sensors-th arrival";
    for (name, p) in [
        ("SSE", &r.sse),
        ("webhook", &r.webhook),
        ("SSE*", &r.sse_from_min_sensors),
        ("webhook*", &r.webhook_from_min_sensors),
    ] {
        println!(
            "{:<10} {:>6} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
            name, p.count, p.p50_ms, p.p90_ms, p.p99_ms, p.max_ms
        );
    }
    println!("({note})");
}

type Log = Arc<Mutex<Vec<(Instant, Value)>>>;

async fn measure(input: replay::ReplayInput, dir: &Path) -> Result<LatencyReport> {
    // The webhook receiver.
    let hooks: Log = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook_addr = listener.local_addr()?;
    let sink = hooks.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                let at = Instant::now();
                if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                    sink.lock().map(|mut l| l.push((at, v))).ok();
                }
                "ok"
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut config = replay::server_config(&input, dir.join("bench.db").as_path());
    config.listen = "127.0.0.1:0".parse()?;
    config.webhooks = vec![WebhookConfig {
        url: format!("http://{hook_addr}/hook"),
        secret: "latency-benchmark-secret".into(),
    }];
    let keys = replay::keys(&config);
    let sensors = config.sensors.len();
    let running = server::start(config).await?;
    let base = format!("http://{}", running.addr);

    // The SSE feed, as a role that sees each shot's arrivals (a dispatcher's
    // feed carries the same alerts at the same moment, without them), which
    // the latency is measured from.
    let feed: Log = Arc::default();
    let token = running
        .issue_token("eval-latency", server::access::Role::Investigator)
        .await?;
    let stream = reqwest::Client::new()
        .get(format!("{base}/v1/alerts/stream"))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?;
    let sink = feed.clone();
    tokio::spawn(async move {
        let mut stream = stream;
        let mut buffer = String::new();
        while let Ok(Some(chunk)) = stream.chunk().await {
            let at = Instant::now();
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let event: String = buffer.drain(..end + 2).collect();
                for line in event.lines() {
                    if let Some(data) = line.strip_prefix("data:") {
                        if let Ok(v) = serde_json::from_str::<Value>(data.trim()) {
                            sink.lock().map(|mut l| l.push((at, v))).ok();
                        }
                    }
                }
            }
        }
    });

    // The city of sensors.
    let reports = replay::reports(&input);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(IN_FLIGHT)
        .build()?;
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let permits = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let first = reports.first().map(|r| r.0);
    let start = Instant::now();
    let (mut pulses, mut worst_lag) = (0usize, 0.0f64);
    for (t, report) in &reports {
        let due = Duration::from_secs_f64(first.map_or(0.0, |f| t.seconds_since(f)).max(0.0));
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        let permit = permits.clone().acquire_owned().await?;
        worst_lag = worst_lag.max(start.elapsed().saturating_sub(due).as_secs_f64());
        let key = keys
            .get(&report.sensor)
            .with_context(|| format!("no key for sensor {}", report.sensor))?
            .clone();
        let body = serde_json::to_string(report)?;
        let now = Instant::now();
        if let Ok(mut log) = sent.lock() {
            for p in &report.pulses {
                log.insert(format!("{}/{}", report.sensor, p.id), now);
            }
        }
        pulses += report.pulses.len();
        let (client, url, sensor, refused) = (
            client.clone(),
            format!("{base}/v1/reports"),
            report.sensor.clone(),
            refused.clone(),
        );
        tokio::spawn(async move {
            let ok = replay::post_signed(&client, &url, &key, &sensor, body)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if !ok {
                refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            drop(permit);
        });
    }
    let _all = permits.acquire_many(IN_FLIGHT as u32).await?;
    // The load's own rate: pulses over the span of their send times.
    let span_s = match (reports.first(), reports.last()) {
        (Some(a), Some(b)) => b.0.seconds_since(a.0),
        _ => 0.0,
    };
    let elapsed = start.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(DRAIN_S)).await;
    running.stop().await;

    let sent = sent.lock().map(|l| l.clone()).unwrap_or_default();
    let min_sensors = locate::LocateConfig::default().min_sensors;
    let latencies = |log: &Log, at_least: Option<usize>| -> Vec<f64> {
        let log = log.lock().map(|l| l.clone()).unwrap_or_default();
        log.iter()
            .filter(|(_, v)| v["kind"] == "alert")
            .filter_map(|(at, v)| {
                let needed = needed_at(&v["incident"], &sent, at_least)?;
                Some(at.saturating_duration_since(needed).as_secs_f64() * 1e3)
            })
            .collect()
    };
    let (sse, webhook) = (latencies(&feed, None), latencies(&hooks, None));
    let (sse_min, webhook_min) = (
        latencies(&feed, Some(min_sensors)),
        latencies(&hooks, Some(min_sensors)),
    );
    let alerts = feed
        .lock()
        .map(|l| l.iter().filter(|(_, v)| v["kind"] == "alert").count())
        .unwrap_or(0);
    Ok(LatencyReport {
        scenario: String::new(),
        sensors,
        duration_s: elapsed,
        reports: reports.len(),
        pulses,
        pulses_per_s: pulses as f64 / span_s.max(1e-9),
        refused_reports: refused.load(std::sync::atomic::Ordering::Relaxed),
        worst_send_lag_s: worst_lag,
        alerts,
        sse: Percentiles::of(sse),
        webhook: Percentiles::of(webhook),
        sse_from_min_sensors: Percentiles::of(sse_min),
        webhook_from_min_sensors: Percentiles::of(webhook_min),
    })
}

/// When the alert's location could first have been made: per shot, the moment
/// the last of the arrivals it was located from was sent (the "last pulse
/// needed"); the earliest over the alert's shots. With `at_least` set, the
/// `at_least`-th arrival instead: the soonest any location is possible, so the
/// latency from it also holds the wait for more sensors than the minimum when
/// the first few arrivals are not yet conclusive.
fn needed_at(
    incident: &Value,
    sent: &HashMap<String, Instant>,
    at_least: Option<usize>,
) -> Option<Instant> {
    incident["shots"]
        .as_array()?
        .iter()
        .filter_map(|shot| {
            let mut times: Vec<Instant> = shot["arrivals"]
                .as_array()?
                .iter()
                .filter_map(|a| {
                    let pulse = a["pulse"].as_str()?;
                    sent.get(pulse).copied()
                })
                .collect();
            times.sort();
            match at_least {
                Some(k) => times.get(k.checked_sub(1)?).copied(),
                None => times.last().copied(),
            }
        })
        .min()
}
