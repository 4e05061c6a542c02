//! `shotfix evidence export|pack|verify`: evidence bundles (formats::evidence)
//! and re-deriving their results.
//!
//! Two kinds of bundle, named in `bundle.json`:
//! - `server-incident` (`export`): a stored incident's pulses, sensors, weather,
//!   clips, documents and history (server::evidence). Its result is re-derived
//!   by `shotfix locate` on the bundle: the server's final shots are the ones
//!   the locate engine's batch association finds on the same pulses.
//! - `audio-folder` (`pack`): every recording of a folder `analyze` reads
//!   (ShotSpotter `smj0` WAVs, a research-layout test, a scene), byte for byte,
//!   with their sensors, start times and weather, and the analysis of record in
//!   `results.json`. Its result is re-derived by `shotfix analyze` on the bundle.
//!
//! `verify` checks the seal, then re-derives and compares shot by shot.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use formats::evidence::{self, BundleAudio, BundleFiles, BundleScene};
use formats::Frame;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::output;

/// `bundle.json` as read back.
#[derive(Debug, Clone, Deserialize)]
pub struct BundleMeta {
    pub format: String,
    pub kind: String,
    #[serde(default)]
    pub incident: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub software: Option<String>,
    #[serde(default)]
    pub classifier_sha256: Option<String>,
}

#[derive(Serialize)]
struct PackMeta<'a> {
    format: &'static str,
    kind: &'static str,
    source: &'a str,
    software: String,
    classifier_sha256: String,
}

/// A shot as a result document states it: the server's incident document and
/// the locate/analyze document (CONTRACT.md §4) share these fields.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RecShot {
    pub t_utc: String,
    pub x: f64,
    pub y: f64,
    #[serde(default)]
    pub z: f64,
    #[serde(default)]
    pub lat: Option<f64>,
    #[serde(default)]
    pub lon: Option<f64>,
    pub err95_m: f64,
    pub sensors: Vec<String>,
    pub class: String,
    pub confidence: f64,
    #[serde(default)]
    pub arrivals: Vec<RecArrival>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RecArrival {
    pub sensor: String,
    #[serde(default)]
    pub pulse: String,
    pub t_utc: String,
    pub residual_ms: f64,
    pub range_m: f64,
}

/// An incident as a result document states it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RecIncident {
    pub id: String,
    pub class: String,
    pub confidence: f64,
    pub rounds: usize,
    pub shooters: usize,
    pub automatic: bool,
    pub shots: Vec<RecShot>,
    /// A person's review (a stored incident): its `machine` field is the
    /// machine's own result.
    #[serde(default)]
    pub review: Option<Value>,
    /// The software that made this version (a stored incident).
    #[serde(default)]
    pub software: Option<String>,
}

impl RecIncident {
    /// The machine's result: (class, rounds, shooters), before any person's review.
    pub fn machine(&self) -> (String, usize, usize) {
        let m = self.review.as_ref().map(|r| &r["machine"]);
        match m {
            Some(m) if m.is_object() => (
                m["class"].as_str().unwrap_or_default().to_string(),
                m["rounds"].as_u64().unwrap_or_default() as usize,
                m["shooters"].as_u64().unwrap_or_default() as usize,
            ),
            _ => (self.class.clone(), self.rounds, self.shooters),
        }
    }
}

/// A bundle read back and checked against its seal. Everything after the
/// check reads `dir()`: a private copy written from the verified bytes, so a
/// file changed on disk after the check cannot slip into the re-derivation.
pub struct Bundle {
    pub files: BundleFiles,
    pub hash: String,
    pub meta: BundleMeta,
    copy: tempfile::TempDir,
}

impl Bundle {
    /// Reads the bundle in `dir` and checks it against its seal.
    pub fn read(dir: &Path) -> Result<Bundle> {
        let (files, _) = evidence::read_bundle(dir)?;
        Bundle::from_files(files).with_context(|| format!("{}", dir.display()))
    }

