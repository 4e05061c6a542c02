//! `shotfix report incident|bundle|folder`: the Investigative Lead Summary
//! (crates/report), always made from an evidence bundle, so the hash it prints
//! names exactly the evidence it was made from. A stored incident is exported
//! to a bundle first, a folder of recordings packed into one; the same export
//! or pack gives the same bundle hash on any machine.

use std::io::Write;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use formats::evidence;
use locate::LocateConfig;
use model::UtcNanos;
use report::{ArrivalRow, HistoryRow, MapSensor, Report, ReviewBeside, ShotRow, Waveform};
use serde_json::Value;

use crate::evidence_cmd::{self, Bundle, RecIncident, RecShot};

/// Seconds of audio a sensor's uploaded clip holds before its pulse (the
/// sensor agent's clip convention: 1 s before to 1 s after).
const CLIP_PRE_S: f64 = 1.0;

/// Audio shown before a sensor's first arrival and after its last, seconds.
const WAVE_BEFORE_S: f64 = 0.15;
const WAVE_AFTER_S: f64 = 0.35;

/// At most this many waveforms (the sensors nearest the first shot).
const MAX_WAVEFORMS: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Html,
    Pdf,
}

fn now_utc() -> String {
    let ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    let t = UtcNanos(ns).to_rfc3339();
    // To the second.
    match t.find('.') {
        Some(dot) => format!("{}Z", &t[..dot]),
        None => t,
    }
}

fn t_of(t_utc: &str) -> Result<UtcNanos> {
    UtcNanos::parse_rfc3339(t_utc).map_err(|e| anyhow!("time {t_utc:?}: {e}"))
}

fn opt_f(v: &Value, digits: usize) -> String {
    v.as_f64()
        .map(|x| format!("{x:.digits$}"))
        .unwrap_or_else(|| "–".into())
}

fn result_line(doc: &Value) -> String {
    format!(
        "{} ({}), {} round(s), {} shooter(s)",
        doc["class"].as_str().unwrap_or("?"),
        opt_f(&doc["confidence"], 2),
        doc["rounds"],
        doc["shooters"]
    )
}

