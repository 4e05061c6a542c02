//! Stage two: the incident, with what only a network can measure.

use dsp::Features;
use model::{Class, Point3};
use serde::{Deserialize, Serialize};

use crate::pulse::PulseModel;
use crate::trees::Boosted;

/// One arrival of a located shot, as the classifier sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrivalEvidence {
    /// Horizontal distance from the located source, m.
    pub range_m: f64,
    /// Direction from the located source to the sensor, radians (any fixed
    /// reference, e.g. counter-clockwise from east).
    pub bearing_rad: f64,
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

impl IncidentEvidence {
    /// Whether any arrival says what the sound was like: a waveform or a
    /// calibrated level. Without either there is only where and when, and the
    /// honest class is `unknown`, not a guess.
    pub fn says_what_it_sounded_like(&self) -> bool {
        self.shots
            .iter()
            .flat_map(|s| &s.arrivals)
            .any(|a| a.features.is_some() || a.level_db_spl.is_some())
    }
}

/// What a sensor's report or audio says about one arrival, besides where it
/// was heard from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Heard {
    pub level_db_spl: Option<f64>,
    pub features: Option<Features>,
    pub snr_db: Option<f64>,
}

/// The evidence of one located shot: its time (seconds after `epoch`), place,
/// height above the sensors that heard it, and each arrival's range, bearing
/// and what was heard (`heard`). `sensor` gives a sensor's position in the
/// shot's frame; an arrival at an unknown sensor has no bearing.
pub fn shot_evidence(
    shot: &model::Shot,
    epoch: model::UtcNanos,
    sensor: impl Fn(&model::SensorId) -> Option<Point3>,
    heard: impl Fn(&model::ShotArrival) -> Heard,
) -> ShotEvidence {
    let heights: Vec<f64> = shot
        .arrivals
        .iter()
        .filter_map(|a| sensor(&a.sensor).map(|p| p.z))
        .collect();
    // A shot always has arrivals at known sensors; were it not so, its height
    // is unknown, not zero.
    let ground = median(heights);
    ShotEvidence {
        t_s: shot.t_emit.seconds_since(epoch),
        position: shot.position,
        height_above_sensors_m: shot.position.z - ground,
        arrivals: shot
            .arrivals
            .iter()
            .map(|a| {
                let h = heard(a);
                ArrivalEvidence {
                    range_m: a.range_m,
                    bearing_rad: sensor(&a.sensor).map_or(f64::NAN, |p| {
                        (p.y - shot.position.y).atan2(p.x - shot.position.x)
                    }),
                    level_db_spl: h.level_db_spl,
                    features: h.features,
                    snr_db: h.snr_db,
                }
            })
            .collect(),
    }
}

