//! Analytics for the community and for oversight, over the real HTTP API of a
//! real server (SQLite), with incidents stored as the pipeline stores them:
//! - per-area counts (polygons with holes, multipolygons, concave shapes,
//!   school buffers) and the school-calendar split agree with a count made
//!   here independently (ray casting, our own haversine, the calendar's
//!   rules written out);
//! - the public view and the partners' data leak nothing: every partner row
//!   is at least the coarsening distance from its incident, nothing is newer
//!   than the delay, there is never audio, a sensor or an exact place;
//! - the measures count exactly what was recorded: alerts, latency, reviews,
//!   outcomes (the latest one), misses, 911 calls, cost.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use chrono::{Datelike, NaiveDate, TimeZone, Timelike, Weekday};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use server::access::Role;
use server::config::{AreaLayerConfig, SchoolHoursConfig};
use server::doc::{IncidentDoc, ReviewDoc};

use common::{call, get_json, square};

const S: i64 = 1_000_000_000;

/// A small deterministic generator (the test must not depend on a seed's luck).
struct Lcg(u64);

impl Lcg {
    fn unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// An incident as the pipeline stores it; published as an alert `latency_s`
/// after its first shot when given.
fn incident(
    id: &str,
    first_ns: i64,
    (lat, lon): (f64, f64),
    class: &str,
    rounds: usize,
    latency_s: Option<i64>,
    review: Option<&str>,
) -> store::IncidentSave {
    let t = model::UtcNanos(first_ns).to_rfc3339();
    let doc = IncidentDoc {
        id: id.into(),
        version: 1,
        class: class.into(),
        confidence: 0.9,
        rounds,
        shooters: 1,
        automatic: false,
        first_utc: t.clone(),
        last_utc: t,
        lat,
        lon,
        err95_m: 10.0,
        address: None,
        address_distance_m: None,
        shots: Vec::new(),
        software: "test".into(),
        review: review.map(|status| ReviewDoc {
            status: status.into(),
            by: "user:r".into(),
            at_utc: model::UtcNanos(first_ns).to_rfc3339(),
            reason: "heard it".into(),
            class: None,
            rounds: None,
            shooters: None,
            lat: None,
            lon: None,
            machine: None,
        }),
        source: None,
    };
    let doc_text = serde_json::to_string(&doc).unwrap();
    store::IncidentSave {
        incident: doc.row(first_ns, first_ns, first_ns + latency_s.unwrap_or(1) * S),
        pulses: Vec::new(),
        alert: latency_s.map(|_| "alert".to_string()),
        alert_doc: doc_text,
        targets: Vec::new(),
        change: store::Change {
            actor: "machine".into(),
            action: "locate".into(),
            reason: None,
        },
        strict: false,
    }
}

async fn save(running: &server::Running, saves: Vec<store::IncidentSave>) {
    running
        .app
        .writer
        .run(move |db| db.save_incidents(&saves))
        .await
        .unwrap();
}

// ---- per-area counts ---------------------------------------------------------

/// Whether (x, y) is inside the ring, by ray casting (even–odd).
fn in_ring(ring: &[[f64; 2]], x: f64, y: f64) -> bool {
    let mut inside = false;
    let mut j = ring.len() - 1;
    for i in 0..ring.len() {
        let ([xi, yi], [xj, yj]) = (ring[i], ring[j]);
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// A polygon: its exterior and its holes.
type Poly = Vec<Vec<[f64; 2]>>;

fn in_polygon(p: &Poly, x: f64, y: f64) -> bool {
    in_ring(&p[0], x, y) && !p[1..].iter().any(|hole| in_ring(hole, x, y))
}

/// Great-circle distance (haversine on the mean Earth radius, IUGG).
fn metres(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (p1, p2) = (a.0.to_radians(), b.0.to_radians());
    let (dp, dl) = (p2 - p1, (b.1 - a.1).to_radians());
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6_371_008.8 * h.sqrt().asin()
}

/// The school calendar of the test, written out: Monday to Friday, term
/// 2026-09-01 to 2026-12-18 without Thanksgiving (2026-11-26); school
/// 08:00–15:00, after school 15:00–19:00.
fn slot(local: chrono::NaiveDateTime) -> &'static str {
    let d = local.date();
    let in_term = NaiveDate::from_ymd_opt(2026, 9, 1).unwrap() <= d
        && d <= NaiveDate::from_ymd_opt(2026, 12, 18).unwrap()
        && d != NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
    let weekday = !matches!(d.weekday(), Weekday::Sat | Weekday::Sun);
    let h = local.time().hour() as f64 + local.time().minute() as f64 / 60.0;
    match (in_term && weekday, h) {
        (true, h) if (8.0..15.0).contains(&h) => "school",
        (true, h) if (15.0..19.0).contains(&h) => "after_school",
        _ => "other_times",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_area_counts_agree_with_an_independent_count() {
    let dir = tempfile::tempdir().unwrap();
    // Around 40.44 N, 80.00 W: an L-shaped (concave) district, one with a
    // hole (a park), and one of two separate squares.
    let districts: Vec<(&str, Vec<Poly>)> = vec![
        (
            "L",
            vec![vec![vec![
                [-80.02, 40.43],
                [-80.00, 40.43],
                [-80.00, 40.435],
                [-80.01, 40.435],
                [-80.01, 40.45],
                [-80.02, 40.45],
                [-80.02, 40.43],
            ]]],
        ),
        (
            "Ring",
            vec![vec![
                vec![
                    [-80.00, 40.44],
                    [-79.98, 40.44],
                    [-79.98, 40.455],
                    [-80.00, 40.455],
                    [-80.00, 40.44],
                ],
                vec![
                    [-79.995, 40.445],
                    [-79.985, 40.445],
                    [-79.985, 40.45],
                    [-79.995, 40.45],
                    [-79.995, 40.445],
                ],
            ]],
        ),
        (
            "Islands",
            vec![
                vec![vec![
                    [-80.03, 40.425],
                    [-80.025, 40.425],
                    [-80.025, 40.43],
                    [-80.03, 40.43],
                    [-80.03, 40.425],
                ]],
                vec![vec![
                    [-79.975, 40.455],
                    [-79.97, 40.455],
                    [-79.97, 40.46],
                    [-79.975, 40.46],
                    [-79.975, 40.455],
                ]],
            ],
        ),
    ];
    let features: Vec<Value> = districts
        .iter()
        .map(|(name, polys)| {
            let geometry = if polys.len() == 1 {
                json!({"type": "Polygon", "coordinates": polys[0]})
            } else {
                json!({"type": "MultiPolygon", "coordinates": polys})
            };
            json!({"type": "Feature", "properties": {"DIST_NAME": name}, "geometry": geometry})
        })
        .collect();
    let districts_file = dir.path().join("districts.geojson");
    std::fs::write(
        &districts_file,
        json!({"type": "FeatureCollection", "features": features}).to_string(),
    )
    .unwrap();
    let schools = [
        ("Lincoln", (40.44, -80.0)),
        ("Roosevelt", (40.447, -80.012)),
        ("Douglass", (40.433, -79.99)),
    ];
    let school_features: Vec<Value> = schools
        .iter()
        .map(|(name, (lat, lon))| {
            json!({"type": "Feature", "properties": {"name": name},
                   "geometry": {"type": "Point", "coordinates": [lon, lat]}})
        })
        .collect();
    let schools_file = dir.path().join("schools.geojson");
    std::fs::write(
        &schools_file,
        json!({"type": "FeatureCollection", "features": school_features}).to_string(),
    )
    .unwrap();

    let mut config = square(dir.path());
    config.map.timezone = "America/New_York".into();
    config.areas.layers = vec![
        AreaLayerConfig {
            name: "district".into(),
            file: districts_file,
            name_property: Some("DIST_NAME".into()),
            buffer_m: 300.0,
        },
        AreaLayerConfig {
            name: "schools".into(),
            file: schools_file,
            name_property: None,
            buffer_m: 300.0,
        },
    ];
    config.areas.school_hours = Some(SchoolHoursConfig {
        days: ["mon", "tue", "wed", "thu", "fri"]
            .map(String::from)
            .to_vec(),
        start: "08:00".into(),
        end: "15:00".into(),
        after_end: "19:00".into(),
        terms: vec![["2026-09-01".into(), "2026-12-18".into()]],
        closed: vec!["2026-11-26".into()],
    });
    let running = server::start(config).await.unwrap();
    let admin = common::authorize(&running).await;
    let base = format!("http://{}", running.addr);

    // 3,000 incidents over the box, from mid-August to the end of the year
    // (term, holidays, weekends, summer), at any time of day.
    let mut rng = Lcg(7);
    let t0 = model::UtcNanos::parse_rfc3339("2026-08-15T00:00:00Z")
        .unwrap()
        .0;
    let incidents: Vec<(i64, f64, f64)> = (0..3_000)
        .map(|_| {
            let t = t0 + (rng.unit() * 138.0 * 86_400.0) as i64 * S;
            (t, 40.42 + rng.unit() * 0.045, -80.035 + rng.unit() * 0.07)
        })
        .collect();
    let saves = incidents
        .iter()
        .enumerate()
        .map(|(i, &(t, lat, lon))| {
            incident(&format!("a{i}"), t, (lat, lon), "gunfire", 1, None, None)
        })
        .collect();
    save(&running, saves).await;

    let areas = get_json(&format!("{base}/v1/analytics/areas"), &admin).await;
    let got = areas["features"].as_array().unwrap();
    assert_eq!(got.len(), districts.len() + schools.len());
    let tz = chrono_tz::America::New_York;
    let expect = |inside: &dyn Fn(f64, f64) -> bool| {
        let mut counts = std::collections::BTreeMap::new();
        for &(t, lat, lon) in &incidents {
            if inside(lat, lon) {
                *counts.entry("count").or_insert(0u64) += 1;
                *counts
                    .entry(slot(tz.timestamp_nanos(t).naive_local()))
                    .or_insert(0u64) += 1;
            }
        }
        counts
    };
    let mut total_in_areas = 0;
    for (f, (name, polys)) in got.iter().zip(&districts) {
        let p = &f["properties"];
        assert_eq!(
            (p["layer"].as_str(), p["name"].as_str()),
            (Some("district"), Some(*name))
        );
        let want = expect(&|lat, lon| polys.iter().any(|poly| in_polygon(poly, lon, lat)));
        for key in ["count", "school", "after_school", "other_times"] {
            assert_eq!(
                p[key].as_u64().unwrap(),
                want.get(key).copied().unwrap_or(0),
                "{name} {key}"
            );
        }
        total_in_areas += want["count"];
    }
    for (f, (name, centre)) in got[districts.len()..].iter().zip(&schools) {
        let p = &f["properties"];
        assert_eq!(
            (p["name"].as_str(), p["buffer_m"].as_f64()),
            (Some(*name), Some(300.0))
        );
        let want = expect(&|lat, lon| metres(*centre, (lat, lon)) <= 300.0);
        for key in ["count", "school", "after_school", "other_times"] {
            assert_eq!(
                p[key].as_u64().unwrap(),
                want.get(key).copied().unwrap_or(0),
                "{name} {key}"
            );
        }
        assert!(want["count"] >= 20, "{name}: a buffer with incidents in it");
        assert!(
            want.get("school").copied().unwrap_or(0) > 0,
            "{name}: some in school hours"
        );
    }
    assert!(
        total_in_areas >= 300,
        "the districts hold many incidents: {total_in_areas}"
    );
    // The hole is a hole: an incident in the park is in no district.
    let hole = (40.4475, -79.99);
    assert!(!in_polygon(&districts[1].1[0], hole.1, hole.0));
    running.stop().await;
}

// ---- the public view and partners' data ------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_view_and_partner_data_leak_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = square(dir.path());
    config.map.timezone = "America/Chicago".into();
    let (delay_h, coarsen_m) = (24.0, 100.0);
    config.public.delay_hours = delay_h;
    config.public.coarsen_m = coarsen_m;
    let running = server::start(config).await.unwrap();
    let admin = common::authorize(&running).await;
    let partner = running
        .issue_token("school-district", Role::Partner)
        .await
        .unwrap();
    let analyst = running.issue_token("analyst", Role::Analyst).await.unwrap();
    let base = format!("http://{}", running.addr);

    let now = server::now_ns();
    let day = 86_400 * S;
    let cutoff = (now - (delay_h * 3.6e12) as i64).div_euclid(day) * day;
    let mut rng = Lcg(11);
    // Incidents from 40 days ago to an hour ago; some not gunfire.
    let mut saves = Vec::new();
    let mut exact = std::collections::HashMap::new();
    for i in 0..400 {
        let age = if i < 20 {
            (rng.unit() * 30.0 * 3_600.0) as i64 * S // the last 30 hours
        } else {
            (rng.unit() * 40.0 * 86_400.0) as i64 * S
        };
        let place = (40.43 + rng.unit() * 0.02, -80.01 + rng.unit() * 0.02);
        let class = match i % 10 {
            0 => "fireworks",
            1 => "other", // dismissed
            2 => "probable_gunfire",
            _ => "gunfire",
        };
        let id = format!("p{i}");
        exact.insert(id.clone(), (now - age, place, class));
        saves.push(incident(
            &id,
            now - age,
            place,
            class,
            1 + i % 4,
            Some(5),
            None,
        ));
    }
    save(&running, saves).await;
    let eligible: Vec<&String> = exact
        .iter()
        .filter(|(_, (t, _, class))| {
            *t < cutoff && matches!(*class, "gunfire" | "probable_gunfire")
        })
        .map(|(id, _)| id)
        .collect();
    assert!(eligible.len() > 200);
    assert!(
        exact
            .values()
            .any(|(t, _, c)| *t >= cutoff && *c == "gunfire"),
        "some gunfire is too recent to be shown"
    );

    // The partner's rows: Chicago's columns, every eligible incident once,
    // nothing newer than the delay, every place moved by at least the
    // coarsening distance (and at most twice it, plus the rounding).
    let (status, text) = call(
        Method::GET,
        &format!("{base}/v1/community/incidents.csv?until=2100-01-01T00:00:00Z"),
        Some(&partner),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header, server::public::CHICAGO_COLUMNS);
    let mut seen = Vec::new();
    let mut shown = std::collections::HashMap::new();
    let tz_chicago = chrono_tz::America::Chicago;
    for record in reader.records() {
        let r = record.unwrap();
        let id = r.get(9).unwrap().to_string();
        let (t, (lat, lon), class) = exact[&id];
        assert!(t < cutoff, "{id}: shown before the delay");
        assert!(
            matches!(class, "gunfire" | "probable_gunfire"),
            "{id}: {class}"
        );
        let public = (
            r.get(17).unwrap().parse::<f64>().unwrap(),
            r.get(18).unwrap().parse::<f64>().unwrap(),
        );
        // The local date and time, and the portal's month, weekday (1 is
        // Sunday: its 2024 export has 04/08/2021, a Thursday, as 5) and hour.
        let local = chrono::NaiveDateTime::parse_from_str(&r[0], "%m/%d/%Y %I:%M:%S %p").unwrap();
        let want_local = tz_chicago.timestamp_nanos(t).naive_local();
        assert_eq!(
            local,
            want_local
                .with_second(0)
                .unwrap()
                .with_nanosecond(0)
                .unwrap()
        );
        assert_eq!(
            (&r[10], &r[11], &r[12]),
            (
                local.month().to_string().as_str(),
                local.weekday().number_from_sunday().to_string().as_str(),
                local.hour().to_string().as_str()
            ),
            "{id}"
        );
        let moved = metres((lat, lon), public);
        assert!(moved >= coarsen_m, "{id}: moved only {moved} m");
        assert!(moved <= 3.0 * coarsen_m, "{id}: moved {moved} m");
        shown.insert(id.clone(), public);
        seen.push(id);
    }
    seen.sort();
    let mut want: Vec<String> = eligible.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(seen, want);
    // The same rows again: moved the same way (nothing to average out).
    let (_, again) = call(
        Method::GET,
        &format!("{base}/v1/community/incidents.csv"),
        Some(&partner),
        None,
    )
    .await;
    assert_eq!(again, text);
    // Our own importer reads the export as the Chicago layout.
    let (cols, good, bad) = server::import::read(&text, None, chrono_tz::America::Chicago).unwrap();
    assert_eq!(
        (cols.layout.as_str(), good.len(), bad.len()),
        ("chicago", want.len(), 0)
    );

    // The public cells and blocks count the same incidents, and only them.
    let cells = get_json(&format!("{base}/v1/public/cells"), &admin).await;
    let blocks = get_json(&format!("{base}/v1/public/incidents"), &admin).await;
    for (view, key) in [
        (&cells, "gunfire_incidents"),
        (&blocks, "gunfire_incidents"),
    ] {
        let total: u64 = view["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["properties"][key].as_u64().unwrap())
            .sum();
        assert_eq!(total as usize, eligible.len());
    }
    // Each cell is the H3 cell (resolution 8) its incidents' moved places are
    // in: what is public is counted where partners see it, never where it
    // happened, so no two views together narrow a place down.
    let mut by_cell = std::collections::BTreeMap::new();
    for id in &eligible {
        let (lat, lon) = shown[*id];
        let cell = h3o::LatLng::new(lat, lon)
            .unwrap()
            .to_cell(h3o::Resolution::Eight);
        *by_cell.entry(cell.to_string()).or_insert(0u64) += 1;
    }
    for f in cells["features"].as_array().unwrap() {
        let cell = f["properties"]["cell"].as_str().unwrap();
        assert_eq!(
            Some(&f["properties"]["gunfire_incidents"].as_u64().unwrap()),
            by_cell.get(cell)
        );
    }
    // Finer cells than the configured ones are refused.
    let (status, _) = call(
        Method::GET,
        &format!("{base}/v1/public/cells?res=10"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A window narrower than a day shows nothing: whole days only.
    let (from, to) = (
        model::UtcNanos(cutoff - 3 * 3_600 * S).to_rfc3339(),
        model::UtcNanos(cutoff - 3_600 * S).to_rfc3339(),
    );
    let narrow = get_json(
        &format!("{base}/v1/public/cells?since={from}&until={to}"),
        &admin,
    )
    .await;
    assert_eq!(narrow["features"].as_array().unwrap().len(), 0, "{narrow}");

    // Nothing public or partner-facing carries an exact place, a sensor or audio.
    let sensors = get_json(&format!("{base}/v1/sensors"), &admin).await;
    for (path, token) in [
        ("/v1/public/cells", None),
        ("/v1/public/incidents", None),
        ("/v1/community/incidents.csv", Some(partner.as_str())),
        ("/v1/community/areas", Some(partner.as_str())),
        ("/v1/measures", Some(partner.as_str())),
    ] {
        let (status, text) = call(Method::GET, &format!("{base}{path}"), token, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {text}");
        for word in ["clip", "wav", "audio", "arrivals", "sensor"] {
            assert!(!text.to_lowercase().contains(word), "{path} has {word:?}");
        }
        for s in sensors["sensors"].as_array().unwrap() {
            assert!(!text.contains(&format!("\"{}\"", s["id"].as_str().unwrap())));
        }
        for (_, (lat, lon), _) in exact.values() {
            assert!(
                !text.contains(&format!("{lat}")) && !text.contains(&format!("{lon}")),
                "{path}: an exact place"
            );
        }
    }
    // A partner gets no incident, sensor, audio or live feed; the public no
    // partner data.
    let incident = "p3";
    for path in [
        "/v1/incidents".to_string(),
        format!("/v1/incidents/{incident}"),
        format!("/v1/incidents/{incident}/clips"),
        "/v1/sensors".into(),
        "/v1/alerts".into(),
        "/v1/pulses".into(),
        "/v1/analytics".into(),
    ] {
        let (status, text) =
            call(Method::GET, &format!("{base}{path}"), Some(&partner), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {text}");
    }
    for path in [
        "/v1/community/incidents.csv",
        "/v1/community/areas",
        "/v1/measures",
    ] {
        let (status, _) = call(Method::GET, &format!("{base}{path}"), None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    // Partners' measures: dates only, and nothing after the delay.
    let (status, _) = call(
        Method::GET,
        &format!("{base}/v1/measures?since=2026-01-01T00:00:00Z"),
        Some(&partner),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let m = get_json(&format!("{base}/v1/measures"), &partner).await;
    let until = model::UtcNanos::parse_rfc3339(m["until_utc"].as_str().unwrap())
        .unwrap()
        .0;
    assert_eq!(until, cutoff, "{m}");
    let alerted = exact
        .values()
        .filter(|(t, _, _)| *t < cutoff && *t >= cutoff - 31 * day)
        .count() as u64;
    assert!(m["alerts_published"].as_u64().unwrap() <= alerted, "{m}");
    let (status, _) = call(
        Method::GET,
        &format!("{base}/v1/community/incidents.csv"),
        Some(&analyst),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Partners' reads are in the audit log under their token's name.
    let audit = get_json(
        &format!("{base}/v1/audit?actor=token:school-district"),
        &admin,
    )
    .await;
    assert!(audit.to_string().contains("read.community"), "{audit}");
    running.stop().await;
}

// ---- the measures -------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_measures_count_what_was_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = square(dir.path());
    // 1,000 a day.
    config.measures.cost_per_year = Some(365_242.5);
    config.measures.currency = "USD".into();
    let running = server::start(config).await.unwrap();
    let admin = common::authorize(&running).await;
    let dispatcher = running.issue_token("cad", Role::Dispatcher).await.unwrap();
    let base = format!("http://{}", running.addr);

    let t0 = model::UtcNanos::parse_rfc3339("2026-03-01T00:00:00Z")
        .unwrap()
        .0;
    let at = |h: i64| t0 + h * 3_600 * S;
    let place = |i: usize| (40.43 + 0.002 * i as f64, -80.0);
    let latencies = [3, 8, 15, 25, 45, 59, 61, 90, 200, 400];
    let reviews = [
        Some("confirmed"),
        Some("adjusted"),
        Some("relocated"),
        Some("dismissed"),
    ];
    let mut saves = Vec::new();
    for (i, &l) in latencies.iter().enumerate() {
        let review = reviews.get(i).copied().flatten();
        let class = if review == Some("dismissed") {
            "other"
        } else {
            "gunfire"
        };
        saves.push(incident(
            &format!("a{i}"),
            at(10 * i as i64 + 1),
            place(i),
            class,
            2,
            Some(l),
            review,
        ));
    }
    // Imported history, an incident never alerted, and one outside the period.
    saves.push(incident(
        "imp-1",
        at(5),
        place(20),
        "gunfire",
        1,
        None,
        None,
    ));
    saves.push(incident(
        "imp-2",
        at(6),
        place(21),
        "probable_gunfire",
        1,
        None,
        None,
    ));
    saves.push(incident("b1", at(7), place(22), "other", 1, None, None));
    saves.push(incident(
        "late",
        at(24 * 11),
        place(23),
        "gunfire",
        1,
        Some(5),
        None,
    ));
    save(&running, saves).await;

    let post = |path: &str, body: Value| {
        let url = format!("{base}{path}");
        let token = dispatcher.clone();
        async move { call(Method::POST, &url, Some(&token), Some(body)).await }
    };
    for (path, body) in [
        (
            "/v1/incidents/a0/outcome",
            json!({"found": ["casings", "arrest"], "officer_minutes": 30}),
        ),
        (
            "/v1/incidents/a1/outcome",
            json!({"found": ["no_evidence"], "officer_minutes": 15}),
        ),
        (
            "/v1/incidents/a2/outcome",
            json!({"found": ["gun_recovered"]}),
        ),
        (
            "/v1/incidents/imp-1/outcome",
            json!({"found": ["victim_aided"], "note": "GSW, taken to hospital"}),
        ),
        // A correction: the latest outcome counts.
        (
            "/v1/incidents/a1/outcome",
            json!({"found": ["casings"], "officer_minutes": 20}),
        ),
        (
            "/v1/misses",
            json!({"time_utc": "2026-03-03T02:00:00Z", "lat": 40.44, "lon": -80.0}),
        ),
        (
            "/v1/misses",
            json!({"time_utc": "2026-03-05T02:00:00Z", "lat": 40.44, "lon": -80.0, "note": "victim at hospital"}),
        ),
        (
            "/v1/misses",
            json!({"time_utc": "2026-04-05T02:00:00Z", "lat": 40.44, "lon": -80.0}),
        ),
    ] {
        let (status, text) = post(path, body).await;
        assert_eq!(status, StatusCode::CREATED, "{path}: {text}");
    }
    // Refusals: an unknown finding, an unknown incident, a future miss.
    for (path, body, want) in [
        (
            "/v1/incidents/a0/outcome",
            json!({"found": ["a feeling"]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/v1/incidents/nope/outcome",
            json!({"found": ["casings"]}),
            StatusCode::NOT_FOUND,
        ),
        (
            "/v1/misses",
            json!({"time_utc": "2999-01-01T00:00:00Z", "lat": 40.44, "lon": -80.0}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        assert_eq!(post(path, body).await.0, want, "{path}");
    }
    let history = get_json(&format!("{base}/v1/incidents/a1/outcomes"), &admin).await;
    assert_eq!(
        history["outcomes"].as_array().unwrap().len(),
        2,
        "both kept"
    );

    // 911 calls: one 100 s after a0 and 150 m away; one far from everything;
    // one at a3's place but 15 minutes after (outside the 10-minute window).
    let (a0, a3) = (place(0), place(3));
    let calls = vec![
        store::CallRow {
            id: "c1".into(),
            t_ns: at(1) + 100 * S,
            lat: a0.0 + 0.00135,
            lon: a0.1,
            kind: "SHOTS FIRED".into(),
            source: "t:2".into(),
        },
        store::CallRow {
            id: "c2".into(),
            t_ns: at(50),
            lat: 40.6,
            lon: -79.8,
            kind: "SHOTS FIRED".into(),
            source: "t:3".into(),
        },
        store::CallRow {
            id: "c3".into(),
            t_ns: at(31) + 900 * S,
            lat: a3.0,
            lon: a3.1,
            kind: "SHOTS FIRED".into(),
            source: "t:4".into(),
        },
    ];
    running
        .app
        .writer
        .run(move |db| db.save_calls(&calls))
        .await
        .unwrap();

    let m = get_json(
        &format!("{base}/v1/measures?from=2026-03-01&to=2026-03-10"),
        &admin,
    )
    .await;
    assert_eq!(m["days"], 10.0);
    assert_eq!(m["alerts_published"], 10);
    assert_eq!(m["imported_alerts"], 2);
    let l = &m["latency"];
    assert_eq!(
        (
            l["p50_s"].as_f64(),
            l["p90_s"].as_f64(),
            l["max_s"].as_f64()
        ),
        (Some(45.0), Some(200.0), Some(400.0))
    );
    assert_eq!(
        (l["within_60s"].as_u64(), l["share_within_60s"].as_f64()),
        (Some(6), Some(0.6))
    );
    assert_eq!(l["histogram"], json!([1, 1, 1, 1, 2, 2, 1, 1]));
    assert_eq!(
        m["review"],
        json!({"confirmed": 3, "dismissed": 1, "not_reviewed": 6})
    );
    let f = &m["field"];
    // The dismissed one is still an alert that went out.
    assert_eq!(
        (
            f["alerts"].as_u64(),
            f["confirmed"].as_u64(),
            f["unfounded"].as_u64(),
            f["unconfirmed"].as_u64()
        ),
        (Some(12), Some(4), Some(0), Some(8))
    );
    assert_eq!(
        m["outcomes"],
        json!({"arrest": 1, "casings": 2, "gun_recovered": 1, "no_evidence": 0, "victim_aided": 1})
    );
    assert_eq!(
        (
            m["officer_minutes_total"].as_f64(),
            m["alerts_with_officer_time"].as_u64()
        ),
        (Some(50.0), Some(2))
    );
    assert_eq!(m["misses_reported"], 2);
    let c = &m["calls"];
    assert_eq!(
        (
            c["calls"].as_u64(),
            c["alerts_with_call"].as_u64(),
            c["alerts_without_call"].as_u64(),
            c["calls_without_alert"].as_u64()
        ),
        (Some(3), Some(1), Some(11), Some(2))
    );
    let cost = &m["cost"];
    assert!((cost["period"].as_f64().unwrap() - 10_000.0).abs() < 1e-6);
    assert!((cost["per_alert_with_evidence"].as_f64().unwrap() - 2_500.0).abs() < 1e-6);
    assert!((cost["per_arrest"].as_f64().unwrap() - 10_000.0).abs() < 1e-6);

    // The CSV gives the same figures.
    let (status, text) = call(
        Method::GET,
        &format!("{base}/v1/measures.csv?from=2026-03-01&to=2026-03-10"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let rows: std::collections::HashMap<String, String> = csv::Reader::from_reader(text.as_bytes())
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_string(), r[1].to_string())
        })
        .collect();
    for (k, v) in [
        ("alerts_published", "10"),
        ("share_within_60s", "0.6000"),
        ("latency_over_300s", "1"),
        ("field_confirmed", "4"),
        ("outcome_casings", "2"),
        ("misses_reported", "2"),
        ("calls_911_without_alert", "2"),
        ("cost_per_alert_with_evidence", "2500"),
    ] {
        assert_eq!(rows.get(k).map(String::as_str), Some(v), "{k}");
    }
    // A period that ends before it starts is refused.
    let (status, _) = call(
        Method::GET,
        &format!("{base}/v1/measures?from=2026-03-10&to=2026-03-01"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_just_outside_the_period_still_match() {
    let dir = tempfile::tempdir().unwrap();
    let running = server::start(square(dir.path())).await.unwrap();
    let admin = common::authorize(&running).await;
    let base = format!("http://{}", running.addr);
    let since = model::UtcNanos::parse_rfc3339("2026-03-01T00:00:00Z")
        .unwrap()
        .0;
    let until = model::UtcNanos::parse_rfc3339("2026-03-02T00:00:00Z")
        .unwrap()
        .0;
    let (a, b) = ((40.44, -80.0), (40.45, -80.0));
    save(
        &running,
        vec![
            // An alert a minute before the end, called in four minutes
            // later (after the period ends).
            incident("end", until - 60 * S, a, "gunfire", 1, Some(5), None),
            // An alert 30 s before the start, called in 60 s into the period.
            incident("start", since - 30 * S, b, "gunfire", 1, Some(5), None),
        ],
    )
    .await;
    let call_at = |id: &str, t_ns: i64, (lat, lon): (f64, f64)| store::CallRow {
        id: id.into(),
        t_ns,
        lat,
        lon,
        kind: "SHOTS".into(),
        source: "t".into(),
    };
    let calls = vec![
        call_at("late", until + 240 * S, a),
        call_at("early", since + 60 * S, b),
    ];
    running
        .app
        .writer
        .run(move |db| db.save_calls(&calls))
        .await
        .unwrap();
    let m = get_json(
        &format!("{base}/v1/measures?since=2026-03-01T00:00:00Z&until=2026-03-02T00:00:00Z"),
        &admin,
    )
    .await;
    let c = &m["calls"];
    assert_eq!(
        (
            m["alerts_published"].as_u64(),
            c["calls"].as_u64(),
            c["alerts_with_call"].as_u64(),
            c["calls_without_alert"].as_u64()
        ),
        (Some(1), Some(1), Some(1), Some(0)),
        "{m}"
    );
    // Periods that overflow, end before they start, or end out of range.
    for q in [
        "since=1677-09-22T00:00:00Z&until=2262-04-01T00:00:00Z",
        "from=2026-03-02&to=2026-03-01",
        "from=2026-03-01&to=+262143-12-31",
    ] {
        let (status, text) = call(
            Method::GET,
            &format!("{base}/v1/measures?{q}"),
            Some(&admin),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {text}");
    }
    running.stop().await;
}
