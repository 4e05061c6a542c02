//! Multinomial logistic regression (softmax), trained by full-batch gradient
//! descent with L2 shrinkage on standardised features: deterministic (no
//! random start, no sampling), so the same examples always give the same file.

use serde::{Deserialize, Serialize};

/// A softmax model: class scores `w_k · z + b_k` of the standardised features
/// `z = (x − mean) / scale`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Softmax {
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
    /// One row per class.
    pub weights: Vec<Vec<f64>>,
    pub bias: Vec<f64>,
}

/// How to fit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainConfig {
    /// L2 penalty on the weights (not the biases), per example.
    pub l2: f64,
    pub iterations: usize,
    pub learning_rate: f64,
}

impl Default for TrainConfig {
    fn default() -> TrainConfig {
        // A weak penalty: enough to keep separable classes from sending the
        // weights (and the confidences) to infinity, which would ruin calibration.
        TrainConfig {
            l2: 1e-3,
            iterations: 3000,
            learning_rate: 0.5,
        }
    }
}

/// Checks `(features, class, weight)` training examples: some, all of one
/// length, known classes, finite non-negative weights with a positive sum, no
/// infinite feature (NaN is allowed: not measurable). Gives the length and the
/// total weight.
pub(crate) fn check_examples(
    examples: &[(Vec<f64>, usize, f64)],
    classes: usize,
) -> Result<(usize, f64), String> {
    let Some(first) = examples.first() else {
        return Err("no training examples".into());
    };
    let dim = first.0.len();
    if classes < 2
        || examples.iter().any(|(x, c, w)| {
            x.len() != dim
                || *c >= classes
                || !w.is_finite()
                || *w < 0.0
                || x.iter().any(|v| v.is_infinite())
        })
    {
        return Err(
            "training examples of mixed length, unknown class, bad weight or infinite values"
                .into(),
        );
    }
    let total: f64 = examples.iter().map(|e| e.2).sum();
    if total <= 0.0 {
        return Err("training examples have no weight".into());
    }
    Ok((dim, total))
}

impl Softmax {
    /// Fits a model with `classes` classes to `(features, class)` examples,
    /// each weighted (so that rare classes can count as much as common ones).
    pub fn fit(
        examples: &[(Vec<f64>, usize, f64)],
        classes: usize,
        config: TrainConfig,
    ) -> Result<Softmax, String> {
        let (dim, total_w) = check_examples(examples, classes)?;
        // Means and spreads over the known values (NaN: not measurable for
        // that example), each weighted; an unknown value is then taken at the
        // mean, in training exactly as in use ([`Softmax::probabilities`]).
        let mut mean = vec![0.0; dim];
        let mut known_w = vec![0.0; dim];
        for (x, _, w) in examples {
            for ((m, k), v) in mean.iter_mut().zip(&mut known_w).zip(x) {
                if v.is_finite() {
                    *m += w * v;
                    *k += w;
                }
            }
        }
        for (m, k) in mean.iter_mut().zip(&known_w) {
            *m = if *k > 0.0 { *m / k } else { 0.0 };
        }
        let filled: Vec<Vec<f64>> = examples
            .iter()
            .map(|(x, _, _)| {
                x.iter()
                    .zip(&mean)
                    .map(|(v, m)| if v.is_finite() { *v } else { *m })
                    .collect()
            })
            .collect();
        let mut scale = vec![0.0; dim];
        for (x, (_, _, w)) in filled.iter().zip(examples) {
            for ((s, v), m) in scale.iter_mut().zip(x).zip(&mean) {
                *s += w * (v - m).powi(2) / total_w;
            }
        }
        for s in &mut scale {
            // A constant feature carries nothing; scale 1 keeps it harmless.
            *s = if *s > 1e-12 { s.sqrt() } else { 1.0 };
        }
        let mut model = Softmax {
            mean,
            scale,
            weights: vec![vec![0.0; dim]; classes],
            bias: vec![0.0; classes],
        };
        let z: Vec<Vec<f64>> = filled.iter().map(|x| model.standardise(x)).collect();
        for _ in 0..config.iterations {
            let mut grad_w = vec![vec![0.0; dim]; classes];
            let mut grad_b = vec![0.0; classes];
            for (zi, (_, c, w)) in z.iter().zip(examples) {
                let p = model.softmax_of(zi);
                for k in 0..classes {
                    let g = w * (p[k] - f64::from(u8::from(k == *c))) / total_w;
                    grad_b[k] += g;
                    for (gw, v) in grad_w[k].iter_mut().zip(zi) {
                        *gw += g * v;
                    }
                }
            }
            for k in 0..classes {
                model.bias[k] -= config.learning_rate * grad_b[k];
                for (wk, g) in model.weights[k].iter_mut().zip(&grad_w[k]) {
                    *wk -= config.learning_rate * (g + config.l2 * *wk);
                }
            }
        }
        Ok(model)
    }

