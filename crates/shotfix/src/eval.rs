//! `shotfix eval pittsburgh DIR`: locate every live-fire test from raw pulses and
//! score it against the surveyed firing position.
//!
//! This is the only code that reads the answer files (`*.survey.json`, and
//! `*.nlos-tuples.json` for the association diagnostics), and it reads them only
//! after the locate engine has produced its result from the pulses alone.
//!
//! Scoring, per test with N rounds fired: a located shot within 25 m (2-D) of the
//! survey is a hit, up to N hits; every other located shot is a ghost. The RMS and
//! median 2-D errors are over the hits. Published reference: ShotSpotter Tech Note
//! 098, Table III (2-D RMS error with pulses from all reporting sensors).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use crate::analyze_cmd::{analyze_folder, ClipPulses};
use crate::locate_cmd::locate_folder;

/// A ShotSpotter pulse counts as detected when one of our onsets at the same
/// sensor is within this time of it: far above the timing spread (≈ 1 ms), far
/// below the gap between a shot's arrival and its echoes or the next round.
const TIMING_MATCH_S: f64 = 0.010;

/// A shot within this 2-D distance of the survey counts as located (the
/// ShotSpotter contract criterion).
const HIT_RADIUS_M: f64 = 25.0;

/// The survey's own 95 % radius: a smartphone fix of about 2.5 m CEP (Tech Note 098
/// §IV); for a circular normal error R95 / CEP = 2.4477 / 1.1774 = 2.079.
const SURVEY_R95_M: f64 = 2.5 * 2.079;

/// Tech Note 098 Table III: (MLG RMS m, Reddi RMS m) per firing position.
const PUBLISHED: [(&str, f64, f64); 9] = [
    ("FP1", 2.94, 3.55),
    ("FP2", 4.03, 4.66),
    ("FP3", 0.29, 3.56),
    ("FP4", 4.55, 7.69),
    ("FP5", 4.20, 2.13),
    ("FP6", 5.28, 6.30),
    ("FP7", 7.86, 18.37),
    ("FP8", 2.77, 2.15),
    ("FP9", 5.76, 6.78),
];

#[derive(Debug, Deserialize)]
struct Survey {
    num_rounds: usize,
    survey_location: SurveyLocation,
}

#[derive(Debug, Deserialize)]
struct SurveyLocation {
    x: f64,
    y: f64,
}

#[derive(Debug, Deserialize)]
struct Tuple {
    pulse_uuids: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct TestResult {
    pub test: String,
    pub rounds: usize,
    pub shots: usize,
    pub hits: usize,
    pub ghosts: usize,
    pub errors_m: Vec<f64>,
    pub err95_m: Vec<f64>,
    pub sensors: Vec<usize>,
    pub pulses_used: usize,
    /// 2-D errors of our solver on ShotSpotter's own pulse sets (solver-only diagnostic).
    pub reference_set_errors_m: Vec<f64>,
    pub pulses_used_in_reference: usize,
    pub reference_pulses: usize,
    pub millis: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timing: Option<TimingResult>,
}

/// Pulse timing against ShotSpotter's reported pulses (`--audio`).
#[derive(Debug, Default, Serialize)]
pub struct TimingResult {
    /// Sensors with audio.
    pub audio_sensors: usize,
    /// ShotSpotter's selected pulses (in their nlos-tuples) inside an audio file.
    pub selected: usize,
    /// Our onset minus their arrival time, s, for each selected pulse we detected.
    pub selected_diffs_s: Vec<f64>,
    /// All their reported pulses inside an audio file, and the detected ones' differences.
    pub reported: usize,
    pub reported_diffs_s: Vec<f64>,
    /// Our detected pulses in all audio files.
    pub ours: usize,
}

#[derive(Debug, Default, Serialize)]
pub struct PositionResult {
    pub position: String,
    pub tests: Vec<TestResult>,
}

fn rms(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        (v.iter().map(|e| e * e).sum::<f64>() / v.len() as f64).sqrt()
    }
}

pub(crate) fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let pos = q * (s.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    s[lo] + (s[hi] - s[lo]) * (pos - lo as f64)
}

