//! Aggregate views for the dashboard (docs/dashboard.md): incidents counted
//! in H3 hexagons, by hour of day and day of week in the city's time zone,
//! and by week (`GET /v1/analytics`); and the expected accuracy of the
//! sensor layout on a grid (`GET /v1/coverage`, [`locate::plan`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{Datelike, TimeZone, Timelike};
use h3o::{LatLng, Resolution};
use model::{Geodetic, Point3};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::access::{audit, Caller, Perm};
use crate::api::{ApiError, IncidentQuery};
use crate::App;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/analytics", get(analytics))
        .route("/v1/coverage", get(coverage))
        .route("/v1/analytics/hotspots", get(hotspots))
        .route("/v1/analytics/areas", get(areas))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnalyticsQuery {
    since: Option<String>,
    until: Option<String>,
    /// First and last day (YYYY-MM-DD, both included) in the city's time
    /// zone: what a person means by dates.
    from: Option<String>,
    to: Option<String>,
    /// min_lon,min_lat,max_lon,max_lat
    bbox: Option<String>,
    /// A class, `all`, or (absent) gunfire and probable gunfire.
    class: Option<String>,
    /// H3 resolution, 5–11 (default 9, hexagons of about 170 m).
    res: Option<u8>,
    /// Hotspots: the least incidents a block-sized cell needs to be listed as
    /// a repeat location (default 3).
    repeat_min: Option<usize>,
}

/// Repeat locations are counted in resolution-10 cells: about 130 m across
/// (0.015 km²), a city block.
const REPEAT_RES: Resolution = Resolution::Ten;

/// Most repeat locations listed.
const MAX_REPEAT: usize = 100;

/// Cells of [`REPEAT_RES`] with at least `min` incidents, most first (ties by
/// cell), with the first and last incident's time.
pub fn repeat_locations(
    incidents: &[Counted],
    min: usize,
) -> Vec<(h3o::CellIndex, usize, i64, i64)> {
    let mut cells: BTreeMap<h3o::CellIndex, (usize, i64, i64)> = BTreeMap::new();
    for &(t, lat, lon) in incidents {
        let Ok(place) = LatLng::new(lat, lon) else {
            continue;
        };
        let e = cells
            .entry(place.to_cell(REPEAT_RES))
            .or_insert((0, i64::MAX, i64::MIN));
        *e = (e.0 + 1, e.1.min(t), e.2.max(t));
    }
    let mut out: Vec<_> = cells
        .into_iter()
        .filter(|(_, (n, _, _))| *n >= min.max(1))
        .map(|(c, (n, a, b))| (c, n, a, b))
        .collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    out.truncate(MAX_REPEAT);
    out
}

/// What [`aggregate`] counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    pub total: usize,
    /// H3 cell → incidents.
    pub cells: BTreeMap<h3o::CellIndex, usize>,
    /// [day of week from Monday][hour of day], local time.
    pub matrix: [[usize; 24]; 7],
    /// Local date of each week's Monday → incidents, every week from the first
    /// to the last (weeks with none included, so a trend has no gaps).
    pub weekly: BTreeMap<chrono::NaiveDate, usize>,
}

/// One incident as counted: its first shot's time (ns) and published place.
pub type Counted = (i64, f64, f64);

/// Counts incidents by cell, by hour and weekday, and by week, in time zone
/// `tz`.
pub fn aggregate(incidents: &[Counted], res: Resolution, tz: chrono_tz::Tz) -> Aggregate {
    let mut out = Aggregate {
        total: 0,
        cells: BTreeMap::new(),
        matrix: [[0; 24]; 7],
        weekly: BTreeMap::new(),
    };
    for &(t, lat, lon) in incidents {
        let Ok(place) = LatLng::new(lat, lon) else {
            continue;
        };
        let local = tz.timestamp_nanos(t);
        out.total += 1;
        *out.cells.entry(place.to_cell(res)).or_default() += 1;
        let day = local.weekday().num_days_from_monday() as usize;
        out.matrix[day][local.hour() as usize] += 1;
        let monday = local.date_naive() - chrono::Days::new(day as u64);
        *out.weekly.entry(monday).or_default() += 1;
    }
    if let (Some(&first), Some(&last)) = (out.weekly.keys().next(), out.weekly.keys().last()) {
        let mut w = first;
        while w < last {
            out.weekly.entry(w).or_default();
            w = w + chrono::Days::new(7);
        }
    }
    out
}

