//! `shotfix eval pipeline`: the capacity of the server's pipeline alone.
//!
//! A scene's pulses are fed to the streaming associator and the incident
//! builder exactly as the pipeline thread does, in batches of `batch_ms` of
//! event time, with no network, storage or clock in the way. Each batch's
//! processing time is measured. The pipeline keeps up with a load when a
//! batch is processed faster than the event time it covers (the *load
//! factor*, processing time over event time, below 1); the alert latency the
//! pipeline adds is about one batch's processing time when it keeps up, and
//! grows without bound when it does not. So this benchmark says how much load
//! the association itself can carry, and where the time goes, in seconds
//! rather than the minutes of a real-time run (`shotfix eval latency`).

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use locate::{LocateConfig, Medium};
use model::Pulse;
use serde::Serialize;
use server::pipeline::{Associator, IncidentBuilder};

#[derive(Debug, Serialize)]
struct PipelineReport {
    scene: String,
    sensors: usize,
    pulses: usize,
    event_s: f64,
    pulses_per_s: f64,
    batch_ms: f64,
    batches: usize,
    /// Processing time while pulses arrive (the batches up to the last
    /// pulse), seconds.
    processing_s: f64,
    /// Processing time of the quiet after the last pulse, when the last
    /// shots become final, seconds.
    tail_processing_s: f64,
    /// Processing time over event time while pulses arrive: below 1 keeps up.
    load_factor: f64,
    /// Pulses per second of processing time.
    capacity_pulses_per_s: f64,
    batch_p50_ms: f64,
    batch_p99_ms: f64,
    batch_max_ms: f64,
    incident_versions: usize,
    alerts: usize,
    /// Incidents by what their shots matched in `truth.json` (when the scene
    /// has one): (gunfire, alerted), (other events, alerted), (no event,
    /// alerted).
    alerted_by_truth: Option<[(usize, usize); 3]>,
}

