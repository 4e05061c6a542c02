//! `shotfix analyze PATH [--json]` and `shotfix pulses PATH [--json]`: detect
//! pulses in every sensor's audio, then (for `analyze`) run the locate engine on
//! them exactly as `locate` does on reported pulses.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use dsp::{DetectedPulse, DetectorConfig};
use formats::{AnalyzeInput, AudioClip, LocateInput};
use locate::{LocateConfig, LocateOutput, Medium, PulseSet};
use model::{Pulse, PulseId};
use serde::Serialize;

use crate::output;

/// One clip's detections.
#[derive(Debug, Clone)]
pub struct ClipPulses {
    pub clip: AudioClip,
    pub pulses: Vec<DetectedPulse>,
}

/// Runs the detector on one clip.
pub fn detect_clip(clip: &AudioClip) -> anyhow::Result<Vec<DetectedPulse>> {
    let mut config = DetectorConfig::new(clip.sample_rate_hz);
    config.full_scale_db_spl = clip.full_scale_db_spl;
    dsp::detect(&clip.samples, config).with_context(|| format!("{}", clip.path.display()))
}

/// The id of the `index`-th pulse detected at a sensor: stable for the same audio.
fn pulse_id(clip: &AudioClip, index: usize) -> PulseId {
    PulseId(format!("{}#{}", clip.sensor, index + 1))
}

/// Detected pulses, with the rest of the folder (`input`'s clips already taken
/// into `detected`), as the locate engine's input.
pub fn to_locate_input(input: AnalyzeInput, detected: &[ClipPulses]) -> LocateInput {
    let pulses: Vec<Pulse> = detected
        .iter()
        .flat_map(|c| {
            c.pulses.iter().enumerate().map(|(i, p)| Pulse {
                id: pulse_id(&c.clip, i),
                sensor: c.clip.sensor.clone(),
                t: c.clip.start.offset_by_seconds(p.onset_s),
                snr_db: Some(p.snr_db as f64),
                level_db_spl: p.peak_db_spl.map(f64::from),
            })
        })
        .collect();
    LocateInput {
        frame: input.frame,
        sensors: input.sensors,
        pulses,
        weather: input.weather,
    }
}

/// Reads a folder, detects and locates.
pub fn analyze_folder(
    path: &Path,
) -> anyhow::Result<(LocateInput, Medium, LocateOutput, Vec<ClipPulses>)> {
    let mut input = formats::read_analyze_input(path)?;
    let detected = detect_all(std::mem::take(&mut input.clips))?;
    let located = to_locate_input(input, &detected);
    let medium = Medium::from_weather(&located.weather);
    // Fewer than three sensors with pulses cannot be located; that is a result
    // (no shots), not an error.
    let out = match PulseSet::new(located.sensors.clone(), located.pulses.clone()) {
        Ok(set) => locate::locate(&set, &medium, &LocateConfig::default()),
        Err(locate::InputError::TooFewSensors { .. }) => LocateOutput {
            incidents: Vec::new(),
            unused_pulses: located.pulses.len(),
        },
        Err(e) => return Err(e).with_context(|| format!("{}", path.display())),
    };
    Ok((located, medium, out, detected))
}

/// Runs the detector on every clip; each clip moves into its result, so the
/// audio is never copied.
pub fn detect_all(clips: Vec<AudioClip>) -> anyhow::Result<Vec<ClipPulses>> {
    clips
        .into_iter()
        .map(|clip| {
            Ok(ClipPulses {
                pulses: detect_clip(&clip)?,
                clip,
            })
        })
        .collect()
}