    /// A bundle made here (export, pack), already whole: no seal to check.
    pub fn from_files(files: BundleFiles) -> Result<Bundle> {
        let meta: BundleMeta = serde_json::from_slice(
            files
                .get("bundle.json")
                .ok_or_else(|| anyhow!("no bundle.json"))?,
        )
        .context("bundle.json")?;
        if meta.format != server::evidence::BUNDLE_FORMAT {
            bail!(
                "bundle format {:?}: this shotfix reads {:?}",
                meta.format,
                server::evidence::BUNDLE_FORMAT
            );
        }
        let copy = tempfile::tempdir().context("a temporary folder for the verified copy")?;
        let hash = evidence::write_bundle(&copy.path().join("bundle"), &files)?;
        Ok(Bundle {
            files,
            hash,
            meta,
            copy,
        })
    }

    /// The verified copy.
    pub fn dir(&self) -> std::path::PathBuf {
        self.copy.path().join("bundle")
    }

    pub fn server(&self) -> bool {
        self.meta.kind == "server-incident"
    }

    pub fn json(&self, name: &str) -> Result<Value> {
        let bytes = self
            .files
            .get(name)
            .ok_or_else(|| anyhow!("the bundle has no {name}"))?;
        serde_json::from_slice(bytes).with_context(|| format!("the bundle's {name}"))
    }

    /// A stored incident's version document, as stored.
    pub fn version(&self, version: i64) -> Option<Value> {
        let bytes = self.files.get(&format!("versions/{version}.json"))?;
        serde_json::from_slice(bytes).ok()
    }

    /// The result of record: the incidents the bundle says were found.
    pub fn recorded(&self) -> Result<Vec<RecIncident>> {
        match self.meta.kind.as_str() {
            "server-incident" => {
                let record = self.json("record.json")?;
                let current = record["current_version"]
                    .as_i64()
                    .ok_or_else(|| anyhow!("record.json: no current_version"))?;
                let doc = self
                    .version(current)
                    .ok_or_else(|| anyhow!("the bundle has no versions/{current}.json"))?;
                let incident = serde_json::from_value(doc)
                    .with_context(|| format!("versions/{current}.json"))?;
                Ok(vec![incident])
            }
            "audio-folder" => incidents_of(&self.json("results.json")?),
            other => bail!("bundle kind {other:?} is not one this shotfix knows"),
        }
    }

    /// Re-derives the result from the verified copy: `locate` for a stored
    /// incident, `analyze` for recordings, with the shipped classifier (as the
    /// server and `analyze` use).
    pub fn rederive(&self) -> Result<Value> {
        let dir = self.dir();
        let classifier = crate::classify_cmd::load(None)?;
        let doc = if self.server() {
            let (input, medium, mut out) = crate::locate_cmd::locate_folder(&dir)?;
            crate::classify_cmd::classify_reports(&classifier, &input, &mut out);
            output::document(&input, &medium, &out)
        } else {
            let (input, medium, mut out, detected) = crate::analyze_cmd::analyze_folder(&dir)?;
            crate::classify_cmd::classify_all(&classifier, &input, &detected, &mut out);
            output::document(&input, &medium, &out)
        };
        serde_json::to_value(&doc).context("serialising the result")
    }

    /// Recomputes every history entry's hash, and its reason's and document's
    /// SHA-256, from the bundle alone (a stored incident; empty otherwise).
    pub fn check_history(&self) -> Result<HistoryCheck> {
        let mut check = HistoryCheck::default();
        if !self.server() {
            return Ok(check);
        }
        let record = self.json("record.json")?;
        for e in record["history"].as_array().into_iter().flatten() {
            check.entries += 1;
            let text = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            let entry = store::HistoryEntry {
                seq: e["seq"].as_i64().unwrap_or_default(),
                incident: text("incident"),
                version: e["version"].as_i64().unwrap_or_default(),
                created_ns: e["created_ns"].as_i64().unwrap_or_default(),
                actor: text("actor"),
                action: text("action"),
                reason: e["reason"].as_str().map(str::to_string),
                reason_sha256: text("reason_sha256"),
                doc: None,
                doc_sha256: text("doc_sha256"),
                prev_hash: text("prev_hash"),
                hash: text("hash"),
            };
            let name = format!("history entry {}", entry.seq);
            if store::entry_hash(&entry) != entry.hash {
                check
                    .problems
                    .push(format!("{name}: its hash does not match its fields"));
            }
            if let Some(reason) = &entry.reason {
                if evidence::sha256_hex(reason.as_bytes()) != entry.reason_sha256 {
                    check
                        .problems
                        .push(format!("{name}: the reason differs from its SHA-256"));
                }
            }
            if e["redacted"].as_bool() == Some(true) {
                check.redacted += 1;
            } else {
                match self.files.get(&format!("versions/{}.json", entry.version)) {
                    Some(doc) if evidence::sha256_hex(doc) == entry.doc_sha256 => {}
                    Some(_) => check.problems.push(format!(
                        "{name}: versions/{}.json differs from the document it hashed",
                        entry.version
                    )),
                    None => check.problems.push(format!(
                        "{name}: versions/{}.json is missing",
                        entry.version
                    )),
                }
            }
        }
        Ok(check)
    }
}

