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

use std::collections::{BTreeMap, HashMap};
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

/// The latest the public may see: the UTC midnight at or before now minus
/// the delay.
pub fn public_cutoff(app: &App) -> i64 {
    let delay = (app.config.public.delay_hours * 3.6e12) as i64;
    (crate::now_ns() - delay).div_euclid(DAY_NS) * DAY_NS
}

/// The public window: from `since` to `until` (or now), no later than the
/// delay allows, both rounded down to UTC midnight.
fn window(app: &App, q: &PublicQuery) -> Result<(Option<i64>, i64), ApiError> {
    let day = |t: i64| t.div_euclid(DAY_NS) * DAY_NS;
    let cutoff = public_cutoff(app);
    let until = time_param("until", &q.until)?.map_or(cutoff, |u| day(u).min(cutoff));
    let since = time_param("since", &q.since)?.map(day);
    Ok((since, until))
}

/// The gunfire incidents the public may count: of class gunfire or probable
/// gunfire as published now (a dismissal takes one out), with a place, and
/// wholly (first to last shot) before `until`. Each comes back at its
/// [`mask`]ed place: everything public is counted or listed there, never at
/// the exact place, so no two views together narrow one down.
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
    let d = app.config.public.coarsen_m;
    Ok(rows
        .into_iter()
        .filter(|r| {
            r.last_ns < until
                && r.rounds > 0
                && matches!(r.class.as_str(), "gunfire" | "probable_gunfire")
        })
        .filter_map(|r| {
            let (lat, lon) = mask(&app.geomask_key, r.lat, r.lon, d)?;
            Some(IncidentRow { lat, lon, ..r })
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

/// The H3 resolution places are snapped to before they are moved: the
/// coarsest whose cells' edges are at most half the coarsening distance.
fn snap_resolution(d: f64) -> h3o::Resolution {
    h3o::Resolution::range(h3o::Resolution::Zero, h3o::Resolution::Fifteen)
        .find(|r| r.edge_length_m() <= d / 2.0)
        .unwrap_or(h3o::Resolution::Fifteen)
}

/// Where the public and partners see an incident (`None`: a place that is
/// not one, never shown). The place is snapped to its H3 cell (edges at most
/// `d`/2), and the cell's centre is moved by a distance and in a direction
/// from HMAC-SHA256(`key`, cell): from `d` plus the cell's radius to that
/// plus `d`, uniform over the ring's area. So:
/// - the point is at least `d` from the exact place (the place is within
///   the cell's radius of its centre), at most about `2d` plus the cell's
///   diameter;
/// - every incident in a cell is shown at the same point, so many incidents
///   at one place average nothing out, and knowing one incident's exact
///   place reveals no other's;
/// - without the server's key the move cannot be undone.
///
/// Rounded to 1e-5° (about 1 m); the ring starts 2 m further out so the
/// rounding cannot bring a point inside `d`.
pub fn mask(key: &[u8], lat: f64, lon: f64, d: f64) -> Option<(f64, f64)> {
    let cell = h3o::LatLng::new(lat, lon).ok()?.to_cell(snap_resolution(d));
    let centre = h3o::LatLng::from(cell);
    let c = (centre.lat(), centre.lng());
    let radius = cell
        .boundary()
        .iter()
        .map(|v| distance_m(c, (v.lat(), v.lng())))
        .fold(0.0, f64::max);
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(&u64::from(cell).to_le_bytes());
    let h = mac.finalize().into_bytes();
    let unit = |b: &[u8]| {
        let mut x = [0u8; 8];
        x.copy_from_slice(b);
        (u64::from_le_bytes(x) >> 11) as f64 / (1u64 << 53) as f64
    };
    let (u, v) = (unit(&h[0..8]), unit(&h[8..16]));
    let inner = d + radius + 2.0;
    let outer = inner + d;
    let r = (inner * inner + u * (outer * outer - inner * inner)).sqrt();
    let bearing = v * std::f64::consts::TAU;
    // On the sphere: the point at distance r from the centre along the bearing.
    const R: f64 = 6_371_008.8;
    let (phi, lambda, delta) = (c.0.to_radians(), c.1.to_radians(), r / R);
    let phi2 = (phi.sin() * delta.cos() + phi.cos() * delta.sin() * bearing.cos()).asin();
    let lambda2 = lambda
        + (bearing.sin() * delta.sin() * phi.cos()).atan2(delta.cos() - phi.sin() * phi2.sin());
    let round = |x: f64| (x * 1e5).round() / 1e5;
    let lon2 = (lambda2.to_degrees() + 540.0).rem_euclid(360.0) - 180.0;
    Some((round(phi2.to_degrees()), round(lon2)))
}

/// The Chicago data portal's "ShotSpotter Alerts" columns, in its order (as
/// exported in 2024, with the Illinois House and Senate districts).
pub const CHICAGO_COLUMNS: [&str; 20] = [
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
    "ILLINOIS_HOUSE_DISTRICT",
    "ILLINOIS_SENATE_DISTRICT",
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

/// For each Chicago column, the areas of the layer named like it (compared
/// without case or punctuation: a layer `community_area` fills
/// `COMMUNITY_AREA`); columns no layer is named like are left out.
fn area_columns(app: &App) -> HashMap<&'static str, Vec<&crate::areas::Area>> {
    let mut out: HashMap<&'static str, Vec<&crate::areas::Area>> = HashMap::new();
    for c in CHICAGO_COLUMNS {
        let want = crate::import::norm(c);
        for a in app
            .areas
            .iter()
            .filter(|a| crate::import::norm(&a.layer) == want)
        {
            out.entry(c).or_default().push(a);
        }
    }
    out
}

/// What both community routes start with: the permission, the window, the
/// public incidents in it, and the audit record of the read.
async fn community(
    app: &App,
    caller: &Caller,
    q: &PublicQuery,
    path: &str,
) -> Result<(Option<i64>, i64, Vec<IncidentRow>), ApiError> {
    caller.require(Perm::Community)?;
    if q.res.is_some() {
        return Err(ApiError::BadRequest(
            "res: only for /v1/public/cells".into(),
        ));
    }
    let (since, until) = window(app, q)?;
    let rows = public_incidents(app, since, until).await?;
    let detail = format!(
        "{} incidents, moved ≥ {} m",
        rows.len(),
        app.config.public.coarsen_m
    );
    audit(app, caller, "read.community", path, Some(detail)).await?;
    Ok((since, until, rows))
}

/// `GET /v1/community/incidents.csv`: one row per public incident in the
/// Chicago portal's layout, each place [`mask`]ed, times in the city's zone.
async fn community_csv(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<PublicQuery>,
) -> Result<Response, ApiError> {
    let (_, _, rows) = community(&app, &caller, &q, "/v1/community/incidents.csv").await?;
    let tz = app.config.map.tz();
    let columns = area_columns(&app);
    let mut out = csv::Writer::from_writer(Vec::new());
    let fail = |e: csv::Error| ApiError::Internal(format!("community csv: {e}"));
    out.write_record(CHICAGO_COLUMNS).map_err(fail)?;
    for r in &rows {
        let local = tz.timestamp_nanos(r.first_ns);
        let (lat, lon) = (r.lat, r.lon);
        let record = CHICAGO_COLUMNS.map(|c| match c {
            "DATE" => local.format("%m/%d/%Y %I:%M:00 %p").to_string(),
            "UNIQUE_ID" => r.id.clone(),
            "MONTH" => local.month().to_string(),
            // The portal's numbering: 1 is Sunday.
            "DAY_OF_WEEK" => local.weekday().number_from_sunday().to_string(),
            "HOUR" => local.hour().to_string(),
            "INCIDENT_TYPE_DESCRIPTION" => chicago_type(&r.class, r.rounds).to_string(),
            "ROUNDS" => r.rounds.to_string(),
            "LATITUDE" => format!("{lat:.5}"),
            "LONGITUDE" => format!("{lon:.5}"),
            "LOCATION" => format!("POINT ({lon:.5} {lat:.5})"),
            // BLOCK (no block addresses here) and the area columns: the
            // name of the area of a layer named like the column.
            _ => columns
                .get(c)
                .and_then(|areas| areas.iter().find(|a| a.contains(lat, lon)))
                .map(|a| a.name.clone())
                .unwrap_or_default(),
        });
        out.write_record(record).map_err(fail)?;
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
    let (since, until, rows) = community(&app, &caller, &q, "/v1/community/areas").await?;
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
    fn a_masked_place_is_at_least_the_distance_away_and_the_same_for_a_cell() {
        let key = b"a key of the server's own, 32 b.";
        let mut seen = std::collections::HashMap::new();
        // Places 10 m apart over a 2 km square, at two latitudes.
        for base in [(38.9, -77.0), (41.88, -87.63)] {
            for i in 0..200 {
                for j in 0..200 {
                    let (lat, lon) = (base.0 + i as f64 * 9e-5, base.1 + j as f64 * 1.2e-4);
                    let m = mask(key, lat, lon, 100.0).unwrap();
                    let d = distance_m((lat, lon), m);
                    assert!((100.0..=300.0).contains(&d), "{lat}, {lon}: moved {d} m");
                    let cell = h3o::LatLng::new(lat, lon)
                        .unwrap()
                        .to_cell(snap_resolution(100.0));
                    // Every place of a cell goes to the cell's one point.
                    assert_eq!(*seen.entry(cell).or_insert(m), m, "{lat}, {lon}");
                }
            }
        }
        assert!(seen.len() > 1_000, "{} cells", seen.len());
        // Another key moves it elsewhere; a place that is not one is not shown.
        assert_ne!(
            mask(b"one key", 38.9, -77.0, 100.0),
            mask(b"another key", 38.9, -77.0, 100.0)
        );
        assert_eq!(mask(key, f64::NAN, -77.0, 100.0), None);
        // Cells with edges at most half the distance.
        assert!(snap_resolution(100.0).edge_length_m() <= 50.0);
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
