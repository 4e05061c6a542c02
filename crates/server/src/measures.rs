//! The performance measures (docs/analytics.md): what the system did over a
//! period, from the stored incidents, alerts, reviews, outcomes, misses and
//! 911 calls. `shotfix measures` and `GET /v1/measures` (JSON, or CSV at
//! `/v1/measures.csv`) give the same figures; the dashboard's page shows
//! them.
//!
//! Definitions (one incident counts once, by its first shot's time):
//! - **alerts published**: incidents shotfix located and published a first
//!   alert for; their **latency** is the alert's publication minus the first
//!   shot's time. **Imported alerts** (history from a file) have no
//!   publication record and are counted apart.
//! - **review**: of the published alerts, confirmed by a person (confirmed,
//!   adjusted, relocated, or reclassified as gunfire), dismissed (or
//!   reclassified as something else), not reviewed.
//! - **field**: of all alerts (published and imported), the latest outcome
//!   officers recorded: **confirmed** (casings, a gun, an arrest or a victim
//!   aided), **unfounded** (no evidence), **unconfirmed** (nothing recorded).
//! - **911**: an alert has a call when a 911 call is within
//!   `measures.call_match_m` and from `call_before_s` before to
//!   `call_after_s` after its first shot; a call in the period has an alert
//!   the same way round.
//! - **cost**: `measures.cost_per_year` for the period's share of a year,
//!   per alert and per alert where something was found.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::access::{audit, Caller, Perm};
use crate::api::{time_param, ApiError};
use crate::config::MeasuresConfig;
use crate::doc::IncidentDoc;
use crate::outcomes::FOUND;
use crate::App;

/// The latency histogram's upper bin edges, seconds (the last bin is open).
pub const LATENCY_BINS_S: [f64; 7] = [5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0];

/// A first alert published up to this long after its incident's first shot
/// still counts for that incident (a held alert waits for a reviewer).
const LATE_ALERT_NS: i64 = 7 * 86_400 * 1_000_000_000;