/// The incident features, in model order.
pub const INCIDENT_FEATURES: [&str; 11] = [
    "pulse_logit_mean",
    "pulse_logit_nearest",
    "source_level_db",
    "directivity_db",
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

/// Fewest sensors with levels for a shot's [`directivity_db`]: three
/// unknowns (mean level, two harmonic terms) and enough left over that a
/// shadowed sensor or two does not make the pattern.
pub const DIRECTIVITY_MIN_SENSORS: usize = 6;

/// Least spread of the sensors' directions around a source for
/// [`directivity_db`]: the smaller eigenvalue of the covariance of their
/// (cos θ, sin θ). Sensors evenly all round give 0.5, over a half circle
/// 0.095; at 0.08 (about 170° of arc) the harmonic's standard error is about
/// 1.4 times the level scatter over √n, and below it the fit is guessing.
pub const DIRECTIVITY_MIN_SPREAD: f64 = 0.08;

/// How unevenly a source radiates around itself, dB: the amplitude of the
/// first azimuthal harmonic of its back-computed levels, `L(θ) = a + c cos θ +
/// s sin θ` fitted by least squares to `(bearing, level)` pairs. A muzzle
/// blast is 10–20 dB louder ahead of the muzzle than behind (Maher 2007); a
/// firecracker or shell bursts about evenly. Buildings shadowing some sensors
/// add an amplitude of their own, so it is evidence to weigh, not proof.
/// `None` with fewer than [`DIRECTIVITY_MIN_SENSORS`] pairs or sensors spread
/// over less than [`DIRECTIVITY_MIN_SPREAD`].
pub fn directivity_db(pairs: &[(f64, f64)]) -> Option<f64> {
    if pairs.len() < DIRECTIVITY_MIN_SENSORS {
        return None;
    }
    // Sensors on one side of the source leave the harmonic unmeasurable: a
    // fit over a narrow arc turns level noise into tens of dB of "pattern".
    // The spread of the sensors' directions (the smaller eigenvalue of the
    // covariance of (cos θ, sin θ)) must reach DIRECTIVITY_MIN_SPREAD.
    let n = pairs.len() as f64;
    let (mc, ms) = pairs.iter().fold((0.0, 0.0), |(c, s), &(t, _)| {
        (c + t.cos() / n, s + t.sin() / n)
    });
    let mut spread = nalgebra::Matrix2::<f64>::zeros();
    for &(t, _) in pairs {
        let d = nalgebra::Vector2::new(t.cos() - mc, t.sin() - ms);
        spread += d * d.transpose() / n;
    }
    if spread.symmetric_eigenvalues().min() < DIRECTIVITY_MIN_SPREAD {
        return None;
    }
    let mut ata = nalgebra::Matrix3::<f64>::zeros();
    let mut atb = nalgebra::Vector3::<f64>::zeros();
    for &(theta, level) in pairs {
        let row = nalgebra::Vector3::new(1.0, theta.cos(), theta.sin());
        ata += row * row.transpose();
        atb += row * level;
    }
    let x = ata.lu().solve(&atb)?;
    Some(x[1].hypot(x[2]))
}

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
/// one shot, uncalibrated sensors) are NaN, which the trees handle as
/// `trees` says (the branch training sent unknowns down, or both branches
/// weighted: no evidence either way).
pub fn features(e: &IncidentEvidence, pulse: &PulseModel) -> Vec<f64> {
    let mut logits = Vec::new();
    let mut nearest = Vec::new();
    let mut levels = Vec::new();
    let mut directivity = Vec::new();
    let mut with_features = 0usize;
    let mut arrivals = 0usize;
    for shot in &e.shots {
        // (range, log-odds) of the arrivals with features, nearest first.
        let mut heard: Vec<(f64, f64)> = Vec::new();
        let mut shot_levels = Vec::new();
        let mut around = Vec::new();
        for a in &shot.arrivals {
            arrivals += 1;
            if let Some(f) = &a.features {
                with_features += 1;
                let l = pulse.logit(f, a.snr_db.unwrap_or(0.0), a.range_m);
                logits.push(l);
                heard.push((a.range_m, l));
            }
            if let Some(level) = a.level_db_spl {
                let l = source_level_db(level, a.range_m);
                shot_levels.push(l);
                if a.bearing_rad.is_finite() {
                    around.push((a.bearing_rad, l));
                }
            }
        }
        directivity.extend(directivity_db(&around));
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
        median(directivity),
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
    pub model: Boosted,
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

/// P(gunfire) below which a server holds back an incident's first alert.
/// Far below [`PROBABLE_P`]: the class is published either way, but keeping
/// an alert from dispatch needs near-certainty, because a missed shooting costs
/// more than a wasted patrol. At 0.05 the held-out scenes held back under 1 %
/// of real gunfire incidents (docs/classify.md).
pub const HOLD_ALERT_BELOW_P: f64 = 0.05;

impl Decision {
    /// Whether a first alert for this decision is held back (the incident is
    /// still stored and published, marked with its class).
    pub fn holds_alert(&self) -> bool {
        self.p_gunfire < HOLD_ALERT_BELOW_P
    }
}

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
                .enumerate()
                .map(|(k, &(range_m, level))| ArrivalEvidence {
                    range_m,
                    bearing_rad: k as f64,
                    level_db_spl: Some(level),
                    features: None,
                    snr_db: None,
                })
                .collect(),
        }
    }

    fn no_pulse_model() -> PulseModel {
        PulseModel {
            model: crate::Softmax {
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
    fn directivity_finds_a_muzzle_pattern_and_not_an_even_burst() {
        // 12 sensors around; a gun 8 dB louder ahead (θ = 0) than its mean.
        let around = |amp: f64| -> Vec<(f64, f64)> {
            (0..12)
                .map(|k| {
                    let t = k as f64 * std::f64::consts::TAU / 12.0;
                    (t, 150.0 + amp * t.cos())
                })
                .collect()
        };
        assert!((directivity_db(&around(8.0)).unwrap() - 8.0).abs() < 1e-9);
        assert!(directivity_db(&around(0.0)).unwrap() < 1e-9);
        // Too few sensors, or all in one direction: not measurable.
        assert!(directivity_db(&around(8.0)[..5]).is_none());
        let one_way: Vec<(f64, f64)> = (0..8).map(|k| (0.3, 140.0 + k as f64)).collect();
        assert!(directivity_db(&one_way).is_none());
        // A quarter circle of sensors cannot tell a pattern from noise.
        let quarter: Vec<(f64, f64)> = (0..12)
            .map(|k| (k as f64 * 0.13, 150.0 + if k % 2 == 0 { 3.0 } else { -3.0 }))
            .collect();
        assert!(directivity_db(&quarter).is_none());
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
