//! What officers found, and what the alerts missed (docs/analytics.md):
//! `POST /v1/incidents/{id}/outcome`, `GET /v1/incidents/{id}/outcomes`,
//! `POST /v1/misses`, `GET /v1/misses`. Outcomes and misses are appended,
//! never edited; an incident's latest outcome is the one the measures count.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use model::UtcNanos;
use serde::Deserialize;
use serde_json::{json, Value};
use store::{MissRow, OutcomeRow};

use crate::access::{audit, Caller, Perm};
use crate::api::{time_param, ApiError};
use crate::App;

/// What officers can report finding. `no_evidence` stands alone.
pub const FOUND: [&str; 5] = [
    "casings",
    "gun_recovered",
    "arrest",
    "victim_aided",
    "no_evidence",
];

/// Longest note, characters.
const MAX_NOTE_CHARS: usize = 2_000;

/// Longest officer time recorded for one incident, minutes (a week).
const MAX_OFFICER_MINUTES: f64 = 10_080.0;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/incidents/{id}/outcome", post(record_outcome))
        .route("/v1/incidents/{id}/outcomes", get(outcomes))
        .route("/v1/misses", post(record_miss).get(misses))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeRequest {
    pub found: Vec<String>,
    #[serde(default)]
    pub officer_minutes: Option<f64>,
    #[serde(default)]
    pub note: Option<String>,
}

impl OutcomeRequest {
    /// The `found` column: the kinds checked, in [`FOUND`]'s order, comma-separated.
    pub fn check(&self) -> Result<String, String> {
        if self.found.is_empty() {
            return Err(format!("found: one or more of {}", FOUND.join(", ")));
        }
        for f in &self.found {
            if !FOUND.contains(&f.as_str()) {
                return Err(format!("found {f:?}: one of {}", FOUND.join(", ")));
            }
        }
        if self.found.iter().any(|f| f == "no_evidence") && self.found.len() > 1 {
            return Err("found: no_evidence cannot be listed with a finding".into());
        }
        if let Some(m) = self.officer_minutes {
            if !(m.is_finite() && (0.0..=MAX_OFFICER_MINUTES).contains(&m)) {
                return Err(format!("officer_minutes: 0 to {MAX_OFFICER_MINUTES}"));
            }
        }
        check_note(self.note.as_deref())?;
        Ok(FOUND
            .iter()
            .filter(|k| self.found.iter().any(|f| f == *k))
            .copied()
            .collect::<Vec<_>>()
            .join(","))
    }
}

fn check_note(note: Option<&str>) -> Result<(), String> {
    match note {
        Some(n) if n.chars().count() > MAX_NOTE_CHARS => {
            Err(format!("note: at most {MAX_NOTE_CHARS} characters"))
        }
        _ => Ok(()),
    }
}

fn outcome_json(o: &OutcomeRow) -> Value {
    json!({
        "seq": o.seq,
        "incident": o.incident,
        "recorded_utc": UtcNanos(o.recorded_ns).to_rfc3339(),
        "by": o.actor,
        "found": o.found.split(',').filter(|f| !f.is_empty()).collect::<Vec<_>>(),
        "officer_minutes": o.officer_minutes,
        "note": o.note,
    })
}

async fn record_outcome(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<OutcomeRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(Perm::Outcomes)?;
    let found = req.check().map_err(ApiError::BadRequest)?;
    let key = id.clone();
    if app.read(move |db| db.incident(&key)).await?.is_none() {
        return Err(ApiError::NotFound(format!("incident {id}")));
    }
    let mut row = OutcomeRow {
        seq: 0,
        incident: id.clone(),
        recorded_ns: crate::now_ns(),
        actor: caller.actor.clone(),
        found,
        officer_minutes: req.officer_minutes,
        note: req.note.clone().filter(|n| !n.trim().is_empty()),
    };
    let save = row.clone();
    row.seq = app
        .writer
        .run(move |db| db.add_outcome(&save))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    app.writer
        .audit_nowait(caller.audit_entry("outcome.record", &id, Some(row.found.clone())));
    Ok((StatusCode::CREATED, Json(outcome_json(&row))))
}

