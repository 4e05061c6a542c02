//! End-to-end tests of `shotfix simulate` and `shotfix eval scenarios`.
//!
//! 1. `every_standard_scenario_simulates`: each `scenarios/*.toml` is valid and
//!    gives sensors, truth and pulses (pulses only, to stay fast).
//! 2. `simulated_scene_round_trips_through_locate_and_analyze`: the quiet-night
//!    scenario written as a scene folder; `locate` (pulses) and `analyze` (audio)
//!    find most of its shots within 25 m of the truth.
//! 3. `eval_scenarios_prints_a_row_per_mode`: the evaluation table on one scenario.
//! 4. `bad_scenarios_are_one_line_and_non_zero`.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn scenarios() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios")
}

fn shotfix(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shotfix"))
        .args(args)
        .output()
        .expect("run shotfix")
}

/// Asserts a run failed with exit status 1 and a one-line message; returns it.
fn one_line_error(run: &Output, what: &str) -> String {
    let err = String::from_utf8_lossy(&run.stderr).into_owned();
    assert_eq!(run.status.code(), Some(1), "{what}: {err}");
    assert_eq!(err.lines().count(), 1, "{what}: {err}");
    err
}

/// Asserts a run succeeded, showing its stderr if not.
fn assert_success(run: &Output, what: &str) {
    assert!(
        run.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&run.stderr)
    );
}

fn truth(dir: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("truth.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    doc["events"].as_array().unwrap().clone()
}

#[test]
fn every_standard_scenario_simulates() {
    let mut names: Vec<PathBuf> = std::fs::read_dir(scenarios())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 8, "the eight standard scenarios of issue 4");
    for path in names {
        let mut scenario: sim::Scenario =
            toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        scenario.output.audio = false;
        let scene = sim::simulate(&scenario).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(scene.sensors.len() >= 20, "{}", path.display());
        assert!(
            scene.truth.iter().any(|e| e.is_gunshot()),
            "{}",
            path.display()
        );
        assert!(scene.pulses.len() > scene.truth.len(), "{}", path.display());
    }
}

#[test]
fn simulated_scene_round_trips_through_locate_and_analyze() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("scene");
    let scenario = scenarios().join("quiet-night.toml");
    let run = shotfix(&[
        "simulate",
        scenario.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_success(&run, "simulate");
    let events = truth(&out);
    assert_eq!(events.len(), 6);
    for command in ["locate", "analyze"] {
        let run = shotfix(&[command, out.to_str().unwrap(), "--json"]);
        assert_success(&run, command);
        let doc: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
        let shots: Vec<&serde_json::Value> = doc["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|i| i["shots"].as_array().unwrap())
            .collect();
        let found = events
            .iter()
            .filter(|e| {
                shots.iter().any(|s| {
                    let (dx, dy) = (
                        s["x"].as_f64().unwrap() - e["x"].as_f64().unwrap(),
                        s["y"].as_f64().unwrap() - e["y"].as_f64().unwrap(),
                    );
                    dx.hypot(dy) <= 25.0
                })
            })
            .count();
        assert!(found >= 4, "{command}: {found} of 6 shots within 25 m");
        {
            // Every incident and shot is classified (the shipped model), with
            // a confidence: from the audio by `analyze`, from the reported
            // levels, places and times by `locate`.
            for inc in doc["incidents"].as_array().unwrap() {
                let class = inc["class"].as_str().unwrap();
                assert_ne!(class, "unknown", "{inc:#}");
                let confidence = inc["confidence"].as_f64().unwrap();
                assert!(confidence > 0.0 && confidence <= 1.0, "{inc:#}");
                for shot in inc["shots"].as_array().unwrap() {
                    assert_eq!(shot["class"], inc["class"]);
                    assert_eq!(shot["confidence"], inc["confidence"]);
                }
            }
            let calls = doc["incidents"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|i| i["class"] == "gunfire" || i["class"] == "probable_gunfire")
                .count();
            assert!(
                calls >= 1,
                "{command}: the quiet night's handgun shots: {doc:#}"
            );
        }
    }
    // A model file that is not a classifier is a one-line error.
    let bad = dir.path().join("bad-model.json");
    std::fs::write(&bad, "{\"format\": 1}").unwrap();
    let run = shotfix(&[
        "analyze",
        out.to_str().unwrap(),
        "--model",
        bad.to_str().unwrap(),
    ]);
    let err = one_line_error(&run, "a bad model file");
    assert!(err.contains("not a shotfix classifier"), "{err}");
    // The pipeline benchmark streams the same pulses through the server's
    // associator: every pulse fed, the shots alerted.
    let run = shotfix(&["eval", "pipeline", out.to_str().unwrap(), "--json"]);
    assert_success(&run, "eval pipeline");
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let pulses = std::fs::read_to_string(out.join("pulses.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count();
    assert_eq!(report["pulses"].as_u64(), Some(pulses as u64), "{report}");
    assert!(report["alerts"].as_u64().unwrap() >= 1, "{report}");
    assert!(report["load_factor"].as_f64().unwrap() > 0.0, "{report}");
    for bad in ["0", "nan", "-5"] {
        let run = shotfix(&[
            "eval",
            "pipeline",
            out.to_str().unwrap(),
            &format!("--batch-ms={bad}"),
        ]);
        one_line_error(&run, bad);
    }
    // Writing again over an earlier scene is allowed; over anything else it is not.
    assert!(shotfix(&[
        "simulate",
        scenario.to_str().unwrap(),
        "--out",
        out.to_str().unwrap()
    ])
    .status
    .success());
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "keep me").unwrap();
    let refused = shotfix(&[
        "simulate",
        scenario.to_str().unwrap(),
        "--out",
        other.to_str().unwrap(),
    ]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(other.join("notes.txt").exists());
}

#[test]
fn eval_scenarios_prints_a_row_per_mode() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        scenarios().join("sparse.toml"),
        dir.path().join("sparse.toml"),
    )
    .unwrap();
    let run = shotfix(&["eval", "scenarios", dir.path().to_str().unwrap(), "--json"]);
    assert_success(&run, "eval scenarios");
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        assert_eq!(row["gunshots"], 9);
        assert!(row["within_25m"].as_u64().unwrap() >= 7, "{row}");
        assert_eq!(row["ghosts"], 0, "{row}");
    }
}

#[test]
fn bad_scenarios_are_one_line_and_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("syntax.toml", "name = \"x\"\nseed = [\n"),
        ("unknown.toml", "name = \"x\"\nbogus = 1\n"),
        (
            "nan.toml",
            "name = \"x\"\nstart_utc = \"2026-01-01T00:00:00Z\"\nduration_s = nan\n[origin]\nlat = 0.0\nlon = 0.0\n[city]\nwidth_m = 100.0\ndepth_m = 100.0\n",
        ),
    ];
    for (name, text) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let out = shotfix(&[
            "simulate",
            path.to_str().unwrap(),
            "--out",
            dir.path().join("o").to_str().unwrap(),
        ]);
        let stderr = one_line_error(&out, name);
        assert!(stderr.starts_with("shotfix: error: "), "{name}: {stderr}");
        assert!(out.stdout.is_empty());
    }
    let missing = shotfix(&["simulate", "/nonexistent.toml", "--out", "/tmp/x"]);
    assert_eq!(missing.status.code(), Some(1));
}