/// The first instant of `date` (YYYY-MM-DD) in `tz`, as UTC nanoseconds.
pub(crate) fn local_midnight(name: &str, date: &str, tz: chrono_tz::Tz) -> Result<i64, ApiError> {
    let d = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map_err(|_| ApiError::BadRequest(format!("{name} {date:?}: a date, YYYY-MM-DD")))?;
    let midnight = d.and_time(chrono::NaiveTime::MIN);
    // A midnight skipped by a clock change falls back to the hour after.
    let t = tz
        .from_local_datetime(&midnight)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(midnight + chrono::Duration::hours(1)))
                .earliest()
        })
        .ok_or_else(|| {
            ApiError::BadRequest(format!("{name} {date:?}: not a time in {}", tz.name()))
        })?;
    t.timestamp_nanos_opt()
        .ok_or_else(|| ApiError::BadRequest(format!("{name} {date:?}: out of range")))
}

/// The end of `date` (YYYY-MM-DD, a last day that is included): the next
/// day's first instant in `tz`, as UTC nanoseconds.
pub(crate) fn day_after(name: &str, date: &str, tz: chrono_tz::Tz) -> Result<i64, ApiError> {
    let day = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map_err(|_| ApiError::BadRequest(format!("{name} {date:?}: a date, YYYY-MM-DD")))?;
    let next = day
        .checked_add_days(chrono::Days::new(1))
        .ok_or_else(|| ApiError::BadRequest(format!("{name} {date:?}: out of range")))?
        .format("%Y-%m-%d")
        .to_string();
    local_midnight(name, &next, tz)
}

/// An H3 cell as a GeoJSON polygon ring, closed.
pub(crate) fn cell_ring(cell: h3o::CellIndex) -> Vec<[f64; 2]> {
    let boundary = cell.boundary();
    let mut ring: Vec<[f64; 2]> = boundary
        .iter()
        .map(|v| [round6(v.lng()), round6(v.lat())])
        .collect();
    if let Some(&first) = ring.first() {
        ring.push(first);
    }
    ring
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// The incidents a query selects, as counted: located (rounds > 0), of the
/// wanted class, with the first shot within the dates.
async fn counted(
    app: &Arc<App>,
    q: &AnalyticsQuery,
    tz: chrono_tz::Tz,
) -> Result<Vec<Counted>, ApiError> {
    let class = q.class.as_deref().filter(|c| !c.is_empty());
    let wanted: Box<dyn Fn(&str) -> bool + Send> = match class {
        None => Box::new(|c| matches!(c, "gunfire" | "probable_gunfire")),
        Some("all") => Box::new(|_| true),
        Some(c) => {
            let c = c.to_string();
            Box::new(move |d| d == c)
        }
    };
    let filter = IncidentQuery {
        since: q.since.clone(),
        until: q.until.clone(),
        bbox: q.bbox.clone(),
        class: class.filter(|c| *c != "all").map(str::to_string),
        limit: None,
    }
    .filter()?;
    let from = q
        .from
        .as_deref()
        .map(|d| local_midnight("from", d, tz))
        .transpose()?;
    let to =
        q.to.as_deref()
            .map(|d| day_after("to", d, tz))
            .transpose()?;
    let filter = store::IncidentFilter {
        limit: 0,
        since_ns: filter.since_ns.max(from),
        until_ns: match (filter.until_ns, to) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        },
        ..filter
    };
    // The stored columns (first shot's time, place, class, rounds): no
    // document is parsed, so a year of a big city's incidents stays cheap.
    let rows = app.read(move |db| db.incidents(&filter)).await?;
    Ok(rows
        .iter()
        .filter(|r| r.rounds > 0 && wanted(&r.class))
        .filter(|r| from.is_none_or(|f| r.first_ns >= f) && to.is_none_or(|t| r.first_ns < t))
        .map(|r| (r.first_ns, r.lat, r.lon))
        .collect())
}