pub fn run(path: &Path, batch_ms: f64, json: bool) -> Result<()> {
    if !(batch_ms.is_finite() && batch_ms > 0.0) {
        anyhow::bail!("--batch-ms must be a positive number of milliseconds, not {batch_ms}");
    }
    let input = formats::scene::read_scene(path).with_context(|| format!("{}", path.display()))?;
    let medium = Medium::from_weather(&input.weather);
    let config = LocateConfig::default();
    let mut pulses: Vec<Pulse> = input
        .pulses
        .into_iter()
        .map(|p| Pulse {
            id: server::pipeline_pulse_id(&p.sensor.0, &p.id.0),
            ..p
        })
        .collect();
    pulses.sort_by(|a, b| a.t.cmp(&b.t).then_with(|| a.id.cmp(&b.id)));
    let (Some(first), Some(last)) = (pulses.first().map(|p| p.t), pulses.last().map(|p| p.t))
    else {
        anyhow::bail!("{}: the scene has no pulses", path.display());
    };
    let sensors = input.sensors.len();
    let mut associator = Associator::new(input.sensors, medium, config.clone());
    let mut builder = IncidentBuilder::new(
        config,
        classify::Classifier::shipped()
            .ok()
            .map(std::sync::Arc::new),
    );
    let step = batch_ms / 1e3;
    let mut times_ms = Vec::new();
    let mut live_batches = 1;
    let (mut versions, mut alerts) = (0, 0);
    // Per incident: its shots as last published, and whether it was alerted.
    let mut incidents: std::collections::BTreeMap<String, (Vec<model::Shot>, bool)> =
        Default::default();
    let mut next = 0;
    let mut until = first.offset_by_seconds(step);
    let total = pulses.len();
    let mut pulses = pulses.into_iter().peekable();
    // Every pulse, then the quiet after the last (so its shots become final).
    let end = last.offset_by_seconds(associator.horizon_s() + server::pipeline::MAX_DEFER_S);
    while pulses.peek().is_some() || until <= end {
        let batch: Vec<Pulse> = std::iter::from_fn(|| pulses.next_if(|p| p.t < until)).collect();
        next += batch.len();
        let started = Instant::now();
        if batch.is_empty() {
            associator.advance(step);
        } else {
            associator.push(batch);
        }
        let changes = associator.run();
        for version in builder.apply(changes) {
            versions += 1;
            let alert = version.alert == Some(server::pipeline::ALERT);
            alerts += usize::from(alert);
            let last = incidents
                .entry(version.id.clone())
                .or_insert((Vec::new(), false));
            last.0 = version.shots;
            last.1 |= alert;
        }
        if let Some(now) = associator.newest() {
            builder.close_before(now);
        }
        times_ms.push(started.elapsed().as_secs_f64() * 1e3);
        if until <= last {
            live_batches = times_ms.len() + 1;
        }
        until = until.offset_by_seconds(step);
    }
    if next != total || times_ms.is_empty() {
        anyhow::bail!(
            "internal: fed {next} of {total} pulses in {} batches",
            times_ms.len()
        );
    }
    let event_s = last.seconds_since(first).max(step);
    let live_batches = live_batches.min(times_ms.len());
    let processing_s: f64 = times_ms[..live_batches].iter().sum::<f64>() / 1e3;
    let tail_processing_s: f64 = times_ms[live_batches..].iter().sum::<f64>() / 1e3;
    let mut sorted = times_ms.clone();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    let report = PipelineReport {
        scene: path.display().to_string(),
        sensors,
        pulses: total,
        event_s,
        pulses_per_s: total as f64 / event_s,
        batch_ms,
        batches: times_ms.len(),
        processing_s,
        tail_processing_s,
        load_factor: processing_s / (live_batches as f64 * step),
        capacity_pulses_per_s: total as f64 / processing_s.max(1e-9),
        batch_p50_ms: at(0.5),
        batch_p99_ms: at(0.99),
        batch_max_ms: at(1.0),
        incident_versions: versions,
        alerts,
        alerted_by_truth: alerted_by_truth(path, &incidents),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{}: {} sensors, {} pulses over {:.1} s ({:.0} pulses/s)",
            report.scene, report.sensors, report.pulses, report.event_s, report.pulses_per_s
        );
        println!(
            "batches of {} ms: {:.2} s of processing while pulses arrive, load factor {:.3} (below 1 keeps up), capacity {:.0} pulses/s; {:.2} s finalising after",
            report.batch_ms,
            report.processing_s,
            report.load_factor,
            report.capacity_pulses_per_s,
            report.tail_processing_s
        );
        println!(
            "per batch ({} in all): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {} incident versions, {} alerts",
            report.batches,
            report.batch_p50_ms,
            report.batch_p99_ms,
            report.batch_max_ms,
            report.incident_versions,
            report.alerts
        );
        if let Some([g, o, n]) = report.alerted_by_truth {
            println!(
                "incidents alerted, by truth.json: gunfire {} of {}, other events {} of {}, matching no event {} of {}",
                g.1, g.0, o.1, o.0, n.1, n.0
            );
        }
    }
    Ok(())
}

/// Scores the alert decisions against the scene's `truth.json`, if it has
/// one: an incident is gunfire when most of its shots match gunshots. This is
/// evaluation code, the only reader of the answers here.
fn alerted_by_truth(
    scene: &Path,
    incidents: &std::collections::BTreeMap<String, (Vec<model::Shot>, bool)>,
) -> Option<[(usize, usize); 3]> {
    let truth = formats::read_truth(scene).ok()?;
    let mut out = [(0, 0); 3];
    for (shots, alerted) in incidents.values() {
        if shots.is_empty() {
            continue;
        }
        let refs: Vec<&model::Shot> = shots.iter().collect();
        let (_, truth_of_shot) = crate::eval_sim::match_shots(&refs, &truth);
        let matched: Vec<bool> = truth_of_shot
            .iter()
            .flatten()
            .map(|&t| truth[t].is_gunshot())
            .collect();
        let row = if matched.is_empty() {
            2
        } else if matched.iter().filter(|&&g| g).count() * 2 >= matched.len() {
            0
        } else {
            1
        };
        out[row].0 += 1;
        out[row].1 += usize::from(*alerted);
    }
    Some(out)
}
