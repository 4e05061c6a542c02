//! `shotfix eval scenarios DIR`: simulate every scenario under DIR, run `locate`
//! on the simulated pulse reports and `analyze` on the simulated audio, and score
//! both against the truth. This, `eval`, `classify_cmd` and `eval_pipeline`
//! are the only code that reads answers (`truth.json` here).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use locate::{LocateConfig, LocateOutput};
use model::{Incident, TruthEvent};
use serde::Serialize;

use crate::eval::quantile;
use crate::{analyze_cmd, locate_cmd, simulate_cmd};

/// A located shot and a truth event match when their emission times are at most
/// this far apart, s: 10 m of position error moves the solved emission time by
/// about 30 ms, and automatic fire puts rounds 60–130 ms apart.
const MATCH_TIME_S: f64 = 0.060;
/// … and they are at most this far apart, m (beyond it a "match" is a coincidence).
const MATCH_DISTANCE_M: f64 = 100.0;
/// The located-within radius of the issue and of ShotSpotter's contract.
const WITHIN_M: f64 = 25.0;

#[derive(Debug, Clone, Serialize)]
pub struct Score {
    pub scenario: String,
    pub mode: &'static str,
    pub gunshots: usize,
    /// Gunshots matched by a located shot.
    pub detected: usize,
    pub within_25m: usize,
    pub median_error_m: f64,
    pub p90_error_m: f64,
    pub incidents: usize,
    pub rounds_correct: usize,
    pub shooters_correct: usize,
    /// Truth incidents that hold automatic fire (a run of rounds from one
    /// shooter faster than `locate::incident::AUTOMATIC_MAX_INTERVAL_S`, from
    /// the true times), and located incidents whose flag agrees with the truth.
    pub automatic_incidents: usize,
    pub automatic_correct: usize,
    /// Truly automatic incidents located as one incident with the flag set.
    pub automatic_flagged: usize,
    /// Incidents fired with a rifle (by the truth's weapon), and how many
    /// were located as one incident with weapon class `rifle`.
    pub rifle_incidents: usize,
    pub rifle_called: usize,
    /// Incidents fired with other firearms called `rifle`, and `handgun`
    /// calls on any incident.
    pub others_called_rifle: usize,
    pub handgun_called: usize,
    /// Non-gunfire events in the truth, and how many were located as shots
    /// (until classification exists, each would be a false gunfire alert).
    pub other_events: usize,
    pub other_located: usize,
    /// Located shots that match no event at all.
    pub ghosts: usize,
    pub ms: f64,
}

/// Gunshot truth events grouped as the engine groups shots into incidents.
fn truth_incidents(truth: &[TruthEvent], config: &LocateConfig) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..truth.len())
        .filter(|&i| truth[i].is_gunshot())
        .collect();
    order.sort_by_key(|&i| truth[i].t);
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for i in order {
        let e = &truth[i];
        let home = groups.iter_mut().rev().find(|g| {
            g.iter().any(|&j| {
                e.t.seconds_since(truth[j].t).abs() <= config.incident_gap_s
                    && e.position.distance_2d(truth[j].position) <= config.incident_radius_m
            })
        });
        match home {
            Some(g) => g.push(i),
            None => groups.push(vec![i]),
        }
    }
    groups
}