fn write_stdout(text: &str) {
    // A closed pipe (`| head`) is not an error worth reporting.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

pub fn run_analyze(path: &Path, model: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let classifier = crate::classify_cmd::load(model)?;
    let (input, medium, mut out, detected) = analyze_folder(path)?;
    crate::classify_cmd::classify_all(&classifier, &input, &detected, &mut out);
    let doc = output::document(&input, &medium, &out);
    let text = if json {
        serde_json::to_string_pretty(&doc).context("serialising the result")? + "\n"
    } else {
        output::table(&doc)
    };
    write_stdout(&text);
    Ok(())
}

#[derive(Debug, Serialize)]
struct PulsesDoc {
    software: String,
    sensors: Vec<SensorPulses>,
}

#[derive(Debug, Serialize)]
struct SensorPulses {
    sensor: String,
    file: String,
    start_utc: String,
    sample_rate_hz: u32,
    seconds: f64,
    full_scale_db_spl: Option<f64>,
    pulses: Vec<PulseOut>,
}

#[derive(Debug, Serialize)]
struct PulseOut {
    id: String,
    t_utc: String,
    onset_s: f64,
    rank: u32,
    peak_dbfs: f32,
    peak_db_spl: Option<f32>,
    snr_db: f32,
    level_vs_first_db: f32,
    duration_ms: f32,
    rise_time_ms: f32,
    positive_phase_ms: f32,
    decay_20db_ms: f32,
    spectral_centroid_hz: f32,
    spectral_bandwidth_hz: f32,
    band_energy_db: [f32; 8],
    log_mel_db: Vec<Vec<f32>>,
}

pub fn run_pulses(path: &Path, json: bool) -> anyhow::Result<()> {
    let input = formats::read_analyze_input(path)?;
    let detected = detect_all(input.clips)?;
    let sensors: Vec<SensorPulses> = detected
        .iter()
        .map(|c| SensorPulses {
            sensor: c.clip.sensor.to_string(),
            file: c.clip.path.display().to_string(),
            start_utc: c.clip.start.to_rfc3339(),
            sample_rate_hz: c.clip.sample_rate_hz,
            seconds: c.clip.samples.len() as f64 / c.clip.sample_rate_hz as f64,
            full_scale_db_spl: c.clip.full_scale_db_spl,
            pulses: c
                .pulses
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let f = &p.features;
                    PulseOut {
                        id: pulse_id(&c.clip, i).0,
                        t_utc: c.clip.start.offset_by_seconds(p.onset_s).to_rfc3339(),
                        onset_s: p.onset_s,
                        rank: p.rank,
                        peak_dbfs: p.peak_dbfs,
                        peak_db_spl: p.peak_db_spl,
                        snr_db: p.snr_db,
                        level_vs_first_db: p.level_vs_first_db,
                        duration_ms: f.duration_s * 1e3,
                        rise_time_ms: f.rise_time_s * 1e3,
                        positive_phase_ms: f.positive_phase_s * 1e3,
                        decay_20db_ms: f.decay_20db_s * 1e3,
                        spectral_centroid_hz: f.spectral_centroid_hz,
                        spectral_bandwidth_hz: f.spectral_bandwidth_hz,
                        band_energy_db: f.band_energy_db,
                        log_mel_db: f.log_mel.iter().map(|r| r.to_vec()).collect(),
                    }
                })
                .collect(),
        })
        .collect();
    if json {
        let doc = PulsesDoc {
            software: format!("shotfix {}", env!("CARGO_PKG_VERSION")),
            sensors,
        };
        write_stdout(&(serde_json::to_string_pretty(&doc).context("serialising pulses")? + "\n"));
        return Ok(());
    }
    let mut text = String::new();
    for s in &sensors {
        let spl = s.full_scale_db_spl.map_or("uncalibrated".to_string(), |v| {
            format!("full scale {v:.2} dB SPL")
        });
        let _ = writeln!(
            text,
            "{}  {} Hz, {:.2} s from {}, {}  ({} pulses)",
            s.sensor,
            s.sample_rate_hz,
            s.seconds,
            s.start_utc,
            spl,
            s.pulses.len()
        );
        let _ = writeln!(
            text,
            "  {:<32} {:>9} {:>4} {:>7} {:>7} {:>6} {:>7} {:>7} {:>6} {:>6}",
            "t_utc (onset)",
            "in file s",
            "rank",
            "dBFS",
            "dB SPL",
            "SNR",
            "vs 1st",
            "dur ms",
            "pos ms",
            "cen Hz"
        );
        for p in &s.pulses {
            let _ = writeln!(
                text,
                "  {:<32} {:>9.4} {:>4} {:>7.1} {:>7} {:>6.1} {:>7.1} {:>7.1} {:>6.2} {:>6.0}",
                p.t_utc,
                p.onset_s,
                p.rank,
                p.peak_dbfs,
                p.peak_db_spl.map_or("-".to_string(), |v| format!("{v:.1}")),
                p.snr_db,
                p.level_vs_first_db,
                p.duration_ms,
                p.positive_phase_ms,
                p.spectral_centroid_hz
            );
        }
    }
    write_stdout(&text);
    Ok(())
}