/// A tiny template: one minute of a small city with handgun shots,
/// firecrackers and door slams, for the classifier's commands.
const TINY_TEMPLATE: &str = r#"
name = "Tiny mixed"
seed = 5
start_utc = "2026-07-04T23:00:00Z"
duration_s = 60.0

[origin]
lat = 40.4406
lon = -79.9959
alt_m = 230.0

[city]
width_m = 1000.0
depth_m = 1000.0
sensors_per_km2 = 8.0

[[random]]
kind = "gunshot"
weapon = "9mm"
per_hour = 240.0

[[random]]
kind = "firecracker"
per_hour = 240.0

[[random]]
kind = "door_slam"
per_hour = 240.0
"#;

#[test]
fn train_writes_a_model_that_analyze_loads_and_eval_classify_scores() {
    let dir = tempfile::tempdir().unwrap();
    let templates = dir.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    std::fs::write(templates.join("mixed.toml"), TINY_TEMPLATE).unwrap();
    let model = dir.path().join("model.json");
    let t = templates.to_str().unwrap();
    let run = shotfix(&[
        "train",
        "--scenarios",
        t,
        "--seeds",
        "1",
        "--no-pittsburgh",
        "--out",
        model.to_str().unwrap(),
    ]);
    assert_success(&run, "train");
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&model).unwrap()).unwrap();
    assert_eq!(file["format"], 2);
    // The trained file is a classifier analyze accepts.
    let scene = dir.path().join("scene");
    let run = shotfix(&[
        "simulate",
        templates.join("mixed.toml").to_str().unwrap(),
        "--out",
        scene.to_str().unwrap(),
    ]);
    assert_success(&run, "simulate");
    let run = shotfix(&[
        "analyze",
        scene.to_str().unwrap(),
        "--json",
        "--model",
        model.to_str().unwrap(),
    ]);
    assert_success(&run, "analyze --model");
    // The evaluation scores every matched held-out incident once.
    let run = shotfix(&[
        "eval",
        "classify",
        "--scenarios",
        t,
        "--train-seeds",
        "1",
        "--eval-seeds",
        "1",
        "--no-pittsburgh",
        "--json",
    ]);
    assert_success(&run, "eval classify");
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    // Both views of the held-out scenes: with the audio and from the pulse
    // reports alone.
    for view in ["held_out", "held_out_reports_only"] {
        let scores = &report[view];
        let scored: u64 = scores["confusion"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|row| row.as_array().unwrap())
            .map(|v| v.as_u64().unwrap())
            .sum();
        let by_kind: u64 = scores["by_kind"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k[0] != "no event")
            .map(|k| k[1].as_u64().unwrap())
            .sum();
        assert!(scored > 0, "{view}: {report}");
        assert_eq!(scored, by_kind, "{view}: {report}");
        let f1 = scores["f1"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&f1), "{view}: {report}");
    }
    // Nonsense settings are a one-line error.
    let run = shotfix(&["train", "--scenarios", t, "--seeds", "0", "--no-pittsburgh"]);
    one_line_error(&run, "--seeds 0");
}