/// Matches located shots to truth events one to one, closest first (in
/// metres, a time difference counting at the speed of sound), within
/// [`MATCH_TIME_S`] and [`MATCH_DISTANCE_M`]: (shot of each truth event, truth
/// event of each shot).
pub fn match_shots(
    shots: &[&model::Shot],
    truth: &[TruthEvent],
) -> (Vec<Option<usize>>, Vec<Option<usize>>) {
    let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
    for (si, shot) in shots.iter().enumerate() {
        for (ti, e) in truth.iter().enumerate() {
            let dt = shot.t_emit.seconds_since(e.t).abs();
            let d = shot.position.distance_2d(e.position);
            if dt <= MATCH_TIME_S && d <= MATCH_DISTANCE_M {
                pairs.push((d + 343.0 * dt, si, ti));
            }
        }
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut shot_of_truth: Vec<Option<usize>> = vec![None; truth.len()];
    let mut truth_of_shot: Vec<Option<usize>> = vec![None; shots.len()];
    for (_, si, ti) in pairs {
        if shot_of_truth[ti].is_none() && truth_of_shot[si].is_none() {
            shot_of_truth[ti] = Some(si);
            truth_of_shot[si] = Some(ti);
        }
    }
    (shot_of_truth, truth_of_shot)
}

/// Whether true gunshots hold automatic fire: a run of
/// `locate::incident::AUTOMATIC_MIN_ROUNDS` from one shooter, each within
/// `AUTOMATIC_MAX_INTERVAL_S` of the one before, by their true times.
fn truth_automatic<'a>(events: impl Iterator<Item = &'a TruthEvent>) -> bool {
    let mut by_shooter: std::collections::BTreeMap<Option<u32>, Vec<model::UtcNanos>> =
        Default::default();
    for e in events {
        by_shooter.entry(e.shooter).or_default().push(e.t);
    }
    by_shooter.values_mut().any(|times| {
        times.sort_unstable();
        locate::incident::has_automatic_run(times)
    })
}

/// Scores one run against the truth.
pub fn score(
    scenario: &str,
    mode: &'static str,
    truth: &[TruthEvent],
    out: &LocateOutput,
    ms: f64,
) -> Score {
    let config = LocateConfig::default();
    let shots: Vec<(usize, &model::Shot)> = out
        .incidents
        .iter()
        .enumerate()
        .flat_map(|(k, inc)| inc.shots.iter().map(move |s| (k, s)))
        .collect();
    let plain: Vec<&model::Shot> = shots.iter().map(|(_, s)| *s).collect();
    let (shot_of_truth, truth_of_shot) = match_shots(&plain, truth);
    let mut errors = Vec::new();
    let (mut gunshots, mut other_events, mut other_located) = (0, 0, 0);
    for (ti, e) in truth.iter().enumerate() {
        if e.is_gunshot() {
            gunshots += 1;
            if let Some(si) = shot_of_truth[ti] {
                errors.push(shots[si].1.position.distance_2d(e.position));
            }
        } else {
            other_events += 1;
            other_located += usize::from(shot_of_truth[ti].is_some());
        }
    }
    let groups = truth_incidents(truth, &config);
    let (mut rounds_correct, mut shooters_correct, mut automatic_correct) = (0, 0, 0);
    let (mut automatic_incidents, mut automatic_flagged) = (0, 0);
    let (mut rifle_incidents, mut rifle_called, mut others_called_rifle, mut handgun_called) =
        (0, 0, 0, 0);
    for g in &groups {
        let truly_automatic = truth_automatic(g.iter().map(|&ti| &truth[ti]));
        automatic_incidents += usize::from(truly_automatic);
        let mut located: Vec<usize> = g
            .iter()
            .filter_map(|&ti| shot_of_truth[ti].map(|si| shots[si].0))
            .collect();
        located.sort_unstable();
        located.dedup();
        let rifle = g.iter().any(|&ti| {
            truth[ti]
                .weapon
                .as_deref()
                .and_then(sim::source::weapon)
                .is_some_and(|w| w.class == sim::source::WeaponClass::Rifle)
        });
        rifle_incidents += usize::from(rifle);
        if let [k] = located[..] {
            let inc: &Incident = &out.incidents[k];
            let called_rifle = inc.weapon_class == Some(model::WeaponClass::Rifle);
            rifle_called += usize::from(rifle && called_rifle);
            others_called_rifle += usize::from(!rifle && called_rifle);
            handgun_called += usize::from(inc.weapon_class == Some(model::WeaponClass::Handgun));
            let mut shooters: Vec<u32> = g.iter().filter_map(|&ti| truth[ti].shooter).collect();
            shooters.sort_unstable();
            shooters.dedup();
            rounds_correct += usize::from(inc.rounds == g.len());
            shooters_correct += usize::from(inc.shooters == shooters.len().max(1));
            automatic_correct += usize::from(inc.automatic == truly_automatic);
            automatic_flagged += usize::from(inc.automatic && truly_automatic);
        }
    }
    Score {
        scenario: scenario.to_string(),
        mode,
        gunshots,
        detected: errors.len(),
        within_25m: errors.iter().filter(|&&e| e <= WITHIN_M).count(),
        median_error_m: quantile(&errors, 0.5),
        p90_error_m: quantile(&errors, 0.9),
        incidents: groups.len(),
        rounds_correct,
        shooters_correct,
        automatic_incidents,
        automatic_correct,
        automatic_flagged,
        rifle_incidents,
        rifle_called,
        others_called_rifle,
        handgun_called,
        other_events,
        other_located,
        ghosts: truth_of_shot.iter().filter(|t| t.is_none()).count(),
        ms,
    }
}

