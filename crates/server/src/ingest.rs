//! Sensor report ingest, one path for every transport. The HTTP source
//! (`POST /v1/reports`, [`post_report`]) and the MQTT source ([`crate::mqtt`])
//! each take apart their own framing and hand [`submit`] the same four things:
//! sensor id, signed timestamp, signature and body bytes. [`submit`] answers
//! with an [`Outcome`]; HTTP turns it into a status, MQTT counts and logs it.
//!
//! Checks, in order, each refusal counted by reason (per transport):
//! 1. size (413 `oversized`): HTTP reads the body only up to the limit;
//! 2. who (401 `unauthenticated`): a registered sensor, a timestamp, a signature;
//! 3. signature (401 `forged`): HMAC-SHA256 of `"{timestamp_ms}.{body}"` with the
//!    sensor's key, compared in constant time (over MQTT also: the topic names
//!    the envelope's sensor);
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
//! with the counts, or 200 `duplicate` for a report id already accepted (over
//! MQTT: the PUBACK, see [`crate::mqtt`]).

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

/// The transport a report came over (for the counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Http,
    Mqtt,
}

/// A signed report as it arrived: what every transport carries.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    pub sensor: &'a str,
    /// Sending time, Unix milliseconds, as signed.
    pub timestamp_ms: i64,
    /// Hex HMAC-SHA256 of `"{timestamp_ms}.{body}"`.
    pub signature: &'a str,
    /// The report's JSON text, exactly as signed.
    pub body: &'a [u8],
}

/// Why a report was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Oversized,
    Unauthenticated,
    Forged,
    Replayed,
    RateLimited,
    /// Not version 1 JSON (400).
    Malformed,
    /// Well-formed but not acceptable: wrong sensor, bad times or numbers (422).
    Invalid,
    /// The store failed; nothing was accepted and the sender should retry.
    Unavailable,
}

impl Reason {
    /// The status HTTP answers with.
    pub fn status(self) -> StatusCode {
        match self {
            Reason::Oversized => StatusCode::PAYLOAD_TOO_LARGE,
            Reason::Unauthenticated | Reason::Forged | Reason::Replayed => StatusCode::UNAUTHORIZED,
            Reason::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Reason::Malformed => StatusCode::BAD_REQUEST,
            Reason::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
            Reason::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The reason's name in counters and logs.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Oversized => "oversized",
            Reason::Unauthenticated => "unauthenticated",
            Reason::Forged => "forged",
            Reason::Replayed => "replayed",
            Reason::RateLimited => "rate_limited",
            Reason::Malformed | Reason::Invalid => "malformed",
            Reason::Unavailable => "store_error",
        }
    }
}

/// A refused report: the reason and a one-line message naming the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Rejection {
    pub reason: Reason,
    pub message: String,
}

impl Rejection {
    pub fn new(reason: Reason, message: impl Into<String>) -> Rejection {
        Rejection {
            reason,
            message: message.into(),
        }
    }
}

/// What became of one report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Committed; its pulses went on to the pipeline.
    Accepted {
        /// The sensor's report id.
        id: String,
        pulses: usize,
        duplicate_pulses: usize,
    },
    /// A report id already accepted: nothing changed.
    Duplicate {
        id: String,
    },
    Rejected(Rejection),
}

impl Outcome {
    /// The status HTTP answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Outcome::Accepted { .. } => StatusCode::ACCEPTED,
            Outcome::Duplicate { .. } => StatusCode::OK,
            Outcome::Rejected(r) => r.reason.status(),
        }
    }
}

/// Checks one signed report, commits it and passes its pulses on; counts the
/// outcome under `transport`. Resolves only after the commit.
pub async fn submit(app: &App, transport: Transport, report: Signed<'_>) -> Outcome {
    let outcome = match check_and_store(app, report).await {
        Ok(outcome) => outcome,
        Err(rejection) => Outcome::Rejected(rejection),
    };
    record(app, transport, &outcome);
    outcome
}

/// Refuses a message before it could be submitted (the transport's own framing:
/// missing headers, an envelope that does not parse); counted like any refusal.
pub fn refuse(app: &App, transport: Transport, rejection: Rejection) -> Rejection {
    count_refusal(app.counters.ingest(transport), rejection.reason);
    rejection
}

fn record(app: &App, transport: Transport, outcome: &Outcome) {
    let c = app.counters.ingest(transport);
    match outcome {
        Outcome::Accepted { pulses, .. } => {
            c.reports_accepted.fetch_add(1, Ordering::Relaxed);
            c.pulses_accepted
                .fetch_add(*pulses as u64, Ordering::Relaxed);
        }
        Outcome::Duplicate { .. } => {
            c.reports_duplicate.fetch_add(1, Ordering::Relaxed);
        }
        Outcome::Rejected(r) => count_refusal(c, r.reason),
    }
}