/// What recomputing a bundle's history entries found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HistoryCheck {
    pub entries: usize,
    /// Entries whose document retention removed (their hashes still check).
    pub redacted: usize,
    pub problems: Vec<String>,
}

/// The incidents of a locate/analyze document.
pub fn incidents_of(doc: &Value) -> Result<Vec<RecIncident>> {
    serde_json::from_value(doc["incidents"].clone()).context("a result document's incidents")
}

/// How the re-derived shots compare with the recorded ones.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub recorded: usize,
    /// Recorded shots re-derived with the same time (to the nanosecond),
    /// position (to the millimetre), 95 % radius and sensors.
    pub identical: usize,
    /// Recorded shots re-derived within [`AGREE_S`] and [`AGREE_M`] (the
    /// identical ones included), with the same sensors.
    pub agree: usize,
    /// Of the agreeing ones, with the same class too.
    pub same_class: usize,
    /// One line per recorded shot that does not agree, re-derived shot the
    /// record lacks, or incident whose machine result differs.
    pub differences: Vec<String>,
}

/// How far a re-derived emission time may be from the recorded one and still
/// agree, seconds: a microsecond, a thousand times below GPS timing error. A
/// long burst is finalised by the server in pieces, and the solver started
/// from a different subset can end a few nanoseconds away (measured: 2 of 12
/// shots of the simulated automatic-fire scene, 1 and 2 ns).
pub const AGREE_S: f64 = 1e-6;

/// How far a re-derived position (and 95 % radius) may be from the recorded
/// one and still agree, metres: the last digit of the millimetre the results
/// are written to.
pub const AGREE_M: f64 = 0.0015;

impl Comparison {
    /// Everything recorded re-derived (within [`AGREE_S`] and [`AGREE_M`]),
    /// and nothing more.
    pub fn all_agree(&self) -> bool {
        self.differences.is_empty() && self.agree == self.recorded
    }
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v.dedup();
    v
}

fn time_of(t: &str) -> Option<model::UtcNanos> {
    model::UtcNanos::parse_rfc3339(t).ok()
}