/// The scenario files (*.toml) directly under `dir`, sorted; an error if none.
pub fn scenario_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("{}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("{}", dir.display()))?;
    files.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    files.sort();
    if files.is_empty() {
        anyhow::bail!("{}: no *.toml scenarios", dir.display());
    }
    Ok(files)
}

/// Simulates, writes, reads back and scores one scenario in both modes,
/// under its own seed plus `seed_offset`.
pub fn evaluate(path: &Path, seed_offset: u64) -> anyhow::Result<Vec<Score>> {
    let mut scenario = simulate_cmd::load_scenario(path)?;
    scenario.seed = scenario.seed.wrapping_add(seed_offset);
    let scene = sim::simulate(&scenario).with_context(|| format!("{}", path.display()))?;
    let dir = tempfile::tempdir().context("a temporary folder")?;
    simulate_cmd::write(&scene, dir.path())?;
    drop(scene);
    let truth = formats::read_truth(dir.path())?;
    let mut name = path.file_stem().map_or_else(
        || scenario.name.clone(),
        |s| s.to_string_lossy().into_owned(),
    );
    if seed_offset > 0 {
        name = format!("{name}@{}", scenario.seed);
    }
    let mut scores = Vec::new();
    if scenario.output.pulses {
        let t = Instant::now();
        let (_, _, out) = locate_cmd::locate_folder(dir.path())?;
        scores.push(score(
            &name,
            "pulses",
            &truth,
            &out,
            t.elapsed().as_secs_f64() * 1e3,
        ));
    }
    if scenario.output.audio {
        let t = Instant::now();
        let (_, _, out, _) = analyze_cmd::analyze_folder(dir.path())?;
        scores.push(score(
            &name,
            "audio",
            &truth,
            &out,
            t.elapsed().as_secs_f64() * 1e3,
        ));
    }
    Ok(scores)
}

