//! Sensor heartbeats (`POST /v1/heartbeats`), the settings pushed back in
//! their answers, and requests for a stretch of a sensor's buffered audio
//! (`POST /v1/sensors/{id}/clip-requests`, delivered in the heartbeat's
//! answer, answered by the sensor with `POST /v1/clip-uploads`).
//!
//! A heartbeat is signed like a report and passes the same checks (size, who,
//! signature, freshness, rate: see [`crate::ingest`]). The latest one per
//! sensor is kept in the store, and `GET /v1/sensors` shows it. The answer names
//! the version of the network's agent settings (`[agent]` in the server's
//! configuration) and carries the settings when the sensor runs another
//! version; it is signed with the sensor's own key, so a sensor takes settings
//! only from its server.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use model::UtcNanos;
use serde_json::{json, Value};
use wire::{HeartbeatReplyV1, HeartbeatV1};

use crate::access::{Caller, Perm};
use crate::api::ApiError;
use crate::ingest::{self, Reason, Rejection, Transport};
use crate::App;

/// Longest text field in a heartbeat, characters.
const MAX_TEXT: usize = 128;

/// Clip requests handed to a sensor in one heartbeat's answer.
const MAX_REQUESTS_PER_BEAT: usize = 4;

/// Audio all requests together may ask of one sensor in 24 hours, seconds:
/// twenty 30 s stretches, enough for the incidents of a bad night, not a way
/// to pull out the buffer.
const MAX_REQUESTED_S_PER_DAY: f64 = 600.0;

/// A request unanswered for a day has expired: it is no longer handed out.
const DAY_NS: i64 = 86_400_000_000_000;

/// `POST /v1/heartbeats`.
pub async fn post_heartbeat(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (sensor, sensor_id, body) =
        signed_request(&app, &headers, body, app.config.limits.max_body_bytes).await?;
    let refuse = |r: Rejection| ApiError::Refused(ingest::refuse(&app, Transport::Http, r));
    let beat: HeartbeatV1 = serde_json::from_slice(&body).map_err(|e| {
        refuse(Rejection::new(
            Reason::Malformed,
            format!("heartbeat is not valid v1 JSON: {e}"),
        ))
    })?;
    check(&beat, sensor_id.as_str()).map_err(|e| refuse(Rejection::new(Reason::Invalid, e)))?;
    let id = sensor_id.clone();
    let doc = String::from_utf8_lossy(&body).into_owned();
    let received = crate::now_ns();
    app.writer
        .run(move |db| db.save_heartbeat(&id, received, &doc))
        .await
        .map_err(|e| {
            refuse(Rejection::new(
                Reason::Unavailable,
                format!("heartbeat not stored: {e}"),
            ))
        })?;
    let wanted = app.config.agent.version();
    let id = sensor_id.clone();
    let since = crate::now_ns() - DAY_NS;
    let pending = app
        .read(move |db| db.pending_clip_requests(&id, since, MAX_REQUESTS_PER_BEAT))
        .await?;
    let reply = HeartbeatReplyV1 {
        version: wire::HEARTBEAT_VERSION,
        sensor: sensor_id.clone(),
        settings: (beat.settings_version != wanted).then(|| app.config.agent.clone()),
        settings_version: wanted,
        clip_requests: pending
            .into_iter()
            .map(|r| wire::ClipRequestV1 {
                id: r.id,
                from_utc: UtcNanos(r.from_ns).to_rfc3339(),
                seconds: r.seconds,
            })
            .collect(),
    };
    let text = serde_json::to_string(&reply).unwrap_or_default();
    let ts = ingest::now_ms();
    let signature = wire::sign(&sensor.key, ts, text.as_bytes());
    let mut response = (StatusCode::OK, text).into_response();
    let h = response.headers_mut();
    h.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for (name, value) in [
        (wire::TIMESTAMP_HEADER, ts.to_string()),
        (wire::SIGNATURE_HEADER, signature),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    Ok(response)
}

/// A signed request from a sensor, through ingest's checks 1–5 (size, who,
/// signature, freshness, rate): the sensor, its id and the body.
async fn signed_request<'a>(
    app: &'a App,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<(&'a crate::SensorEntry, String, axum::body::Bytes), ApiError> {
    let (parts, body) = ingest::read_signed(app, headers, body, limit).await?;
    let signed = parts.signed(&body);
    let refuse = |r: Rejection| ApiError::Refused(ingest::refuse(app, Transport::Http, r));
    let sensor = ingest::authenticate_up_to(app, &signed, limit).map_err(refuse)?;
    if !ingest::take_token(app, sensor) {
        return Err(refuse(Rejection::new(
            Reason::RateLimited,
            format!(
                "sensor {} is sending faster than its rate limit",
                signed.sensor
            ),
        )));
    }
    let id = signed.sensor.to_string();
    Ok((sensor, id, body))
}

