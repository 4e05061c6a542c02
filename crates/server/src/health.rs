//! Sensor heartbeats (`POST /v1/heartbeats`) and the settings pushed back in
//! their answers.
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
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use model::UtcNanos;
use wire::{HeartbeatReplyV1, HeartbeatV1};

use crate::api::ApiError;
use crate::ingest::{self, Reason, Rejection, Transport};
use crate::App;

/// Longest text field in a heartbeat, characters.
const MAX_TEXT: usize = 128;

/// `POST /v1/heartbeats`.
pub async fn post_heartbeat(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (parts, body) = ingest::read_signed(&app, &headers, body).await?;
    let signed = parts.signed(&body);
    let refuse = |r: Rejection| ApiError::Refused(ingest::refuse(&app, Transport::Http, r));
    let sensor = ingest::authenticate(&app, &signed).map_err(refuse)?;
    if !ingest::take_token(&app, sensor) {
        return Err(refuse(Rejection::new(
            Reason::RateLimited,
            format!(
                "sensor {} is sending faster than its rate limit",
                signed.sensor
            ),
        )));
    }
    let beat: HeartbeatV1 = serde_json::from_slice(&body).map_err(|e| {
        refuse(Rejection::new(
            Reason::Malformed,
            format!("heartbeat is not valid v1 JSON: {e}"),
        ))
    })?;
    check(&beat, signed.sensor).map_err(|e| refuse(Rejection::new(Reason::Invalid, e)))?;
    let id = signed.sensor.to_string();
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
    let reply = HeartbeatReplyV1 {
        version: wire::HEARTBEAT_VERSION,
        sensor: signed.sensor.to_string(),
        settings: (beat.settings_version != wanted).then(|| app.config.agent.clone()),
        settings_version: wanted,
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
