//! The public view: no login, no exact place, no sensor, no audio.
//!
//! Gunfire incidents (as published after any review; dismissed ones are not
//! gunfire) are counted in square blocks of `public.block_m` metres of the
//! server's local frame, and only once they are `public.delay_hours` old
//! (PRODUCT.md: aggregated, delayed, coarsened). A block is returned as a
//! GeoJSON polygon with its count; nothing inside it is more precise than the
//! block, and the time window is whole UTC days (a query's `since` and
//! `until` are rounded down to midnight).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use model::{Geodetic, Point3, UtcNanos};
use serde::Deserialize;
use serde_json::{json, Value};
use store::IncidentFilter;

use crate::api::{time_param, ApiError};
use crate::doc::IncidentDoc;
use crate::App;

const DAY_NS: i64 = 86_400_000_000_000;

pub fn routes() -> Router<Arc<App>> {
    Router::new().route("/v1/public/incidents", get(blocks))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublicQuery {
    since: Option<String>,
    until: Option<String>,
}

async fn blocks(
    State(app): State<Arc<App>>,
    Query(q): Query<PublicQuery>,
) -> Result<Response, ApiError> {
    let delay = (app.config.public.delay_hours * 3.6e12) as i64;
    let latest = crate::now_ns() - delay;
    // Whole UTC days only: narrowing the window step by step must not give
    // away when a single incident happened.
    let day = |t: i64| t.div_euclid(DAY_NS) * DAY_NS;
    let until = day(time_param("until", &q.until)?.map_or(latest, |u| u.min(latest)));
    let since = time_param("since", &q.since)?.map(day);
    let filter = IncidentFilter {
        since_ns: since,
        until_ns: Some(until),
        limit: 0,
        ..IncidentFilter::default()
    };
    let rows = app.read(move |db| db.incidents(&filter)).await?;
    let side = app.config.public.block_m;
    let mut counts: BTreeMap<(i64, i64), u64> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.last_ns < until) {
        let Ok(doc) = serde_json::from_str::<IncidentDoc>(&r.doc) else {
            continue;
        };
        if !matches!(doc.class.as_str(), "gunfire" | "probable_gunfire") || doc.rounds == 0 {
            continue;
        }
        let p = app.frame.to_local(Geodetic {
            lat_deg: doc.lat,
            lon_deg: doc.lon,
            alt_m: 0.0,
        });
        let key = ((p.x / side).floor() as i64, (p.y / side).floor() as i64);
        *counts.entry(key).or_default() += 1;
    }
    let corner = |i: i64, j: i64| {
        let g = app.frame.to_geodetic(Point3 {
            x: i as f64 * side,
            y: j as f64 * side,
            z: 0.0,
        });
        let r = |v: f64| (v * 1e5).round() / 1e5;
        json!([r(g.lon_deg), r(g.lat_deg)])
    };
    let features: Vec<Value> = counts
        .iter()
        .map(|(&(i, j), &n)| {
            json!({
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [[
                    corner(i, j), corner(i + 1, j), corner(i + 1, j + 1), corner(i, j + 1), corner(i, j)
                ]]},
                "properties": {"gunfire_incidents": n, "block_m": side},
            })
        })
        .collect();
    let body = json!({
        "type": "FeatureCollection",
        "features": features,
        "properties": {
            "from_utc": since.map(|s| UtcNanos(s).to_rfc3339()),
            "until_utc": UtcNanos(until).to_rfc3339(),
            "delay_hours": app.config.public.delay_hours,
        },
    });
    Ok((
        [(header::CONTENT_TYPE, "application/geo+json")],
        body.to_string(),
    )
        .into_response())
}
