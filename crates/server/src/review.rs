//! Human review: a queue of machine-classified incidents, and a reviewer's
//! decision (confirm, reclassify, dismiss, adjust rounds or shooters,
//! relocate), always with a written reason.
//!
//! The machine's alert has gone out already (unless the operator chose to
//! hold low-confidence ones, [`crate::config::ReviewConfig`]). A decision is
//! a new version of the incident, made where every version is made (the
//! pipeline thread, so version numbers never collide), stored with its
//! author and reason in the hash-chained history, and sent to every
//! subscriber as an alert message ([`alert_kind`]): SSE, WebSocket, webhooks
//! and CAP (`Update`, or `Cancel` for a dismissal). Later machine versions
//! keep the decision; the machine's own result stays beside it in each
//! document (`review.machine`) and in the history.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use model::UtcNanos;
use serde::Deserialize;
use serde_json::{json, Value};
use store::{Change, IncidentFilter};
use tokio::sync::oneshot;

use crate::access::{audit, Caller, Perm};
use crate::api::{time_param, ApiError};
use crate::doc::{IncidentDoc, ReviewDoc};
use crate::pipeline::{ALERT, CANCEL, UPDATE};
use crate::App;

/// Longest reason, characters.
pub const MAX_REASON_CHARS: usize = 2_000;

/// A review on its way to the pipeline thread.
#[derive(Debug)]
pub struct ReviewJob {
    pub id: String,
    pub review: ReviewDoc,
    pub change: Change,
    /// The incident as stored when the request came (used when it is no
    /// longer open in the pipeline).
    pub stored: IncidentDoc,
    /// Whether its first alert went out.
    pub alerted: bool,
    pub reply: oneshot::Sender<Result<IncidentDoc, ApiError>>,
}

/// A new review on top of the earlier ones: its overrides replace theirs,
/// theirs stay where it has none.
pub fn merge(earlier: Option<&ReviewDoc>, new: &ReviewDoc) -> ReviewDoc {
    // A dismissal's class is part of the dismissal: a later decision that is
    // not a dismissal starts from the machine's class unless it names one.
    let e = earlier.map(|e| {
        let mut e = e.clone();
        if e.status == "dismissed" && new.status != "dismissed" {
            e.class = None;
        }
        e
    });
    let e = e.as_ref();
    ReviewDoc {
        status: new.status.clone(),
        by: new.by.clone(),
        at_utc: new.at_utc.clone(),
        reason: new.reason.clone(),
        class: new
            .class
            .clone()
            .or_else(|| e.and_then(|e| e.class.clone())),
        rounds: new.rounds.or(e.and_then(|e| e.rounds)),
        shooters: new.shooters.or(e.and_then(|e| e.shooters)),
        lat: new.lat.or(e.and_then(|e| e.lat)),
        lon: new.lon.or(e.and_then(|e| e.lon)),
        machine: None,
    }
}

