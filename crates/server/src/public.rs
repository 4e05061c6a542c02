//! The public view and the community data (docs/analytics.md): no exact
//! place, no sensor, no audio, nothing newer than the delay.
//!
//! - `GET /v1/public/incidents` (no login): gunfire incidents (as published
//!   after any review; dismissed ones are not gunfire) counted in square
//!   blocks of `public.block_m` metres of the server's local frame.
//! - `GET /v1/public/cells` (no login): the same counted in H3 cells of
//!   resolution `public.h3_res` or coarser.
//! - `GET /v1/community/incidents.csv` (partners' tokens, analysts): one row
//!   per incident in the City of Chicago portal's column layout, its place
//!   moved between `public.coarsen_m` and twice that in a direction and
//!   distance only the server knows ([`mask`]).
//! - `GET /v1/community/areas` (the same): counts per area of interest.
//!
//! Everything is at least `public.delay_hours` old, and the time window is
//! whole UTC days (a query's `since` and `until` are rounded down to
//! midnight): narrowing the window step by step must not give away when a
//! single incident happened. A block or cell is a fixed grid's: moving an
//! incident within it changes nothing that is published.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{Datelike, TimeZone, Timelike};
use geo::{Distance, Haversine, Point};
use hmac::{Hmac, Mac};
use model::{Geodetic, Point3, UtcNanos};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Sha256;
use store::{IncidentFilter, IncidentRow};

use crate::access::{audit, Caller, Perm};
use crate::api::{time_param, ApiError};
use crate::App;

const DAY_NS: i64 = 86_400_000_000_000;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/public/incidents", get(blocks))
        .route("/v1/public/cells", get(cells))
        .route("/v1/community/incidents.csv", get(community_csv))
        .route("/v1/community/areas", get(community_areas))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublicQuery {
    since: Option<String>,
    until: Option<String>,
    /// `/v1/public/cells`: an H3 resolution from 5 to `public.h3_res`.
    res: Option<u8>,
}

/// The public window: from `since` to `until` (or now), no later than the
/// delay allows, both rounded down to UTC midnight.
fn window(app: &App, q: &PublicQuery) -> Result<(Option<i64>, i64), ApiError> {
    let delay = (app.config.public.delay_hours * 3.6e12) as i64;
    let latest = crate::now_ns() - delay;
    let day = |t: i64| t.div_euclid(DAY_NS) * DAY_NS;
    let until = day(time_param("until", &q.until)?.map_or(latest, |u| u.min(latest)));
    let since = time_param("since", &q.since)?.map(day);
    Ok((since, until))
}

/// The gunfire incidents the public may count: of class gunfire or probable
/// gunfire as published now (a dismissal takes one out), with a place, and
/// wholly (first to last shot) before `until`.
async fn public_incidents(
    app: &App,
    since: Option<i64>,
    until: i64,
) -> Result<Vec<IncidentRow>, ApiError> {
    let filter = IncidentFilter {
        since_ns: since,
        until_ns: Some(until),
        limit: 0,
        ..IncidentFilter::default()
    };
    let rows = app.read(move |db| db.incidents(&filter)).await?;
    Ok(rows
        .into_iter()
        .filter(|r| {
            r.last_ns < until
                && r.rounds > 0
                && matches!(r.class.as_str(), "gunfire" | "probable_gunfire")
        })
        .collect())
}

fn geojson(body: Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/geo+json")],
        body.to_string(),
    )
        .into_response()
}