/// The report of `bundle`.
pub fn from_bundle(bundle: &Bundle, generated_utc: &str) -> Result<Report> {
    let recorded = bundle.recorded()?;
    let derived_doc = bundle.rederive()?;
    let derived = evidence_cmd::incidents_of(&derived_doc)?;
    let server = bundle.server();
    let comparison = evidence_cmd::compare(&recorded, &derived, !server);
    let history_check = bundle.check_history()?;
    let dir = bundle.dir();
    let dir = dir.as_path();

    let (sensors, weather, clips) = if server {
        let input = formats::read_locate_input(dir)?;
        (input.sensors, input.weather, Vec::new())
    } else {
        let input = formats::read_analyze_input(dir)?;
        (input.sensors, input.weather, input.clips)
    };

    // Shots in time order, numbered, with their shooters.
    let mut shots: Vec<(UtcNanos, &RecShot)> = recorded
        .iter()
        .flat_map(|i| &i.shots)
        .map(|s| Ok((t_of(&s.t_utc)?, s)))
        .collect::<Result<_>>()?;
    shots.sort_by_key(|(t, _)| *t);
    let first = shots.first().map(|(t, _)| *t);
    let labels = locate::incident::shooter_labels(
        &shots
            .iter()
            .map(|(_, s)| (s.x, s.y, s.err95_m))
            .collect::<Vec<_>>(),
        LocateConfig::default().shooter_separation_m,
    );
    let rel = |t: UtcNanos| first.map_or(0.0, |f| t.seconds_since(f));
    let rows: Vec<ShotRow> = shots
        .iter()
        .zip(&labels)
        .enumerate()
        .map(|(k, ((t, s), &shooter))| ShotRow {
            n: k + 1,
            t_utc: s.t_utc.clone(),
            t_rel_s: rel(*t),
            x: s.x,
            y: s.y,
            lat: s.lat,
            lon: s.lon,
            err95_m: s.err95_m,
            shooter,
            class: s.class.clone(),
            confidence: s.confidence,
            arrivals: s
                .arrivals
                .iter()
                .map(|a| ArrivalRow {
                    sensor: a.sensor.clone(),
                    residual_ms: a.residual_ms,
                    range_m: a.range_m,
                })
                .collect(),
        })
        .collect();
    let used: std::collections::BTreeSet<&str> = shots
        .iter()
        .flat_map(|(_, s)| s.sensors.iter().map(String::as_str))
        .collect();
    let map_sensors: Vec<MapSensor> = sensors
        .iter()
        .map(|s| MapSensor {
            id: s.id.0.clone(),
            x: s.position.x,
            y: s.position.y,
            used: used.contains(s.id.0.as_str()),
        })
        .collect();

    // Waveforms: each sensor's arrivals, from the recordings or the clips.
    let mut arrivals_at: std::collections::BTreeMap<&str, Vec<(UtcNanos, &str)>> =
        Default::default();
    for (_, s) in &shots {
        for a in &s.arrivals {
            arrivals_at
                .entry(a.sensor.as_str())
                .or_default()
                .push((t_of(&a.t_utc)?, a.pulse.as_str()));
        }
    }
    let mut by_first: Vec<(&str, Vec<(UtcNanos, &str)>)> = arrivals_at.into_iter().collect();
    by_first.sort_by_key(|(_, a)| a.iter().map(|(t, _)| *t).min());
    let mut waveforms = Vec::new();
    let mut notes = Vec::new();
    let mut clips_shown = 0;
    for (sensor, arrivals) in by_first.iter().take(MAX_WAVEFORMS) {
        let (lo, hi) = (
            arrivals.iter().map(|(t, _)| *t).min(),
            arrivals.iter().map(|(t, _)| *t).max(),
        );
        let (Some(lo), Some(hi)) = (lo, hi) else {
            continue;
        };
        let marks: Vec<f64> = arrivals.iter().map(|(t, _)| rel(*t)).collect();
        if let Some(clip) = clips.iter().find(|c| c.sensor.0 == *sensor) {
            let rate = f64::from(clip.sample_rate_hz);
            let from = lo
                .offset_by_seconds(-WAVE_BEFORE_S)
                .seconds_since(clip.start);
            let to = hi.offset_by_seconds(WAVE_AFTER_S).seconds_since(clip.start);
            let a = ((from * rate).floor().max(0.0) as usize).min(clip.samples.len());
            let b = ((to * rate).ceil().max(0.0) as usize).min(clip.samples.len());
            if b > a {
                waveforms.push(Waveform {
                    sensor: sensor.to_string(),
                    t0_rel_s: rel(clip.start.offset_by_seconds(a as f64 / rate)),
                    sample_rate_hz: clip.sample_rate_hz,
                    samples: clip.samples[a..b].to_vec(),
                    marks_rel_s: marks,
                });
            }
        } else if server {
            // An uploaded clip of the first arrival at this sensor.
            let (t, pulse) = arrivals[0];
            let raw = pulse.strip_prefix(&format!("{sensor}/")).unwrap_or(pulse);
            let name = evidence::clip_path(sensor, raw);
            if let Some(bytes) = bundle.files.get(&name) {
                match formats::parse_wav_bytes(Path::new(&name), bytes) {
                    Ok(wav) => {
                        clips_shown += 1;
                        waveforms.push(Waveform {
                            sensor: sensor.to_string(),
                            t0_rel_s: rel(t) - CLIP_PRE_S,
                            sample_rate_hz: wav.sample_rate_hz,
                            samples: wav.samples,
                            marks_rel_s: marks,
                        });
                    }
                    Err(e) => notes.push(format!("The clip {name} cannot be shown: {e}.")),
                }
            }
        }
    }
    if server && clips_shown == 0 {
        notes.push("No sensor uploaded an audio clip for these pulses, so the report shows no waveforms; the pulse times the sensors reported are the evidence.".into());
    } else if clips_shown > 0 {
        notes.push(format!(
            "Waveforms are the sensors' uploaded clips, placed {CLIP_PRE_S:.1} s before each pulse by the clip convention."
        ));
    }
    if recorded.len() > 1 {
        notes.push(format!(
            "The evidence holds {} incidents; the summary is the first, the tables and figures show all.",
            recorded.len()
        ));
    }

    // Summary, history and review.
    let record = if server {
        Some(bundle.json("record.json")?)
    } else {
        None
    };
    let current: Option<Value> = record
        .as_ref()
        .and_then(|r| r["current_version"].as_i64())
        .and_then(|v| bundle.version(v));
    let primary: Option<&RecIncident> = recorded.first();
    let mut summary: Vec<(String, String)> = Vec::new();
    let subject = match (&record, primary) {
        (Some(_), Some(p)) => format!("Incident {}", p.id),
        _ => format!(
            "Recordings {}",
            bundle.meta.source.clone().unwrap_or_default()
        ),
    };
    if let Some(p) = primary {
        summary.push(("Incident".into(), p.id.clone()));
        let status = current
            .as_ref()
            .and_then(|c| c["review"]["status"].as_str())
            .map(|s| format!("reviewed: {s}"))
            .unwrap_or_else(|| "machine result (no person has reviewed it)".into());
        summary.push(("Status".into(), status));
        summary.push((
            "Class".into(),
            format!("{} (confidence {:.2})", p.class, p.confidence),
        ));
        summary.push(("Rounds".into(), p.rounds.to_string()));
        summary.push(("Shooters".into(), p.shooters.to_string()));
        summary.push((
            "Automatic fire".into(),
            if p.automatic { "yes" } else { "no" }.into(),
        ));
    }
    if let (Some(r0), Some(rn)) = (rows.first(), rows.last()) {
        summary.push(("First shot".into(), report::to_millis(&r0.t_utc)));
        summary.push(("Last shot".into(), report::to_millis(&rn.t_utc)));
        let place = match (r0.lat, r0.lon) {
            (Some(la), Some(lo)) => format!("{la:.6}, {lo:.6} (first shot)"),
            _ => format!("{:.1} m east, {:.1} m north (local frame)", r0.x, r0.y),
        };
        summary.push(("Location".into(), place));
        summary.push((
            "95 % radius".into(),
            format!("{:.1} m (first shot)", r0.err95_m),
        ));
    }
    if let Some(address) = current.as_ref().and_then(|c| c["address"].as_str()) {
        summary.push(("Nearest address".into(), address.to_string()));
    }
    summary.push((
        "Sensors".into(),
        format!(
            "{} heard the shots, of {} in the evidence",
            used.len(),
            sensors.len()
        ),
    ));

    let mut history = Vec::new();
    let mut review = None;
    if let Some(record) = &record {
        for e in record["history"].as_array().into_iter().flatten() {
            let version = e["version"].as_i64().unwrap_or(0);
            history.push(HistoryRow {
                seq: e["seq"].as_i64().unwrap_or(0),
                version,
                at_utc: e["at_utc"].as_str().unwrap_or("").to_string(),
                actor: e["actor"].as_str().unwrap_or("").to_string(),
                action: e["action"].as_str().unwrap_or("").to_string(),
                reason: e["reason"].as_str().unwrap_or("").to_string(),
                result: bundle
                    .version(version)
                    .map(|d| result_line(&d))
                    .unwrap_or_else(|| "document removed by retention".into()),
                hash: e["hash"].as_str().unwrap_or("").to_string(),
            });
        }
    }
    if let Some(incident) = &current {
        let r = &incident["review"];
        if r.is_object() {
            let m = &r["machine"];
            let field = |name: &str, key: &str, digits: Option<usize>| {
                let show = |v: &Value| match digits {
                    Some(d) => opt_f(v, d),
                    None => match v {
                        Value::String(s) => s.clone(),
                        Value::Null => "–".into(),
                        other => other.to_string(),
                    },
                };
                (name.to_string(), show(&m[key]), show(&incident[key]))
            };
            review = Some(ReviewBeside {
                status: r["status"].as_str().unwrap_or("").to_string(),
                by: r["by"].as_str().unwrap_or("").to_string(),
                at_utc: r["at_utc"].as_str().unwrap_or("").to_string(),
                reason: r["reason"].as_str().unwrap_or("").to_string(),
                rows: vec![
                    field("Class", "class", None),
                    field("Confidence", "confidence", Some(2)),
                    field("Rounds", "rounds", None),
                    field("Shooters", "shooters", None),
                    field("Latitude", "lat", Some(6)),
                    field("Longitude", "lon", Some(6)),
                ],
            });
        }
    }

    let mut conditions: Vec<(String, String)> = Vec::new();
    conditions.push((
        "Temperature".into(),
        weather
            .temperature_c
            .map(|t| format!("{t:.1} °C"))
            .unwrap_or_else(|| "not recorded: 15 °C assumed".into()),
    ));
    conditions.push((
        "Wind".into(),
        match (weather.wind_speed_m_s, weather.wind_from_deg) {
            (Some(s), Some(d)) => format!("{s:.1} m/s from {d:.0}°"),
            (Some(s), None) => format!("{s:.1} m/s, direction not recorded (not corrected)"),
            _ => "not recorded: still air assumed".into(),
        },
    ));
    conditions.push((
        "Speed of sound used".into(),
        format!("{} m/s", opt_f(&derived_doc["speed_of_sound_m_s"], 2)),
    ));
    let config = LocateConfig::default();
    conditions.push((
        "Locate settings".into(),
        format!(
            "range {} m, arrival consistency {} ms, shooters {} m apart",
            config.max_range_m,
            config.consistency_tolerance_s * 1e3,
            config.shooter_separation_m
        ),
    ));
    let this_model = evidence::sha256_hex(classify::SHIPPED_MODEL.as_bytes());
    let (software, model) = if server {
        let software = current
            .as_ref()
            .and_then(|c| c["software"].as_str())
            .unwrap_or("not recorded")
            .to_string();
        let model = format!("the model shipped with {software}");
        (software, model)
    } else {
        (
            bundle
                .meta
                .software
                .clone()
                .unwrap_or_else(|| "not recorded".into()),
            bundle
                .meta
                .classifier_sha256
                .clone()
                .unwrap_or_else(|| "not recorded".into()),
        )
    };
    conditions.push(("Software of the result".into(), software));
    conditions.push(("Classifier of the result".into(), model));
    conditions.push((
        "Software of this report".into(),
        format!(
            "{} (classifier SHA-256 {this_model})",
            server::doc::software()
        ),
    ));
    conditions.push((
        "Evidence".into(),
        if server {
            "pulse reports as the sensors sent them, all sensors' positions, the server's documents and history".into()
        } else {
            "the sensors' recordings, byte for byte, with their positions and start times".into()
        },
    ));

    let mut reproduction = vec![format!(
        "Seal: all {} files match SHA256SUMS; the bundle hash is {}.",
        bundle.files.len(),
        bundle.hash
    )];
    reproduction.push(format!(
        "Re-derived with {} on the bundle: {} of {} recorded shots identical (time to the nanosecond, position to the millimetre, 95 % radius, sensors), {} within 1 µs and 1 mm with the same sensors, {} with the same class; {} difference(s).",
        if server { "shotfix locate" } else { "shotfix analyze" },
        comparison.identical,
        comparison.recorded,
        comparison.agree,
        comparison.same_class,
        comparison.differences.len()
    ));
    reproduction.extend(comparison.differences.iter().cloned());
    if server {
        reproduction.push(if history_check.problems.is_empty() {
            format!(
                "History: the hashes of all {} entries, and the SHA-256 of their reasons and documents, recomputed from the bundle match{}. That the entries link into the server's whole chain is checked on the server with shotfix verify.",
                history_check.entries,
                if history_check.redacted > 0 {
                    format!(" ({} documents removed by retention; their hashes still check)", history_check.redacted)
                } else {
                    String::new()
                }
            )
        } else {
            format!(
                "History: DOES NOT CHECK: {}.",
                history_check.problems.join("; ")
            )
        });
    }

    Ok(Report {
        subject,
        source: if server {
            format!(
                "evidence bundle of stored incident {}",
                bundle.meta.incident.clone().unwrap_or_default()
            )
        } else {
            format!(
                "evidence bundle of the recordings in {}",
                bundle.meta.source.clone().unwrap_or_default()
            )
        },
        generated_utc: generated_utc.to_string(),
        bundle_sha256: bundle.hash.clone(),
        summary,
        sensors: map_sensors,
        shots: rows,
        waveforms,
        conditions,
        review,
        history,
        reproduction,
        notes,
    })
}