fn count_refusal(c: &crate::IngestCounters, reason: Reason) {
    let counter = match reason {
        Reason::Oversized => &c.rejected_oversized,
        Reason::Unauthenticated => &c.rejected_unauthenticated,
        Reason::Forged => &c.rejected_forged,
        Reason::Replayed => &c.rejected_replayed,
        Reason::RateLimited => &c.rejected_rate_limited,
        Reason::Malformed | Reason::Invalid => &c.rejected_malformed,
        Reason::Unavailable => &c.store_errors,
    };
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Checks 1–4 (size, who, signature, freshness) of a signed message; the
/// sensor it came from.
pub(crate) fn authenticate<'a>(
    app: &'a App,
    signed: &Signed<'_>,
) -> Result<&'a crate::SensorEntry, Rejection> {
    authenticate_up_to(app, signed, app.config.limits.max_body_bytes)
}

/// [`authenticate`] with another size limit (clip uploads).
pub(crate) fn authenticate_up_to<'a>(
    app: &'a App,
    signed: &Signed<'_>,
    max_bytes: usize,
) -> Result<&'a crate::SensorEntry, Rejection> {
    let limits = &app.config.limits;
    if signed.body.len() > max_bytes {
        return Err(Rejection::new(
            Reason::Oversized,
            format!("report body larger than {max_bytes} bytes"),
        ));
    }
    let sensor_id = signed.sensor;
    let Some(sensor) = app.sensors.get(sensor_id) else {
        return Err(Rejection::new(
            Reason::Unauthenticated,
            format!("sensor {sensor_id:?} is not registered"),
        ));
    };
    if !wire::verify(
        &sensor.key,
        signed.timestamp_ms,
        signed.body,
        signed.signature,
    ) {
        return Err(Rejection::new(
            Reason::Forged,
            format!("signature does not match (sensor {sensor_id:?})"),
        ));
    }
    let skew_s = (now_ms() as f64 - signed.timestamp_ms as f64) / 1e3;
    if skew_s.abs() > limits.max_clock_skew_s {
        return Err(Rejection::new(
            Reason::Replayed,
            format!(
                "report signed {skew_s:.0} s from the server's clock (at most {} s allowed): replayed or clock wrong",
                limits.max_clock_skew_s
            ),
        ));
    }
    Ok(sensor)
}

async fn check_and_store(app: &App, signed: Signed<'_>) -> Result<Outcome, Rejection> {
    let limits = &app.config.limits;
    let sensor = authenticate(app, &signed)?;
    let sensor_id = signed.sensor;
    if !take_token(app, sensor) {
        return Err(Rejection::new(
            Reason::RateLimited,
            format!("sensor {sensor_id} is sending faster than its rate limit"),
        ));
    }
    let report: ReportV1 = serde_json::from_slice(signed.body).map_err(|e| {
        Rejection::new(
            Reason::Malformed,
            format!("report is not valid v1 JSON: {e}"),
        )
    })?;
    let now = now_ms() * 1_000_000;
    let (row, pulses) = validate(&report, sensor_id, limits, now)
        .map_err(|e| Rejection::new(Reason::Invalid, e))?;
    let stored = app
        .writer
        .report(row)
        .await
        .map_err(|e| Rejection::new(Reason::Unavailable, e))?;
    Ok(match stored {
        ReportOutcome::Duplicate => Outcome::Duplicate { id: report.id },
        ReportOutcome::Accepted {
            pulses: stored,
            duplicate_pulses,
        } => {
            if let Ok(tx) = app.pipeline.lock() {
                if let Some(tx) = tx.as_ref() {
                    let _ = tx.send(crate::PipelineMsg::Pulses(pulses));
                }
            }
            Outcome::Accepted {
                id: report.id,
                pulses: stored,
                duplicate_pulses,
            }
        }
    })
}

/// `POST /v1/reports`: the HTTP source.
pub async fn post_report(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (parts, body) = read_signed(&app, &headers, body, app.config.limits.max_body_bytes).await?;
    let signed = parts.signed(&body);
    let outcome = submit(&app, Transport::Http, signed).await;
    let status = outcome.status();
    match outcome {
        Outcome::Accepted {
            id,
            pulses,
            duplicate_pulses,
        } => Ok((
            status,
            Json(
                json!({"id": id, "duplicate": false, "accepted_pulses": pulses, "duplicate_pulses": duplicate_pulses}),
            ),
        )),
        Outcome::Duplicate { id } => Ok((status, Json(json!({"id": id, "duplicate": true})))),
        Outcome::Rejected(r) => Err(ApiError::Refused(r)),
    }
}

