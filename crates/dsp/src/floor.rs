//! The adaptive noise floor: a running median of the short-term energy.
//!
//! A median ignores the few loud moments (the pulses themselves) that would drag
//! a mean up. It is tracked on a logarithmic scale by a stochastic quantile
//! update: each sample moves the estimate a fixed step up if the energy is above
//! it and the same step down if below, so it settles where half the samples lie
//! on each side. The step sets how fast the floor follows a change in the
//! background: `ln(10)·(dB per time constant)/10` spread over the time constant.
//!
//! Reference: C. Chen, D. Lambert, J. Pinheiro, "Incremental quantile estimation
//! for massive tracking", KDD 2000 (the stochastic-approximation quantile).

/// A running median of positive values on a log scale.
#[derive(Debug, Clone)]
pub struct QuantileTracker {
    log_value: f64,
    step: f64,
    started: bool,
}

impl QuantileTracker {
    /// Follows a change in the background by `db_per_tau` decibels every
    /// `tau_samples` samples.
    pub fn new(tau_samples: usize, db_per_tau: f64) -> QuantileTracker {
        QuantileTracker {
            log_value: 0.0,
            step: db_per_tau * std::f64::consts::LN_10 / 10.0 / tau_samples.max(1) as f64,
            started: false,
        }
    }

    /// Feeds one energy value (linear, > 0).
    pub fn update(&mut self, energy: f64) {
        let v = energy.max(f64::MIN_POSITIVE).ln();
        if !self.started {
            self.log_value = v;
            self.started = true;
        } else if v > self.log_value {
            self.log_value += self.step;
        } else if v < self.log_value {
            self.log_value -= self.step;
        }
    }

    /// The current median, linear.
    pub fn value(&self) -> f64 {
        self.log_value.exp()
    }

    pub fn is_started(&self) -> bool {
        self.started
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn settles_on_the_median_and_ignores_rare_bursts() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut q = QuantileTracker::new(1_000, 10.0);
        for i in 0..200_000 {
            // Uniform on [1, 3] (median 2), with a 1000× burst 1 % of the time.
            let mut v = 1.0 + 2.0 * rng.gen::<f64>();
            if i % 100 == 0 {
                v *= 1_000.0;
            }
            q.update(v);
        }
        assert!((q.value() - 2.0).abs() < 0.1, "{}", q.value());
    }
}
