//! From a solution's covariance to the radius of its 95 % horizontal confidence
//! region (`err95_m`).
//!
//! The horizontal error is taken as bivariate normal with covariance Σ. The
//! probability that it falls within a circle of radius r is, in polar coordinates,
//!
//! P(r) = 1/(2π σ₁σ₂) ∫₀^{2π} (1 − exp(−a(θ) r²/2)) / a(θ) dθ,
//! a(θ) = cos²θ/σ₁² + sin²θ/σ₂²,
//!
//! with σ₁, σ₂ the square roots of Σ's eigenvalues. We solve P(r) = 0.95 by
//! bisection, so a long thin ellipse gets its true circle, not a bound.
//!
//! When the arrival-time scatter was estimated from the residuals of the same fit
//! (ν degrees of freedom), the normal quantile is replaced by the exact one for an
//! estimated variance: the 2-D region scales with 2·F(2, ν) instead of χ²(2), and
//! F(2, ν)'s quantile has the closed form (ν/2)((1 − p)^(−2/ν) − 1).
//!
//! # References
//! - K.-R. Koch, "Parameter Estimation and Hypothesis Testing in Linear Models",
//!   Springer 1999, §3.7 (confidence regions with estimated variance factor).

/// The coverage probability of `err95_m`.
pub const COVERAGE: f64 = 0.95;

/// The χ²(2) quantile at 0.95: −2 ln(0.05).
fn chi2_2_quantile(p: f64) -> f64 {
    -2.0 * (1.0 - p).ln()
}

/// 2 × the quantile of F(2, ν) at `p`; tends to χ²(2) as ν grows.
fn two_f_quantile(p: f64, dof: f64) -> f64 {
    dof * ((1.0 - p).powf(-2.0 / dof) - 1.0)
}

/// How much to inflate a covariance whose variance factor was estimated with `dof`
/// degrees of freedom (`None`: the variance was known beforehand).
pub fn variance_inflation(dof: Option<usize>) -> f64 {
    match dof {
        Some(d) if d >= 1 => two_f_quantile(COVERAGE, d as f64) / chi2_2_quantile(COVERAGE),
        _ => 1.0,
    }
}