/// What both analytics views start with: the caller's permission, the H3
/// resolution (5 to `top`), the city's zone, the selected incidents, and the
/// audit record of the read (cells, not exact places, leave the server; the
/// read is still logged).
async fn selected(
    app: &Arc<App>,
    caller: &Caller,
    q: &AnalyticsQuery,
    path: &str,
    top: Resolution,
) -> Result<(Resolution, chrono_tz::Tz, Vec<Counted>), ApiError> {
    caller.require(Perm::Incidents)?;
    let res = Resolution::try_from(q.res.unwrap_or(9))
        .ok()
        .filter(|r| (Resolution::Five..=top).contains(r))
        .ok_or_else(|| {
            ApiError::BadRequest(format!("res: an H3 resolution from 5 to {}", u8::from(top)))
        })?;
    let tz = app.config.map.tz();
    let counted = counted(app, q, tz).await?;
    audit(
        app,
        caller,
        "read.analytics",
        path,
        Some(format!(
            "{} incidents, H3 resolution {}",
            counted.len(),
            u8::from(res)
        )),
    )
    .await?;
    Ok((res, tz, counted))
}

async fn analytics(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<AnalyticsQuery>,
) -> Result<Json<Value>, ApiError> {
    let (res, tz, counted) =
        selected(&app, &caller, &q, "/v1/analytics", Resolution::Eleven).await?;
    let a = aggregate(&counted, res, tz);
    let hexes: Vec<Value> = a
        .cells
        .iter()
        .map(|(cell, n)| {
            json!({
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [cell_ring(*cell)]},
                "properties": {"cell": cell.to_string(), "count": n},
            })
        })
        .collect();
    let weekly: Vec<Value> = a
        .weekly
        .iter()
        .map(|(w, n)| json!({"week_start": w.to_string(), "count": n}))
        .collect();
    Ok(Json(json!({
        "total": a.total,
        "timezone": tz.name(),
        "resolution": u8::from(res),
        "hexes": {"type": "FeatureCollection", "features": hexes},
        "matrix": a.matrix,
        "weekly": weekly,
    })))
}

