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
