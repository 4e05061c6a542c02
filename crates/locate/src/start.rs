//! Closed-form starting points for the solver, so that no solution depends on a
//! lucky guess.
//!
//! - [`triple_2d`]: the exact 2-D position and emission time from three arrivals
//!   (zero, one or two solutions), used to generate association hypotheses.
//! - [`linear_least_squares`]: the linearised least-squares solution from four or
//!   more arrivals. Expanding |s_i − x|² = c²(t_i − t₀)² and treating
//!   u = |x|² − c²t₀² as a fourth unknown makes every arrival one linear equation in
//!   (x, y, t₀, u); this is the formulation of Mathias, Leonari and Galati, the
//!   algorithm ShotSpotter found most precise (Tech Note 098, "MLG").
//!
//! Heights enter both as known terms: the shot is taken to be at a given height
//! `z_source`, and each sensor's height difference adds to its range.
//!
//! # References
//! - H. C. Schau and A. Z. Robinson, "Passive source localization employing
//!   intersecting spherical surfaces from time-of-arrival differences", IEEE Trans.
//!   ASSP 35(8), 1987.
//! - Y. T. Chan and K. C. Ho, "A simple and efficient estimator for hyperbolic
//!   location", IEEE Trans. Signal Processing 42(8), 1994.
//! - A. Mathias, M. Leonardi and G. Galati, "An efficient multilateration algorithm",
//!   Tyrrhenian International Workshop on Digital Communications, 2008.

use model::Point3;
use nalgebra::{DMatrix, DVector};

/// An arrival for the closed forms: sensor position and arrival time, seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimedPoint {
    pub position: Point3,
    pub t_s: f64,
}

/// A candidate solution: position (with the assumed height) and emission time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub position: Point3,
    pub t0_s: f64,
}

/// Exact solutions from three arrivals in the horizontal plane, ignoring height
/// differences (they change ranges of hundreds of metres by centimetres to metres).
/// The candidate's height is the mean sensor height; the refinement that follows
/// works in full 3-D.
pub fn triple_2d(
    arrivals: [TimedPoint; 3],
    speed_of_sound_m_s: f64,
) -> impl Iterator<Item = Candidate> {
    let c = speed_of_sound_m_s;
    let [a, b, d] = arrivals;
    let (pb, pd) = (
        [b.position.x - a.position.x, b.position.y - a.position.y],
        [d.position.x - a.position.x, d.position.y - a.position.y],
    );
    let (db, dd) = (c * (b.t_s - a.t_s), c * (d.t_s - a.t_s));
    // p_i · x = (|p_i|² − Δ_i²)/2 − r Δ_i, with x relative to sensor a and r = |x|.
    let det = pb[0] * pd[1] - pb[1] * pd[0];
    let mut out = [None, None];
    let scale = (pb[0].hypot(pb[1]) * pd[0].hypot(pd[1])).max(1e-12);
    if det.abs() > 1e-6 * scale {
        let g = [
            (pb[0] * pb[0] + pb[1] * pb[1] - db * db) / 2.0,
            (pd[0] * pd[0] + pd[1] * pd[1] - dd * dd) / 2.0,
        ];
        let h = [db, dd];
        let inv = |v: [f64; 2]| {
            [
                (pd[1] * v[0] - pb[1] * v[1]) / det,
                (-pd[0] * v[0] + pb[0] * v[1]) / det,
            ]
        };
        let (alpha, beta) = (inv(g), inv(h));
        // x = alpha − r beta and |x|² = r²  ⇒  (|β|² − 1) r² − 2 (α·β) r + |α|² = 0.
        let qa = beta[0] * beta[0] + beta[1] * beta[1] - 1.0;
        let qb = -2.0 * (alpha[0] * beta[0] + alpha[1] * beta[1]);
        let qc = alpha[0] * alpha[0] + alpha[1] * alpha[1];
        let roots: [Option<f64>; 2] = if qa.abs() < 1e-12 {
            [(qb != 0.0).then(|| -qc / qb), None]
        } else {
            let disc = qb * qb - 4.0 * qa * qc;
            if disc < 0.0 {
                [None, None]
            } else {
                let s = disc.sqrt();
                [Some((-qb + s) / (2.0 * qa)), Some((-qb - s) / (2.0 * qa))]
            }
        };
        for (slot, r) in out.iter_mut().zip(roots) {
            let Some(r) =
                r.filter(|r| r.is_finite() && *r >= 0.0 && r + db >= 0.0 && r + dd >= 0.0)
            else {
                continue;
            };
            let z = (a.position.z + b.position.z + d.position.z) / 3.0;
            *slot = Some(Candidate {
                position: Point3::new(
                    a.position.x + alpha[0] - r * beta[0],
                    a.position.y + alpha[1] - r * beta[1],
                    z,
                ),
                t0_s: a.t_s - r / c,
            });
        }
    }
    out.into_iter().flatten()
}