/// Renders the report of `bundle` and writes it to `out` (stdout when `None`).
fn write_report(bundle: &Bundle, format: Format, out: Option<&Path>) -> Result<()> {
    let bytes = render(bundle, format)?;
    match out {
        Some(path) => {
            std::fs::write(path, &bytes).with_context(|| format!("write {}", path.display()))
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&bytes)
                .and_then(|()| stdout.flush())
                .context("write the report to standard output")
        }
    }
}

/// The report of `bundle` as bytes.
pub fn render(bundle: &Bundle, format: Format) -> Result<Vec<u8>> {
    let report = from_bundle(bundle, &now_utc())?;
    Ok(match format {
        Format::Html => report::html::render(&report)?.into_bytes(),
        Format::Pdf => report::pdf::render(&report)?,
    })
}

/// Gives a running server its report renderer (`GET /v1/incidents/{id}/report`).
pub fn attach(running: &server::Running) {
    let maker = server::evidence::ReportMaker(std::sync::Arc::new(|files, format| {
        let format = match format {
            server::evidence::ReportFormat::Html => Format::Html,
            server::evidence::ReportFormat::Pdf => Format::Pdf,
        };
        Bundle::from_files(files)
            .and_then(|bundle| render(&bundle, format))
            .map_err(|e| {
                e.chain()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(": ")
            })
    }));
    let _ = running.app.reports.set(maker);
}

/// `shotfix report bundle DIR`: the seal checked, then the report.
pub fn run_bundle(dir: &Path, format: Format, out: Option<&Path>) -> Result<()> {
    write_report(&Bundle::read(dir)?, format, out)
}

/// `shotfix report incident ID --config F`: the report of its bundle.
pub fn run_incident(config: &Path, id: &str, format: Format, out: Option<&Path>) -> Result<()> {
    let bundle = Bundle::from_files(evidence_cmd::export_files(config, id)?)?;
    write_report(&bundle, format, out)
}

/// `shotfix report folder PATH`: the report of its packed bundle.
pub fn run_folder(path: &Path, format: Format, out: Option<&Path>) -> Result<()> {
    let bundle = Bundle::from_files(evidence_cmd::pack_files(path)?)?;
    write_report(&bundle, format, out)
}
