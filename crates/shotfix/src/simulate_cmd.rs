//! `shotfix simulate SCENARIO.toml --out DIR`: run the simulator and write a
//! scene folder (CONTRACT.md §5).

use std::path::Path;

use anyhow::{bail, Context};
use formats::{AudioOut, BuildingOut, SceneOut};

/// Reads and checks a scenario file. TOML errors are reported on one line, with
/// the line and column where the problem starts.
pub fn load_scenario(path: &Path) -> anyhow::Result<sim::Scenario> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let scenario: sim::Scenario = toml::from_str(&text).map_err(|e| {
        let place = e.span().map_or(String::new(), |span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: ")
        });
        anyhow::anyhow!(
            "{}: {place}{}",
            path.display(),
            e.message().trim().replace('\n', " ")
        )
    })?;
    scenario
        .validate()
        .with_context(|| format!("{}", path.display()))?;
    Ok(scenario)
}

/// Writes a simulated scene into `dir`.
pub fn write(scene: &sim::Scene, dir: &Path) -> anyhow::Result<()> {
    let audio: Vec<AudioOut> = scene
        .audio
        .iter()
        .map(|a| AudioOut {
            sensor: &a.sensor,
            start: a.start,
            sample_rate_hz: a.sample_rate_hz,
            full_scale_db_spl: Some(a.full_scale_db_spl),
            samples: &a.samples,
        })
        .collect();
    let buildings: Vec<BuildingOut> = scene
        .buildings
        .iter()
        .map(|b| BuildingOut {
            footprint: b.footprint.clone(),
            height_m: b.height_m,
        })
        .collect();
    // A scenario without pulse output writes no pulses file at all.
    let has_pulses = !scene.pulses.is_empty() || scene.audio.is_empty();
    formats::write_scene(
        dir,
        &SceneOut {
            name: &scene.name,
            origin: Some(scene.origin),
            weather: scene.weather,
            sensors: &scene.sensors,
            audio: &audio,
            pulses: has_pulses.then_some(&scene.pulses[..]),
            truth: &scene.truth,
            buildings: &buildings,
        },
    )?;
    Ok(())
}

/// An output folder must be new, empty, or an earlier scene (whose files are
/// replaced); anything else is refused rather than overwritten.
fn prepare_out(dir: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("{}", dir.display())),
        Ok(mut entries) => {
            if entries.next().is_none() {
                return Ok(());
            }
            if !dir.join("scene.json").is_file() {
                bail!(
                    "{}: exists and is not a scene folder; choose a new or empty folder",
                    dir.display()
                );
            }
            for name in ["scene.json", "pulses.jsonl", "truth.json", "buildings.json"] {
                let path = dir.join(name);
                if path.exists() {
                    std::fs::remove_file(&path).with_context(|| format!("{}", path.display()))?;
                }
            }
            let audio = dir.join("audio");
            if audio.is_dir() {
                std::fs::remove_dir_all(&audio).with_context(|| format!("{}", audio.display()))?;
            }
            Ok(())
        }
    }
}

pub fn run(scenario_path: &Path, out: &Path) -> anyhow::Result<()> {
    let scenario = load_scenario(scenario_path)?;
    prepare_out(out)?;
    let scene = sim::simulate(&scenario).with_context(|| format!("{}", scenario_path.display()))?;
    write(&scene, out)?;
    write_city(&scenario, &scene, out)?;
    let gunshots = scene.truth.iter().filter(|e| e.is_gunshot()).count();
    println!(
        "{}: {} sensors, {} events ({} gunshots), {} pulses, {} audio files of {:.1} s -> {}",
        scene.name,
        scene.sensors.len(),
        scene.truth.len(),
        gunshots,
        scene.pulses.len(),
        scene.audio.len(),
        scene.duration_s,
        out.display()
    );
    Ok(())
}

/// The simulated city as a map overlay, in the scene folder beside
/// `buildings.json` (which keeps the local frame for the simulator).
pub const CITY_FILE: &str = "city.geojson";

/// Writes [`CITY_FILE`]: the city's streets and buildings in WGS84, for a
/// server's `map.overlay`.
pub fn write_city(scenario: &sim::Scenario, scene: &sim::Scene, dir: &Path) -> anyhow::Result<()> {
    let streets = scenario
        .city
        .plan()
        .map(|p| p.streets())
        .unwrap_or_default();
    let path = dir.join(CITY_FILE);
    std::fs::write(&path, city_overlay(scene, &streets).to_string())
        .with_context(|| format!("write {}", path.display()))
}

/// The simulated city as a GeoJSON overlay (WGS84): its buildings as
/// polygons (`kind: building`, with height) and its streets' centre lines
/// (`kind: street`).
pub fn city_overlay(scene: &sim::Scene, streets: &[[[f64; 2]; 2]]) -> serde_json::Value {
    let frame = model::LocalFrame::new(scene.origin);
    let lonlat = |p: [f64; 2]| {
        let g = frame.to_geodetic(model::Point3 {
            x: p[0],
            y: p[1],
            z: 0.0,
        });
        let r = |v: f64| (v * 1e7).round() / 1e7;
        serde_json::json!([r(g.lon_deg), r(g.lat_deg)])
    };
    let mut features: Vec<serde_json::Value> = scene
        .buildings
        .iter()
        .filter(|b| b.footprint.len() >= 3)
        .map(|b| {
            let mut ring: Vec<serde_json::Value> = b.footprint.iter().map(|p| lonlat(*p)).collect();
            ring.push(lonlat(b.footprint[0]));
            serde_json::json!({
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "properties": {"kind": "building", "height_m": (b.height_m * 10.0).round() / 10.0},
            })
        })
        .collect();
    features.extend(streets.iter().map(|[p, q]| {
        serde_json::json!({
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": [lonlat(*p), lonlat(*q)]},
            "properties": {"kind": "street"},
        })
    }));
    serde_json::json!({"type": "FeatureCollection", "features": features})
}