/// Matches each recorded shot with the re-derived shot at the same time
/// (within [`AGREE_S`]), and each recorded incident's machine result (class,
/// rounds, shooters, automatic) with the re-derived incident holding its
/// first shot. With `whole`, every re-derived incident must be in the record
/// (recordings); otherwise (a stored incident, whose bundle holds the pulses
/// around it) only re-derived shots within the recorded incidents' span or
/// sharing an incident with a recorded shot must be.
pub fn compare(recorded: &[RecIncident], derived: &[RecIncident], whole: bool) -> Comparison {
    let mut c = Comparison {
        recorded: 0,
        identical: 0,
        agree: 0,
        same_class: 0,
        differences: Vec::new(),
    };
    let near = |a: &str, b: &str| match (time_of(a), time_of(b)) {
        (Some(a), Some(b)) => a.seconds_since(b).abs() <= AGREE_S,
        _ => a == b,
    };
    let find = |t: &str| {
        derived
            .iter()
            .enumerate()
            .find_map(|(k, i)| i.shots.iter().find(|s| near(&s.t_utc, t)).map(|s| (k, s)))
    };
    let mut touched = std::collections::BTreeSet::new();
    for shot in recorded.iter().flat_map(|i| &i.shots) {
        c.recorded += 1;
        let Some((k, d)) = find(&shot.t_utc) else {
            c.differences
                .push(format!("shot at {}: not re-derived", shot.t_utc));
            continue;
        };
        touched.insert(k);
        let same_sensors = sorted(&d.sensors) == sorted(&shot.sensors);
        if d.t_utc == shot.t_utc
            && d.x == shot.x
            && d.y == shot.y
            && d.z == shot.z
            && d.err95_m == shot.err95_m
            && same_sensors
        {
            c.identical += 1;
        }
        let agrees = same_sensors
            && (d.x - shot.x).abs() <= AGREE_M
            && (d.y - shot.y).abs() <= AGREE_M
            && (d.z - shot.z).abs() <= AGREE_M
            && (d.err95_m - shot.err95_m).abs() <= AGREE_M.max(0.01);
        if agrees {
            c.agree += 1;
            if d.class == shot.class {
                c.same_class += 1;
            }
        } else {
            c.differences.push(format!(
                "shot at {}: recorded ({}, {}, {}) ±{} m from {} sensors, re-derived at {} ({}, {}, {}) ±{} m from {}",
                shot.t_utc,
                shot.x,
                shot.y,
                shot.z,
                shot.err95_m,
                shot.sensors.len(),
                d.t_utc,
                d.x,
                d.y,
                d.z,
                d.err95_m,
                d.sensors.len()
            ));
        }
    }
    // Re-derived shots the record does not have.
    let times: Vec<model::UtcNanos> = recorded
        .iter()
        .flat_map(|i| &i.shots)
        .filter_map(|s| time_of(&s.t_utc))
        .collect();
    let (lo, hi) = (times.iter().min(), times.iter().max());
    for (k, inc) in derived.iter().enumerate() {
        for s in &inc.shots {
            let Some(t) = time_of(&s.t_utc) else {
                continue;
            };
            let known = times.iter().any(|r| t.seconds_since(*r).abs() <= AGREE_S);
            let in_span = matches!((lo, hi), (Some(lo), Some(hi)) if *lo <= t && t <= *hi);
            if !known && (whole || touched.contains(&k) || in_span) {
                c.differences.push(format!(
                    "re-derived shot at {} is not in the record",
                    s.t_utc
                ));
            }
        }
    }
    // The machine's incident results.
    for inc in recorded {
        let Some((k, _)) = inc.shots.first().and_then(|s| find(&s.t_utc)) else {
            continue;
        };
        let d = &derived[k];
        let (class, rounds, shooters) = inc.machine();
        if (class.as_str(), rounds, shooters, inc.automatic)
            != (d.class.as_str(), d.rounds, d.shooters, d.automatic)
        {
            c.differences.push(format!(
                "incident {}: recorded machine result {class}, {rounds} round(s), {shooters} shooter(s), automatic {}; re-derived {}, {}, {}, {}",
                inc.id, inc.automatic, d.class, d.rounds, d.shooters, d.automatic
            ));
        }
    }
    c
}

/// `shotfix evidence export ID --config F --out DIR`.
pub fn export(config: &Path, id: &str, out: &Path) -> Result<String> {
    Ok(evidence::write_bundle(out, &export_files(config, id)?)?)
}

/// The bundle of stored incident `id` on the database `config` names.
pub fn export_files(config: &Path, id: &str) -> Result<BundleFiles> {
    let cfg = crate::access_cmd::load(config)?;
    let db = cfg.database.open_existing().map_err(|e| anyhow!(e))?;
    Ok(server::evidence::incident_bundle(&db, &cfg, id)?)
}