pub fn run(dir: &Path, seeds: u64, json: bool) -> anyhow::Result<()> {
    if seeds == 0 {
        anyhow::bail!("--seeds must be at least 1");
    }
    let mut all = Vec::new();
    for path in scenario_files(dir)? {
        for k in 0..seeds {
            all.extend(evaluate(&path, k)?);
        }
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&all).context("serialising")?
        );
        return Ok(());
    }
    println!("Simulated scenarios ({}): locate on the simulated pulse reports, analyze on the simulated audio,", dir.display());
    println!("scored against truth.json. A gunshot is detected when a located shot lies within {MATCH_DISTANCE_M} m and");
    println!("{:.0} ms of it. 'other located': non-gunfire events located as shots (the classifier's calls on them are scored by `shotfix eval classify`).\n", MATCH_TIME_S * 1e3);
    println!(
        "{:<22} {:<6} {:>8} {:>9} {:>6} {:>8} {:>7} {:>9} {:>11} {:>8} {:>13} {:>6} {:>8}",
        "scenario",
        "mode",
        "gunshots",
        "detected",
        "<=25m",
        "median m",
        "p90 m",
        "rounds ok",
        "shooters ok",
        "auto ok",
        "other located",
        "ghosts",
        "ms"
    );
    for s in &all {
        let pct = |k: usize, n: usize| {
            if n == 0 {
                "-".to_string()
            } else {
                format!("{:.0}%", 100.0 * k as f64 / n as f64)
            }
        };
        println!(
            "{:<22} {:<6} {:>8} {:>9} {:>6} {:>8.1} {:>7.1} {:>9} {:>11} {:>8} {:>13} {:>6} {:>8.0}",
            s.scenario,
            s.mode,
            s.gunshots,
            pct(s.detected, s.gunshots),
            pct(s.within_25m, s.gunshots),
            s.median_error_m,
            s.p90_error_m,
            format!("{}/{}", s.rounds_correct, s.incidents),
            format!("{}/{}", s.shooters_correct, s.incidents),
            format!("{}/{}", s.automatic_correct, s.incidents),
            format!("{}/{}", s.other_located, s.other_events),
            s.ghosts,
            s.ms
        );
    }
    for mode in ["pulses", "audio"] {
        let rows: Vec<&Score> = all.iter().filter(|s| s.mode == mode).collect();
        if rows.len() < 2 {
            continue;
        }
        let sum = |f: fn(&Score) -> usize| rows.iter().map(|s| f(s)).sum::<usize>();
        let (incidents, auto) = (sum(|s| s.incidents), sum(|s| s.automatic_incidents));
        println!(
            "all {mode}: {} scenes; detected {}/{}; rounds exact {}/{incidents}; shooters exact {}/{incidents}; automatic flag right {}/{incidents} ({} of {auto} automatic incidents flagged); ghosts {}",
            rows.len(),
            sum(|s| s.detected),
            sum(|s| s.gunshots),
            sum(|s| s.rounds_correct),
            sum(|s| s.shooters_correct),
            sum(|s| s.automatic_correct),
            sum(|s| s.automatic_flagged),
            sum(|s| s.ghosts),
        );
        println!(
            "all {mode}: weapon class from shockwaves: rifle on {} of {} rifle incidents, on {} others; handgun called {} times",
            sum(|s| s.rifle_called),
            sum(|s| s.rifle_incidents),
            sum(|s| s.others_called_rifle),
            sum(|s| s.handgun_called),
        );
    }
    Ok(())
}

/// Distance bins for the level comparison, m.
const BINS_M: [f64; 8] = [0.0, 200.0, 300.0, 400.0, 500.0, 700.0, 1000.0, 1500.0];

fn real_levels(dir: &Path) -> anyhow::Result<Vec<(f64, f64)>> {
    #[derive(serde::Deserialize)]
    struct Pulse {
        pulse_uuid: String,
        location: model::Point3,
        #[serde(rename = "power_dB_SPL")]
        power_db_spl: Option<f64>,
    }
    #[derive(serde::Deserialize)]
    struct Tuple {
        pulse_uuids: Vec<String>,
    }
    #[derive(serde::Deserialize)]
    struct Survey {
        survey_location: model::Point3,
    }
    let mut out = Vec::new();
    for position in crate::eval::subdirs(dir)? {
        for test in crate::eval::subdirs(&position)? {
            let name = test
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let read = |suffix: &str| -> anyhow::Result<String> {
                let path = test.join(format!("{name}.{suffix}"));
                std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))
            };
            let pulses: Vec<Pulse> = serde_json::from_str(&read("allpulses.json")?)?;
            let tuples: Vec<Tuple> = serde_json::from_str(&read("nlos-tuples.json")?)?;
            let survey: Survey = serde_json::from_str(&read("survey.json")?)?;
            let chosen: std::collections::HashSet<&str> = tuples
                .iter()
                .flat_map(|t| t.pulse_uuids.iter().map(String::as_str))
                .collect();
            for p in &pulses {
                if let (true, Some(level)) =
                    (chosen.contains(p.pulse_uuid.as_str()), p.power_db_spl)
                {
                    out.push((p.location.distance_2d(survey.survey_location), level));
                }
            }
        }
    }
    Ok(out)
}

