//! The HTTP API: ingest, the REST views, the alert feeds (SSE, WebSocket), CAP
//! and GeoJSON. One error type turns every failure into the right status with a
//! one-line JSON message; internal details are logged, not returned.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::stream::{self, Stream, StreamExt};
use model::UtcNanos;
use serde::Deserialize;
use serde_json::{json, Value};
use store::{AlertRow, IncidentFilter, PulseFilter};
use tokio_stream::wrappers::BroadcastStream;

use crate::access::{audit, redact, redact_value, Caller, Perm};
use crate::doc::{AlertDoc, IncidentDoc};
use crate::{formats, App};

/// Every API failure.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    /// A refused sensor report (any ingest rule); the status is the reason's.
    #[error("{}", public_message(.0))]
    Refused(crate::ingest::Rejection),
    #[error("{0} not found")]
    NotFound(String),
    /// No credentials, or ones that are not (or no longer) valid.
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials whose role does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// Someone else changed it first; read again and retry.
    #[error("{0}")]
    Conflict(String),
    #[error("internal error")]
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Refused(r) => {
                if r.reason == crate::ingest::Reason::Unavailable {
                    eprintln!("shotfix serve: {}", r.message);
                }
                r.reason.status()
            }
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Internal(detail) => {
                eprintln!("shotfix serve: {detail}");
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        let mut response = (status, Json(json!({"error": self.to_string()}))).into_response();
        if status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"shotfix\""),
            );
        }
        response
    }
}

/// A refusal's message for the sender; a store failure's detail stays in the log.
fn public_message(r: &crate::ingest::Rejection) -> String {
    match r.reason {
        crate::ingest::Reason::Unavailable => "storage unavailable".into(),
        _ => r.message.clone(),
    }
}

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/reports", post(crate::ingest::post_report))
        .route("/v1/heartbeats", post(crate::health::post_heartbeat))
        .route("/v1/clip-uploads", post(crate::health::post_clip_upload))
        .route(
            "/v1/sensors/{id}/clip-requests",
            post(crate::health::request_clip),
        )
        .route(
            "/v1/clip-requests/{id}",
            get(crate::health::clip_request_status),
        )
        .route(
            "/v1/clip-requests/{id}/wav",
            get(crate::health::clip_request_wav),
        )
        .route("/v1/health", get(health))
        .route("/metrics", get(metrics))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/sensors", get(sensors))
        .route("/v1/incidents", get(incidents))
        .route("/v1/incidents.geojson", get(incidents_geojson))
        .route("/v1/incidents/{id}", get(incident))
        .route("/v1/incidents/{id}/versions", get(incident_versions))
        .route("/v1/incidents/{id}/cap", get(incident_cap))
        .route("/v1/incidents/{id}/geojson", get(incident_geojson))
        .route("/v1/incidents/{id}/clips", get(incident_clips))
        .route("/v1/shots", get(shots))
        .route("/v1/pulses", get(pulses))
        .route("/v1/pulses/{sensor}/{id}/clip", get(clip))
        .route("/v1/alerts", get(alerts))
        .route("/v1/alerts/stream", get(alerts_sse))
        .route("/v1/alerts/ws", get(alerts_ws))
        .merge(crate::access::routes())
        .merge(crate::review::routes())
        .merge(crate::public::routes())
        .merge(crate::evidence::routes())
        .merge(crate::web::routes())
        .merge(crate::analytics::routes())
        .merge(crate::outcomes::routes())
        .merge(crate::measures::routes())
        .with_state(app)
}

async fn health(State(app): State<Arc<App>>) -> Result<Json<Value>, ApiError> {
    let (pulses, outbox) = app
        .read(|db| Ok((db.pulse_count()?, db.outbox_counts()?)))
        .await?;
    let counters: serde_json::Map<String, Value> = app
        .counters
        .snapshot()
        .into_iter()
        .map(|(k, v)| (k, json!(v)))
        .collect();
    Ok(Json(json!({
        "status": "ok",
        "software": crate::doc::software(),
        "sensors": app.sensors.len(),
        "pulses_stored": pulses,
        "outbox": {"pending": outbox.pending, "delivered": outbox.delivered, "dead": outbox.dead},
        "counters": counters,
    })))
}