async fn blocks(
    State(app): State<Arc<App>>,
    Query(q): Query<PublicQuery>,
) -> Result<Response, ApiError> {
    if q.res.is_some() {
        return Err(ApiError::BadRequest(
            "res: only for /v1/public/cells".into(),
        ));
    }
    let (since, until) = window(&app, &q)?;
    let rows = public_incidents(&app, since, until).await?;
    let side = app.config.public.block_m;
    let mut counts: BTreeMap<(i64, i64), u64> = BTreeMap::new();
    for r in &rows {
        let p = app.frame.to_local(Geodetic {
            lat_deg: r.lat,
            lon_deg: r.lon,
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
    Ok(geojson(body))
}

/// `GET /v1/public/cells`: gunfire incidents counted in H3 cells.
async fn cells(
    State(app): State<Arc<App>>,
    Query(q): Query<PublicQuery>,
) -> Result<Response, ApiError> {
    let top = app.config.public.h3_res;
    let res = q.res.unwrap_or(top);
    let res = h3o::Resolution::try_from(res)
        .ok()
        .filter(|_| (5..=top).contains(&res))
        .ok_or_else(|| ApiError::BadRequest(format!("res: an H3 resolution from 5 to {top}")))?;
    let (since, until) = window(&app, &q)?;
    let rows = public_incidents(&app, since, until).await?;
    let mut counts: BTreeMap<h3o::CellIndex, u64> = BTreeMap::new();
    for r in &rows {
        if let Ok(p) = h3o::LatLng::new(r.lat, r.lon) {
            *counts.entry(p.to_cell(res)).or_default() += 1;
        }
    }
    let features: Vec<Value> = counts
        .iter()
        .map(|(cell, n)| {
            json!({
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [crate::analytics::cell_ring(*cell)]},
                "properties": {"cell": cell.to_string(), "gunfire_incidents": n},
            })
        })
        .collect();
    Ok(geojson(json!({
        "type": "FeatureCollection",
        "features": features,
        "properties": {
            "from_utc": since.map(|s| UtcNanos(s).to_rfc3339()),
            "until_utc": UtcNanos(until).to_rfc3339(),
            "delay_hours": app.config.public.delay_hours,
            "resolution": u8::from(res),
        },
    })))
}

/// Where a partner's row puts an incident: moved from the exact place by
/// between `d` and `2d` metres (uniform over that ring's area), in a
/// direction and by a distance from HMAC-SHA256(`key`, incident id). The
/// same incident is always moved the same way (asking again, or in another
/// window, averages nothing out), and without the server's key the move
/// cannot be undone. Rounded to 1e-5° (about 1 m); the ring starts 2 m
/// further out so the rounding cannot bring a row inside `d`.
pub fn mask(key: &[u8], id: &str, lat: f64, lon: f64, d: f64) -> (f64, f64) {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(id.as_bytes());
    let h = mac.finalize().into_bytes();
    let unit = |b: &[u8]| {
        let mut x = [0u8; 8];
        x.copy_from_slice(b);
        (u64::from_le_bytes(x) >> 11) as f64 / (1u64 << 53) as f64
    };
    let (u, v) = (unit(&h[0..8]), unit(&h[8..16]));
    let (inner, outer) = (d + 2.0, 2.0 * d + 2.0);
    let r = (inner * inner + u * (outer * outer - inner * inner)).sqrt();
    let bearing = v * std::f64::consts::TAU;
    // On the sphere: the point at distance r along the bearing.
    const R: f64 = 6_371_008.8;
    let (phi, lambda, delta) = (lat.to_radians(), lon.to_radians(), r / R);
    let phi2 = (phi.sin() * delta.cos() + phi.cos() * delta.sin() * bearing.cos()).asin();
    let lambda2 = lambda
        + (bearing.sin() * delta.sin() * phi.cos()).atan2(delta.cos() - phi.sin() * phi2.sin());
    let round = |x: f64| (x * 1e5).round() / 1e5;
    (round(phi2.to_degrees()), round(lambda2.to_degrees()))
}

/// The Chicago data portal's "ShotSpotter Alerts" columns, in its order.
pub const CHICAGO_COLUMNS: [&str; 18] = [
    "DATE",
    "BLOCK",
    "ZIP_CODE",
    "WARD",
    "COMMUNITY_AREA",
    "AREA",
    "DISTRICT",
    "BEAT",
    "STREET_OUTREACH_ORGANIZATION",
    "UNIQUE_ID",
    "MONTH",
    "DAY_OF_WEEK",
    "HOUR",
    "INCIDENT_TYPE_DESCRIPTION",
    "ROUNDS",
    "LATITUDE",
    "LONGITUDE",
    "LOCATION",
];

/// The incident type as the Chicago portal writes it.
fn chicago_type(class: &str, rounds: i64) -> &'static str {
    match (class, rounds) {
        ("probable_gunfire", _) => "GUNSHOT OR FIRECRACKER",
        (_, r) if r > 1 => "MULTIPLE GUNSHOTS",
        _ => "SINGLE GUNSHOT",
    }
}

/// The Chicago columns an area layer can fill, by the layer's name
/// (compared without case or punctuation: a layer `community_area` fills
/// `COMMUNITY_AREA`).
const AREA_COLUMNS: [&str; 7] = [
    "ZIP_CODE",
    "WARD",
    "COMMUNITY_AREA",
    "AREA",
    "DISTRICT",
    "BEAT",
    "STREET_OUTREACH_ORGANIZATION",
];

/// For each of [`AREA_COLUMNS`], the areas of the layer named like it.
fn area_columns(app: &App) -> Vec<Vec<&crate::areas::Area>> {
    let norm = |s: &str| {
        s.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect::<String>()
    };
    AREA_COLUMNS
        .iter()
        .map(|c| {
            let want = norm(c);
            app.areas.iter().filter(|a| norm(&a.layer) == want).collect()
        })
        .collect()
}

/// `GET /v1/community/incidents.csv`: one row per public incident in the
/// Chicago portal's layout, each place [`mask`]ed, times in the city's zone.
async fn community_csv(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<PublicQuery>,
) -> Result<Response, ApiError> {
    caller.require(Perm::Community)?;
    if q.res.is_some() {
        return Err(ApiError::BadRequest(
            "res: only for /v1/public/cells".into(),
        ));
    }
    let (since, until) = window(&app, &q)?;
    let rows = public_incidents(&app, since, until).await?;
    audit(
        &app,
        &caller,
        "read.community",
        "/v1/community/incidents.csv",
        Some(format!(
            "{} incidents, moved ≥ {} m",
            rows.len(),
            app.config.public.coarsen_m
        )),
    )
    .await?;
    let tz = app.config.map.tz();
    let d = app.config.public.coarsen_m;
    let columns = area_columns(&app);
    let mut out = csv::Writer::from_writer(Vec::new());
    let fail = |e: csv::Error| ApiError::Internal(format!("community csv: {e}"));
    out.write_record(CHICAGO_COLUMNS).map_err(fail)?;
    for r in &rows {
        let local = tz.timestamp_nanos(r.first_ns);
        let (lat, lon) = mask(&app.geomask_key, &r.id, r.lat, r.lon, d);
        let area = |i: usize| {
            columns[i]
                .iter()
                .find(|a| a.contains(r.lat, r.lon))
                .map(|a| a.name.clone())
                .unwrap_or_default()
        };
        out.write_record([
            local.format("%m/%d/%Y %I:%M:00 %p").to_string(),
            String::new(),
            area(0),
            area(1),
            area(2),
            area(3),
            area(4),
            area(5),
            area(6),
            r.id.clone(),
            local.month().to_string(),
            // The portal's numbering: 1 is Sunday.
            local.weekday().number_from_sunday().to_string(),
            local.hour().to_string(),
            chicago_type(&r.class, r.rounds).to_string(),
            r.rounds.to_string(),
            format!("{lat:.5}"),
            format!("{lon:.5}"),
            format!("POINT ({lon:.5} {lat:.5})"),
        ])
        .map_err(fail)?;
    }
    let body = out
        .into_inner()
        .map_err(|e| ApiError::Internal(format!("community csv: {e}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"shotfix-community.csv\"",
            ),
        ],
        body,
    )
        .into_response())
}