/// The bundle of a folder `analyze` reads: its recordings byte for byte, the
/// scene that places and times them, and the analysis of record.
pub fn pack_files(path: &Path) -> Result<BundleFiles> {
    let input = formats::read_analyze_input(path)?;
    let (frame, wgs84) = match input.frame {
        Frame::Wgs84 { frame } => (Some(frame), true),
        Frame::Local { anchor } => (anchor, false),
    };
    let mut files = BundleFiles::new();
    let mut audio = Vec::with_capacity(input.clips.len());
    for clip in &input.clips {
        let name = format!("audio/{}.wav", evidence::safe_name(&clip.sensor.0));
        if files.contains_key(&name) {
            bail!(
                "{}: two sensors' recordings would share the name {name}",
                path.display()
            );
        }
        let bytes =
            std::fs::read(&clip.path).with_context(|| format!("{}", clip.path.display()))?;
        files.insert(name.clone(), bytes);
        audio.push(BundleAudio {
            sensor: clip.sensor.0.clone(),
            file: name,
            start_utc: clip.start.to_rfc3339(),
            sample_rate_hz: clip.sample_rate_hz,
            full_scale_db_spl: clip.full_scale_db_spl,
        });
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    files.insert(
        "scene.json".into(),
        evidence::scene_json(&BundleScene {
            name: &name,
            frame,
            wgs84,
            weather: &input.weather,
            sensors: &input.sensors,
            audio: &audio,
            pulses: false,
        }),
    );
    let classifier = crate::classify_cmd::load(None)?;
    let (located, medium, mut out, detected) = crate::analyze_cmd::analyze_folder(path)?;
    crate::classify_cmd::classify_all(&classifier, &located, &detected, &mut out);
    let doc = output::document(&located, &medium, &out);
    files.insert(
        "results.json".into(),
        (serde_json::to_string_pretty(&doc)? + "\n").into_bytes(),
    );
    let meta = PackMeta {
        format: server::evidence::BUNDLE_FORMAT,
        kind: "audio-folder",
        source: &name,
        software: server::doc::software(),
        classifier_sha256: evidence::sha256_hex(classify::SHIPPED_MODEL.as_bytes()),
    };
    files.insert(
        "bundle.json".into(),
        (serde_json::to_string_pretty(&meta)? + "\n").into_bytes(),
    );
    Ok(files)
}

/// `shotfix evidence pack PATH --out DIR`.
pub fn pack(path: &Path, out: &Path) -> Result<String> {
    let files = pack_files(path)?;
    Ok(evidence::write_bundle(out, &files)?)
}

/// What `verify` found.
#[derive(Debug, Serialize)]
pub struct Verdict {
    pub bundle_sha256: String,
    pub kind: String,
    pub files: usize,
    pub sealed: bool,
    pub comparison: Comparison,
    pub history: HistoryCheck,
}

/// `shotfix evidence verify DIR`: the seal, the history entries, then the
/// re-derivation. `Ok(false)` when the history or the result does not check;
/// a broken seal is an error.
pub fn verify(dir: &Path, json: bool) -> Result<bool> {
    let bundle = Bundle::read(dir)?;
    let recorded = bundle.recorded()?;
    let derived = incidents_of(&bundle.rederive()?)?;
    let comparison = compare(&recorded, &derived, !bundle.server());
    let history = bundle.check_history()?;
    let ok = comparison.all_agree() && history.problems.is_empty();
    let verdict = Verdict {
        bundle_sha256: bundle.hash.clone(),
        kind: bundle.meta.kind.clone(),
        files: bundle.files.len(),
        sealed: true,
        comparison,
        history,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&verdict)?);
    } else {
        println!(
            "{}: sealed, {} files, bundle SHA-256 {}",
            dir.display(),
            verdict.files,
            verdict.bundle_sha256
        );
        if bundle.server() {
            let h = &verdict.history;
            println!(
                "history: {} entries recomputed, {} problem(s){}",
                h.entries,
                h.problems.len(),
                if h.redacted > 0 {
                    format!(", {} redacted by retention", h.redacted)
                } else {
                    String::new()
                }
            );
            for p in &h.problems {
                println!("  {p}");
            }
        }
        let c = &verdict.comparison;
        println!(
            "re-derived ({}): {} of {} recorded shots identical, {} within 1 µs and 1 mm, {} with the same class, {} difference(s)",
            if bundle.server() {
                "shotfix locate"
            } else {
                "shotfix analyze"
            },
            c.identical,
            c.recorded,
            c.agree,
            c.same_class,
            c.differences.len()
        );
        for d in &c.differences {
            println!("  {d}");
        }
    }
    Ok(ok)
}
