//! The dashboard's server side: the embedded front end, the map settings and
//! overlay, the coverage grid and the analytics aggregates over real replayed
//! incidents (Pittsburgh FP1 test 1).

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::time::Duration;

use model::Geodetic;
use serde_json::Value;
use server::replay;

use common::square;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_is_served_with_its_map_settings() {
    let dir = tempfile::tempdir().unwrap();
    let overlay = dir.path().join("city.geojson");
    std::fs::write(
        &overlay,
        r#"{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"LineString","coordinates":[[-80.0,40.44],[-80.0,40.45]]},"properties":{"kind":"street"}}]}"#,
    )
    .unwrap();
    let mut config = square(dir.path());
    config.map.tiles = String::new();
    config.map.overlay = Some(overlay);
    config.map.timezone = "America/New_York".into();
    let running = server::start(config).await.unwrap();
    let base = format!("http://{}", running.addr);

    let map: Value = reqwest::get(format!("{base}/v1/map"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(map["tiles"], Value::Null, "no tiles: offline");
    assert_eq!(
        map["overlay"]["features"][0]["properties"]["kind"],
        "street"
    );
    assert_eq!(map["timezone"], "America/New_York");

    // The page and its assets (scripts/test.sh builds web/ before cargo).
    let index = reqwest::get(format!("{base}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        index.contains("/assets/app.js"),
        "the dashboard is not in this build: {index}"
    );
    let js = reqwest::get(format!("{base}/assets/app.js")).await.unwrap();
    assert_eq!(js.status(), 200);
    assert!(js.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("javascript"));
    let etag = js.headers()["etag"].clone();
    let again = reqwest::Client::new()
        .get(format!("{base}/assets/app.js"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304, "an unchanged asset is not sent again");
    // Encoded slashes survive the client's path normalisation and reach the
    // route as `../…`: nothing outside web/dist is served.
    for missing in [
        "/assets/nothing.js",
        "/assets/..%2Fpackage.json",
        "/assets/..%2F..%2FCargo.toml",
        "/assets/%2E%2E%2Fbuild.mjs",
    ] {
        let r = reqwest::get(format!("{base}{missing}")).await.unwrap();
        assert_eq!(r.status(), 404, "{missing}");
    }
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_overlay_stops_the_server_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for (text, says) in [
        ("not json", "not JSON"),
        (r#"{"type":"Circle"}"#, "not GeoJSON"),
        (
            r#"{"type":"Feature","geometry":{"type":"LineString","coordinates":[[-80,40],[200,40]]}}"#,
            "not a longitude, latitude in range",
        ),
        (
            r#"{"type":"Point","coordinates":["-80","40"]}"#,
            "coordinates: \"-80\" is not an array",
        ),
    ] {
        let overlay = dir.path().join("bad.geojson");
        std::fs::write(&overlay, text).unwrap();
        let mut config = square(dir.path());
        config.map.overlay = Some(overlay);
        let e = server::start(config).await.err().unwrap().to_string();
        assert!(
            e.starts_with("map.overlay: ") && e.contains(says) && !e.contains('\n'),
            "{e}"
        );
    }
    let mut config = square(dir.path());
    config.map.overlay = Some(dir.path().join("missing.geojson"));
    let e = server::start(config).await.err().unwrap().to_string();
    assert!(e.contains("missing.geojson"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coverage_is_best_inside_the_sensors_and_absent_beyond_hearing() {
    let dir = tempfile::tempdir().unwrap();
    let running = server::start(square(dir.path())).await.unwrap();
    common::authorize(&running).await;
    let base = format!("http://{}", running.addr);
    let c = common::get(format!("{base}/v1/coverage?step_m=100")).await;
    assert_eq!(c["step_m"], 100.0);
    let cells = c["cells"]["features"].as_array().unwrap();
    assert!(!cells.is_empty());
    // Each cell's centre and its error.
    let centre = |f: &Value| {
        let ring = f["geometry"]["coordinates"][0].as_array().unwrap();
        let lon = (ring[0][0].as_f64().unwrap() + ring[2][0].as_f64().unwrap()) / 2.0;
        let lat = (ring[0][1].as_f64().unwrap() + ring[2][1].as_f64().unwrap()) / 2.0;
        (lat, lon, f["properties"]["err95_m"].as_f64().unwrap())
    };
    let all: Vec<(f64, f64, f64)> = cells.iter().map(centre).collect();
    let nearest = |lat: f64, lon: f64| {
        *all.iter()
            .min_by(|a, b| {
                let d = |p: &(f64, f64, f64)| (p.0 - lat).powi(2) + (p.1 - lon).powi(2);
                d(a).total_cmp(&d(b))
            })
            .unwrap()
    };
    let middle = nearest(40.44, -80.0);
    let outside = nearest(40.44, -80.0 + 1.8 * 0.0059); // 900 m east, 400 m beyond
                                                        // In the middle each axis has σ = cσ_t/√2 (locate::plan's test): with
                                                        // σ_t = 5 ms, 1.2 m, and a 95 % circle of 2.45σ ≈ 3.0 m.
    assert!(
        (2.5..3.5).contains(&middle.2),
        "the middle of a 1 km square: {middle:?}"
    );
    assert!(
        outside.2 > 2.0 * middle.2,
        "outside the hull: {outside:?} vs {middle:?}"
    );
    // A cell is there exactly when all four sensors (min_sensors) are within
    // the 2 km hearing range of its centre: the grid reaches 500 m beyond the
    // square, so its far corners (2.1 km from the opposite sensor) are not.
    let metres = |lat: f64, lon: f64, s: (f64, f64)| {
        let north = (lat - s.0).to_radians() * 6_371_008.8;
        let east = (lon - s.1).to_radians() * 6_371_008.8 * lat.to_radians().cos();
        north.hypot(east)
    };
    let corners: Vec<(f64, f64)> = [(-1.0, -1.0), (-1.0, 1.0), (1.0, 1.0), (1.0, -1.0)]
        .iter()
        .map(|(a, b)| (40.44 + a * 0.0045, -80.0 + b * 0.0059))
        .collect();
    for &(lat, lon, _) in &all {
        let heard = corners
            .iter()
            .filter(|c| metres(lat, lon, **c) <= 2_000.0 + 5.0)
            .count();
        assert_eq!(heard, 4, "a cell at {lat}, {lon} heard by {heard}");
    }
    assert!(cells.iter().all(|f| f["properties"]["sensors"] == 4));
    // At most 21 × 21 cells of 100 m over the 2 km grid: the corners are
    // left out.
    assert!(
        cells.len() > 300 && cells.len() < 21 * 21,
        "{} cells",
        cells.len()
    );
    let r = common::get_as_tests(&format!("{base}/v1/coverage?step_m=1")).await;
    assert_eq!(r.status(), 400, "too fine a grid is refused");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_count_what_the_incident_list_holds() {
    let dir = tempfile::tempdir().unwrap();
    let origin = Geodetic {
        lat_deg: 40.4406,
        lon_deg: -79.9959,
        alt_m: 250.0,
    };
    let test = common::pittsburgh().join("FP1/test_001");
    let input = replay::read(&test, Some(origin)).unwrap();
    let mut config = replay::server_config(&input, dir.path().join("s.db"));
    config.map.timezone = "America/New_York".into();
    let keys = replay::keys(&config);
    let running = server::start(config).await.unwrap();
    common::authorize(&running).await;
    let base = format!("http://{}", running.addr);
    replay::replay(&base, &keys, &input, 0.0).await.unwrap();
    let list = common::settled(&base, Duration::from_secs(3)).await;
    let incidents = list["incidents"].as_array().unwrap();
    assert!(!incidents.is_empty());

    let a = common::get(format!("{base}/v1/analytics?class=all&res=9")).await;
    let located = incidents
        .iter()
        .filter(|d| d["rounds"].as_u64().unwrap() > 0)
        .count();
    assert_eq!(a["total"].as_u64().unwrap() as usize, located);
    let cells: u64 = a["hexes"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["properties"]["count"].as_u64().unwrap())
        .sum();
    let matrix: u64 = a["matrix"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter().map(|n| n.as_u64().unwrap()))
        .sum();
    let weeks: u64 = a["weekly"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["count"].as_u64().unwrap())
        .sum();
    assert_eq!(
        (cells, matrix, weeks),
        (located as u64, located as u64, located as u64)
    );
    assert_eq!(a["timezone"], "America/New_York");
    // Hotspots over the same incidents: every located incident is in a cell,
    // and one incident alone is no cluster.
    let h = common::get(format!("{base}/v1/analytics/hotspots?class=all&res=9")).await;
    let cells = h["cells"]["features"].as_array().unwrap();
    let in_cells: u64 = cells
        .iter()
        .map(|f| f["properties"]["count"].as_u64().unwrap())
        .sum();
    assert_eq!(in_cells, located as u64);
    assert!(h["area_cells"].as_u64().unwrap() >= cells.len() as u64);
    assert_eq!(h["permutations"], 9_999);
    let r = common::get_as_tests(&format!("{base}/v1/analytics/hotspots?res=11")).await;
    assert_eq!(r.status(), 400);
    // A box that holds none of them counts none.
    let empty = common::get(format!("{base}/v1/analytics?class=all&bbox=0,0,1,1")).await;
    assert_eq!(empty["total"], 0);
    for bad in [
        "res=4",
        "res=12",
        "bbox=1,2,3",
        "since=yesterday",
        "colour=red",
    ] {
        let r = common::get_as_tests(&format!("{base}/v1/analytics?{bad}")).await;
        assert_eq!(r.status(), 400, "{bad}");
    }
    running.stop().await;
}
