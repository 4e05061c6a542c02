//! Is it gunfire? The incident-level decision, from everything the network
//! knows. No I/O: evidence in, class and calibrated confidence out; models are
//! plain data that the caller loads and saves.
//!
//! Two stages, as an analyst would reason:
//!
//! 1. **Each pulse** ([`pulse`]): does this waveform look like a muzzle blast?
//!    A logistic model over the detector's shape features (rise time, positive
//!    phase, decay, spectrum) gives a log-odds per received pulse. One pulse is
//!    weak evidence: a distant blast is low-passed by the air and smeared by
//!    echoes, and a door slam up close can look sharp.
//! 2. **The incident** ([`incident`]): the pulses' evidence combined with what
//!    only a network can measure: the *source level* back-computed from the
//!    received levels and the located ranges (a firework is often louder than a
//!    gun, a door slam quieter), the *source height* (aerial shells burst tens of
//!    metres up), the *cadence* and its regularity (automatic fire is regular,
//!    a firecracker string is fast and ragged), how many sensors heard each
//!    shot, how many shots there were and how far apart they lie.
//!    Gradient-boosted shallow trees over those give P(gunfire),
//!    P(fireworks), P(other).
//!
//! The pulse stage is logistic: one waveform is weak evidence that adds up,
//! its output is a calibrated log-odds, and its weights can be read and argued
//! about in court. The incident stage is boosted trees ([`trees`]) because
//! some sounds sit *between* others on one feature (a .22 rimfire is louder
//! than a nail gun and quieter than a balloon) and only splits carve such a
//! band out; the trees are shallow, shrunk and penalised so their
//! probabilities stay calibrated, which `shotfix eval classify` measures.
//! [`decide`] turns the probabilities into the published class with
//! documented thresholds.

pub mod incident;
pub mod linear;
pub mod pulse;
pub mod trees;

pub use incident::{
    decide, median, shot_evidence, ArrivalEvidence, Decision, Heard, IncidentEvidence,
    IncidentModel, ShotEvidence, INCIDENT_FEATURES,
};
pub use linear::{Softmax, TrainConfig};
pub use pulse::{PulseModel, PULSE_FEATURES};
pub use trees::{BoostConfig, Boosted};

/// The shipped model's JSON (`models/classifier.json`), as built into the program.
pub const SHIPPED_MODEL: &str = include_str!("../../../models/classifier.json");

/// A trained classifier: both stages, as one file.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Classifier {
    /// Format version of this file.
    pub format: u32,
    /// How it was made (scenes, seeds, counts), for the record.
    pub provenance: String,
    pub pulse: PulseModel,
    pub incident: IncidentModel,
}

/// The current [`Classifier::format`].
pub const FORMAT: u32 = 2;

impl Classifier {
    /// The class and confidence of one incident.
    pub fn classify(&self, evidence: &IncidentEvidence) -> Decision {
        let x = incident::features(evidence, &self.pulse);
        decide(&self.incident.probabilities(&x))
    }

    /// Reads a classifier from its JSON text.
    pub fn from_json(text: &str) -> Result<Classifier, String> {
        let c: Classifier = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if c.format != FORMAT {
            return Err(format!(
                "classifier format {} (this program reads {FORMAT})",
                c.format
            ));
        }
        c.pulse.model.check(PULSE_FEATURES.len(), 2)?;
        c.incident.model.check(INCIDENT_FEATURES.len(), 3)?;
        Ok(c)
    }

    /// The classifier shipped with the program: `shotfix train` with its
    /// defaults (fixed seeds), in `models/classifier.json`.
    pub fn shipped() -> Result<Classifier, String> {
        Classifier::from_json(SHIPPED_MODEL).map_err(|e| format!("the shipped classifier: {e}"))
    }

    /// The model as compact JSON (hundreds of trees; `jq` shows it laid out).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_file_round_trips_and_a_bad_one_is_refused() {
        let zeros = |dim: usize, classes: usize| Softmax {
            mean: vec![0.0; dim],
            scale: vec![1.0; dim],
            weights: vec![vec![0.0; dim]; classes],
            bias: vec![0.0; classes],
        };
        let examples: Vec<(Vec<f64>, usize, f64)> = (0..30)
            .map(|i| (vec![(i % 5) as f64; INCIDENT_FEATURES.len()], i % 3, 1.0))
            .collect();
        let config = BoostConfig {
            rounds: 3,
            ..BoostConfig::default()
        };
        let c = Classifier {
            format: FORMAT,
            provenance: "test".into(),
            pulse: PulseModel {
                model: zeros(PULSE_FEATURES.len(), 2),
            },
            incident: IncidentModel {
                model: Boosted::fit(&examples, 3, config).unwrap(),
            },
        };
        assert_eq!(Classifier::from_json(&c.to_json()).unwrap(), c);
        let mut wrong = c.clone();
        wrong.incident.model.bias.pop();
        assert!(Classifier::from_json(&wrong.to_json()).is_err());
        let mut newer = c;
        newer.format = FORMAT + 1;
        assert!(Classifier::from_json(&newer.to_json()).is_err());
        assert!(Classifier::from_json("{").is_err());
    }
}