async fn metrics(State(app): State<Arc<App>>, caller: Caller) -> Result<Response, ApiError> {
    caller.require(Perm::Administer)?;
    let mut text = String::new();
    for (name, value) in app.counters.snapshot() {
        text.push_str(&format!(
            "# TYPE shotfix_{name}_total counter\nshotfix_{name}_total {value}\n"
        ));
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
}

async fn sensors(State(app): State<Arc<App>>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(Perm::Sensors)?;
    let beats: HashMap<String, (i64, Value)> = crate::health::latest(&app)
        .await?
        .into_iter()
        .map(|(s, t, v)| (s, (t, v)))
        .collect();
    let mut list: Vec<Value> = app
        .sensors
        .values()
        .map(|s| {
            let mut v =
                json!({"id": s.row.id, "lat": s.row.lat, "lon": s.row.lon, "alt_m": s.row.alt_m});
            if let Some((received, beat)) = beats.get(&s.row.id) {
                v["heartbeat"] = beat.clone();
                v["heartbeat_received_utc"] = json!(UtcNanos(*received).to_rfc3339());
            }
            v
        })
        .collect();
    list.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    Ok(Json(json!({
        "sensors": list,
        // The dashboard flags clocks worse than what ingest accepts.
        "max_clock_error_ms": app.config.limits.max_clock_error_ms,
    })))
}

/// Query parameters for incident and shot listings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentQuery {
    /// RFC 3339.
    pub(crate) since: Option<String>,
    pub(crate) until: Option<String>,
    /// min_lon,min_lat,max_lon,max_lat
    pub(crate) bbox: Option<String>,
    pub(crate) class: Option<String>,
    pub(crate) limit: Option<usize>,
}

pub fn time_param(name: &str, v: &Option<String>) -> Result<Option<i64>, ApiError> {
    v.as_deref()
        .map(|s| {
            UtcNanos::parse_rfc3339(s)
                .map(|t| t.0)
                .map_err(|e| ApiError::BadRequest(format!("{name}: {e}")))
        })
        .transpose()
}

impl IncidentQuery {
    pub(crate) fn filter(&self) -> Result<IncidentFilter, ApiError> {
        let bbox = match &self.bbox {
            None => None,
            Some(text) => {
                let v: Vec<f64> = text
                    .split(',')
                    .map(|p| p.trim().parse::<f64>())
                    .collect::<Result<_, _>>()
                    .map_err(|_| {
                        ApiError::BadRequest(
                            "bbox: four numbers min_lon,min_lat,max_lon,max_lat".into(),
                        )
                    })?;
                match v.as_slice() {
                    [a, b, c, d] if a <= c && b <= d => Some([*a, *b, *c, *d]),
                    _ => {
                        return Err(ApiError::BadRequest(
                            "bbox: four numbers min_lon,min_lat,max_lon,max_lat".into(),
                        ))
                    }
                }
            }
        };
        if let Some(class) = &self.class {
            if ![
                "gunfire",
                "probable_gunfire",
                "fireworks",
                "other",
                "unknown",
            ]
            .contains(&class.as_str())
            {
                return Err(ApiError::BadRequest(format!(
                    "class {class:?}: one of gunfire, probable_gunfire, fireworks, other, unknown"
                )));
            }
        }
        Ok(IncidentFilter {
            since_ns: time_param("since", &self.since)?,
            until_ns: time_param("until", &self.until)?,
            bbox,
            class: self.class.clone(),
            limit: self.limit.unwrap_or(1_000).min(10_000),
        })
    }
}

async fn incident_docs(app: &Arc<App>, q: &IncidentQuery) -> Result<Vec<IncidentDoc>, ApiError> {
    let filter = q.filter()?;
    let rows = app.read(move |db| db.incidents(&filter)).await?;
    Ok(rows
        .iter()
        .filter_map(|r| serde_json::from_str(&r.doc).ok())
        .collect())
}

/// Records a read of incidents' exact places.
async fn audit_incidents(
    app: &App,
    caller: &Caller,
    what: &str,
    docs: &[IncidentDoc],
) -> Result<(), ApiError> {
    let ids: Vec<&str> = docs.iter().map(|d| d.id.as_str()).collect();
    audit(app, caller, "read.incidents", what, Some(ids.join(","))).await
}

