//! Stage two: the incident, with what only a network can measure.

use dsp::Features;
use model::{Class, Point3};
use serde::{Deserialize, Serialize};

use crate::linear::Softmax;
use crate::pulse::PulseModel;

/// One arrival of a located shot, as the classifier sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrivalEvidence {
    /// Horizontal distance from the located source, m.
    pub range_m: f64,
    /// Received peak level, dB SPL, when the sensor is calibrated.
    pub level_db_spl: Option<f64>,
    /// The detector's description of the waveform, when audio was analysed
    /// (reported pulses without features carry none).
    pub features: Option<Features>,
    pub snr_db: Option<f64>,
}

/// One located shot.
#[derive(Debug, Clone, PartialEq)]
pub struct ShotEvidence {
    /// Emission time, seconds on any common clock.
    pub t_s: f64,
    pub position: Point3,
    /// Height of the source above the heights of the sensors that heard it
    /// (their median), m: the local frame's z has no ground level, and
    /// sensors stand on rooftops a few to tens of metres up.
    pub height_above_sensors_m: f64,
    pub arrivals: Vec<ArrivalEvidence>,
}

/// An incident: its shots in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentEvidence {
    pub shots: Vec<ShotEvidence>,
}

/// The incident features, in model order.
pub const INCIDENT_FEATURES: [&str; 10] = [
    "pulse_logit_mean",
    "pulse_logit_nearest",
    "source_level_db",
    "height_above_sensors_m",
    "ln_shots",
    "ln_sensors_per_shot",
    "ln_interval_median_s",
    "interval_cv",
    "ln_spread_m",
    "features_known",
];

/// How many of a shot's nearest arrivals make its "nearest" pulse evidence:
/// three, the fewest that agree on a source, so one odd sensor does not decide.
pub const NEAREST_ARRIVALS: usize = 3;

/// Excess attenuation of an impulse in air beyond spherical spreading, dB/m:
/// atmospheric absorption of a muzzle blast's 0.5–2 kHz band at 20 °C and
/// 50–70 % humidity is 2–10 dB/km (ISO 9613-1); 5 dB/km is the middle. Ground
/// and building losses are not modelled: the back-computed level is a lower
/// bound at long range, which the model learns from.
pub const ABSORPTION_DB_PER_M: f64 = 0.005;

/// The source level of one arrival, dB SPL at 1 m: received level plus
/// spherical spreading and absorption over the range (at least 1 m).
pub fn source_level_db(received_db_spl: f64, range_m: f64) -> f64 {
    let r = range_m.max(1.0);
    received_db_spl + 20.0 * r.log10() + ABSORPTION_DB_PER_M * r
}

/// The median (the mean of the middle two for an even count); NaN for none.
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The incident's feature vector. Features that cannot be measured (no audio,
/// one shot, uncalibrated sensors) are NaN, which the model reads as "no
/// evidence" (the training mean).
pub fn features(e: &IncidentEvidence, pulse: &PulseModel) -> Vec<f64> {
    let mut logits = Vec::new();
    let mut nearest = Vec::new();
    let mut levels = Vec::new();
    let mut with_features = 0usize;
    let mut arrivals = 0usize;
    for shot in &e.shots {
        // (range, log-odds) of the arrivals with features, nearest first.
        let mut heard: Vec<(f64, f64)> = Vec::new();
        let mut shot_levels = Vec::new();
        for a in &shot.arrivals {
            arrivals += 1;
            if let Some(f) = &a.features {
                with_features += 1;
                let l = pulse.logit(f, a.snr_db.unwrap_or(0.0), a.range_m);
                logits.push(l);
                heard.push((a.range_m, l));
            }
            if let Some(level) = a.level_db_spl {
                shot_levels.push(source_level_db(level, a.range_m));
            }
        }
        // Buildings take 10–20 dB off the sensors that do not see the source,
        // and only add to none, so the upper quartile of a shot's
        // back-computed levels (the sensors in the open) is its level.
        if !shot_levels.is_empty() {
            shot_levels.sort_by(f64::total_cmp);
            levels.push(shot_levels[(shot_levels.len() * 3) / 4]);
        }
        // The nearest sensors hear the waveform least altered.
        heard.sort_by(|a, b| a.0.total_cmp(&b.0));
        let near = &heard[..heard.len().min(NEAREST_ARRIVALS)];
        if !near.is_empty() {
            nearest.push(near.iter().map(|h| h.1).sum::<f64>() / near.len() as f64);
        }
    }
    let mean = |v: &[f64]| {
        if v.is_empty() {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    let n = e.shots.len().max(1) as f64;
    let intervals: Vec<f64> = e
        .shots
        .windows(2)
        .map(|w| (w[1].t_s - w[0].t_s).max(0.0))
        .collect();
    let interval_median = median(intervals.clone());
    let interval_cv = if intervals.len() >= 2 {
        let m = mean(&intervals);
        let var = intervals.iter().map(|v| (v - m).powi(2)).sum::<f64>() / intervals.len() as f64;
        if m > 0.0 {
            var.sqrt() / m
        } else {
            f64::NAN
        }
    } else {
        f64::NAN
    };
    let (cx, cy) = (
        e.shots.iter().map(|s| s.position.x).sum::<f64>() / n,
        e.shots.iter().map(|s| s.position.y).sum::<f64>() / n,
    );
    let spread = (e
        .shots
        .iter()
        .map(|s| (s.position.x - cx).powi(2) + (s.position.y - cy).powi(2))
        .sum::<f64>()
        / n)
        .sqrt();
    vec![
        mean(&logits),
        mean(&nearest),
        median(levels),
        median(e.shots.iter().map(|s| s.height_above_sensors_m).collect()),
        n.ln(),
        (arrivals as f64 / n).max(1.0).ln(),
        (interval_median + 0.01).ln(),
        interval_cv,
        (spread + 1.0).ln(),
        if arrivals == 0 {
            0.0
        } else {
            with_features as f64 / arrivals as f64
        },
    ]
}

/// The incident model: P(gunfire), P(fireworks), P(other), in that order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentModel {
    pub model: Softmax,
}

/// Class indices of the incident model.
pub const GUNFIRE: usize = 0;
pub const FIREWORKS: usize = 1;
pub const OTHER: usize = 2;

impl IncidentModel {
    pub fn probabilities(&self, x: &[f64]) -> [f64; 3] {
        let p = self.model.probabilities(x);
        [p[GUNFIRE], p[FIREWORKS], p[OTHER]]
    }
}

/// An incident's published class.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    pub class: Class,
    /// The probability of the published class (of gunfire, for `gunfire`
    /// and `probable_gunfire`).
    pub confidence: f64,
    /// P(gunfire), as the model gives it.
    pub p_gunfire: f64,
}