async fn outcomes(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Perm::Incidents)?;
    let key = id.clone();
    let (incident, rows) = app
        .read(move |db| Ok((db.incident(&key)?, db.outcomes_of(&key)?)))
        .await?;
    if incident.is_none() {
        return Err(ApiError::NotFound(format!("incident {id}")));
    }
    audit(&app, &caller, "read.outcomes", &id, None).await?;
    Ok(Json(json!({
        "incident": id,
        "outcomes": rows.iter().map(outcome_json).collect::<Vec<_>>(),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MissRequest {
    /// When the shooting happened, RFC 3339.
    time_utc: String,
    lat: f64,
    lon: f64,
    #[serde(default)]
    note: Option<String>,
}

fn miss_json(m: &MissRow) -> Value {
    json!({
        "seq": m.seq,
        "time_utc": UtcNanos(m.t_ns).to_rfc3339(),
        "lat": m.lat, "lon": m.lon,
        "recorded_utc": UtcNanos(m.recorded_ns).to_rfc3339(),
        "by": m.actor,
        "note": m.note,
    })
}

async fn record_miss(
    State(app): State<Arc<App>>,
    caller: Caller,
    Json(req): Json<MissRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(Perm::Outcomes)?;
    let t = UtcNanos::parse_rfc3339(&req.time_utc)
        .map_err(|e| ApiError::BadRequest(format!("time_utc: {e}")))?;
    if !((-90.0..=90.0).contains(&req.lat) && (-180.0..=180.0).contains(&req.lon)) {
        return Err(ApiError::BadRequest(
            "lat, lon: a latitude and a longitude".into(),
        ));
    }
    let now = crate::now_ns();
    if t.0 > now + 60_000_000_000 {
        return Err(ApiError::BadRequest("time_utc: in the future".into()));
    }
    check_note(req.note.as_deref()).map_err(ApiError::BadRequest)?;
    let mut row = MissRow {
        seq: 0,
        t_ns: t.0,
        lat: req.lat,
        lon: req.lon,
        recorded_ns: now,
        actor: caller.actor.clone(),
        note: req.note.filter(|n| !n.trim().is_empty()),
    };
    let save = row.clone();
    row.seq = app
        .writer
        .run(move |db| db.add_miss(&save))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    app.writer.audit_nowait(caller.audit_entry(
        "miss.record",
        &format!("miss {}", row.seq),
        Some(t.to_rfc3339()),
    ));
    Ok((StatusCode::CREATED, Json(miss_json(&row))))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MissQuery {
    since: Option<String>,
    until: Option<String>,
}

async fn misses(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<MissQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Perm::Incidents)?;
    let since = time_param("since", &q.since)?.unwrap_or(i64::MIN);
    let until = time_param("until", &q.until)?.unwrap_or(i64::MAX);
    let rows = app.read(move |db| db.misses(since, until)).await?;
    audit(
        &app,
        &caller,
        "read.misses",
        "/v1/misses",
        Some(format!("{} misses", rows.len())),
    )
    .await?;
    Ok(Json(
        json!({"misses": rows.iter().map(miss_json).collect::<Vec<_>>()}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(found: &[&str]) -> OutcomeRequest {
        OutcomeRequest {
            found: found.iter().map(|f| f.to_string()).collect(),
            officer_minutes: Some(25.0),
            note: None,
        }
    }

    #[test]
    fn findings_are_checked_and_kept_in_a_fixed_order() {
        assert_eq!(
            req(&["arrest", "casings"]).check().unwrap(),
            "casings,arrest"
        );
        assert!(req(&[]).check().is_err());
        assert!(req(&["a gun"]).check().unwrap_err().contains("a gun"));
        assert!(req(&["no_evidence", "casings"]).check().is_err());
        let mut r = req(&["no_evidence"]);
        r.officer_minutes = Some(-1.0);
        assert!(r.check().unwrap_err().contains("officer_minutes"));
        r.officer_minutes = Some(f64::NAN);
        assert!(r.check().is_err());
    }
}
