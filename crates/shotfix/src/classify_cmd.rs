//! `shotfix train` and `shotfix eval classify`: the classifier's training
//! pipeline and its evaluation.
//!
//! Examples come from simulated scenes (the scenario templates under a
//! folder, each simulated under several seeds: different cities, places and
//! times) analysed from their audio exactly as `shotfix analyze` does, each
//! located incident labelled from `truth.json` by the events its shots match,
//! and from the real Pittsburgh live-fire recordings (every located incident
//! there is gunfire). Training seeds and evaluation seeds never overlap, and
//! the Pittsburgh evaluation leaves each firing position out of the training
//! that judges it. This module and `eval`/`eval_sim` are the only code that
//! reads answers.

use std::path::{Path, PathBuf};

use anyhow::Context;
use classify::{
    incident, pulse, Classifier, IncidentEvidence, Softmax, TrainConfig, INCIDENT_FEATURES,
};
use serde::Serialize;

use crate::{analyze_cmd, eval_sim, simulate_cmd};

/// The classifier shipped with the program: `shotfix train` with its
/// defaults (fixed seeds), written to `models/classifier.json`.
const DEFAULT_MODEL: &str = include_str!("../../../models/classifier.json");

/// The classifier to use: the file at `path`, or the shipped one.
pub fn load(path: Option<&Path>) -> anyhow::Result<Classifier> {
    match path {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("{}", p.display()))?;
            Classifier::from_json(&text)
                .map_err(|e| anyhow::anyhow!("{}: not a shotfix classifier: {e}", p.display()))
        }
        None => Classifier::from_json(DEFAULT_MODEL)
            .map_err(|e| anyhow::anyhow!("the shipped classifier: {e}")),
    }
}

/// Classifies every incident of an analysis, in place: each incident and its
/// shots get the incident's class and confidence. Incidents whose arrivals
/// carry no audio features keep `unknown`: the waveform is the evidence the
/// decision rests on.
pub fn classify_all(
    classifier: &Classifier,
    input: &formats::LocateInput,
    detected: &[analyze_cmd::ClipPulses],
    out: &mut locate::LocateOutput,
) {
    for inc in &mut out.incidents {
        let evidence = analyze_cmd::evidence(input, detected, inc);
        let with_features = evidence
            .shots
            .iter()
            .flat_map(|s| &s.arrivals)
            .any(|a| a.features.is_some());
        if !with_features {
            continue;
        }
        let d = classifier.classify(&evidence);
        inc.class = d.class;
        inc.confidence = d.confidence;
        for shot in &mut inc.shots {
            shot.class = d.class;
            shot.confidence = d.confidence;
        }
    }
}

/// Seeds are `base + k` for k in 0..count: training from 1000, evaluation from
/// 2000, so no simulated city is both trained and judged on.
pub const TRAIN_SEED_BASE: u64 = 1000;
pub const EVAL_SEED_BASE: u64 = 2000;

/// One located incident with its label and its arrivals' labels.
struct Example {
    evidence: IncidentEvidence,
    /// [`incident::GUNFIRE`], [`incident::FIREWORKS`] or [`incident::OTHER`].
    label: usize,
    /// Per arrival with features: (pulse features, 1 if a muzzle blast).
    pulses: Vec<(Vec<f64>, usize)>,
    /// Where it came from (scene template or Pittsburgh position), for folds.
    source: String,
    /// What the truth says it was (`gunshot 9mm`, `firecracker`, `pittsburgh`,
    /// `no event` for a chance alignment), for the per-kind table.
    what: String,
    rounds: usize,
    /// Whether its shots match a truth event (always, for Pittsburgh).
    matched: bool,
}

fn label_of_kind(kind: &str) -> usize {
    match kind {
        "gunshot" => incident::GUNFIRE,
        "firecracker" | "aerial_firework" => incident::FIREWORKS,
        _ => incident::OTHER,
    }
}