fn file_with_suffix(dir: &Path, suffix: &str) -> anyhow::Result<Option<PathBuf>> {
    Ok(formats::research::find_one(dir, suffix)?)
}

#[derive(Debug, Deserialize)]
struct ReportedPulse {
    pulse_uuid: String,
    serial_number: String,
    arrival_time_utc: String,
}

/// Our detections against ShotSpotter's reported pulses, sensor by sensor.
fn timing(
    dir: &Path,
    detected: &[ClipPulses],
    selected: &HashSet<String>,
) -> anyhow::Result<TimingResult> {
    let path = file_with_suffix(dir, ".allpulses.json")?
        .with_context(|| format!("{}: no allpulses", dir.display()))?;
    let reported: Vec<ReportedPulse> = serde_json::from_str(&std::fs::read_to_string(&path)?)
        .with_context(|| format!("{}", path.display()))?;
    let mut result = TimingResult {
        audio_sensors: detected.len(),
        ours: detected.iter().map(|c| c.pulses.len()).sum(),
        ..TimingResult::default()
    };
    for c in detected {
        let seconds = c.clip.samples.len() as f64 / c.clip.sample_rate_hz as f64;
        for r in reported
            .iter()
            .filter(|r| r.serial_number == c.clip.sensor.0)
        {
            let t = model::UtcNanos::parse_rfc3339(&r.arrival_time_utc)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
                .seconds_since(c.clip.start);
            if !(0.0..seconds).contains(&t) {
                continue;
            }
            let nearest = c
                .pulses
                .iter()
                .map(|p| p.onset_s - t)
                .min_by(|a, b| a.abs().total_cmp(&b.abs()))
                .filter(|d| d.abs() <= TIMING_MATCH_S);
            result.reported += 1;
            result.reported_diffs_s.extend(nearest);
            if selected.contains(&r.pulse_uuid) {
                result.selected += 1;
                result.selected_diffs_s.extend(nearest);
            }
        }
    }
    Ok(result)
}

fn evaluate_test(dir: &Path, audio: bool) -> anyhow::Result<TestResult> {
    let started = Instant::now();
    let (out, detected) = if audio {
        let (_, _, out, detected) = analyze_folder(dir)?;
        (out, Some(detected))
    } else {
        (locate_folder(dir)?.2, None)
    };
    let millis = started.elapsed().as_secs_f64() * 1e3;
    // Only now, with the result fixed, read the answers.
    let survey_path = file_with_suffix(dir, ".survey.json")?
        .with_context(|| format!("{}: no survey", dir.display()))?;
    let survey: Survey = serde_json::from_str(&std::fs::read_to_string(&survey_path)?)
        .with_context(|| format!("{}", survey_path.display()))?;
    let mut errors: Vec<(f64, f64, usize)> = out
        .incidents
        .iter()
        .flat_map(|i| &i.shots)
        .map(|s| {
            let e = (s.position.x - survey.survey_location.x)
                .hypot(s.position.y - survey.survey_location.y);
            (e, s.err95_m, s.arrivals.len())
        })
        .collect();
    errors.sort_by(|a, b| a.0.total_cmp(&b.0));
    let shots = errors.len();
    let hits: Vec<_> = errors
        .iter()
        .filter(|e| e.0 <= HIT_RADIUS_M)
        .take(survey.num_rounds)
        .collect();
    let used: HashSet<String> = out
        .incidents
        .iter()
        .flat_map(|i| &i.shots)
        .flat_map(|s| &s.arrivals)
        .map(|a| a.pulse.0.clone())
        .collect();
    let (mut reference_pulses, mut in_reference) = (0, 0);
    let mut reference_set_errors_m = Vec::new();
    let mut timing_result = None;
    let tuples: Option<Vec<Tuple>> = match file_with_suffix(dir, ".nlos-tuples.json")? {
        Some(path) => Some(
            serde_json::from_str(&std::fs::read_to_string(&path)?)
                .with_context(|| format!("{}", path.display()))?,
        ),
        None => None,
    };
    if let (Some(detected), Some(tuples)) = (&detected, &tuples) {
        let selected: HashSet<String> = tuples
            .iter()
            .flat_map(|t| t.pulse_uuids.iter().cloned())
            .collect();
        timing_result = Some(timing(dir, detected, &selected)?);
    } else if let Some(tuples) = &tuples {
        let reference: HashSet<&String> = tuples.iter().flat_map(|t| &t.pulse_uuids).collect();
        reference_pulses = reference.len();
        in_reference = used.iter().filter(|u| reference.contains(u)).count();
        // Our solver on their pulse sets: separates solver error from association error.
        let input = formats::read_locate_input(dir)?;
        let set = locate::PulseSet::new(input.sensors.clone(), input.pulses.clone())?;
        let medium = locate::Medium::from_weather(&input.weather);
        for tuple in tuples {
            let points: Vec<locate::start::TimedPoint> = tuple
                .pulse_uuids
                .iter()
                .filter_map(|u| set.index_of(&model::PulseId(u.clone())))
                .map(|i| set.timed_point(i))
                .collect();
            let Ok(arrivals) = locate::solve::Arrivals::new(points) else {
                continue;
            };
            if let Some(sol) =
                locate::solve::solve(&arrivals, &medium, &locate::LocateConfig::default(), &[])
            {
                reference_set_errors_m.push(
                    (sol.position.x - survey.survey_location.x)
                        .hypot(sol.position.y - survey.survey_location.y),
                );
            }
        }
    }
    Ok(TestResult {
        test: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        rounds: survey.num_rounds,
        shots,
        hits: hits.len(),
        ghosts: shots - hits.len(),
        errors_m: hits.iter().map(|e| e.0).collect(),
        err95_m: hits.iter().map(|e| e.1).collect(),
        sensors: hits.iter().map(|e| e.2).collect(),
        pulses_used: used.len(),
        reference_set_errors_m,
        pulses_used_in_reference: in_reference,
        reference_pulses,
        millis,
        timing: timing_result,
    })
}