/// The alert message a reviewed version goes out as: a dismissal cancels an
/// alert that went out; any other decision on an alerted incident is an
/// update; an incident not yet alerted (held, or classed not gunfire) is
/// alerted when a person confirms it or calls it gunfire.
pub fn alert_kind(alerted: bool, status: &str, class: &str) -> Option<&'static str> {
    let gunfire = matches!(class, "gunfire" | "probable_gunfire");
    match (alerted, status) {
        (true, "dismissed") => Some(CANCEL),
        (false, "dismissed") => None,
        (true, _) => Some(UPDATE),
        (false, "confirmed") => Some(ALERT),
        (false, _) => gunfire.then_some(ALERT),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    /// `confirm`, `reclassify`, `dismiss`, `adjust` or `relocate`.
    pub action: String,
    pub reason: String,
    pub class: Option<String>,
    pub rounds: Option<usize>,
    pub shooters: Option<usize>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

const CLASSES: [&str; 4] = ["gunfire", "probable_gunfire", "fireworks", "other"];

impl ReviewRequest {
    /// Checks the request; the review it makes, by `caller`.
    pub fn review(&self, caller: &Caller) -> Result<ReviewDoc, String> {
        let reason = self.reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
            return Err(format!(
                "reason: required, at most {MAX_REASON_CHARS} characters"
            ));
        }
        if let Some(c) = &self.class {
            if !CLASSES.contains(&c.as_str()) {
                return Err(format!("class {c:?}: one of {}", CLASSES.join(", ")));
            }
        }
        let only = |allowed: &[&str]| {
            let given = [
                ("class", self.class.is_some()),
                ("rounds", self.rounds.is_some()),
                ("shooters", self.shooters.is_some()),
                ("lat", self.lat.is_some()),
                ("lon", self.lon.is_some()),
            ];
            match given.iter().find(|(f, set)| *set && !allowed.contains(f)) {
                Some((f, _)) => Err(format!(
                    "{}: {f} does not belong to this action",
                    self.action
                )),
                None => Ok(()),
            }
        };
        let mut review = ReviewDoc {
            status: String::new(),
            by: caller.actor.clone(),
            at_utc: UtcNanos(crate::now_ns()).to_rfc3339(),
            reason: reason.to_string(),
            class: self.class.clone(),
            rounds: self.rounds,
            shooters: self.shooters,
            lat: self.lat,
            lon: self.lon,
            machine: None,
        };
        review.status = match self.action.as_str() {
            "confirm" => {
                only(&[])?;
                "confirmed"
            }
            "reclassify" => {
                only(&["class"])?;
                if self.class.is_none() {
                    return Err("reclassify: class is required".into());
                }
                "reclassified"
            }
            "dismiss" => {
                only(&["class"])?;
                if matches!(self.class.as_deref(), Some("gunfire" | "probable_gunfire")) {
                    return Err("dismiss: class must be fireworks or other".into());
                }
                review.class = Some(self.class.clone().unwrap_or_else(|| "other".into()));
                "dismissed"
            }
            "adjust" => {
                only(&["rounds", "shooters"])?;
                match (self.rounds, self.shooters) {
                    (None, None) => return Err("adjust: give rounds, shooters or both".into()),
                    (Some(r), _) if !(1..=1_000).contains(&r) => {
                        return Err("rounds: 1–1000".into())
                    }
                    (_, Some(s)) if !(1..=50).contains(&s) => return Err("shooters: 1–50".into()),
                    _ => {}
                }
                "adjusted"
            }
            "relocate" => {
                only(&["lat", "lon"])?;
                match (self.lat, self.lon) {
                    (Some(lat), Some(lon))
                        if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) => {}
                    _ => return Err("relocate: lat and lon are required and must be valid".into()),
                }
                "relocated"
            }
            other => {
                return Err(format!(
                    "action {other:?}: confirm, reclassify, dismiss, adjust or relocate"
                ))
            }
        }
        .to_string();
        Ok(review)
    }
}

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/incidents/{id}/review", post(post_review))
        .route("/v1/incidents/{id}/history", get(history))
        .route("/v1/review/queue", get(queue))
}

async fn post_review(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<ReviewRequest>,
) -> Result<Json<IncidentDoc>, ApiError> {
    caller.require(Perm::Review)?;
    let review = req.review(&caller).map_err(ApiError::BadRequest)?;
    let key = id.clone();
    let (row, alerted) = app
        .read(move |db| Ok((db.incident(&key)?, db.alerted(&key)?)))
        .await?;
    let stored: IncidentDoc = row
        .and_then(|r| serde_json::from_str(&r.doc).ok())
        .ok_or_else(|| ApiError::NotFound(format!("incident {id}")))?;
    let change = Change {
        actor: caller.actor.clone(),
        action: req.action.clone(),
        reason: Some(review.reason.clone()),
    };
    let (reply, answer) = oneshot::channel();
    let job = ReviewJob {
        id: id.clone(),
        review,
        change,
        stored,
        alerted,
        reply,
    };
    let sent = app.pipeline.lock().ok().and_then(|tx| {
        tx.as_ref()
            .map(|tx| tx.send(crate::PipelineMsg::Review(Box::new(job))))
    });
    if !matches!(sent, Some(Ok(()))) {
        return Err(ApiError::Internal("pipeline stopped".into()));
    }
    let doc = answer
        .await
        .map_err(|_| ApiError::Internal("pipeline stopped".into()))??;
    // The decision, its author and reason are in the history already (same
    // transaction as the version); this record only puts it in the audit log's
    // timeline, so it does not fail a decision that is made.
    app.writer.audit_nowait(caller.audit_entry(
        &format!("review.{}", req.action),
        &id,
        Some(format!("version {}: {}", doc.version, req.reason.trim())),
    ));
    Ok(Json(doc))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueueQuery {
    since: Option<String>,
    limit: Option<usize>,
}

/// Incidents no person has reviewed yet, newest first (default: the last 7 days).
async fn queue(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<QueueQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Perm::Review)?;
    let since = time_param("since", &q.since)?
        .unwrap_or_else(|| crate::now_ns() - 7 * 86_400 * 1_000_000_000);
    let limit = q.limit.unwrap_or(200).min(10_000);
    let filter = IncidentFilter {
        since_ns: Some(since),
        limit: 0,
        ..IncidentFilter::default()
    };
    let rows = app.read(move |db| db.incidents(&filter)).await?;
    let docs: Vec<IncidentDoc> = rows
        .iter()
        .filter_map(|r| serde_json::from_str::<IncidentDoc>(&r.doc).ok())
        .filter(|d| d.review.is_none() && d.rounds > 0)
        .take(limit)
        .collect();
    let ids: Vec<&str> = docs.iter().map(|d| d.id.as_str()).collect();
    audit(
        &app,
        &caller,
        "read.incidents",
        "review queue",
        Some(ids.join(",")),
    )
    .await?;
    Ok(Json(json!({"frame": "wgs84", "incidents": docs})))
}