async fn incidents(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<IncidentQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Perm::Incidents)?;
    let mut docs = incident_docs(&app, &q).await?;
    audit_incidents(&app, &caller, "/v1/incidents", &docs).await?;
    docs.iter_mut().for_each(|d| redact(&caller, d));
    Ok(Json(json!({"frame": "wgs84", "incidents": docs})))
}

async fn incidents_geojson(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<IncidentQuery>,
) -> Result<Response, ApiError> {
    caller.require(Perm::Incidents)?;
    let mut docs = incident_docs(&app, &q).await?;
    audit_incidents(&app, &caller, "/v1/incidents.geojson", &docs).await?;
    docs.iter_mut().for_each(|d| redact(&caller, d));
    Ok(geojson_response(formats::geojson_collection(&docs)))
}

fn geojson_response(v: Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/geo+json")],
        v.to_string(),
    )
        .into_response()
}

async fn incident_doc(app: &Arc<App>, id: String) -> Result<IncidentDoc, ApiError> {
    let key = id.clone();
    let row = app.read(move |db| db.incident(&key)).await?;
    row.and_then(|r| serde_json::from_str(&r.doc).ok())
        .ok_or(ApiError::NotFound(format!("incident {id}")))
}

async fn incident(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<IncidentDoc>, ApiError> {
    caller.require(Perm::Incidents)?;
    let mut doc = incident_doc(&app, id).await?;
    audit(&app, &caller, "read.incident", &doc.id, None).await?;
    redact(&caller, &mut doc);
    Ok(Json(doc))
}

async fn incident_versions(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Perm::Incidents)?;
    let key = id.clone();
    let versions = app.read(move |db| db.incident_versions(&key)).await?;
    if versions.is_empty() {
        return Err(ApiError::NotFound(format!("incident {id}")));
    }
    audit(&app, &caller, "read.incident", &id, Some("versions".into())).await?;
    let list: Vec<Value> = versions
        .into_iter()
        .map(|(version, created_ns, doc)| {
            let mut incident = serde_json::from_str::<Value>(&doc).unwrap_or(Value::Null);
            redact_value(&caller, &mut incident);
            json!({
                "version": version,
                "created_utc": UtcNanos(created_ns).to_rfc3339(),
                "incident": incident,
            })
        })
        .collect();
    Ok(Json(json!({"id": id, "versions": list})))
}

async fn incident_cap(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(Perm::Incidents)?;
    let key = id.clone();
    let alerts: Vec<AlertRow> = app
        .read(move |db| {
            Ok(db
                .alerts_after(0, 0)?
                .into_iter()
                .filter(|a| a.incident == key)
                .collect())
        })
        .await?;
    let (Some(first), Some(last)) = (alerts.first(), alerts.last()) else {
        return Err(ApiError::NotFound(format!("alert for incident {id}")));
    };
    let doc: AlertDoc =
        serde_json::from_str(&last.doc).map_err(|e| ApiError::Internal(e.to_string()))?;
    audit(&app, &caller, "read.incident", &id, Some("cap".into())).await?;
    let first_sent = UtcNanos(first.created_ns).to_rfc3339();
    let xml = formats::cap(
        &doc.incident,
        &last.kind,
        &UtcNanos(last.created_ns).to_rfc3339(),
        Some((first.version, &first_sent)),
    );
    Ok(([(header::CONTENT_TYPE, "application/cap+xml")], xml).into_response())
}

async fn incident_geojson(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(Perm::Incidents)?;
    let mut doc = incident_doc(&app, id).await?;
    redact(&caller, &mut doc);
    audit(
        &app,
        &caller,
        "read.incident",
        &doc.id,
        Some("geojson".into()),
    )
    .await?;
    Ok(geojson_response(formats::geojson_feature(&doc)))
}

