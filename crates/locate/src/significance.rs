//! Is a consistent pulse set a shot, or a chance alignment of echoes and noise?
//!
//! With three free parameters (x, y, t₀) any three pulses at three sensors fit a
//! source exactly, and with a 40 ms tolerance a busy sensor often has *some* pulse
//! near any predicted time. So a shot's support is compared with what chance
//! alone would give:
//!
//! - Null hypothesis: no source; each sensor s in range shows pulses at its own
//!   local rate λ_s (counted in the data around the predicted arrival, echoes of
//!   other shots included), so it has a pulse within ±w of any prediction with
//!   probability p_s = 1 − exp(−2 λ_s w). For a supporting sensor w is how well its
//!   pulse actually fits, |residual|, floored at the scatter of real urban arrivals
//!   (`prior_arrival_sigma_s`, 5 ms) so that a lucky exact fit proves no more than a
//!   typical real one; for a silent sensor w is the whole tolerance.
//! - Three of the k supporting sensors define the hypothesis and prove nothing;
//!   conservatively, those are taken to be the three least likely to match by
//!   chance. The other k − 3 matches are confirmations.
//! - The chance of at least k − 3 confirmations among the remaining sensors in
//!   range is a Poisson-binomial tail, computed exactly.
//! - The search tried many hypotheses (`trials`); the expected number of chance
//!   shots this well supported is trials × tail (a Bonferroni bound).
//!
//! A shot is accepted when that expected number is below the false-alarm budget
//! ([`FALSE_ALARM_BUDGET`]). The test adapts to the environment: in a quiet
//! network four or five sensors suffice, while in a burst of echoes a chance
//! alignment must be beaten by many more.
//!
//! # References
//! - S. M. Kay, "Fundamentals of Statistical Signal Processing, Vol. II: Detection
//!   Theory", Prentice Hall 1998 (Neyman–Pearson detection with a false-alarm budget).
//! - Y. H. Wang, "On the number of successes in independent trials", Statistica
//!   Sinica 3, 1993 (the Poisson-binomial distribution).

/// Expected chance shots allowed per search, with the look-elsewhere correction:
/// at most one false shot per thousand searches over a busy window.
pub const FALSE_ALARM_BUDGET: f64 = 1e-3;

/// Half-width, seconds, of the window in which a sensor's pulse rate is counted.
/// Long enough to hold a shot's echo tail (1–2 s in Tech Note 098 Fig. 2) and the
/// next shots of a burst, short enough to follow a changing noise environment.
pub const RATE_WINDOW_S: f64 = 5.0;

/// P(at least `k` successes) in independent trials with probabilities `p`.
pub fn poisson_binomial_tail(p: &[f64], k: usize) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > p.len() {
        return 0.0;
    }
    // dist[j] = P(exactly j successes so far), for j < k; `tail` collects ≥ k.
    let mut dist = vec![0.0; k];
    dist[0] = 1.0;
    let mut tail = 0.0;
    for &pi in p {
        let pi = pi.clamp(0.0, 1.0);
        tail += dist[k - 1] * pi;
        for j in (1..k).rev() {
            dist[j] = dist[j] * (1.0 - pi) + dist[j - 1] * pi;
        }
        dist[0] *= 1.0 - pi;
    }
    tail
}

/// The expected number of chance shots as well supported as this one.
///
/// `p_supporting`: chance-match probabilities of the sensors that support the shot;
/// `p_silent`: those of the other sensors in range; `trials`: hypotheses tried.
pub fn expected_false_shots(p_supporting: &[f64], p_silent: &[f64], trials: usize) -> f64 {
    if p_supporting.len() < 3 {
        return f64::INFINITY;
    }
    let mut supporting = p_supporting.to_vec();
    supporting.sort_by(f64::total_cmp);
    // Drop the three least likely to match by chance: they defined the hypothesis.
    let confirming = &supporting[3..];
    let others: Vec<f64> = confirming.iter().chain(p_silent).copied().collect();
    trials.max(1) as f64 * poisson_binomial_tail(&others, confirming.len())
}

/// Chance-match probability for a sensor with `rate_hz` pulses per second and a
/// window of ±`tolerance_s`.
pub fn chance_match(rate_hz: f64, tolerance_s: f64) -> f64 {
    1.0 - (-2.0 * rate_hz * tolerance_s).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_matches_the_binomial() {
        // Five trials at 0.5: P(≥ 3) = 16/32.
        assert!((poisson_binomial_tail(&[0.5; 5], 3) - 0.5).abs() < 1e-12);
        // P(≥ 1) = 1 − Π(1 − p).
        let p = [0.1, 0.2, 0.3];
        assert!((poisson_binomial_tail(&p, 1) - (1.0 - 0.9 * 0.8 * 0.7)).abs() < 1e-12);
        assert_eq!(poisson_binomial_tail(&p, 4), 0.0);
        assert_eq!(poisson_binomial_tail(&p, 0), 1.0);
    }

    #[test]
    fn many_confirmations_in_a_quiet_network_are_significant() {
        let quiet = chance_match(0.05, 0.04);
        let e = expected_false_shots(&[quiet; 6], &[quiet; 10], 50);
        assert!(e < FALSE_ALARM_BUDGET, "{e}");
    }

    #[test]
    fn a_few_matches_amid_echoes_are_not() {
        let busy = chance_match(1.5, 0.04);
        let e = expected_false_shots(&[busy; 6], &[busy; 20], 5000);
        assert!(e > 1.0, "{e}");
    }
}