/// The measured figures for one period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measures {
    pub since_utc: String,
    pub until_utc: String,
    pub days: f64,
    pub alerts_published: usize,
    pub imported_alerts: usize,
    pub latency: Latency,
    pub review: Review,
    pub field: Field,
    /// Finding → alerts where it was found.
    pub outcomes: BTreeMap<String, usize>,
    pub officer_minutes_total: f64,
    pub alerts_with_officer_time: usize,
    pub misses_reported: usize,
    pub calls: Calls,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    pub count: usize,
    pub p50_s: Option<f64>,
    pub p90_s: Option<f64>,
    pub p99_s: Option<f64>,
    pub max_s: Option<f64>,
    pub within_60s: usize,
    pub share_within_60s: Option<f64>,
    /// Alerts per bin: up to each of [`LATENCY_BINS_S`], then beyond the last.
    pub histogram: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Review {
    pub confirmed: usize,
    pub dismissed: usize,
    pub not_reviewed: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Field {
    pub alerts: usize,
    pub confirmed: usize,
    pub unfounded: usize,
    pub unconfirmed: usize,
    pub share_confirmed: Option<f64>,
    pub share_unfounded: Option<f64>,
    pub share_unconfirmed: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calls {
    pub calls: usize,
    pub alerts_with_call: usize,
    pub alerts_without_call: usize,
    pub calls_without_alert: usize,
    pub match_m: f64,
    pub before_s: f64,
    pub after_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cost {
    pub currency: String,
    pub period: f64,
    pub per_alert: Option<f64>,
    pub per_alert_with_evidence: Option<f64>,
    pub per_arrest: Option<f64>,
    pub per_gun_recovered: Option<f64>,
}

fn share(n: usize, of: usize) -> Option<f64> {
    (of > 0).then(|| n as f64 / of as f64)
}

/// The `q` quantile of sorted values (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// An alert as matched against 911 calls: first shot's time, place.
type Place = (i64, f64, f64);

/// For each of `alerts`, whether a call matches it; for each of `calls`,
/// whether an alert does (see the module comment).
pub fn match_calls(
    alerts: &[Place],
    calls: &[Place],
    m: &MeasuresConfig,
) -> (Vec<bool>, Vec<bool>) {
    let before = (m.call_before_s * 1e9) as i64;
    let after = (m.call_after_s * 1e9) as i64;
    let mut by_time: Vec<usize> = (0..calls.len()).collect();
    by_time.sort_by_key(|&j| calls[j].0);
    let times: Vec<i64> = by_time.iter().map(|&j| calls[j].0).collect();
    let mut alert_has = vec![false; alerts.len()];
    let mut call_has = vec![false; calls.len()];
    for (i, &(t, lat, lon)) in alerts.iter().enumerate() {
        let start = times.partition_point(|&c| c < t - before);
        for &j in by_time[start..].iter() {
            let (tc, clat, clon) = calls[j];
            if tc > t + after {
                break;
            }
            if crate::public::distance_m((lat, lon), (clat, clon)) <= m.call_match_m {
                alert_has[i] = true;
                call_has[j] = true;
            }
        }
    }
    (alert_has, call_has)
}

/// Computes the measures of incidents whose first shot is in
/// `since_ns..until_ns`.
pub fn compute(
    db: &store::Db,
    m: &MeasuresConfig,
    since_ns: i64,
    until_ns: i64,
) -> Result<Measures, store::StoreError> {
    let before = (m.call_before_s * 1e9) as i64;
    let after = (m.call_after_s * 1e9) as i64;
    // One read: the period's incidents, and those a 911 call in the period
    // can match (from `after` before the period to `before` after it).
    let window = store::IncidentFilter {
        since_ns: Some(since_ns.saturating_sub(after)),
        until_ns: Some(until_ns.saturating_add(before)),
        limit: 0,
        ..store::IncidentFilter::default()
    };
    let nearby = db.incidents(&window)?;
    let incidents: Vec<&store::IncidentRow> = nearby
        .iter()
        .filter(|r| r.first_ns >= since_ns && r.first_ns < until_ns)
        .collect();
    let first_alert: HashMap<String, i64> = db
        .first_alerts(
            since_ns.saturating_sub(after),
            until_ns.saturating_add(LATE_ALERT_NS),
        )?
        .into_iter()
        .collect();
    let is_alert = |r: &store::IncidentRow| {
        first_alert.contains_key(&r.id)
            || (r.id.starts_with(crate::import::ID_PREFIX)
                && matches!(r.class.as_str(), "gunfire" | "probable_gunfire"))
    };
    let latest: HashMap<String, store::OutcomeRow> = db
        .latest_outcomes()?
        .into_iter()
        .map(|o| (o.incident.clone(), o))
        .collect();

    let mut latencies = Vec::new();
    let mut review = Review {
        confirmed: 0,
        dismissed: 0,
        not_reviewed: 0,
    };
    // Every alert, published or imported: (first shot, lat, lon, id).
    let mut alerts: Vec<(Place, &str)> = Vec::new();
    let mut imported = 0;
    for r in &incidents {
        if !is_alert(r) {
            continue;
        }
        if let Some(&published) = first_alert.get(&r.id) {
            latencies.push((published - r.first_ns) as f64 / 1e9);
            let doc: Option<IncidentDoc> = serde_json::from_str(&r.doc).ok();
            let status = doc
                .as_ref()
                .and_then(|d| d.review.as_ref())
                .map(|v| v.status.as_str());
            let gunfire = matches!(r.class.as_str(), "gunfire" | "probable_gunfire");
            match status {
                None => review.not_reviewed += 1,
                Some("dismissed") => review.dismissed += 1,
                Some("reclassified") if !gunfire => review.dismissed += 1,
                Some(_) => review.confirmed += 1,
            }
            alerts.push(((r.first_ns, r.lat, r.lon), &r.id));
        } else {
            imported += 1;
            alerts.push(((r.first_ns, r.lat, r.lon), &r.id));
        }
    }
    latencies.sort_by(f64::total_cmp);
    let mut histogram = vec![0; LATENCY_BINS_S.len() + 1];
    for &l in &latencies {
        histogram[LATENCY_BINS_S.partition_point(|&edge| edge < l)] += 1;
    }
    let within_60s = latencies.iter().filter(|&&l| l <= 60.0).count();
    let latency = Latency {
        count: latencies.len(),
        p50_s: quantile(&latencies, 0.5),
        p90_s: quantile(&latencies, 0.9),
        p99_s: quantile(&latencies, 0.99),
        max_s: latencies.last().copied(),
        within_60s,
        share_within_60s: share(within_60s, latencies.len()),
        histogram,
    };

    let mut outcomes: BTreeMap<String, usize> = FOUND.iter().map(|f| (f.to_string(), 0)).collect();
    let (mut confirmed, mut unfounded, mut minutes, mut with_time) = (0, 0, 0.0, 0);
    for (_, id) in &alerts {
        let Some(o) = latest.get(*id) else {
            continue;
        };
        for f in o.found.split(',').filter(|f| !f.is_empty()) {
            *outcomes.entry(f.to_string()).or_default() += 1;
        }
        if o.found == "no_evidence" {
            unfounded += 1;
        } else {
            confirmed += 1;
        }
        if let Some(t) = o.officer_minutes {
            minutes += t;
            with_time += 1;
        }
    }
    let n = alerts.len();
    let unconfirmed = n - confirmed - unfounded;
    let field = Field {
        alerts: n,
        confirmed,
        unfounded,
        unconfirmed,
        share_confirmed: share(confirmed, n),
        share_unfounded: share(unfounded, n),
        share_unconfirmed: share(unconfirmed, n),
    };

    // The period's alerts against every call that can match one (from
    // `before` before the period to `after` after it), and the period's calls
    // against every alert that can match one (from `after` before to
    // `before` after).
    let calls_near = db.calls(
        since_ns.saturating_sub(before),
        until_ns.saturating_add(after),
    )?;
    let place = |c: &store::CallRow| (c.t_ns, c.lat, c.lon);
    let alert_places: Vec<Place> = alerts.iter().map(|(p, _)| *p).collect();
    let near: Vec<Place> = calls_near.iter().map(place).collect();
    let (alert_has, _) = match_calls(&alert_places, &near, m);
    let period_calls: Vec<Place> = calls_near
        .iter()
        .filter(|c| c.t_ns >= since_ns && c.t_ns < until_ns)
        .map(place)
        .collect();
    let alerts_near: Vec<Place> = nearby
        .iter()
        .filter(|r| is_alert(r))
        .map(|r| (r.first_ns, r.lat, r.lon))
        .collect();
    let (_, call_has) = match_calls(&alerts_near, &period_calls, m);
    let calls = Calls {
        calls: period_calls.len(),
        alerts_with_call: alert_has.iter().filter(|&&h| h).count(),
        alerts_without_call: alert_has.iter().filter(|&&h| !h).count(),
        calls_without_alert: call_has.iter().filter(|&&h| !h).count(),
        match_m: m.call_match_m,
        before_s: m.call_before_s,
        after_s: m.call_after_s,
    };

    let days = (until_ns - since_ns) as f64 / 86_400e9;
    let cost = m.cost_per_year.map(|per_year| {
        let period = per_year * days / 365.2425;
        let per = |k: usize| (k > 0).then(|| period / k as f64);
        Cost {
            currency: m.currency.clone(),
            period,
            per_alert: per(n),
            per_alert_with_evidence: per(confirmed),
            per_arrest: per(outcomes["arrest"]),
            per_gun_recovered: per(outcomes["gun_recovered"]),
        }
    });
    Ok(Measures {
        since_utc: model::UtcNanos(since_ns).to_rfc3339(),
        until_utc: model::UtcNanos(until_ns).to_rfc3339(),
        days,
        alerts_published: latencies.len(),
        imported_alerts: imported,
        latency,
        review,
        field,
        outcomes,
        officer_minutes_total: minutes,
        alerts_with_officer_time: with_time,
        misses_reported: db.misses(since_ns, until_ns)?.len(),
        calls,
        cost,
    })
}

impl Measures {
    /// The figures as CSV rows: measure, value, unit (an absent figure, such
    /// as a share of nothing, is an empty value).
    pub fn csv(&self) -> Result<Vec<u8>, csv::Error> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(["measure", "value", "unit"])?;
        let mut row = |name: &str, v: Option<f64>, unit: &str| {
            let value = v.map_or(String::new(), |v| {
                if v.fract() == 0.0 && v.abs() < 1e15 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.4}")
                }
            });
            w.write_record([name, &value, unit])
        };
        let n = |k: usize| Some(k as f64);
        row("period_days", Some(self.days), "days")?;
        row("alerts_published", n(self.alerts_published), "alerts")?;
        row("imported_alerts", n(self.imported_alerts), "alerts")?;
        let l = &self.latency;
        row("latency_p50", l.p50_s, "s")?;
        row("latency_p90", l.p90_s, "s")?;
        row("latency_p99", l.p99_s, "s")?;
        row("latency_max", l.max_s, "s")?;
        row("alerts_within_60s", n(l.within_60s), "alerts")?;
        row("share_within_60s", l.share_within_60s, "fraction")?;
        for (i, k) in l.histogram.iter().enumerate() {
            let name = match LATENCY_BINS_S.get(i) {
                Some(edge) => format!("latency_up_to_{edge}s"),
                None => format!("latency_over_{}s", LATENCY_BINS_S[LATENCY_BINS_S.len() - 1]),
            };
            row(&name, n(*k), "alerts")?;
        }
        row("review_confirmed", n(self.review.confirmed), "alerts")?;
        row("review_dismissed", n(self.review.dismissed), "alerts")?;
        row("review_not_reviewed", n(self.review.not_reviewed), "alerts")?;
        let f = &self.field;
        row("field_alerts", n(f.alerts), "alerts")?;
        row("field_confirmed", n(f.confirmed), "alerts")?;
        row("field_unfounded", n(f.unfounded), "alerts")?;
        row("field_unconfirmed", n(f.unconfirmed), "alerts")?;
        row("share_confirmed", f.share_confirmed, "fraction")?;
        row("share_unfounded", f.share_unfounded, "fraction")?;
        row("share_unconfirmed", f.share_unconfirmed, "fraction")?;
        for (k, v) in &self.outcomes {
            row(&format!("outcome_{k}"), n(*v), "alerts")?;
            row(
                &format!("outcome_{k}_per_alert"),
                share(*v, f.alerts),
                "fraction",
            )?;
        }
        row(
            "officer_minutes_total",
            Some(self.officer_minutes_total),
            "min",
        )?;
        row(
            "alerts_with_officer_time",
            n(self.alerts_with_officer_time),
            "alerts",
        )?;
        row("misses_reported", n(self.misses_reported), "shootings")?;
        let c = &self.calls;
        row("calls_911", n(c.calls), "calls")?;
        row("alerts_with_911_call", n(c.alerts_with_call), "alerts")?;
        row(
            "alerts_without_911_call",
            n(c.alerts_without_call),
            "alerts",
        )?;
        row("calls_911_without_alert", n(c.calls_without_alert), "calls")?;
        if let Some(cost) = &self.cost {
            let unit = cost.currency.as_str();
            row("cost_period", Some(cost.period), unit)?;
            row("cost_per_alert", cost.per_alert, unit)?;
            row(
                "cost_per_alert_with_evidence",
                cost.per_alert_with_evidence,
                unit,
            )?;
            row("cost_per_arrest", cost.per_arrest, unit)?;
            row("cost_per_gun_recovered", cost.per_gun_recovered, unit)?;
        }
        w.into_inner().map_err(|e| e.into_error().into())
    }
}

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/measures", get(measures_json))
        .route("/v1/measures.csv", get(measures_csv))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MeasuresQuery {
    /// First and last day (YYYY-MM-DD, both included) in the city's zone.
    from: Option<String>,
    to: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

/// The period a query asks for (default: the last 30 days).
fn period(app: &App, q: &MeasuresQuery) -> Result<(i64, i64), ApiError> {
    let tz = app.config.map.tz();
    let now = crate::now_ns();
    let since = match (&q.from, time_param("since", &q.since)?) {
        (Some(d), _) => crate::analytics::local_midnight("from", d, tz)?,
        (None, Some(s)) => s,
        (None, None) => now - 30 * 86_400_000_000_000,
    };
    let until = match (&q.to, time_param("until", &q.until)?) {
        (Some(d), _) => crate::analytics::day_after("to", d, tz)?,
        (None, Some(u)) => u,
        (None, None) => now,
    };
    check_period(since, until).map_err(ApiError::BadRequest)?;
    Ok((since, until))
}

/// The longest period measured: a century (and no arithmetic overflows).
const MAX_PERIOD_NS: i64 = 100 * 366 * 86_400 * 1_000_000_000;

fn check_period(since: i64, until: i64) -> Result<(), String> {
    match until.checked_sub(since) {
        Some(d) if d > 0 && d <= MAX_PERIOD_NS => Ok(()),
        Some(d) if d <= 0 => Err("the period ends before it starts".into()),
        _ => Err("the period is longer than a century".into()),
    }
}

/// The period from `from` to `to` (YYYY-MM-DD, both included) in `tz`, as
/// UTC nanoseconds.
pub fn dates(from: &str, to: &str, tz: chrono_tz::Tz) -> Result<(i64, i64), String> {
    let since = crate::analytics::local_midnight("from", from, tz).map_err(|e| e.to_string())?;
    let until = crate::analytics::day_after("to", to, tz).map_err(|e| e.to_string())?;
    check_period(since, until).map_err(|e| format!("--from {from} --to {to}: {e}"))?;
    Ok((since, until))
}

/// Measures may be read with incidents' or with community access: they are
/// counts, with no place.
async fn measured(
    app: &Arc<App>,
    caller: &Caller,
    q: &MeasuresQuery,
) -> Result<Measures, ApiError> {
    let (since, mut until) = period(app, q)?;
    if caller.require(Perm::Incidents).is_err() {
        // Community access: whole days only, and nothing after the public
        // delay (as for the public view), so no window narrows down when an
        // incident happened.
        caller.require(Perm::Community)?;
        if q.since.is_some() || q.until.is_some() {
            return Err(ApiError::BadRequest(
                "since, until: community access takes from and to dates".into(),
            ));
        }
        until = until.min(crate::public::public_cutoff(app));
        if until <= since {
            return Err(ApiError::BadRequest(format!(
                "the period is within the public delay ({} h)",
                app.config.public.delay_hours
            )));
        }
    }
    let config = app.config.measures.clone();
    let m = app
        .read(move |db| compute(db, &config, since, until))
        .await?;
    audit(
        app,
        caller,
        "read.measures",
        "/v1/measures",
        Some(format!("{} to {}", m.since_utc, m.until_utc)),
    )
    .await?;
    Ok(m)
}

async fn measures_json(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<MeasuresQuery>,
) -> Result<Json<Measures>, ApiError> {
    Ok(Json(measured(&app, &caller, &q).await?))
}

async fn measures_csv(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<MeasuresQuery>,
) -> Result<Response, ApiError> {
    let m = measured(&app, &caller, &q).await?;
    let body = m
        .csv()
        .map_err(|e| ApiError::Internal(format!("measures csv: {e}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"shotfix-measures.csv\"",
            ),
        ],
        body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_match_within_the_distance_and_the_window_only() {
        let m = MeasuresConfig::default();
        let s = 1_000_000_000i64;
        let alerts = [(1_000 * s, 38.9, -77.0), (5_000 * s, 38.95, -77.05)];
        let calls = [
            (1_100 * s, 38.9018, -77.0),        // 200 m, 100 s after: matches
            (1_000 * s - 200 * s, 38.9, -77.0), // 200 s before: no
            (1_000 * s + 700 * s, 38.9, -77.0), // 700 s after: no
            (1_050 * s, 38.9054, -77.0),        // 600 m: no
        ];
        let (a, c) = match_calls(&alerts, &calls, &m);
        assert_eq!(a, [true, false]);
        assert_eq!(c, [true, false, false, false]);
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), Some(50.0));
        assert_eq!(quantile(&v, 0.99), Some(99.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