/// Detections within this of a reported pulse's time at the same sensor are
/// that pulse, s: reported and detected onsets of one arrival agree to about
/// a millisecond (ShotSpotter's times are truncated to it), while a sensor's
/// distinct pulses are rarely closer than a few milliseconds.
pub const SAME_PULSE_S: f64 = 0.003;

/// What the classifier is given about the located incidents of one input:
/// each arrival's range, bearing, level and (from the detector) waveform
/// features, each shot's time, place and height above the sensors that heard
/// it. The lookups are built once per input, not per incident.
pub struct Evidence<'a> {
    position: HashMap<&'a model::SensorId, model::Point3>,
    /// Reported levels by pulse.
    reported: HashMap<&'a PulseId, f64>,
    /// Detections by the pulse ids `analyze` gives them.
    detected: HashMap<PulseId, &'a DetectedPulse>,
    clips: &'a [ClipPulses],
}

impl<'a> Evidence<'a> {
    pub fn new(input: &'a LocateInput, detected: &'a [ClipPulses]) -> Evidence<'a> {
        Evidence {
            position: input.sensors.iter().map(|s| (&s.id, s.position)).collect(),
            reported: input
                .pulses
                .iter()
                .filter_map(|p| p.level_db_spl.map(|l| (&p.id, l)))
                .collect(),
            detected: detected
                .iter()
                .flat_map(|c| {
                    c.pulses
                        .iter()
                        .enumerate()
                        .map(move |(i, p)| (pulse_id(&c.clip, i), p))
                })
                .collect(),
            clips: detected,
        }
    }

    /// For shots located from the detections themselves (`analyze`).
    pub fn of(&self, incident: &model::Incident) -> classify::IncidentEvidence {
        self.with(incident, |a| self.detected.get(&a.pulse).copied())
    }

    /// For shots located from *reported* pulses, with the audio analysed
    /// separately (a research-layout test with a few sensors' audio): an
    /// arrival's features are those of the detection at its sensor within
    /// [`SAME_PULSE_S`] of its time.
    pub fn of_reports_with_audio(&self, incident: &model::Incident) -> classify::IncidentEvidence {
        self.with(incident, |a| {
            self.clips
                .iter()
                .filter(|c| c.clip.sensor == a.sensor)
                .flat_map(|c| {
                    c.pulses
                        .iter()
                        .map(move |p| (c.clip.start.offset_by_seconds(p.onset_s), p))
                })
                .filter(|(t, _)| t.seconds_since(a.t).abs() <= SAME_PULSE_S)
                .min_by(|x, y| {
                    x.0.seconds_since(a.t)
                        .abs()
                        .total_cmp(&y.0.seconds_since(a.t).abs())
                })
                .map(|(_, p)| p)
        })
    }

    /// From the pulse reports alone, as a server that receives no waveform
    /// sees it: ranges, reported levels, times and places; no features.
    pub fn of_reports(&self, incident: &model::Incident) -> classify::IncidentEvidence {
        self.with(incident, |_| None)
    }

    /// An arrival's level is the detection's when audio was analysed, else the
    /// one its pulse report gave.
    fn with(
        &self,
        incident: &model::Incident,
        find: impl Fn(&model::ShotArrival) -> Option<&'a DetectedPulse>,
    ) -> classify::IncidentEvidence {
        let epoch = incident
            .shots
            .first()
            .map_or(model::UtcNanos(0), |s| s.t_emit);
        let shots = incident
            .shots
            .iter()
            .map(|shot| {
                classify::shot_evidence(
                    shot,
                    epoch,
                    |id| self.position.get(id).copied(),
                    |a| {
                        let p = find(a);
                        classify::Heard {
                            level_db_spl: p
                                .and_then(|p| p.peak_db_spl)
                                .map(f64::from)
                                .or_else(|| self.reported.get(&a.pulse).copied()),
                            features: p.map(|p| p.features),
                            snr_db: p.map(|p| f64::from(p.snr_db)),
                        }
                    },
                )
            })
            .collect();
        classify::IncidentEvidence { shots }
    }
}