/// Checks a heartbeat's content.
fn check(beat: &HeartbeatV1, sensor: &str) -> Result<(), String> {
    if beat.version != wire::HEARTBEAT_VERSION {
        return Err(format!(
            "heartbeat version {}: this server reads version {}",
            beat.version,
            wire::HEARTBEAT_VERSION
        ));
    }
    if beat.sensor != sensor {
        return Err(format!(
            "heartbeat names sensor {:?} but was signed by {sensor:?}",
            beat.sensor
        ));
    }
    UtcNanos::parse_rfc3339(&beat.t_utc).map_err(|e| format!("t_utc: {e}"))?;
    for (name, text) in [
        ("software_version", &beat.software_version),
        ("settings_version", &beat.settings_version),
        ("clock.source", &beat.clock.source),
    ] {
        if text.len() > MAX_TEXT {
            return Err(format!("{name} must be at most {MAX_TEXT} characters"));
        }
    }
    let finite = |v: f64| v.is_finite() && v >= 0.0;
    if !(finite(beat.uptime_s)
        && finite(beat.buffer_s)
        && beat.clock.est_error_ms.is_none_or(finite)
        && beat.noise_floor_dbfs.is_none_or(f64::is_finite))
    {
        return Err("uptime_s, buffer_s and clock.est_error_ms must be finite and ≥ 0".into());
    }
    Ok(())
}

/// The latest heartbeat of every sensor that sent one: sensor → (received
/// UTC nanoseconds, the heartbeat as JSON).
pub async fn latest(app: &App) -> Result<Vec<(String, i64, serde_json::Value)>, ApiError> {
    let rows = app.read(|db| db.heartbeats()).await?;
    Ok(rows
        .into_iter()
        .map(|(sensor, received, doc)| {
            let v = serde_json::from_str(&doc).unwrap_or(serde_json::Value::Null);
            (sensor, received, v)
        })
        .collect())
}

/// `POST /v1/sensors/{id}/clip-requests` body.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClipRequestBody {
    /// Start, RFC 3339.
    pub from_utc: String,
    pub seconds: f64,
    /// Why (kept with the request and in the audit log).
    pub reason: String,
}

/// `POST /v1/sensors/{id}/clip-requests`: asks a sensor for a stretch of its
/// buffered audio. Needs the audio permission; audited. The sensor is asked
/// in its next heartbeat's answer.
pub async fn request_clip(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(sensor): Path<String>,
    Json(body): Json<ClipRequestBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(Perm::Audio)?;
    if !app.sensors.contains_key(&sensor) {
        return Err(ApiError::NotFound(format!("sensor {sensor:?}")));
    }
    let from = UtcNanos::parse_rfc3339(&body.from_utc)
        .map_err(|e| ApiError::BadRequest(format!("from_utc: {e}")))?;
    let now = crate::now_ns();
    // Only audio already recorded: a request for the future would be a way
    // to listen live.
    let end = from.offset_by_seconds(body.seconds.clamp(0.0, wire::MAX_REQUEST_S));
    if end.0 > now + (app.config.limits.max_clock_skew_s * 1e9) as i64 {
        return Err(ApiError::BadRequest(
            "from_utc + seconds: only audio already recorded can be asked for".into(),
        ));
    }
    if !(body.seconds.is_finite() && body.seconds > 0.0 && body.seconds <= wire::MAX_REQUEST_S) {
        return Err(ApiError::BadRequest(format!(
            "seconds: above 0 and at most {} (a privacy limit)",
            wire::MAX_REQUEST_S
        )));
    }
    let reason = body.reason.trim().to_string();
    if reason.is_empty() || reason.len() > 2_000 {
        return Err(ApiError::BadRequest(
            "reason: say why the audio is needed (1–2000 characters)".into(),
        ));
    }
    let (who, since) = (sensor.clone(), now - DAY_NS);
    let asked = app
        .read(move |db| db.requested_seconds_since(&who, since))
        .await?;
    if asked + body.seconds > MAX_REQUESTED_S_PER_DAY {
        return Err(ApiError::BadRequest(format!(
            "sensor {sensor}: {asked:.0} s of audio asked for in the last 24 h; at most {MAX_REQUESTED_S_PER_DAY:.0} s a day (a privacy limit)"
        )));
    }
    let id = format!("cr-{}-{:08x}", now / 1_000_000, rand::random::<u32>());
    let row = store::ClipRequestRow {
        id: id.clone(),
        sensor: sensor.clone(),
        from_ns: from.0,
        seconds: body.seconds,
        requested_by: caller.actor.clone(),
        reason: Some(reason.clone()),
        created_ns: now,
        answered_ns: None,
        error: None,
    };
    crate::access::audit(
        &app,
        &caller,
        "request.audio",
        &format!("{sensor}/{id}"),
        Some(format!(
            "{} s from {}: {reason}",
            body.seconds, body.from_utc
        )),
    )
    .await?;
    app.writer
        .run(move |db| db.insert_clip_request(&row))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": id, "sensor": sensor, "status": "pending"})),
    ))
}

