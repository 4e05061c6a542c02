//! The HTTP ingest source: `POST /v1/reports`.
//!
//! Checks, in order, each refusal counted by reason:
//! 1. size (413 `oversized`): the body is read only up to the limit;
//! 2. who (401 `unauthenticated`): a registered sensor, a timestamp, a signature;
//! 3. signature (401 `forged`): HMAC-SHA256 of `"{timestamp_ms}.{body}"` with the
//!    sensor's key, compared in constant time;
//! 4. freshness (401 `replayed`): the signed timestamp within the allowed clock
//!    skew, so a captured report cannot be replayed later (a copy within the
//!    window has the same report id and changes nothing);
//! 5. rate (429 `rate_limited`): a token bucket per sensor, checked only after the
//!    signature, so nobody can spend another sensor's allowance and one sensor's
//!    flood never delays the others;
//! 6. content (400/422 `malformed`): version 1 JSON, the signed sensor, valid times
//!    and numbers, clips that decode.
//!
//! Then the report is committed (group commit) and only then acknowledged: 202
//! with the counts, or 200 `duplicate` for a report id already accepted.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use base64::Engine;
use model::{Pulse, SensorId, UtcNanos};
use serde_json::{json, Value};
use store::{ClipRow, PulseRow, ReportOutcome, ReportRow};

use crate::api::ApiError;
use crate::wire::{self, ReportV1};
use crate::{pipeline_pulse_id, App};

/// Longest id (report, pulse) accepted, characters.
const MAX_ID_LEN: usize = 128;

pub async fn post_report(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let c = &app.counters;
    let count = |counter: &std::sync::atomic::AtomicU64| {
        counter.fetch_add(1, Ordering::Relaxed);
    };
    let body: Bytes = match axum::body::to_bytes(body, app.config.limits.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            count(&c.rejected_oversized);
            return Err(ApiError::PayloadTooLarge(app.config.limits.max_body_bytes));
        }
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(sensor_id), Some(timestamp), Some(signature)) = (
        header(wire::SENSOR_HEADER),
        header(wire::TIMESTAMP_HEADER),
        header(wire::SIGNATURE_HEADER),
    ) else {
        count(&c.rejected_unauthenticated);
        return Err(ApiError::Unauthorized(
            "missing X-Shotfix-Sensor, X-Shotfix-Timestamp or X-Shotfix-Signature".into(),
        ));
    };
    let Some(sensor) = app.sensors.get(sensor_id) else {
        count(&c.rejected_unauthenticated);
        return Err(ApiError::Unauthorized(format!(
            "sensor {sensor_id:?} is not registered"
        )));
    };
    let Ok(timestamp_ms) = timestamp.parse::<i64>() else {
        count(&c.rejected_unauthenticated);
        return Err(ApiError::Unauthorized(
            "X-Shotfix-Timestamp must be Unix milliseconds".into(),
        ));
    };
    if !wire::verify(&sensor.key, timestamp_ms, &body, signature) {
        count(&c.rejected_forged);
        return Err(ApiError::Unauthorized("signature does not match".into()));
    }
    let skew_s = (now_ms() - timestamp_ms) as f64 / 1e3;
    if skew_s.abs() > app.config.limits.max_clock_skew_s {
        count(&c.rejected_replayed);
        return Err(ApiError::Unauthorized(format!(
            "report signed {skew_s:.0} s from the server's clock (at most {} s allowed): replayed or clock wrong",
            app.config.limits.max_clock_skew_s
        )));
    }
    if !take_token(&app, sensor) {
        count(&c.rejected_rate_limited);
        return Err(ApiError::RateLimited(sensor_id.to_string()));
    }
    let report: ReportV1 = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            count(&c.rejected_malformed);
            return Err(ApiError::BadRequest(format!(
                "report is not valid v1 JSON: {e}"
            )));
        }
    };
    let now = now_ms() * 1_000_000;
    let (row, pulses) = match validate(
        &report,
        sensor_id,
        app.config.limits.max_pulses_per_report,
        now,
    ) {
        Ok(v) => v,
        Err(e) => {
            count(&c.rejected_malformed);
            return Err(ApiError::Unprocessable(e));
        }
    };
    let outcome = app.writer.report(row).await.map_err(|e| {
        count(&c.store_errors);
        ApiError::Unavailable(e)
    })?;
    match outcome {
        ReportOutcome::Duplicate => {
            count(&c.reports_duplicate);
            Ok((
                StatusCode::OK,
                Json(json!({"id": report.id, "duplicate": true})),
            ))
        }
        ReportOutcome::Accepted {
            pulses: stored,
            duplicate_pulses,
        } => {
            count(&c.reports_accepted);
            c.pulses_accepted
                .fetch_add(stored as u64, Ordering::Relaxed);
            if let Ok(tx) = app.pipeline.lock() {
                if let Some(tx) = tx.as_ref() {
                    let _ = tx.send(pulses);
                }
            }
            Ok((
                StatusCode::ACCEPTED,
                Json(
                    json!({"id": report.id, "duplicate": false, "accepted_pulses": stored, "duplicate_pulses": duplicate_pulses}),
                ),
            ))
        }
    }
}