/// Every shot of every test.
fn print_verbose(positions: &BTreeMap<String, PositionResult>) {
    for r in positions.values() {
        for t in &r.tests {
            println!(
                "{} {} rounds {} shots {} hits {} ghosts {} errors {:?} err95 {:?} sensors {:?} {:.1} ms",
                r.position,
                t.test,
                t.rounds,
                t.shots,
                t.hits,
                t.ghosts,
                t.errors_m.iter().map(|e| (e * 100.0).round() / 100.0).collect::<Vec<_>>(),
                t.err95_m.iter().map(|e| (e * 100.0).round() / 100.0).collect::<Vec<_>>(),
                t.sensors,
                t.millis
            );
        }
    }
}

/// The timing section of `--audio`: per firing position and overall.
fn print_timing(positions: &BTreeMap<String, PositionResult>) {
    println!("Pulse timing: our detector on each sensor's audio against ShotSpotter's reported pulses at that sensor");
    println!("(allpulses.json, millisecond resolution). 'selected' = the pulses ShotSpotter used to locate (nlos-tuples).");
    println!(
        "A pulse counts as detected when one of our onsets is within {:.0} ms.\n",
        TIMING_MATCH_S * 1e3
    );
    println!(
        "{:<5} {:>7} {:>16} {:>16} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "FP",
        "sensors",
        "selected found",
        "reported found",
        "offset ms",
        "|d| med ms",
        "|d| p90 ms",
        "|d| p99 ms",
        "ours"
    );
    let mut every: Vec<&TimingResult> = Vec::new();
    let row = |name: &str, ts: &[&TimingResult]| {
        let selected: usize = ts.iter().map(|t| t.selected).sum();
        let reported: usize = ts.iter().map(|t| t.reported).sum();
        let sd: Vec<f64> = ts
            .iter()
            .flat_map(|t| t.selected_diffs_s.iter().copied())
            .collect();
        let rd: usize = ts.iter().map(|t| t.reported_diffs_s.len()).sum();
        let offset = quantile(&sd, 0.5);
        let dev: Vec<f64> = sd.iter().map(|d| (d - offset).abs()).collect();
        println!(
            "{:<5} {:>7} {:>16} {:>16} {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>8}",
            name,
            ts.iter().map(|t| t.audio_sensors).sum::<usize>(),
            format!(
                "{}/{} {:.1}%",
                sd.len(),
                selected,
                100.0 * sd.len() as f64 / selected.max(1) as f64
            ),
            format!(
                "{}/{} {:.0}%",
                rd,
                reported,
                100.0 * rd as f64 / reported.max(1) as f64
            ),
            offset * 1e3,
            quantile(&dev, 0.5) * 1e3,
            quantile(&dev, 0.9) * 1e3,
            quantile(&dev, 0.99) * 1e3,
            ts.iter().map(|t| t.ours).sum::<usize>(),
        );
    };
    for (name, r) in positions {
        let ts: Vec<&TimingResult> = r.tests.iter().filter_map(|t| t.timing.as_ref()).collect();
        row(name, &ts);
        every.extend(ts);
    }
    row("all", &every);
    println!("offset = median of (our onset − their arrival) over detected selected pulses; |d| = |difference − offset|.");
    println!("Their times are truncated to whole milliseconds, so a true arrival lies on average 0.5 ms after the time they report.");
}