/// The signing headers of an HTTP request.
#[derive(Debug)]
pub(crate) struct SignedParts {
    sensor: String,
    timestamp_ms: i64,
    signature: String,
}

impl SignedParts {
    pub(crate) fn signed<'a>(&'a self, body: &'a [u8]) -> Signed<'a> {
        Signed {
            sensor: &self.sensor,
            timestamp_ms: self.timestamp_ms,
            signature: &self.signature,
            body,
        }
    }
}

/// Reads a signed HTTP request's body (up to the size limit) and its signing
/// headers; a refusal is counted under HTTP.
pub(crate) async fn read_signed(
    app: &App,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<(SignedParts, Bytes), ApiError> {
    let refused = |reason, message: String| {
        ApiError::Refused(refuse(
            app,
            Transport::Http,
            Rejection::new(reason, message),
        ))
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // A limit above the report limit (clip uploads) is spent only on a
    // registered sensor: nobody else makes the server buffer megabytes.
    if limit > app.config.limits.max_body_bytes
        && !header(wire::SENSOR_HEADER).is_some_and(|s| app.sensors.contains_key(s))
    {
        return Err(refused(
            Reason::Unauthenticated,
            "X-Shotfix-Sensor must name a registered sensor".into(),
        ));
    }
    let body: Bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        refused(
            Reason::Oversized,
            format!("report body larger than {limit} bytes"),
        )
    })?;
    let (Some(sensor), Some(timestamp), Some(signature)) = (
        header(wire::SENSOR_HEADER),
        header(wire::TIMESTAMP_HEADER),
        header(wire::SIGNATURE_HEADER),
    ) else {
        return Err(refused(
            Reason::Unauthenticated,
            "missing X-Shotfix-Sensor, X-Shotfix-Timestamp or X-Shotfix-Signature".into(),
        ));
    };
    let Ok(timestamp_ms) = timestamp.parse::<i64>() else {
        return Err(refused(
            Reason::Unauthenticated,
            "X-Shotfix-Timestamp must be Unix milliseconds".into(),
        ));
    };
    let parts = SignedParts {
        sensor: sensor.to_string(),
        timestamp_ms,
        signature: signature.to_string(),
    };
    Ok((parts, body))
}

/// Checks a parsed report and converts it to rows and pipeline pulses. Pulses
/// timed by a clock that is not synchronised, or whose estimated error is over
/// `limits.max_clock_error_ms`, are stored (with the clock's state, marked
/// `"excluded": true`) but not passed on to locating.
pub fn validate(
    report: &ReportV1,
    sensor: &str,
    limits: &crate::config::LimitsConfig,
    received_ns: i64,
) -> Result<(ReportRow, Vec<Pulse>), String> {
    let max_pulses = limits.max_pulses_per_report;
    let clock = match &report.clock {
        None => None,
        Some(c) => {
            if let Some(e) = c.est_error_ms {
                if !(e.is_finite() && e >= 0.0) {
                    return Err(format!("clock.est_error_ms {e} is not a plausible error"));
                }
            }
            if c.source.len() > MAX_ID_LEN {
                return Err(format!(
                    "clock.source must be at most {MAX_ID_LEN} characters"
                ));
            }
            let excluded = !c.synced
                || c.est_error_ms
                    .is_some_and(|e| e > limits.max_clock_error_ms);
            Some((c, excluded))
        }
    };
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
            extra_json: extra_json(p.features.as_ref(), clock),
        });
        if clock.is_some_and(|(_, excluded)| excluded) {
            continue;
        }
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

/// What is stored beside a pulse: the sensor's features, and under the
/// reserved key `clock` the state of the clock that timed it.
fn extra_json(
    features: Option<&serde_json::Map<String, Value>>,
    clock: Option<(&wire::ClockV1, bool)>,
) -> Option<String> {
    let mut extra = features.cloned();
    if let Some((c, excluded)) = clock {
        let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            m.insert("excluded".into(), Value::Bool(excluded));
        }
        extra
            .get_or_insert_with(Default::default)
            .insert("clock".into(), v);
    }
    extra.map(|m| Value::Object(m).to_string())
}

/// Whether a stored pulse's extra JSON marks it as left out of locating (its
/// clock was not good enough: see [`validate`]).
pub fn excluded_by_clock(extra_json: Option<&str>) -> bool {
    extra_json
        .and_then(|e| serde_json::from_str::<Value>(e).ok())
        .is_some_and(|v| v["clock"]["excluded"] == Value::Bool(true))
}

pub(crate) fn take_token(app: &App, sensor: &crate::SensorEntry) -> bool {
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