/// `GET /v1/analytics/hotspots`: Getis–Ord Gi* over the H3 cells of the
/// selected incidents' box (or `bbox`), with conditional permutation
/// p-values and a 5 % false-discovery rate ([`crate::hotspot`]).
async fn hotspots(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<AnalyticsQuery>,
) -> Result<Json<Value>, ApiError> {
    let (res, tz, counted) =
        selected(&app, &caller, &q, "/v1/analytics/hotspots", Resolution::Ten).await?;
    let repeat: Vec<Value> = repeat_locations(&counted, q.repeat_min.unwrap_or(3))
        .into_iter()
        .map(|(cell, n, first, last)| {
            let centre = LatLng::from(cell);
            json!({
                "cell": cell.to_string(), "count": n,
                "lat": round6(centre.lat()), "lon": round6(centre.lng()),
                "first_utc": model::UtcNanos(first).to_rfc3339(),
                "last_utc": model::UtcNanos(last).to_rfc3339(),
            })
        })
        .collect();
    let bbox = match &q.bbox {
        Some(_) => {
            IncidentQuery {
                since: None,
                until: None,
                bbox: q.bbox.clone(),
                class: None,
                limit: None,
            }
            .filter()?
            .bbox
        }
        None => counted
            .iter()
            .fold(None, |b: Option<[f64; 4]>, &(_, lat, lon)| {
                Some(b.map_or([lon, lat, lon, lat], |[x0, y0, x1, y1]| {
                    [x0.min(lon), y0.min(lat), x1.max(lon), y1.max(lat)]
                }))
            }),
    };
    let Some(bbox) = bbox else {
        return Ok(Json(json!({
            "cells": {"type": "FeatureCollection", "features": []},
            "area_cells": 0,
            "repeat_locations": [],
        })));
    };
    let stats = tokio::task::spawn_blocking(move || {
        // The box, three cell edges wider all round (the neighbours of the
        // outermost incidents and theirs), and every cell an incident is in.
        let pad = 3.0 * res.edge_length_m() / 111_320.0;
        let [x0, y0, x1, y1] = bbox;
        let cos = y0.to_radians().cos().max(0.01);
        let counts = aggregate(&counted, res, tz).cells;
        let mut area = crate::hotspot::cells_in_box(
            [x0 - pad / cos, y0 - pad, x1 + pad / cos, y1 + pad],
            res,
            MAX_CELLS,
        )
        .map_err(|n| {
            ApiError::BadRequest(format!(
                "about {n} cells at resolution {}: more than {MAX_CELLS}; use larger cells or a bbox (a far stray position stretches the box)",
                u8::from(res)
            ))
        })?;
        area.extend(counts.keys().copied());
        area.sort();
        area.dedup();
        Ok((area.len(), crate::hotspot::getis_ord(&area, &counts, 1, 0.05)))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("hotspots: {e}")))??;
    let (area_cells, stats) = stats;
    let features: Vec<Value> = stats
        .iter()
        .filter(|c| c.count > 0 || c.hotspot)
        .map(|c| {
            json!({
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [cell_ring(c.cell)]},
                "properties": {
                    "cell": c.cell.to_string(), "count": c.count,
                    "gi_z": (c.z * 100.0).round() / 100.0, "p": c.p, "hotspot": c.hotspot,
                },
            })
        })
        .collect();
    Ok(Json(json!({
        "area_cells": area_cells,
        "resolution": u8::from(res),
        "neighbours_rings": 1,
        "false_discovery_rate": 0.05,
        "permutations": crate::hotspot::PERMUTATIONS,
        "cells": {"type": "FeatureCollection", "features": features},
        "repeat_resolution": u8::from(REPEAT_RES),
        "repeat_locations": repeat,
    })))
}