async fn shots(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<IncidentQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Perm::Evidence)?;
    let docs = incident_docs(&app, &q).await?;
    audit_incidents(&app, &caller, "/v1/shots", &docs).await?;
    let shots: Vec<Value> = docs
        .iter()
        .flat_map(|d| d.shots.iter().map(move |s| (d, s)))
        .map(|(d, s)| {
            let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut v {
                m.insert("incident".into(), json!(d.id));
            }
            v
        })
        .collect();
    Ok(Json(json!({"frame": "wgs84", "shots": shots})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PulseQuery {
    sensor: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<usize>,
}

async fn pulses(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<PulseQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Perm::Evidence)?;
    let filter = PulseFilter {
        sensor: q.sensor.clone(),
        since_ns: time_param("since", &q.since)?,
        until_ns: time_param("until", &q.until)?,
        limit: q.limit.unwrap_or(1_000).min(100_000),
    };
    let rows = app.read(move |db| db.pulses(&filter)).await?;
    let list: Vec<Value> = rows
        .into_iter()
        .map(|p| {
            json!({
                "sensor": p.sensor, "id": p.id, "t_utc": UtcNanos(p.t_ns).to_rfc3339(),
                "snr_db": p.snr_db, "peak_db_spl": p.peak_db_spl, "report": p.report,
                "received_utc": UtcNanos(p.received_ns).to_rfc3339(),
                "features": p.extra_json.and_then(|e| serde_json::from_str::<Value>(&e).ok()),
            })
        })
        .collect();
    Ok(Json(json!({"pulses": list})))
}

/// Which of an incident's arrivals have a stored clip (`sensor/pulse`, as in
/// the arrivals), so a page fetches only clips that exist. No audio is read.
async fn incident_clips(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Perm::Audio)?;
    let doc = incident_doc(&app, id).await?;
    let arrivals: Vec<(String, String)> = doc
        .shots
        .iter()
        .flat_map(|s| s.arrivals.iter())
        .map(|a| (a.sensor.clone(), a.pulse.clone()))
        .collect();
    let found = app
        .read(move |db| {
            let mut found = Vec::new();
            for (sensor, pulse) in arrivals {
                let own = pulse_in_sensor(&sensor, &pulse).to_string();
                if !found.contains(&pulse) && db.has_clip(&sensor, &own)? {
                    found.push(pulse);
                }
            }
            Ok(found)
        })
        .await?;
    Ok(Json(json!({"clips": found})))
}

/// A pulse's id as its sensor sent it: arrivals name pulses `SENSOR/ID`.
pub fn pulse_in_sensor<'a>(sensor: &str, pulse: &'a str) -> &'a str {
    pulse
        .strip_prefix(sensor)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(pulse)
}