pub fn subdirs(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("{}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    Ok(v)
}

pub fn pittsburgh(dir: &Path, verbose: bool, json: bool, audio: bool) -> anyhow::Result<()> {
    let mut positions: BTreeMap<String, PositionResult> = BTreeMap::new();
    for fp in subdirs(dir)? {
        let name = fp
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut result = PositionResult {
            position: name.clone(),
            tests: Vec::new(),
        };
        for test in subdirs(&fp)? {
            if file_with_suffix(&test, ".allpulses.json")?.is_none() {
                continue;
            }
            result.tests.push(evaluate_test(&test, audio)?);
        }
        if !result.tests.is_empty() {
            positions.insert(name, result);
        }
    }
    if positions.is_empty() {
        bail!(
            "{}: no FPn/test_NNN folders with *.allpulses.json",
            dir.display()
        );
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&positions.values().collect::<Vec<_>>())?
        );
        return Ok(());
    }
    if audio {
        print_timing(&positions);
        println!("\nPittsburgh live-fire evaluation: analyze from audio alone (only the 4–6 sensors with audio), scored against the survey.");
    } else {
        println!("Pittsburgh live-fire evaluation: locate from raw pulses (all reporting sensors), scored against the survey.");
    }
    println!("Live-fire data (c) ShotSpotter, Inc., CC BY 4.0. Reference: ShotSpotter Tech Note 098, Table III.\n");
    println!(
        "{:<5} {:>5} {:>14} {:>6} {:>8} {:>8} {:>8} {:>8} {:>9} {:>11} {:>8} | {:>9} {:>9}",
        "FP",
        "tests",
        "located<=25m",
        "ghosts",
        "RMS m",
        "median",
        "max",
        "sensors",
        "in err95",
        "in +survey",
        "ms/test",
        "SST MLG",
        "SST Reddi"
    );
    let mut all = (
        0,
        0,
        0,
        Vec::new(),
        0,
        0,
        0usize,
        0usize,
        0usize,
        0.0,
        0usize,
    );
    let mut reference_rms = Vec::new();
    for (name, r) in &positions {
        let rounds: usize = r.tests.iter().map(|t| t.rounds).sum();
        let hits: usize = r.tests.iter().map(|t| t.hits).sum();
        let ghosts: usize = r.tests.iter().map(|t| t.ghosts).sum();
        let errors: Vec<f64> = r
            .tests
            .iter()
            .flat_map(|t| t.errors_m.iter().copied())
            .collect();
        let inside = r
            .tests
            .iter()
            .flat_map(|t| t.errors_m.iter().zip(&t.err95_m))
            .filter(|(e, r)| e <= r)
            .count();
        let inside_with_survey = r
            .tests
            .iter()
            .flat_map(|t| t.errors_m.iter().zip(&t.err95_m))
            .filter(|(e, r)| **e <= r.hypot(SURVEY_R95_M))
            .count();
        let sensors: Vec<f64> = r
            .tests
            .iter()
            .flat_map(|t| t.sensors.iter().map(|&s| s as f64))
            .collect();
        let ms: f64 = r.tests.iter().map(|t| t.millis).sum::<f64>() / r.tests.len() as f64;
        let published = PUBLISHED.iter().find(|p| p.0 == name);
        println!(
            "{:<5} {:>5} {:>14} {:>6} {:>8.2} {:>8.2} {:>8.2} {:>8.1} {:>9} {:>11} {:>8.1} | {:>9} {:>9}",
            name,
            r.tests.len(),
            format!("{hits}/{rounds}"),
            ghosts,
            rms(&errors),
            quantile(&errors, 0.5),
            errors.iter().copied().fold(0.0, f64::max),
            sensors.iter().sum::<f64>() / sensors.len().max(1) as f64,
            format!("{inside}/{}", errors.len()),
            format!("{inside_with_survey}/{}", errors.len()),
            ms,
            published.map_or("-".into(), |p| format!("{:.2}", p.1)),
            published.map_or("-".into(), |p| format!("{:.2}", p.2)),
        );
        let on_reference: Vec<f64> = r
            .tests
            .iter()
            .flat_map(|t| t.reference_set_errors_m.iter().copied())
            .collect();
        reference_rms.push(format!(
            "{name} {:.2} m over {} sets",
            rms(&on_reference),
            on_reference.len()
        ));
        all.0 += rounds;
        all.1 += hits;
        all.2 += ghosts;
        all.3.extend(errors);
        all.4 += inside;
        all.10 += inside_with_survey;
        all.6 += r.tests.iter().map(|t| t.pulses_used).sum::<usize>();
        all.7 += r
            .tests
            .iter()
            .map(|t| t.pulses_used_in_reference)
            .sum::<usize>();
        all.8 += r.tests.iter().map(|t| t.reference_pulses).sum::<usize>();
        all.9 += r.tests.iter().map(|t| t.millis).sum::<f64>();
        all.5 += r.tests.len();
    }
    println!(
        "{:<5} {:>5} {:>14} {:>6} {:>8.2} {:>8.2} {:>8.2} {:>8} {:>9} {:>11} {:>8.1} |",
        "all",
        all.5,
        format!("{}/{}", all.1, all.0),
        all.2,
        rms(&all.3),
        quantile(&all.3, 0.5),
        all.3.iter().copied().fold(0.0, f64::max),
        "",
        format!("{}/{}", all.4, all.3.len()),
        format!("{}/{}", all.10, all.3.len()),
        all.9 / all.5 as f64
    );
    if audio {
        let few = |k: usize| -> usize {
            positions
                .values()
                .flat_map(|r| &r.tests)
                .filter(|t| t.timing.as_ref().is_some_and(|m| m.audio_sensors < k))
                .map(|t| t.rounds)
                .sum()
        };
        println!(
            "\nRounds in tests with fewer than 3 sensors with audio: {}; fewer than 4 (the fewest the locate engine accepts): {}.",
            few(3),
            few(4)
        );
        println!("Ghosts are located shots not within 25 m of the survey; their share of rounds: {:.1} %.", 100.0 * all.2 as f64 / all.0.max(1) as f64);
        if verbose {
            print_verbose(&positions);
        }
        return Ok(());
    }
    println!(
        "\nAssociation vs ShotSpotter's own pulse selection (nlos-tuples): {} of our {} pulses are in theirs; we used {:.1} % of their {}.",
        all.7,
        all.6,
        100.0 * all.7 as f64 / all.8.max(1) as f64,
        all.8
    );
    println!(
        "Our solver on ShotSpotter's pulse sets (RMS 2-D): {}.",
        reference_rms.join(", ")
    );
    println!("The survey positions are good to about 2.5 m (smartphone GPS), the floor of what these errors can show;");
    println!("'in +survey' counts errors within err95 combined with the survey's own 95 % radius ({SURVEY_R95_M:.1} m).");
    if verbose {
        print_verbose(&positions);
    }
    Ok(())
}