/// `GET /v1/analytics/areas`: the selected incidents counted per area of
/// interest ([`crate::areas`]), split by the school calendar when there is
/// one; each area a GeoJSON feature with its counts.
async fn areas(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<AnalyticsQuery>,
) -> Result<Json<Value>, ApiError> {
    let (_, tz, counted) =
        selected(&app, &caller, &q, "/v1/analytics/areas", Resolution::Eleven).await?;
    let app2 = Arc::clone(&app);
    let counts = tokio::task::spawn_blocking(move || {
        crate::areas::count(&app2.areas, &counted, app2.school.as_ref(), tz)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("areas: {e}")))?;
    let features: Vec<Value> = app
        .areas
        .iter()
        .zip(counts)
        .map(|(area, c)| {
            let mut props = json!({"layer": area.layer, "name": area.name});
            if let Some(b) = area.buffer_m() {
                props["buffer_m"] = json!(b);
            }
            if let (Value::Object(p), Ok(Value::Object(c))) = (&mut props, serde_json::to_value(c))
            {
                p.extend(c);
            }
            json!({"type": "Feature", "geometry": area.geometry, "properties": props})
        })
        .collect();
    Ok(Json(json!({
        "type": "FeatureCollection",
        "features": features,
        "properties": {
            "timezone": tz.name(),
            "school_hours": app.config.areas.school_hours.as_ref().map(|h| json!({
                "days": h.days, "start": h.start, "end": h.end, "after_end": h.after_end,
                "terms": h.terms, "closed": h.closed,
            })),
        },
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CoverageQuery {
    /// Grid step, metres (default: the extent over 60, at least 25 m).
    step_m: Option<f64>,
}

/// Most grid cells computed for one request.
const MAX_CELLS: usize = 40_000;

async fn coverage(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<CoverageQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Perm::Sensors)?;
    let config = locate::LocateConfig::default();
    let medium = locate::Medium::from_weather(&crate::evidence::server_weather(&app.config));
    let sensors: Vec<Point3> = app
        .sensors
        .values()
        .map(|s| {
            app.frame.to_local(Geodetic {
                lat_deg: s.row.lat,
                lon_deg: s.row.lon,
                alt_m: s.row.alt_m,
            })
        })
        .collect();
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for s in &sensors {
        (x0, y0, x1, y1) = (x0.min(s.x), y0.min(s.y), x1.max(s.x), y1.max(s.y));
    }
    // A shot is heard up to max_range_m away; the grid reaches a quarter of it
    // beyond the outermost sensors, where fixes are already poor.
    let margin = config.max_range_m / 4.0;
    let (x0, y0, x1, y1) = (x0 - margin, y0 - margin, x1 + margin, y1 + margin);
    let extent = (x1 - x0).max(y1 - y0);
    let step = match q.step_m {
        Some(s) if s.is_finite() && (5.0..=5_000.0).contains(&s) => s,
        Some(_) => return Err(ApiError::BadRequest("step_m: 5 to 5000 metres".into())),
        None => (extent / 60.0).max(25.0),
    };
    let (nx, ny) = (
        ((x1 - x0) / step).ceil() as usize,
        ((y1 - y0) / step).ceil() as usize,
    );
    if nx.saturating_mul(ny) > MAX_CELLS {
        return Err(ApiError::BadRequest(format!(
            "step_m {step}: {nx} × {ny} cells, more than {MAX_CELLS}; use a larger step"
        )));
    }
    // Shots at street level: no higher than the lowest (rooftop) sensor.
    let z = sensors.iter().map(|s| s.z).fold(f64::MAX, f64::min);
    let c = medium.speed_of_sound_m_s;
    let (min_sensors, max_range_m, sigma_s) = (
        config.min_sensors,
        config.max_range_m,
        config.prior_arrival_sigma_s,
    );
    let cells = tokio::task::spawn_blocking({
        let app = Arc::clone(&app);
        move || {
            let mut features = Vec::new();
            let mut worst: f64 = 0.0;
            for j in 0..ny {
                for i in 0..nx {
                    let (cx, cy) = (x0 + (i as f64 + 0.5) * step, y0 + (j as f64 + 0.5) * step);
                    let shot = Point3 { x: cx, y: cy, z };
                    let Some(e) = locate::plan::expected(&sensors, shot, c, &config) else {
                        continue;
                    };
                    // Colour scales saturate at 50 m: the contract's 25 m, doubled.
                    let err = e.err95_m.min(999.0);
                    worst = worst.max(err.min(50.0));
                    let corner = |x: f64, y: f64| {
                        let g = app.frame.to_geodetic(Point3 { x, y, z: 0.0 });
                        [round6(g.lon_deg), round6(g.lat_deg)]
                    };
                    let h = step / 2.0;
                    features.push(json!({
                        "type": "Feature",
                        "geometry": {"type": "Polygon", "coordinates": [[
                            corner(cx - h, cy - h), corner(cx + h, cy - h), corner(cx + h, cy + h),
                            corner(cx - h, cy + h), corner(cx - h, cy - h)
                        ]]},
                        "properties": {"err95_m": (err * 10.0).round() / 10.0, "sensors": e.sensors},
                    }));
                }
            }
            (features, worst)
        }
    })
    .await
    .map_err(|e| ApiError::Internal(format!("coverage: {e}")))?;
    let (features, worst) = cells;
    Ok(Json(json!({
        "step_m": step,
        "min_sensors": min_sensors,
        "max_range_m": max_range_m,
        "arrival_sigma_ms": sigma_s * 1e3,
        "speed_of_sound_m_s": c,
        "max_err95_m": if worst > 0.0 { worst } else { 50.0 },
        "cells": {"type": "FeatureCollection", "features": features},
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::UtcNanos;

    fn doc(first_utc: &str, lat: f64, lon: f64) -> Counted {
        (UtcNanos::parse_rfc3339(first_utc).unwrap().0, lat, lon)
    }

    #[test]
    fn hour_and_weekday_are_the_city_s_local_time() {
        // 2026-07-05 is a Sunday; 03:30 UTC is 23:30 on Saturday in New York (EDT).
        let docs = [doc("2026-07-05T03:30:00Z", 40.44, -79.99)];
        let a = aggregate(&docs, Resolution::Nine, chrono_tz::America::New_York);
        assert_eq!(a.matrix[5][23], 1, "{:?}", a.matrix);
        let utc = aggregate(&docs, Resolution::Nine, chrono_tz::UTC);
        assert_eq!(utc.matrix[6][3], 1);
        assert_eq!(a.total, 1);
    }

    #[test]
    fn a_date_starts_at_the_city_s_midnight() {
        let ny = chrono_tz::America::New_York;
        // EDT: UTC−4.
        assert_eq!(
            local_midnight("from", "2026-07-04", ny).unwrap(),
            UtcNanos::parse_rfc3339("2026-07-04T04:00:00Z").unwrap().0
        );
        // EST: UTC−5.
        assert_eq!(
            local_midnight("from", "2026-01-15", ny).unwrap(),
            UtcNanos::parse_rfc3339("2026-01-15T05:00:00Z").unwrap().0
        );
        assert!(local_midnight("from", "2026-13-01", ny).is_err());
        assert!(local_midnight("from", "yesterday", ny).is_err());
    }

    #[test]
    fn weeks_run_monday_to_sunday_with_empty_weeks_kept() {
        let docs = [
            doc("2026-03-02T12:00:00Z", 40.44, -79.99), // Monday
            doc("2026-03-08T12:00:00Z", 40.44, -79.99), // Sunday, same week
            doc("2026-03-23T12:00:00Z", 40.44, -79.99), // Monday, three weeks on
        ];
        let a = aggregate(&docs, Resolution::Nine, chrono_tz::UTC);
        let weeks: Vec<(String, usize)> =
            a.weekly.iter().map(|(w, n)| (w.to_string(), *n)).collect();
        assert_eq!(
            weeks,
            [
                ("2026-03-02".to_string(), 2),
                ("2026-03-09".to_string(), 0),
                ("2026-03-16".to_string(), 0),
                ("2026-03-23".to_string(), 1)
            ]
        );
    }

    #[test]
    fn nearby_incidents_share_a_cell_and_distant_ones_do_not() {
        // 20 m apart (well inside a ~170 m resolution-9 hexagon unless on an
        // edge; the point is chosen near a cell centre) and 2 km away.
        let centre = LatLng::new(40.44, -79.99)
            .unwrap()
            .to_cell(Resolution::Nine);
        let c = LatLng::from(centre);
        let docs = [
            doc("2026-03-02T12:00:00Z", c.lat(), c.lng()),
            doc("2026-03-02T13:00:00Z", c.lat() + 0.00018, c.lng()),
            doc("2026-03-02T14:00:00Z", c.lat() + 0.018, c.lng()),
        ];
        let a = aggregate(&docs, Resolution::Nine, chrono_tz::UTC);
        assert_eq!(a.cells.get(&centre), Some(&2));
        assert_eq!(a.cells.len(), 2);
        let ring = cell_ring(centre);
        assert_eq!(ring.len(), 7, "a hexagon, closed");
        assert_eq!(ring.first(), ring.last());
    }
}