async fn clip(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((sensor, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.require(Perm::Audio)?;
    let (s, p) = (sensor.clone(), id.clone());
    let wav = app.read(move |db| db.clip(&s, &p)).await?;
    match wav {
        Some(bytes) => {
            audit(&app, &caller, "read.audio", &format!("{sensor}/{id}"), None).await?;
            Ok(([(header::CONTENT_TYPE, "audio/wav")], bytes).into_response())
        }
        None => Err(ApiError::NotFound(format!("clip of pulse {sensor}/{id}"))),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertQuery {
    /// Only alerts with a sequence number above this.
    after: Option<i64>,
    limit: Option<usize>,
}

fn alert_doc(row: &AlertRow) -> Option<AlertDoc> {
    let mut doc: AlertDoc = serde_json::from_str(&row.doc).ok()?;
    doc.seq = row.seq;
    doc.published_utc = Some(UtcNanos(row.created_ns).to_rfc3339());
    Some(doc)
}

async fn alerts(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<AlertQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Perm::Live)?;
    let (after, limit) = (q.after.unwrap_or(0), q.limit.unwrap_or(1_000).min(10_000));
    let rows = app.read(move |db| db.alerts_after(after, limit)).await?;
    let mut docs: Vec<AlertDoc> = rows.iter().filter_map(alert_doc).collect();
    docs.iter_mut()
        .for_each(|a| redact(&caller, &mut a.incident));
    let ids: Vec<String> = docs
        .iter()
        .map(|a| format!("{}@{}", a.incident.id, a.seq))
        .collect();
    audit(
        &app,
        &caller,
        "read.incidents",
        "/v1/alerts",
        Some(ids.join(",")),
    )
    .await?;
    Ok(Json(json!({"alerts": docs})))
}

/// Where a feed resumes: `Last-Event-ID` (SSE reconnect) or `?after=`.
fn resume_after(headers: &HeaderMap, q: &AlertQuery) -> i64 {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .or(q.after)
        .unwrap_or(i64::MAX)
}

/// How often an open feed checks that its credential still holds.
const CREDENTIAL_RECHECK: Duration = Duration::from_secs(5);

/// The alert feed: stored alerts after `after` (if resuming), then live ones,
/// each exactly once and in sequence order, for as long as the caller's
/// credential holds.
async fn feed(app: Arc<App>, caller: Caller, after: i64) -> impl Stream<Item = AlertDoc> {
    // Subscribe before reading the backlog so nothing falls between the two.
    let live = BroadcastStream::new(app.alerts.subscribe()).filter_map(|r| async move { r.ok() });
    let backlog: Vec<AlertDoc> = if after == i64::MAX {
        Vec::new()
    } else {
        app.read(move |db| db.alerts_after(after, 0))
            .await
            .unwrap_or_default()
            .iter()
            .filter_map(alert_doc)
            .collect()
    };
    let mut last = backlog
        .last()
        .map_or(if after == i64::MAX { 0 } else { after }, |a| a.seq);
    let mut stopping = app.stopping.subscribe();
    let writer = app.writer.clone();
    // The credential is checked again while the feed is open: a revoked
    // token, an ended session, a disabled person or a changed role ends it
    // within seconds.
    let (recheck, recheck_caller) = (Arc::clone(&app), caller.clone());
    let revoked = async move {
        let Some(credential) = recheck_caller.credential.clone() else {
            return std::future::pending().await;
        };
        loop {
            tokio::time::sleep(CREDENTIAL_RECHECK).await;
            if !crate::access::still_valid(&recheck, &credential, recheck_caller.role).await {
                return;
            }
        }
    };
    stream::iter(backlog)
        .chain(live.filter(move |a| {
            let fresh = a.seq > last;
            if fresh {
                last = a.seq;
            }
            async move { fresh }
        }))
        .take_until(async move {
            let _ = stopping.wait_for(|s| *s).await;
        })
        .take_until(revoked)
        .map(move |mut a| {
            redact(&caller, &mut a.incident);
            // Each alert a subscriber receives is a read of an exact place.
            writer.audit_nowait(caller.audit_entry(
                "read.alert",
                &a.incident.id,
                Some(format!("seq {} {}", a.seq, a.kind)),
            ));
            a
        })
}

async fn alerts_sse(
    State(app): State<Arc<App>>,
    caller: Caller,
    headers: HeaderMap,
    Query(q): Query<AlertQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    caller.require(Perm::Live)?;
    let after = resume_after(&headers, &q);
    audit(
        &app,
        &caller,
        "stream.alerts",
        "/v1/alerts/stream",
        Some(format!("after {after}")),
    )
    .await?;
    let events = feed(app, caller, after).await.map(|a| {
        Ok(Event::default()
            .id(a.seq.to_string())
            .event(a.kind.clone())
            .data(serde_json::to_string(&a).unwrap_or_default()))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

async fn alerts_ws(
    State(app): State<Arc<App>>,
    caller: Caller,
    headers: HeaderMap,
    Query(q): Query<AlertQuery>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    caller.require(Perm::Live)?;
    // Browsers send cookies with a WebSocket handshake from any page; only
    // this server's own pages may open one with a session.
    if let (Some(origin), Some(host)) = (headers.get(header::ORIGIN), headers.get(header::HOST)) {
        let origin = origin.to_str().unwrap_or_default();
        let host = host.to_str().unwrap_or_default();
        let same = origin
            .split_once("://")
            .is_some_and(|(_, rest)| rest == host);
        if !same {
            return Err(ApiError::Forbidden(format!(
                "WebSocket from another origin ({origin})"
            )));
        }
    }
    let after = resume_after(&headers, &q);
    audit(
        &app,
        &caller,
        "stream.alerts",
        "/v1/alerts/ws",
        Some(format!("after {after}")),
    )
    .await?;
    Ok(ws.on_upgrade(move |socket| ws_feed(socket, app, caller, after)))
}

async fn ws_feed(mut socket: WebSocket, app: Arc<App>, caller: Caller, after: i64) {
    let mut alerts = Box::pin(feed(app, caller, after).await);
    loop {
        tokio::select! {
            next = alerts.next() => {
                let Some(a) = next else { return };
                let text = serde_json::to_string(&a).unwrap_or_default();
                if socket.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
            }
            incoming = socket.recv() => {
                match incoming {
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    _ => {}
                }
            }
        }
    }
}