/// `GET /v1/clip-requests/{id}`: a request's state.
pub async fn clip_request_status(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Perm::Audio)?;
    let key = id.clone();
    let Some(r) = app.read(move |db| db.clip_request(&key)).await? else {
        return Err(ApiError::NotFound(format!("clip request {id:?}")));
    };
    let status = match (&r.answered_ns, &r.error) {
        (None, _) if r.created_ns < crate::now_ns() - DAY_NS => "expired",
        (None, _) => "pending",
        (Some(_), Some(_)) => "refused",
        (Some(_), None) => "answered",
    };
    Ok(Json(json!({
        "id": r.id, "sensor": r.sensor, "status": status,
        "from_utc": UtcNanos(r.from_ns).to_rfc3339(), "seconds": r.seconds,
        "requested_by": r.requested_by, "reason": r.reason,
        "created_utc": UtcNanos(r.created_ns).to_rfc3339(),
        "answered_utc": r.answered_ns.map(|t| UtcNanos(t).to_rfc3339()),
        "error": r.error,
    })))
}

/// `GET /v1/clip-requests/{id}/wav`: the audio a sensor sent. Audited.
pub async fn clip_request_wav(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(Perm::Audio)?;
    let key = id.clone();
    let Some(wav) = app.read(move |db| db.clip_request_wav(&key)).await? else {
        return Err(ApiError::NotFound(format!("audio for clip request {id:?}")));
    };
    crate::access::audit(
        &app,
        &caller,
        "read.audio",
        &format!("clip-request/{id}"),
        None,
    )
    .await?;
    Ok(([(axum::http::header::CONTENT_TYPE, "audio/wav")], wav).into_response())
}

/// `POST /v1/clip-uploads`: a sensor's answer to a request, signed like a
/// report.
pub async fn post_clip_upload(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let limit = app.config.limits.max_clip_upload_bytes;
    let (_, sensor_id, body) = signed_request(&app, &headers, body, limit).await?;
    let refuse = |r: Rejection| ApiError::Refused(ingest::refuse(&app, Transport::Http, r));
    let upload: wire::ClipUploadV1 = serde_json::from_slice(&body).map_err(|e| {
        refuse(Rejection::new(
            Reason::Malformed,
            format!("clip upload is not valid v1 JSON: {e}"),
        ))
    })?;
    let invalid = |m: String| refuse(Rejection::new(Reason::Invalid, m));
    if upload.version != 1 || upload.sensor != sensor_id.as_str() {
        return Err(invalid(format!(
            "clip upload version {} for sensor {:?}: version 1 from the signing sensor",
            upload.version, upload.sensor
        )));
    }
    let (wav, error) = match (&upload.wav_b64, &upload.error) {
        (Some(b64), None) => {
            let wav = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| invalid(format!("wav_b64 is not base64: {e}")))?;
            if wav.len() < 44 || &wav[..4] != b"RIFF" || &wav[8..12] != b"WAVE" {
                return Err(invalid("wav_b64 is not a WAV file".into()));
            }
            (Some(wav), None)
        }
        (None, Some(e)) if !e.is_empty() && e.len() <= 500 => (None, Some(e.clone())),
        _ => {
            return Err(invalid(
                "exactly one of wav_b64 and error (≤ 500 characters)".into(),
            ))
        }
    };
    let (id, who) = (upload.request.clone(), sensor_id.clone());
    let now = crate::now_ns();
    let answered = app
        .writer
        .run(move |db| db.answer_clip_request(&id, &who, wav.as_deref(), error.as_deref(), now))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    if !answered {
        return Err(ApiError::NotFound(format!(
            "no pending clip request {:?} for this sensor",
            upload.request
        )));
    }
    Ok(Json(json!({"request": upload.request, "stored": true})))
}