/// `shotfix eval calibration`: simulated against real received levels by distance.
pub fn calibration(pittsburgh: &Path, scenario: &Path, csv: Option<&Path>) -> anyhow::Result<()> {
    let real = real_levels(pittsburgh)?;
    let scenario = simulate_cmd::load_scenario(scenario)?;
    let heard = sim::first_arrival_levels(&scenario)?;
    let simulated: Vec<(f64, f64)> = heard
        .iter()
        .map(|h| (h.distance_m, h.level_db_spl))
        .collect();
    let full_scale = scenario.sensor.full_scale_db_spl;
    println!(
        "Received level of the first (located) arrival against distance: real Pittsburgh pulses"
    );
    println!("(power_dB_SPL of the pulses in ShotSpotter's nlos-tuples) and simulated handgun shots heard");
    println!("by sensors with the same full scale ({full_scale:.2} dB SPL), per distance bin: n, quartiles (dB SPL).\n");
    println!(
        "{:>11} | {:>5} {:>6} {:>6} {:>6} | {:>5} {:>6} {:>6} {:>6} | {:>7}",
        "distance m", "real", "q25", "median", "q75", "sim", "q25", "median", "q75", "Δmedian"
    );
    let mut rows = Vec::new();
    for w in BINS_M
        .windows(2)
        .map(|w| (w[0], w[1]))
        .chain([(BINS_M[BINS_M.len() - 1], f64::INFINITY)])
    {
        let pick = |v: &[(f64, f64)]| -> Vec<f64> {
            v.iter()
                .filter(|(d, _)| *d >= w.0 && *d < w.1)
                .map(|&(_, l)| l)
                .collect()
        };
        let (r, s) = (pick(&real), pick(&simulated));
        if r.is_empty() && s.is_empty() {
            continue;
        }
        let label = if w.1.is_finite() {
            format!("{:.0}–{:.0}", w.0, w.1)
        } else {
            format!("≥ {:.0}", w.0)
        };
        println!(
            "{:>11} | {:>5} {:>6.1} {:>6.1} {:>6.1} | {:>5} {:>6.1} {:>6.1} {:>6.1} | {:>+7.1}",
            label,
            r.len(),
            quantile(&r, 0.25),
            quantile(&r, 0.5),
            quantile(&r, 0.75),
            s.len(),
            quantile(&s, 0.25),
            quantile(&s, 0.5),
            quantile(&s, 0.75),
            quantile(&s, 0.5) - quantile(&r, 0.5)
        );
        rows.push(label);
    }
    let clipped = |v: &[(f64, f64)], at: f64| {
        v.iter().filter(|(_, l)| *l >= at - 0.5).count() as f64 / v.len().max(1) as f64
    };
    println!(
        "\nWithin 0.5 dB of full scale (clipped): real {:.0} %, simulated {:.0} %.",
        100.0 * clipped(&real, full_scale),
        100.0 * clipped(&simulated, full_scale)
    );
    let los = heard.iter().filter(|h| h.line_of_sight).count();
    println!(
        "Simulated first arrivals over a clear line of sight: {los} of {}.",
        heard.len()
    );
    if let Some(path) = csv {
        let mut text = String::from("source,distance_m,level_db_spl\n");
        for (d, l) in &real {
            text.push_str(&format!("pittsburgh,{d:.1},{l:.2}\n"));
        }
        for (d, l) in &simulated {
            text.push_str(&format!("simulated,{d:.1},{l:.2}\n"));
        }
        std::fs::write(path, text).with_context(|| format!("{}", path.display()))?;
    }
    Ok(())
}