/// Simulates a scenario template under `seed` and labels its incidents.
fn scene_examples(path: &Path, seed: u64) -> anyhow::Result<Vec<Example>> {
    let mut scenario = simulate_cmd::load_scenario(path)?;
    scenario.seed = seed;
    let scene = sim::simulate(&scenario).with_context(|| format!("{}", path.display()))?;
    let dir = tempfile::tempdir().context("a temporary folder")?;
    simulate_cmd::write(&scene, dir.path())?;
    drop(scene);
    let truth = formats::read_truth(dir.path())?;
    let (input, _, out, detected) = analyze_cmd::analyze_folder(dir.path())?;
    let name = path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let mut examples = Vec::new();
    for inc in &out.incidents {
        let shots: Vec<&model::Shot> = inc.shots.iter().collect();
        let (_, truth_of_shot) = eval_sim::match_shots(&shots, &truth);
        // The incident is what most of its matched shots were. An incident
        // that matches no event at all is left out of training and of the
        // scores (it is listed on its own): most are rounds located too far
        // from where they were fired to match, whose evidence is gunfire's,
        // so calling them "other" would teach the model that gunfire-like
        // single shots are not gunfire.
        if truth_of_shot.iter().all(Option::is_none) {
            let evidence = analyze_cmd::evidence(&input, &detected, inc);
            let labels = vec![incident::OTHER; inc.shots.len()];
            let mut e = example(
                evidence,
                inc,
                incident::OTHER,
                &labels,
                &name,
                "no event".into(),
            );
            e.matched = false;
            examples.push(e);
            continue;
        }
        let mut votes = [0usize; 3];
        let shot_labels: Vec<usize> = truth_of_shot
            .iter()
            .map(|t| t.map_or(incident::OTHER, |ti| label_of_kind(&truth[ti].kind)))
            .collect();
        for &l in &shot_labels {
            votes[l] += 1;
        }
        let label = (0..3)
            .max_by_key(|&k| (votes[k], 3 - k))
            .unwrap_or(incident::OTHER);
        let mut kinds: std::collections::BTreeMap<String, usize> = Default::default();
        for &ti in truth_of_shot.iter().flatten() {
            let e = &truth[ti];
            let kind = match &e.weapon {
                Some(w) => format!("{} {w}", e.kind),
                None => e.kind.clone(),
            };
            *kinds.entry(kind).or_default() += 1;
        }
        let what = kinds
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .map_or_else(|| "no event".to_string(), |(k, _)| k);
        let evidence = analyze_cmd::evidence(&input, &detected, inc);
        examples.push(example(evidence, inc, label, &shot_labels, &name, what));
    }
    Ok(examples)
}

fn example(
    evidence: IncidentEvidence,
    inc: &model::Incident,
    label: usize,
    shot_labels: &[usize],
    source: &str,
    what: String,
) -> Example {
    let pulses = evidence
        .shots
        .iter()
        .zip(shot_labels)
        .flat_map(|(shot, &l)| {
            shot.arrivals.iter().filter_map(move |a| {
                a.features.as_ref().map(|f| {
                    (
                        pulse::features(f, a.snr_db.unwrap_or(0.0), a.range_m),
                        usize::from(l == incident::GUNFIRE),
                    )
                })
            })
        })
        .collect();
    Example {
        evidence,
        label,
        pulses,
        source: source.to_string(),
        what,
        rounds: inc.shots.len(),
        matched: true,
    }
}

/// The Pittsburgh live-fire tests under `dir` (FPn/test_NNN): shots located
/// from the reported pulses of every sensor, as a server would, with the
/// waveform features of the few sensors whose audio the test holds. Every
/// located incident there is gunfire.
fn pittsburgh_examples(dir: &Path) -> anyhow::Result<Vec<Example>> {
    let mut out = Vec::new();
    for position in sorted_dirs(dir)? {
        let name = position
            .file_name()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        for test in sorted_dirs(&position)? {
            let (input, _, located) = crate::locate_cmd::locate_folder(&test)?;
            let mut audio = formats::read_analyze_input(&test)?;
            let detected = analyze_cmd::detect_all(std::mem::take(&mut audio.clips))?;
            for inc in &located.incidents {
                let labels = vec![incident::GUNFIRE; inc.shots.len()];
                let evidence = analyze_cmd::evidence_from_reports(&input, &detected, inc);
                out.push(example(
                    evidence,
                    inc,
                    incident::GUNFIRE,
                    &labels,
                    &name,
                    "pittsburgh".into(),
                ));
            }
        }
    }
    Ok(out)
}