/// Every change to an incident, from the hash-chained history: the machine's
/// versions and each person's, with author, reason and hashes.
async fn history(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Perm::Evidence)?;
    let key = id.clone();
    let entries = app.read(move |db| db.incident_history(&key)).await?;
    if entries.is_empty() {
        return Err(ApiError::NotFound(format!("incident {id}")));
    }
    audit(&app, &caller, "read.history", &id, None).await?;
    let list: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({
                "seq": e.seq, "version": e.version,
                "created_utc": UtcNanos(e.created_ns).to_rfc3339(),
                "actor": e.actor, "action": e.action, "reason": e.reason,
                "redacted": e.doc.is_none(),
                "incident": e.doc.as_deref().and_then(|d| serde_json::from_str::<Value>(d).ok()),
                "doc_sha256": e.doc_sha256, "prev_hash": e.prev_hash, "hash": e.hash,
            })
        })
        .collect();
    Ok(Json(json!({"id": id, "history": list})))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Role;

    fn caller() -> Caller {
        Caller {
            actor: "user:rita".into(),
            role: Role::Reviewer,
            credential: None,
        }
    }

    fn request(action: &str) -> ReviewRequest {
        ReviewRequest {
            action: action.into(),
            reason: "heard it on the clip".into(),
            class: None,
            rounds: None,
            shooters: None,
            lat: None,
            lon: None,
        }
    }

    #[test]
    fn later_reviews_keep_earlier_overrides_and_the_machine_result() {
        let adjust = ReviewRequest {
            rounds: Some(5),
            ..request("adjust")
        }
        .review(&caller())
        .unwrap();
        let relocate = ReviewRequest {
            lat: Some(40.5),
            lon: Some(-80.0),
            ..request("relocate")
        }
        .review(&caller())
        .unwrap();
        let merged = merge(Some(&merge(None, &adjust)), &relocate);
        assert_eq!(merged.status, "relocated");
        assert_eq!((merged.rounds, merged.lat), (Some(5), Some(40.5)));
        assert_eq!(merged.class, None, "the machine's class stands");
        // Confirmed after a dismissal: the dismissal's class does not stay.
        let dismissed = merge(None, &request("dismiss").review(&caller()).unwrap());
        let confirmed = merge(
            Some(&dismissed),
            &request("confirm").review(&caller()).unwrap(),
        );
        assert_eq!(
            (confirmed.status.as_str(), confirmed.class),
            ("confirmed", None)
        );
    }

    #[test]
    fn dismissals_cancel_and_confirmations_release() {
        assert_eq!(alert_kind(true, "dismissed", "other"), Some(CANCEL));
        assert_eq!(alert_kind(false, "dismissed", "other"), None);
        assert_eq!(alert_kind(true, "reclassified", "fireworks"), Some(UPDATE));
        assert_eq!(alert_kind(false, "confirmed", "fireworks"), Some(ALERT));
        assert_eq!(alert_kind(false, "reclassified", "gunfire"), Some(ALERT));
        assert_eq!(alert_kind(false, "reclassified", "fireworks"), None);
    }

    #[test]
    fn requests_are_checked() {
        let bad = [
            ReviewRequest {
                reason: " ".into(),
                ..request("confirm")
            },
            ReviewRequest {
                reason: "x".repeat(MAX_REASON_CHARS + 1),
                ..request("confirm")
            },
            request("reclassify"),
            ReviewRequest {
                class: Some("gunfire".into()),
                ..request("dismiss")
            },
            ReviewRequest {
                class: Some("shotgun".into()),
                ..request("reclassify")
            },
            request("adjust"),
            ReviewRequest {
                rounds: Some(0),
                ..request("adjust")
            },
            ReviewRequest {
                lat: Some(40.0),
                ..request("relocate")
            },
            ReviewRequest {
                rounds: Some(2),
                ..request("confirm")
            },
            request("delete"),
        ];
        for r in bad {
            assert!(r.review(&caller()).is_err(), "{r:?}");
        }
        let dismissed = request("dismiss").review(&caller()).unwrap();
        assert_eq!(
            (dismissed.status.as_str(), dismissed.class.as_deref()),
            ("dismissed", Some("other"))
        );
        assert_eq!(dismissed.by, "user:rita");
    }
}
