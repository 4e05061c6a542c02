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
    incident, pulse, BoostConfig, Boosted, Classifier, IncidentEvidence, Softmax, TrainConfig,
    INCIDENT_FEATURES,
};
use serde::Serialize;

use crate::{analyze_cmd, eval_sim, simulate_cmd};

/// The classifier to use: the file at `path`, or the shipped one.
pub fn load(path: Option<&Path>) -> anyhow::Result<Classifier> {
    match path {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("{}", p.display()))?;
            Classifier::from_json(&text)
                .map_err(|e| anyhow::anyhow!("{}: not a shotfix classifier: {e}", p.display()))
        }
        None => Classifier::shipped().map_err(|e| anyhow::anyhow!(e)),
    }
}

/// Classifies every incident of an analysis, in place: each incident and its
/// shots get the incident's class and confidence. Incidents with neither a
/// waveform nor a calibrated level on any arrival keep `unknown`.
pub fn classify_all(
    classifier: &Classifier,
    input: &formats::LocateInput,
    detected: &[analyze_cmd::ClipPulses],
    out: &mut locate::LocateOutput,
) {
    let evidence = analyze_cmd::Evidence::new(input, detected);
    classify_with(classifier, out, |inc| evidence.of(inc));
}

/// [`classify_all`] for shots located from pulse reports (no waveform): the
/// reported levels, places and times, as the server classifies.
pub fn classify_reports(
    classifier: &Classifier,
    input: &formats::LocateInput,
    out: &mut locate::LocateOutput,
) {
    let evidence = analyze_cmd::Evidence::new(input, &[]);
    classify_with(classifier, out, |inc| evidence.of_reports(inc));
}

