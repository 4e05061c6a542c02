//! `shotfix eval ingest`: sustained ingest into SQLite, and a count that
//! nothing acknowledged was lost.
//!
//! A server runs in this process on a fresh SQLite file. Simulated sensors send
//! signed HTTP reports as fast as the server takes them, many in flight at once,
//! for a fixed time; every report the server acknowledged (202) is counted, and
//! at the end the database is opened and its pulse count compared with the
//! acknowledged pulses. The sensors stand 10 km apart, beyond twice the hearing
//! range, so association has nothing to pair and the figure is that of the
//! ingest path itself: HTTP, authentication, validation, the group commit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use server::config::{SensorConfig, ServerConfig};
use server::wire::{self, PulseV1, ReportV1};

#[derive(Debug, serde::Serialize)]
pub struct IngestReport {
    pub sensors: usize,
    pub pulses_per_report: usize,
    pub in_flight: usize,
    pub seconds: f64,
    pub reports_acknowledged: u64,
    pub pulses_acknowledged: u64,
    pub pulses_per_s: f64,
    pub reports_failed: u64,
    pub pulses_stored: i64,
    pub lost: i64,
}

pub fn run(
    seconds: f64,
    sensors: usize,
    pulses_per_report: usize,
    in_flight: usize,
    json: bool,
) -> Result<()> {
    if !(seconds.is_finite() && seconds > 0.0 && seconds <= 86_400.0) {
        anyhow::bail!("--seconds {seconds}: must be a number of seconds in (0, 86400]");
    }
    if sensors == 0 || pulses_per_report == 0 || in_flight == 0 {
        anyhow::bail!("--sensors, --pulses-per-report and --in-flight must each be at least 1");
    }
    let dir = tempfile::tempdir().context("create a temporary directory")?;
    let db = dir.path().join("ingest.db");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let mut report =
        runtime.block_on(measure(&db, seconds, sensors, pulses_per_report, in_flight))?;
    let stored = store::Db::open_sqlite(&db)?.pulse_count()?;
    report.pulses_stored = stored;
    report.lost = report.pulses_acknowledged as i64 - stored;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} sensors, {} pulses per report, {} in flight, {:.0} s: {} reports ({} pulses) acknowledged = {:.0} pulses/s; {} failed; {} pulses stored, {} lost",
            report.sensors,
            report.pulses_per_report,
            report.in_flight,
            report.seconds,
            report.reports_acknowledged,
            report.pulses_acknowledged,
            report.pulses_per_s,
            report.reports_failed,
            report.pulses_stored,
            report.lost
        );
    }
    if report.lost != 0 {
        anyhow::bail!(
            "{} acknowledged pulses are not in the database",
            report.lost
        );
    }
    Ok(())
}

async fn measure(
    db: &std::path::Path,
    seconds: f64,
    sensors: usize,
    pulses_per_report: usize,
    in_flight: usize,
) -> Result<IngestReport> {
    let mut config = ServerConfig::new(db.to_path_buf());
    config.listen = "127.0.0.1:0".parse()?;
    // Sensors on a 10 km grid around Pittsburgh (0.09° of latitude ≈ 10 km).
    let side = (sensors as f64).sqrt().ceil() as usize;
    let keys: Vec<(String, Vec<u8>)> = (0..sensors)
        .map(|i| {
            let id = format!("L{i:05}");
            let key: Vec<u8> = (0..32).map(|b| (i * 31 + b * 7) as u8).collect();
            (id, key)
        })
        .collect();
    for (i, (id, key)) in keys.iter().enumerate() {
        config.sensors.push(SensorConfig {
            id: id.clone(),
            key: hex::encode(key),
            lat: 40.0 + 0.09 * (i / side) as f64,
            lon: -80.0 + 0.12 * (i % side) as f64,
            alt_m: 250.0,
        });
    }
    let running = server::start(config).await?;
    let url = format!("http://{}/v1/reports", running.addr);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(in_flight)
        .build()?;
    let (reports_ok, pulses_ok, failed) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let keys = Arc::new(keys);
    let start = Instant::now();
    let stop = start + Duration::from_secs_f64(seconds);
    let mut workers = Vec::new();
    for w in 0..in_flight {
        let (client, url, keys) = (client.clone(), url.clone(), keys.clone());
        let (reports_ok, pulses_ok, failed) =
            (reports_ok.clone(), pulses_ok.clone(), failed.clone());
        workers.push(tokio::spawn(async move {
            let mut n = 0usize;
            while Instant::now() < stop {
                // Worker w serves sensors w, w + in_flight, …, in turn.
                let s = (w + n * in_flight) % keys.len();
                n += 1;
                let (sensor, key) = &keys[s];
                let t = model::UtcNanos(server::now_ns() - 500_000_000);
                let report = ReportV1 {
                    version: wire::REPORT_VERSION,
                    id: format!("{sensor}-{w}-{n}"),
                    sensor: sensor.clone(),
                    pulses: (0..pulses_per_report)
                        .map(|k| PulseV1 {
                            id: format!("{w}-{n}-{k}"),
                            t_utc: t.offset_by_seconds(k as f64 * 1e-4).to_rfc3339(),
                            snr_db: Some(20.0),
                            peak_db_spl: Some(90.0),
                            features: None,
                            clip_wav_b64: None,
                        })
                        .collect(),
                    clock: None,
                };
                let Ok(body) = serde_json::to_string(&report) else {
                    continue;
                };
                let ok = server::replay::post_signed(&client, &url, key, sensor, body)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == reqwest::StatusCode::ACCEPTED);
                if ok {
                    reports_ok.fetch_add(1, Ordering::Relaxed);
                    pulses_ok.fetch_add(pulses_per_report as u64, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for w in workers {
        w.await?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    running.stop().await;
    let pulses = pulses_ok.load(Ordering::Relaxed);
    Ok(IngestReport {
        sensors,
        pulses_per_report,
        in_flight,
        seconds: elapsed,
        reports_acknowledged: reports_ok.load(Ordering::Relaxed),
        pulses_acknowledged: pulses,
        pulses_per_s: pulses as f64 / elapsed,
        reports_failed: failed.load(Ordering::Relaxed),
        pulses_stored: 0,
        lost: 0,
    })
}