/// P(gunfire) at and above which an incident is published as `gunfire`.
/// Dispatch acts on it; at 0.8 four in five such calls are gunfire when the
/// model is calibrated, the level reviewers asked of a confirmed alert.
pub const GUNFIRE_P: f64 = 0.8;

/// P(gunfire) at and above which an incident is `probable_gunfire`: more
/// likely gunfire than not. It is still alerted (a missed shooting costs more
/// than a wasted patrol), marked for review.
pub const PROBABLE_P: f64 = 0.5;

/// The published class from the incident model's probabilities.
pub fn decide(p: &[f64; 3]) -> Decision {
    let p_gunfire = p[GUNFIRE];
    let (class, confidence) = if p_gunfire >= GUNFIRE_P {
        (Class::Gunfire, p_gunfire)
    } else if p_gunfire >= PROBABLE_P {
        (Class::ProbableGunfire, p_gunfire)
    } else if p[FIREWORKS] >= p[OTHER] {
        (Class::Fireworks, p[FIREWORKS])
    } else {
        (Class::Other, p[OTHER])
    };
    Decision {
        class,
        confidence,
        p_gunfire,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shot(t_s: f64, x: f64, height: f64, levels: &[(f64, f64)]) -> ShotEvidence {
        ShotEvidence {
            t_s,
            position: Point3::new(x, 0.0, height),
            height_above_sensors_m: height,
            arrivals: levels
                .iter()
                .map(|&(range_m, level)| ArrivalEvidence {
                    range_m,
                    level_db_spl: Some(level),
                    features: None,
                    snr_db: None,
                })
                .collect(),
        }
    }

    fn no_pulse_model() -> PulseModel {
        PulseModel {
            model: Softmax {
                mean: vec![0.0; crate::PULSE_FEATURES.len()],
                scale: vec![1.0; crate::PULSE_FEATURES.len()],
                weights: vec![vec![0.0; crate::PULSE_FEATURES.len()]; 2],
                bias: vec![0.0; 2],
            },
        }
    }

    #[test]
    fn source_level_undoes_spreading_and_absorption() {
        // 150 dB at 1 m heard at 200 m: −46.0 dB of spreading, −1 dB absorbed.
        let received = 150.0 - 20.0 * 200f64.log10() - ABSORPTION_DB_PER_M * 200.0;
        assert!((source_level_db(received, 200.0) - 150.0).abs() < 1e-9);
    }

    #[test]
    fn incident_features_measure_level_cadence_height_and_spread() {
        // Three rounds 0.1 s apart from one place, 60 m up; the sensors in
        // the open (upper quartile) say 150 dB, a shadowed one 20 dB less.
        let level = |r: f64| 150.0 - 20.0 * r.log10() - ABSORPTION_DB_PER_M * r;
        let arrivals = [
            (100.0, level(100.0)),
            (300.0, level(300.0)),
            (500.0, level(500.0)),
            (400.0, level(400.0) - 20.0),
        ];
        let e = IncidentEvidence {
            shots: (0..3)
                .map(|k| shot(0.1 * k as f64, 0.0, 60.0, &arrivals))
                .collect(),
        };
        let x = features(&e, &no_pulse_model());
        let get = |name: &str| x[INCIDENT_FEATURES.iter().position(|n| *n == name).unwrap()];
        assert!((get("source_level_db") - 150.0).abs() < 1e-6);
        assert!((get("height_above_sensors_m") - 60.0).abs() < 1e-9);
        assert!((get("ln_shots") - 3f64.ln()).abs() < 1e-12);
        assert!((get("ln_interval_median_s") - (0.1f64 + 0.01).ln()).abs() < 1e-9);
        assert!(get("interval_cv") < 1e-6, "a regular cadence");
        assert!((get("ln_spread_m") - 0.0).abs() < 1e-12, "one place");
        // No audio: the waveform features are unknown, not zero.
        assert!(get("pulse_logit_mean").is_nan());
        assert_eq!(get("features_known"), 0.0);
    }

    #[test]
    fn the_decision_follows_the_documented_thresholds() {
        assert_eq!(decide(&[0.9, 0.05, 0.05]).class, Class::Gunfire);
        assert_eq!(decide(&[0.6, 0.3, 0.1]).class, Class::ProbableGunfire);
        let d = decide(&[0.3, 0.5, 0.2]);
        assert_eq!((d.class, d.confidence), (Class::Fireworks, 0.5));
        assert_eq!(decide(&[0.3, 0.2, 0.5]).class, Class::Other);
    }
}