/// The radius of the circle that holds `coverage` of a zero-mean bivariate normal
/// with the 2×2 covariance `cov` (m²).
pub fn circular_radius(cov: [[f64; 2]; 2], coverage: f64) -> f64 {
    let (a, b, d) = (cov[0][0], cov[0][1], cov[1][1]);
    let mean = (a + d) / 2.0;
    let spread = (((a - d) / 2.0).powi(2) + b * b).sqrt();
    let (l1, l2) = ((mean + spread).max(0.0), (mean - spread).max(0.0));
    if !(l1.is_finite() && l2.is_finite()) {
        return f64::INFINITY;
    }
    if l1 == 0.0 {
        return 0.0;
    }
    // A needle-thin ellipse: the 1-D normal quantile along its long axis. With
    // σ₂/σ₁ below 1 % the short axis changes the radius by under 1 %, and the
    // angular integral below would need ever more points to resolve it.
    if l2 <= l1 * 1e-4 {
        return l1.sqrt() * normal_two_sided_quantile(coverage) + l2.sqrt();
    }
    let (s1, s2) = (l1.sqrt(), l2.sqrt());
    // Symmetric in θ over the four quadrants: integrate one with Simpson's rule.
    // The angular factor does not depend on r, so it is tabulated once.
    const N: usize = 256;
    let h = std::f64::consts::FRAC_PI_2 / N as f64;
    let mut at = [0.0f64; N + 1];
    let mut simpson = [0.0f64; N + 1];
    for (i, (a, w)) in at.iter_mut().zip(simpson.iter_mut()).enumerate() {
        let (sin, cos) = (i as f64 * h).sin_cos();
        *a = cos * cos / l1 + sin * sin / l2;
        *w = if i == 0 || i == N {
            1.0
        } else if i % 2 == 1 {
            4.0
        } else {
            2.0
        };
    }
    let norm = 4.0 * h / 3.0 / (2.0 * std::f64::consts::PI * s1 * s2);
    let prob = |r: f64| {
        let sum: f64 = at
            .iter()
            .zip(&simpson)
            .map(|(&a, &w)| w * (1.0 - (-a * r * r / 2.0).exp()) / a)
            .sum();
        sum * norm
    };
    // P(4 σ₁) ≥ P(|N(0,1)| < 4) > 0.9999, so [0, 4 σ₁] always brackets the root;
    // the doubling is a guard against rounding, bounded like every loop here.
    let (mut lo, mut hi) = (0.0, s1 * 4.0);
    for _ in 0..8 {
        if prob(hi) >= coverage {
            break;
        }
        hi *= 2.0;
    }
    // 32 halvings of [0, 4 σ₁]: a relative precision near 1e-9, far below any
    // other error in the radius.
    for _ in 0..32 {
        let mid = (lo + hi) / 2.0;
        if prob(mid) < coverage {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo + hi) / 2.0
}

/// The two-sided standard normal quantile: P(|N(0,1)| < q) = p, by bisection on erf.
fn normal_two_sided_quantile(p: f64) -> f64 {
    let (mut lo, mut hi) = (0.0f64, 10.0f64);
    for _ in 0..80 {
        let mid = (lo + hi) / 2.0;
        if erf(mid / std::f64::consts::SQRT_2) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo + hi) / 2.0
}

/// The error function, Abramowitz & Stegun 7.1.26 refined: |error| < 1.5e-7.
fn erf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let y = 1.0 - poly * (-x * x).exp();
    if x >= 0.0 {
        y
    } else {
        -y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn circular_case_matches_rayleigh() {
        // For Σ = σ² I the radius is σ √(−2 ln 0.05) = 2.4477 σ.
        let r = circular_radius([[4.0, 0.0], [0.0, 4.0]], 0.95);
        assert!((r - 2.0 * 2.447_746_83).abs() < 1e-4, "{r}");
    }

    #[test]
    fn thin_ellipse_tends_to_the_1d_quantile() {
        let r = circular_radius([[9.0, 0.0], [0.0, 1e-8]], 0.95);
        assert!((r - 3.0 * 1.959_964).abs() < 1e-3, "{r}");
        let degenerate = circular_radius([[9.0, 0.0], [0.0, 0.0]], 0.95);
        assert!((degenerate - 3.0 * 1.959_964).abs() < 1e-4, "{degenerate}");
        // Just above the switch to the 1-D formula the integral agrees with it.
        let integral = circular_radius([[9.0, 0.0], [0.0, 9.0 * 2e-4]], 0.95);
        let needle = circular_radius([[9.0, 0.0], [0.0, 9.0 * 0.9e-4]], 0.95);
        assert!(
            (integral - needle).abs() / needle < 0.01,
            "{integral} vs {needle}"
        );
    }

    #[test]
    fn rotation_does_not_matter() {
        let (s1, s2, th) = (5.0f64, 1.5f64, 0.7f64);
        let (c, s) = (th.cos(), th.sin());
        let cov = [
            [
                c * c * s1 * s1 + s * s * s2 * s2,
                c * s * (s1 * s1 - s2 * s2),
            ],
            [
                c * s * (s1 * s1 - s2 * s2),
                s * s * s1 * s1 + c * c * s2 * s2,
            ],
        ];
        let a = circular_radius(cov, 0.95);
        let b = circular_radius([[s1 * s1, 0.0], [0.0, s2 * s2]], 0.95);
        assert!((a - b).abs() < 1e-9 && a > 1.96 * s1 && a < 2.4478 * s1);
    }

    #[test]
    fn inflation_is_one_with_many_degrees_of_freedom() {
        assert!((variance_inflation(None) - 1.0).abs() < 1e-12);
        assert!((variance_inflation(Some(100_000)) - 1.0).abs() < 1e-3);
        // F(2, 1) at 0.95 is 199.5, so 2 F = 399: very wide with one degree of freedom.
        assert!((variance_inflation(Some(1)) * chi2_2_quantile(0.95) - 399.0).abs() < 1e-6);
    }
}