    fn standardise(&self, x: &[f64]) -> Vec<f64> {
        x.iter()
            .zip(&self.mean)
            .zip(&self.scale)
            .map(|((v, m), s)| (v - m) / s)
            .collect()
    }

    fn softmax_of(&self, z: &[f64]) -> Vec<f64> {
        let scores: Vec<f64> = self
            .weights
            .iter()
            .zip(&self.bias)
            .map(|(w, b)| b + w.iter().zip(z).map(|(a, v)| a * v).sum::<f64>())
            .collect();
        let top = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = scores.iter().map(|s| (s - top).exp()).collect();
        let sum: f64 = e.iter().sum();
        e.iter().map(|v| v / sum).collect()
    }

    /// Class probabilities of raw features `x`. Non-finite features are taken
    /// at the training mean (no evidence either way).
    pub fn probabilities(&self, x: &[f64]) -> Vec<f64> {
        debug_assert_eq!(x.len(), self.mean.len(), "feature vector length");
        let x: Vec<f64> = x
            .iter()
            .zip(&self.mean)
            .map(|(v, m)| if v.is_finite() { *v } else { *m })
            .collect();
        self.softmax_of(&self.standardise(&x))
    }

    /// Checks the shape after loading a file: `dim` features, `classes` classes,
    /// all finite, scales positive.
    pub fn check(&self, dim: usize, classes: usize) -> Result<(), String> {
        let ok = self.mean.len() == dim
            && self.scale.len() == dim
            && self.weights.len() == classes
            && self.bias.len() == classes
            && self.weights.iter().all(|w| w.len() == dim)
            && self.scale.iter().all(|s| s.is_finite() && *s > 0.0)
            && self
                .mean
                .iter()
                .chain(self.weights.iter().flatten())
                .chain(&self.bias)
                .all(|v| v.is_finite());
        if ok {
            Ok(())
        } else {
            Err(format!(
                "model shape or values wrong (expected {dim} features, {classes} classes, finite values)"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separates_two_gaussian_classes_with_calibrated_probabilities() {
        use rand::SeedableRng;
        use rand_distr::{Distribution, Normal};
        // Class 0 around x = −1, class 1 around x = +1, unit-variance noise.
        // The Bayes posterior is logistic with slope 2:
        // P(1 | x = 0.5) = 1 / (1 + e^-1) = 0.731.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let noise = Normal::new(0.0, 1.0).unwrap();
        let mut examples = Vec::new();
        for _ in 0..1000 {
            examples.push((vec![-1.0 + noise.sample(&mut rng)], 0, 1.0));
            examples.push((vec![1.0 + noise.sample(&mut rng)], 1, 1.0));
        }
        let m = Softmax::fit(&examples, 2, TrainConfig::default()).unwrap();
        let p = m.probabilities(&[0.5])[1];
        assert!((p - 0.731).abs() < 0.05, "{p}");
        assert!(m.probabilities(&[-3.0])[0] > 0.99);
        // Unknown evidence sits at the training mean: no opinion.
        let q = m.probabilities(&[f64::NAN])[1];
        assert!((q - 0.5).abs() < 0.05, "{q}");
    }

    #[test]
    fn unknown_training_values_are_taken_at_the_mean() {
        // The second feature is unknown for half the examples; the model
        // still learns the first, and unknown means "no evidence" in use.
        let mut examples = Vec::new();
        for i in 0..200 {
            let v = if i % 2 == 0 { f64::NAN } else { 1.0 };
            examples.push((vec![-1.0, v], 0, 1.0));
            examples.push((vec![1.0, v], 1, 1.0));
        }
        let m = Softmax::fit(&examples, 2, TrainConfig::default()).unwrap();
        assert!((m.mean[1] - 1.0).abs() < 1e-12, "{:?}", m.mean);
        assert!(m.probabilities(&[1.0, f64::NAN])[1] > 0.9);
    }

    #[test]
    fn refuses_bad_examples() {
        assert!(Softmax::fit(&[], 2, TrainConfig::default()).is_err());
        assert!(Softmax::fit(&[(vec![1.0], 3, 1.0)], 2, TrainConfig::default()).is_err());
        assert!(Softmax::fit(&[(vec![f64::INFINITY], 0, 1.0)], 2, TrainConfig::default()).is_err());
    }
}