/// The linearised least-squares solution from four or more arrivals, with the
/// source at height `z_source`. `None` when the arrivals are degenerate.
pub fn linear_least_squares(
    arrivals: &[TimedPoint],
    z_source: f64,
    speed_of_sound_m_s: f64,
) -> Option<Candidate> {
    if arrivals.len() < 4 {
        return None;
    }
    let c = speed_of_sound_m_s;
    let n = arrivals.len() as f64;
    // Centre space and time for conditioning.
    let (cx, cy, ct) = arrivals.iter().fold((0.0, 0.0, 0.0), |(x, y, t), a| {
        (x + a.position.x / n, y + a.position.y / n, t + a.t_s / n)
    });
    // Unknowns (x, y, τ = c t₀, u = x² + y² − τ²), all in metres (u in m²):
    // −2 x_i x − 2 y_i y + 2 τ_i τ + u = τ_i² − x_i² − y_i² − (z_i − z_s)².
    let a_mat = DMatrix::from_fn(arrivals.len(), 4, |i, j| {
        let a = &arrivals[i];
        match j {
            0 => -2.0 * (a.position.x - cx),
            1 => -2.0 * (a.position.y - cy),
            2 => 2.0 * c * (a.t_s - ct),
            _ => 1.0,
        }
    });
    let b = DVector::from_fn(arrivals.len(), |i, _| {
        let a = &arrivals[i];
        let (x, y, tau) = (a.position.x - cx, a.position.y - cy, c * (a.t_s - ct));
        tau * tau - x * x - y * y - (a.position.z - z_source).powi(2)
    });
    let svd = a_mat.svd(true, true);
    let max_sv = svd.singular_values.max();
    let sol = svd.solve(&b, 1e-10 * max_sv).ok()?;
    let candidate = Candidate {
        position: Point3::new(sol[0] + cx, sol[1] + cy, z_source),
        t0_s: sol[2] / c + ct,
    };
    (candidate.position.is_finite() && candidate.t0_s.is_finite()).then_some(candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrivals(source: Point3, t0: f64, sensors: &[Point3], c: f64) -> Vec<TimedPoint> {
        sensors
            .iter()
            .map(|&s| TimedPoint {
                position: s,
                t_s: t0 + s.distance(source) / c,
            })
            .collect()
    }

    #[test]
    fn triple_recovers_a_planar_source() {
        let c = 340.0;
        let sensors = [
            Point3::new(0.0, 0.0, 0.0),
            Point3::new(800.0, 100.0, 0.0),
            Point3::new(300.0, 700.0, 0.0),
        ];
        let source = Point3::new(350.0, 260.0, 0.0);
        let a = arrivals(source, 10.0, &sensors, c);
        let found: Vec<_> = triple_2d([a[0], a[1], a[2]], c).collect();
        assert!(
            found
                .iter()
                .any(|k| k.position.distance(source) < 1e-6 && (k.t0_s - 10.0).abs() < 1e-9),
            "{found:?}"
        );
    }

    #[test]
    fn linear_least_squares_is_exact_on_exact_data() {
        let c = 331.3;
        let sensors = [
            Point3::new(0.0, 0.0, 10.0),
            Point3::new(900.0, 50.0, -20.0),
            Point3::new(400.0, 800.0, 30.0),
            Point3::new(-300.0, 500.0, 0.0),
            Point3::new(200.0, -600.0, 15.0),
        ];
        let source = Point3::new(150.0, 120.0, 5.0);
        let a = arrivals(source, 3.0, &sensors, c);
        let k = linear_least_squares(&a, 5.0, c).unwrap();
        assert!(k.position.distance(source) < 1e-6, "{k:?}");
        assert!((k.t0_s - 3.0).abs() < 1e-9);
    }
}