fn sorted_dirs(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("{}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    Ok(v)
}

fn simulated(dir: &Path, base: u64, seeds: u64) -> anyhow::Result<Vec<Example>> {
    let mut out = Vec::new();
    for path in eval_sim::scenario_files(dir)? {
        for k in 0..seeds {
            out.extend(scene_examples(&path, base + k)?);
        }
    }
    Ok(out)
}

/// Fits both stages. Each class counts equally in total (examples weighted by
/// the inverse of their class's count), so a training set rich in fireworks
/// does not teach the model that everything is fireworks.
fn fit(examples: &[&Example], provenance: String) -> anyhow::Result<Classifier> {
    let config = TrainConfig::default();
    let examples: Vec<&Example> = examples.iter().copied().filter(|e| e.matched).collect();
    let pulses: Vec<(Vec<f64>, usize)> = examples
        .iter()
        .flat_map(|e| e.pulses.iter().cloned())
        .collect();
    let pulse_model = Softmax::fit(&balanced(&pulses, 2), 2, config)
        .map_err(|e| anyhow::anyhow!("pulse model: {e}"))?;
    let pulse = classify::PulseModel { model: pulse_model };
    let rows: Vec<(Vec<f64>, usize)> = examples
        .iter()
        .map(|e| (incident::features(&e.evidence, &pulse), e.label))
        .collect();
    // NaN (unmeasurable) features: `Softmax::fit` takes them at its mean,
    // as `probabilities` does in use.
    let incident_model = Softmax::fit(&balanced(&rows, 3), 3, config)
        .map_err(|e| anyhow::anyhow!("incident model: {e}"))?;
    Ok(Classifier {
        format: classify::FORMAT,
        provenance,
        pulse,
        incident: classify::IncidentModel {
            model: incident_model,
        },
    })
}

fn balanced(rows: &[(Vec<f64>, usize)], classes: usize) -> Vec<(Vec<f64>, usize, f64)> {
    let mut count = vec![0usize; classes];
    for (_, c) in rows {
        count[*c] += 1;
    }
    let present = count.iter().filter(|&&n| n > 0).count().max(1) as f64;
    rows.iter()
        .map(|(x, c)| {
            (
                x.clone(),
                *c,
                rows.len() as f64 / (present * count[*c] as f64),
            )
        })
        .collect()
}

/// `shotfix train`: simulated scenes (and Pittsburgh, unless left out) to a
/// classifier file.
pub fn train(
    scenarios: &Path,
    seeds: u64,
    pittsburgh: Option<&Path>,
    out: &Path,
) -> anyhow::Result<()> {
    if seeds == 0 {
        anyhow::bail!("--seeds must be at least 1");
    }
    let mut examples = simulated(scenarios, TRAIN_SEED_BASE, seeds)?;
    if let Some(p) = pittsburgh {
        examples.extend(pittsburgh_examples(p)?);
    }
    let refs: Vec<&Example> = examples.iter().collect();
    let counts = class_counts(
        &refs
            .iter()
            .copied()
            .filter(|e| e.matched)
            .collect::<Vec<_>>(),
    );
    let provenance = format!(
        "shotfix train: {} x {seeds} seeds from {TRAIN_SEED_BASE}{}; incidents gunfire/fireworks/other {}/{}/{}",
        scenarios.display(),
        pittsburgh.map_or_else(String::new, |p| format!(" + {}", p.display())),
        counts[0],
        counts[1],
        counts[2]
    );
    let model = fit(&refs, provenance.clone())?;
    std::fs::write(out, model.to_json() + "\n").with_context(|| format!("{}", out.display()))?;
    eprintln!("{provenance} -> {}", out.display());
    Ok(())
}

fn class_counts(examples: &[&Example]) -> [usize; 3] {
    let mut c = [0; 3];
    for e in examples {
        c[e.label] += 1;
    }
    c
}

#[derive(Debug, Serialize)]
struct ClassifyReport {
    scenes: String,
    eval_seeds: String,
    /// Rows: truth gunfire, fireworks, other; columns: called gunfire,
    /// probable_gunfire, fireworks, other.
    confusion: [[usize; 4]; 3],
    /// Gunfire vs rest, a call being gunfire or probable_gunfire.
    precision: f64,
    recall: f64,
    f1: f64,
    roc_auc: f64,
    fireworks_called_gunfire: f64,
    /// (bin from, bin to, incidents, mean P(gunfire), fraction gunfire)
    reliability: Vec<(f64, f64, usize, f64, f64)>,
    false_alerts_per_hour: f64,
    simulated_hours: f64,
    /// Per kind of event (weapon for gunshots): (kind, incidents, called
    /// gunfire or probable).
    by_kind: Vec<(String, usize, usize)>,
    /// Pittsburgh, each firing position judged by a model trained without it:
    /// (position, rounds, rounds in incidents called gunfire or probable).
    pittsburgh: Vec<(String, usize, usize)>,
}

/// `shotfix eval classify`.
pub fn eval(
    scenarios: &Path,
    train_seeds: u64,
    eval_seeds: u64,
    pittsburgh: Option<&Path>,
    verbose: bool,
    json: bool,
) -> anyhow::Result<()> {
    if train_seeds == 0 || eval_seeds == 0 {
        anyhow::bail!("--train-seeds and --eval-seeds must be at least 1");
    }
    let hours = simulated_hours(scenarios, eval_seeds)?;
    let train_sim = simulated(scenarios, TRAIN_SEED_BASE, train_seeds)?;
    let test_sim = simulated(scenarios, EVAL_SEED_BASE, eval_seeds)?;
    let real = match pittsburgh {
        Some(p) => pittsburgh_examples(p)?,
        None => Vec::new(),
    };
    // The model judged on simulated scenes: trained on the training seeds and
    // every Pittsburgh position.
    let all: Vec<&Example> = train_sim.iter().chain(&real).collect();
    let model = fit(&all, String::new())?;
    let mut confusion = [[0usize; 4]; 3];
    let mut scored: Vec<(f64, bool)> = Vec::new();
    let mut false_alerts = 0usize;
    let mut by_kind: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    for e in &test_sim {
        let d = model.classify(&e.evidence);
        let called_gunfire = matches!(
            d.class,
            model::Class::Gunfire | model::Class::ProbableGunfire
        );
        let row = by_kind.entry(e.what.clone()).or_insert((0, 0));
        row.0 += 1;
        row.1 += usize::from(called_gunfire);
        if !e.matched {
            continue;
        }
        let col = match d.class {
            model::Class::Gunfire => 0,
            model::Class::ProbableGunfire => 1,
            model::Class::Fireworks => 2,
            _ => 3,
        };
        confusion[e.label][col] += 1;
        if verbose && (col <= 1) != (e.label == incident::GUNFIRE) {
            let x = incident::features(&e.evidence, &model.pulse);
            let x: Vec<String> = INCIDENT_FEATURES
                .iter()
                .zip(&x)
                .map(|(n, v)| format!("{n}={v:.2}"))
                .collect();
            eprintln!(
                "wrong: {} ({}, {} rounds) called {} at P(gunfire) {:.2}: {}",
                e.what,
                e.source,
                e.rounds,
                d.class.as_str(),
                d.p_gunfire,
                x.join(" ")
            );
        }
        scored.push((d.p_gunfire, e.label == incident::GUNFIRE));
        if col <= 1 && e.label != incident::GUNFIRE {
            false_alerts += 1;
        }
    }
    let tp = confusion[0][0] + confusion[0][1];
    let fp = confusion[1][0] + confusion[1][1] + confusion[2][0] + confusion[2][1];
    let fneg = confusion[0][2] + confusion[0][3];
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let recall = tp as f64 / (tp + fneg).max(1) as f64;
    let f1 = 2.0 * precision * recall / (precision + recall).max(1e-12);
    let fireworks: usize = confusion[1].iter().sum();
    let report = ClassifyReport {
        scenes: scenarios.display().to_string(),
        eval_seeds: format!("{EVAL_SEED_BASE}..{}", EVAL_SEED_BASE + eval_seeds),
        confusion,
        precision,
        recall,
        f1,
        roc_auc: roc_auc(&scored),
        fireworks_called_gunfire: (confusion[1][0] + confusion[1][1]) as f64
            / fireworks.max(1) as f64,
        reliability: reliability(&scored),
        false_alerts_per_hour: false_alerts as f64 / hours.max(1e-9),
        simulated_hours: hours,
        by_kind: by_kind.into_iter().map(|(k, (n, g))| (k, n, g)).collect(),
        pittsburgh: pittsburgh_folds(&train_sim, &real)?,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print(&report);
    }
    Ok(())
}

fn simulated_hours(dir: &Path, seeds: u64) -> anyhow::Result<f64> {
    let mut s = 0.0;
    for path in eval_sim::scenario_files(dir)? {
        s += simulate_cmd::load_scenario(&path)?.duration_s * seeds as f64;
    }
    Ok(s / 3600.0)
}

/// Leave-one-position-out on Pittsburgh.
fn pittsburgh_folds(
    sim: &[Example],
    real: &[Example],
) -> anyhow::Result<Vec<(String, usize, usize)>> {
    let mut positions: Vec<&str> = real.iter().map(|e| e.source.as_str()).collect();
    positions.sort_unstable();
    positions.dedup();
    let mut out = Vec::new();
    for held in positions {
        let training: Vec<&Example> = sim
            .iter()
            .chain(real.iter().filter(|e| e.source != held))
            .collect();
        let model = fit(&training, String::new())?;
        let (mut rounds, mut called) = (0, 0);
        for e in real.iter().filter(|e| e.source == held) {
            rounds += e.rounds;
            let d = model.classify(&e.evidence);
            if matches!(
                d.class,
                model::Class::Gunfire | model::Class::ProbableGunfire
            ) {
                called += e.rounds;
            }
        }
        out.push((held.to_string(), rounds, called));
    }
    Ok(out)
}

/// Area under the ROC curve: the chance that a random gunfire incident gets
/// a higher P(gunfire) than a random other one (ties count half).
fn roc_auc(scored: &[(f64, bool)]) -> f64 {
    let pos: Vec<f64> = scored.iter().filter(|s| s.1).map(|s| s.0).collect();
    let neg: Vec<f64> = scored.iter().filter(|s| !s.1).map(|s| s.0).collect();
    if pos.is_empty() || neg.is_empty() {
        return f64::NAN;
    }
    let mut wins = 0.0;
    for p in &pos {
        for n in &neg {
            wins += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    wins / (pos.len() * neg.len()) as f64
}

/// Ten bins of P(gunfire): incidents, mean predicted, fraction truly gunfire.
fn reliability(scored: &[(f64, bool)]) -> Vec<(f64, f64, usize, f64, f64)> {
    (0..10)
        .map(|b| {
            let (lo, hi) = (b as f64 / 10.0, (b + 1) as f64 / 10.0);
            let inside: Vec<&(f64, bool)> = scored
                .iter()
                .filter(|s| s.0 >= lo && (s.0 < hi || b == 9))
                .collect();
            let n = inside.len();
            let mean = inside.iter().map(|s| s.0).sum::<f64>() / n.max(1) as f64;
            let frac = inside.iter().filter(|s| s.1).count() as f64 / n.max(1) as f64;
            (lo, hi, n, mean, frac)
        })
        .collect()
}

fn print(r: &ClassifyReport) {
    println!(
        "Classifier on held-out simulated scenes ({}, seeds {}); incidents that match no event are scored apart (\"no event\" below):",
        r.scenes, r.eval_seeds
    );
    println!("truth \\ called   gunfire  probable  fireworks  other");
    for (name, row) in ["gunfire", "fireworks", "other"].iter().zip(&r.confusion) {
        println!(
            "{name:<16} {:>7} {:>9} {:>10} {:>6}",
            row[0], row[1], row[2], row[3]
        );
    }
    println!(
        "gunfire vs rest (gunfire or probable): precision {:.3}, recall {:.3}, F1 {:.3}; ROC-AUC {:.3}",
        r.precision, r.recall, r.f1, r.roc_auc
    );
    println!(
        "fireworks called gunfire: {:.1} %; false alerts {:.2} per simulated hour ({:.2} h)",
        100.0 * r.fireworks_called_gunfire,
        r.false_alerts_per_hour,
        r.simulated_hours
    );
    println!("reliability: P(gunfire) bin, incidents, mean P, fraction gunfire");
    for (lo, hi, n, mean, frac) in &r.reliability {
        if *n > 0 {
            println!("  {lo:.1}-{hi:.1}  {n:>5}  {mean:.3}  {frac:.3}");
        }
    }
    println!("by kind: incidents, called gunfire or probable");
    for (kind, n, called) in &r.by_kind {
        println!("  {kind:<24} {n:>5} {called:>5}");
    }
    for (position, rounds, called) in &r.pittsburgh {
        println!(
            "Pittsburgh {position} (held out): {called} of {rounds} rounds gunfire or probable ({:.1} %)",
            100.0 * *called as f64 / (*rounds).max(1) as f64
        );
    }
}