fn classify_with(
    classifier: &Classifier,
    out: &mut locate::LocateOutput,
    evidence: impl Fn(&model::Incident) -> IncidentEvidence,
) {
    for inc in &mut out.incidents {
        let evidence = evidence(inc);
        if !evidence.says_what_it_sounded_like() {
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
    /// Whether waveform features were available (audio analysed), or only
    /// the pulse reports.
    audio: bool,
}

fn label_of_kind(kind: &str) -> usize {
    match kind {
        "gunshot" => incident::GUNFIRE,
        "firecracker" | "aerial_firework" => incident::FIREWORKS,
        _ => incident::OTHER,
    }
}

/// Simulates a scenario template under `seed` and labels its incidents, in
/// both views: analysed from the audio (as `shotfix analyze`) and located from
/// the pulse reports with no waveform (as the server sees a city).
fn scene_examples(path: &Path, seed: u64) -> anyhow::Result<Vec<Example>> {
    let mut scenario = simulate_cmd::load_scenario(path)?;
    scenario.seed = seed;
    let scene = sim::simulate(&scenario).with_context(|| format!("{}", path.display()))?;
    let dir = tempfile::tempdir().context("a temporary folder")?;
    simulate_cmd::write(&scene, dir.path())?;
    drop(scene);
    let truth = formats::read_truth(dir.path())?;
    let name = path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let (input, _, out, detected) = analyze_cmd::analyze_folder(dir.path())?;
    let evidence = analyze_cmd::Evidence::new(&input, &detected);
    let mut examples = labelled(&out, &truth, &name, true, |inc| evidence.of(inc));
    let (input, _, out) = crate::locate_cmd::locate_folder(dir.path())?;
    let evidence = analyze_cmd::Evidence::new(&input, &[]);
    examples.extend(labelled(&out, &truth, &name, false, |inc| {
        evidence.of_reports(inc)
    }));
    Ok(examples)
}

/// Labels located incidents from the truth.
fn labelled(
    out: &locate::LocateOutput,
    truth: &[model::TruthEvent],
    name: &str,
    audio: bool,
    evidence: impl Fn(&model::Incident) -> IncidentEvidence,
) -> Vec<Example> {
    let mut examples = Vec::new();
    for inc in &out.incidents {
        let shots: Vec<&model::Shot> = inc.shots.iter().collect();
        let (_, truth_of_shot) = eval_sim::match_shots(&shots, truth);
        // The incident is what most of its matched shots were. An incident
        // that matches no event at all is left out of training and of the
        // scores (it is listed on its own): most are rounds located too far
        // from where they were fired to match, whose evidence is gunfire's,
        // so calling them "other" would teach the model that gunfire-like
        // single shots are not gunfire.
        if truth_of_shot.iter().all(Option::is_none) {
            let labels = vec![incident::OTHER; inc.shots.len()];
            let mut e = example(
                evidence(inc),
                inc,
                incident::OTHER,
                &labels,
                name,
                "no event".into(),
            );
            e.matched = false;
            e.audio = audio;
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
        let mut e = example(evidence(inc), inc, label, &shot_labels, name, what);
        e.audio = audio;
        examples.push(e);
    }
    examples
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
        audio: true,
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
            let evidence = analyze_cmd::Evidence::new(&input, &detected);
            for inc in &located.incidents {
                let labels = vec![incident::GUNFIRE; inc.shots.len()];
                out.push(example(
                    evidence.of_reports_with_audio(inc),
                    inc,
                    incident::GUNFIRE,
                    &labels,
                    &name,
                    "pittsburgh".into(),
                ));
                let mut reports_only = example(
                    evidence.of_reports(inc),
                    inc,
                    incident::GUNFIRE,
                    &labels,
                    &name,
                    "pittsburgh".into(),
                );
                reports_only.audio = false;
                out.push(reports_only);
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
    // NaN (unmeasurable) features: the trees learn where they go, or weigh
    // both branches where training had none.
    let incident_model = Boosted::fit(&balanced(&rows, 3), 3, BoostConfig::default())
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
        "shotfix train: {} x {seeds} seeds from {TRAIN_SEED_BASE}{}; incident examples (each from the audio and from the pulse reports alone) gunfire/fireworks/other {}/{}/{}",
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
    /// Scenes from the training templates, simulated under held-out seeds,
    /// analysed from their audio.
    held_out: SceneScores,
    /// The same scenes located from their pulse reports alone (no waveform),
    /// as the server sees them.
    held_out_reports_only: SceneScores,
    /// Scenes from templates never trained on, if asked for (audio, then
    /// reports only).
    unseen: Option<(SceneScores, SceneScores)>,
    /// Pittsburgh, each firing position judged by a model trained without it:
    /// (position, rounds, rounds in incidents called gunfire or probable
    /// with the audio features, and from the pulse reports alone).
    pittsburgh: Vec<(String, usize, usize, usize)>,
}

/// The scores of one set of simulated scenes.
#[derive(Debug, Serialize)]
struct SceneScores {
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
    /// Incidents whose first alert a server would hold back
    /// (`Decision::holds_alert`): (gunfire ones, the others).
    held_back: (usize, usize),
}

/// `shotfix eval classify`.
pub fn eval(
    scenarios: &Path,
    unseen: &[PathBuf],
    train_seeds: u64,
    eval_seeds: u64,
    pittsburgh: Option<&Path>,
    verbose: bool,
    json: bool,
) -> anyhow::Result<()> {
    if train_seeds == 0 || eval_seeds == 0 {
        anyhow::bail!("--train-seeds and --eval-seeds must be at least 1");
    }
    // A wrong folder is said before minutes of training, not after.
    for dir in unseen {
        eval_sim::scenario_files(dir)?;
    }
    let train_sim = simulated(scenarios, TRAIN_SEED_BASE, train_seeds)?;
    let real = match pittsburgh {
        Some(p) => pittsburgh_examples(p)?,
        None => Vec::new(),
    };
    // The model judged on simulated scenes: trained on the training seeds and
    // every Pittsburgh position.
    let all: Vec<&Example> = train_sim.iter().chain(&real).collect();
    let model = fit(&all, String::new())?;
    let (held_out, held_out_reports_only) =
        score_scenes(&model, &[scenarios], eval_seeds, verbose)?;
    let unseen = if unseen.is_empty() {
        None
    } else {
        let dirs: Vec<&Path> = unseen.iter().map(PathBuf::as_path).collect();
        Some(score_scenes(&model, &dirs, eval_seeds, verbose)?)
    };
    let report = ClassifyReport {
        held_out,
        held_out_reports_only,
        unseen,
        pittsburgh: pittsburgh_folds(&train_sim, &real)?,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print(&report);
    }
    Ok(())
}

/// Simulates the templates under `dirs` with the evaluation seeds and scores
/// the model's calls on their incidents: analysed from the audio, and located
/// from the pulse reports alone.
fn score_scenes(
    model: &Classifier,
    dirs: &[&Path],
    eval_seeds: u64,
    verbose: bool,
) -> anyhow::Result<(SceneScores, SceneScores)> {
    let (mut hours, mut test_sim) = (0.0, Vec::new());
    for dir in dirs {
        hours += simulated_hours(dir, eval_seeds)?;
        test_sim.extend(simulated(dir, EVAL_SEED_BASE, eval_seeds)?);
    }
    let scenes = dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let (audio, reports): (Vec<Example>, Vec<Example>) =
        test_sim.into_iter().partition(|e| e.audio);
    Ok((
        score_examples(model, &audio, &scenes, eval_seeds, hours, verbose),
        score_examples(
            model,
            &reports,
            &format!("{scenes}, pulse reports only"),
            eval_seeds,
            hours,
            verbose,
        ),
    ))
}

fn score_examples(
    model: &Classifier,
    test_sim: &[Example],
    scenes: &str,
    eval_seeds: u64,
    hours: f64,
    verbose: bool,
) -> SceneScores {
    let mut confusion = [[0usize; 4]; 3];
    let mut scored: Vec<(f64, bool)> = Vec::new();
    let mut false_alerts = 0usize;
    let mut held_back = (0usize, 0usize);
    let mut by_kind: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    for e in test_sim {
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
                "wrong{}: {} ({}, {} rounds) called {} at P(gunfire) {:.2}: {}",
                if e.audio { "" } else { " (reports only)" },
                e.what,
                e.source,
                e.rounds,
                d.class.as_str(),
                d.p_gunfire,
                x.join(" ")
            );
        }
        scored.push((d.p_gunfire, e.label == incident::GUNFIRE));
        if d.holds_alert() {
            if e.label == incident::GUNFIRE {
                held_back.0 += 1;
            } else {
                held_back.1 += 1;
            }
        }
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
    SceneScores {
        scenes: scenes.to_string(),
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
        held_back,
    }
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
) -> anyhow::Result<Vec<(String, usize, usize, usize)>> {
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
        let (mut rounds, mut called, mut called_without_audio) = (0, 0, 0);
        for e in real.iter().filter(|e| e.source == held) {
            let d = model.classify(&e.evidence);
            let gunfire = matches!(
                d.class,
                model::Class::Gunfire | model::Class::ProbableGunfire
            );
            if e.audio {
                rounds += e.rounds;
                called += usize::from(gunfire) * e.rounds;
            } else {
                called_without_audio += usize::from(gunfire) * e.rounds;
            }
        }
        out.push((held.to_string(), rounds, called, called_without_audio));
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
    print_scenes("held-out seeds of the training templates", &r.held_out);
    println!();
    print_scenes(
        "held-out seeds, no waveform (the server's view)",
        &r.held_out_reports_only,
    );
    if let Some((audio, reports)) = &r.unseen {
        println!();
        print_scenes("templates never trained on", audio);
        println!();
        print_scenes("templates never trained on, no waveform", reports);
    }
    println!();
    let pct = |k: usize, n: usize| 100.0 * k as f64 / n.max(1) as f64;
    for (position, rounds, called, without_audio) in &r.pittsburgh {
        println!(
            "Pittsburgh {position} (held out): {called} of {rounds} rounds gunfire or probable ({:.1} %); from the pulse reports alone {without_audio} ({:.1} %)",
            pct(*called, *rounds),
            pct(*without_audio, *rounds),
        );
    }
}

fn print_scenes(what: &str, r: &SceneScores) {
    println!(
        "Classifier on simulated scenes, {what} ({}, seeds {}); incidents that match no event are scored apart (\"no event\" below):",
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
    let gunfire: usize = r.confusion[0].iter().sum();
    let others: usize = r.confusion[1..].iter().flatten().sum();
    println!(
        "first alert held back (P(gunfire) < {}): {} of {gunfire} gunfire incidents, {} of {others} others",
        classify::incident::HOLD_ALERT_BELOW_P,
        r.held_back.0,
        r.held_back.1
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
}