/// `GET /v1/community/areas`: public incidents counted per area of interest
/// (and by the school calendar).
async fn community_areas(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<PublicQuery>,
) -> Result<Response, ApiError> {
    caller.require(Perm::Community)?;
    if q.res.is_some() {
        return Err(ApiError::BadRequest(
            "res: only for /v1/public/cells".into(),
        ));
    }
    let (since, until) = window(&app, &q)?;
    let rows = public_incidents(&app, since, until).await?;
    audit(
        &app,
        &caller,
        "read.community",
        "/v1/community/areas",
        Some(format!("{} incidents", rows.len())),
    )
    .await?;
    let counted: Vec<(i64, f64, f64)> = rows.iter().map(|r| (r.first_ns, r.lat, r.lon)).collect();
    let tz = app.config.map.tz();
    let counts = crate::areas::count(&app.areas, &counted, app.school.as_ref(), tz);
    let areas: Vec<Value> = app
        .areas
        .iter()
        .zip(counts)
        .map(|(a, c)| {
            let mut v = json!({"layer": a.layer, "name": a.name, "buffer_m": a.buffer_m()});
            if let (Value::Object(v), Ok(Value::Object(c))) = (&mut v, serde_json::to_value(c)) {
                v.extend(c);
            }
            v
        })
        .collect();
    Ok(axum::Json(json!({
        "from_utc": since.map(|s| UtcNanos(s).to_rfc3339()),
        "until_utc": UtcNanos(until).to_rfc3339(),
        "delay_hours": app.config.public.delay_hours,
        "areas": areas,
    }))
    .into_response())
}

/// Great-circle distance, metres (for checks of [`mask`]).
pub fn distance_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    Haversine.distance(Point::new(a.1, a.0), Point::new(b.1, b.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_masked_place_is_between_the_distance_and_twice_it_and_stable() {
        let key = b"a key of the server's own, 32 b.";
        for i in 0..2_000 {
            let id = format!("inc-{i}");
            let (lat, lon) = (38.9 + (i % 7) as f64 * 0.01, -77.0 - (i % 11) as f64 * 0.01);
            let m = mask(key, &id, lat, lon, 100.0);
            let d = distance_m((lat, lon), m);
            assert!((100.0..=203.0).contains(&d), "{id}: moved {d} m");
            assert_eq!(m, mask(key, &id, lat, lon, 100.0));
        }
        // Another key moves it elsewhere.
        assert_ne!(
            mask(b"one key", "inc-1", 38.9, -77.0, 100.0),
            mask(b"another key", "inc-1", 38.9, -77.0, 100.0)
        );
    }

    #[test]
    fn chicago_types() {
        assert_eq!(chicago_type("gunfire", 1), "SINGLE GUNSHOT");
        assert_eq!(chicago_type("gunfire", 4), "MULTIPLE GUNSHOTS");
        assert_eq!(
            chicago_type("probable_gunfire", 3),
            "GUNSHOT OR FIRECRACKER"
        );
    }
}