/// Checks a parsed report and converts it to rows and pipeline pulses.
pub fn validate(
    report: &ReportV1,
    sensor: &str,
    max_pulses: usize,
    received_ns: i64,
) -> Result<(ReportRow, Vec<Pulse>), String> {
    if report.version != wire::REPORT_VERSION {
        return Err(format!(
            "report version {}: this server reads version {}",
            report.version,
            wire::REPORT_VERSION
        ));
    }
    if report.sensor != sensor {
        return Err(format!(
            "report names sensor {:?} but was signed by {sensor:?}",
            report.sensor
        ));
    }
    if report.id.is_empty() || report.id.len() > MAX_ID_LEN {
        return Err(format!("report id must be 1–{MAX_ID_LEN} characters"));
    }
    if report.pulses.len() > max_pulses {
        return Err(format!(
            "{} pulses in one report: at most {max_pulses}",
            report.pulses.len()
        ));
    }
    let mut rows = Vec::with_capacity(report.pulses.len());
    let mut clips = Vec::new();
    let mut pulses = Vec::with_capacity(report.pulses.len());
    for p in &report.pulses {
        if p.id.is_empty() || p.id.len() > MAX_ID_LEN || p.id.contains('/') {
            return Err(format!(
                "pulse id {:?}: must be 1–{MAX_ID_LEN} characters without '/'",
                p.id
            ));
        }
        let t = UtcNanos::parse_rfc3339(&p.t_utc).map_err(|e| format!("pulse {}: {e}", p.id))?;
        for (name, v) in [("snr_db", p.snr_db), ("peak_db_spl", p.peak_db_spl)] {
            if let Some(v) = v {
                if !(v.is_finite() && (-50.0..=250.0).contains(&v)) {
                    return Err(format!(
                        "pulse {}: {name} {v} is not a plausible level",
                        p.id
                    ));
                }
            }
        }
        if let Some(b64) = &p.clip_wav_b64 {
            let wav = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| format!("pulse {}: clip is not base64: {e}", p.id))?;
            if wav.len() < 44 || &wav[..4] != b"RIFF" || &wav[8..12] != b"WAVE" {
                return Err(format!("pulse {}: clip is not a WAV file", p.id));
            }
            clips.push(ClipRow {
                sensor: sensor.to_string(),
                pulse: p.id.clone(),
                wav,
            });
        }
        rows.push(PulseRow {
            sensor: sensor.to_string(),
            id: p.id.clone(),
            t_ns: t.0,
            snr_db: p.snr_db,
            peak_db_spl: p.peak_db_spl,
            report: report.id.clone(),
            received_ns,
            extra_json: p
                .features
                .as_ref()
                .map(|f| Value::Object(f.clone()).to_string()),
        });
        pulses.push(Pulse {
            id: pipeline_pulse_id(sensor, &p.id),
            sensor: SensorId(sensor.to_string()),
            t,
            snr_db: p.snr_db,
            level_db_spl: p.peak_db_spl,
        });
    }
    let row = ReportRow {
        id: format!("{sensor}/{}", report.id),
        sensor: sensor.to_string(),
        received_ns,
        pulses: rows,
        clips,
    };
    Ok((row, pulses))
}

fn take_token(app: &App, sensor: &crate::SensorEntry) -> bool {
    let limits = &app.config.limits;
    let Ok(mut bucket) = sensor.bucket.lock() else {
        return false;
    };
    let (tokens, last) = *bucket;
    let now = Instant::now();
    let refilled =
        (tokens + now.duration_since(last).as_secs_f64() * limits.reports_per_s).min(limits.burst);
    if refilled >= 1.0 {
        *bucket = (refilled - 1.0, now);
        true
    } else {
        *bucket = (refilled, now);
        false
    }
}

/// Wall-clock time, Unix milliseconds (signed report timestamps).
pub fn now_ms() -> i64 {
    crate::now_ns() / 1_000_000
}
