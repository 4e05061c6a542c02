//! Emission time and 3-D position from arrival times: a robust, weighted
//! Levenberg–Marquardt fit with a covariance and `err95_m`.
//!
//! The model: arrival i at sensor s_i is t_i = t₀ + T(x, s_i) + e_i, with T the
//! travel time through the [`Medium`] (still or windy). Unknowns: x, y, z, t₀.
//!
//! - Height. Sensor networks are nearly planar, so the arrivals barely fix the
//!   shot's height; a Gaussian prior ties it to the height of the nearest sensors
//!   (`height_prior_sigma_m`), which keeps the horizontal answer stable while still
//!   solving in 3-D with every sensor's true height.
//! - Robustness. Urban first arrivals are often diffracted and late by a few
//!   metres. Iteratively reweighted least squares with Huber weights (k = 1.345 σ,
//!   95 % efficient for normal errors) and σ from the median absolute deviation
//!   keeps one bad arrival from pulling the solution.
//! - Start. Every fit starts from the closed-form linear solution
//!   ([`crate::start::linear_least_squares`]) and from any hints given; the best
//!   end point by robust cost wins, so nothing depends on a lucky guess.
//! - Uncertainty. The arrival-time scatter is estimated from the weighted
//!   residuals (with a floor of the timestamp resolution); the covariance is the
//!   inverse of the Gauss–Newton information at the solution, and `err95_m` its
//!   exact 95 % circle, widened for an estimated variance ([`crate::uncertainty`]).
//!
//! # References
//! - K. Levenberg (1944), D. W. Marquardt (1963): damped least squares.
//! - P. J. Huber, "Robust Statistics", Wiley 1981 (the Huber weight and k = 1.345).
//! - Calhoun et al., ShotSpotter Tech Note 098 (2020) §II.E: planar arrays and height.

use model::Point3;
use nalgebra::{Matrix4, Vector4};

use crate::config::LocateConfig;
use crate::medium::Medium;
use crate::start::{self, Candidate, TimedPoint};
use crate::uncertainty;

/// Why a set of arrivals cannot be solved.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SolveError {
    #[error("{count} arrival(s) from distinct sensors: a solution needs at least 3")]
    TooFewArrivals { count: usize },
    #[error("arrival {index}: time or position is not finite")]
    NonFinite { index: usize },
}

/// Arrival times at distinct sensors: at least three, all finite. Times are seconds
/// from any common reference.
#[derive(Debug, Clone, PartialEq)]
pub struct Arrivals {
    points: Vec<TimedPoint>,
}

impl Arrivals {
    pub fn new(points: Vec<TimedPoint>) -> Result<Arrivals, SolveError> {
        if let Some(index) = points
            .iter()
            .position(|p| !(p.position.is_finite() && p.t_s.is_finite()))
        {
            return Err(SolveError::NonFinite { index });
        }
        let mut distinct = 0;
        for (i, p) in points.iter().enumerate() {
            if points[..i]
                .iter()
                .all(|q| q.position.distance(p.position) > 1e-3)
            {
                distinct += 1;
            }
        }
        if distinct < 3 {
            return Err(SolveError::TooFewArrivals { count: distinct });
        }
        Ok(Arrivals { points })
    }

    pub fn points(&self) -> &[TimedPoint] {
        &self.points
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

/// A located shot, before it becomes a [`model::Shot`].
#[derive(Debug, Clone, PartialEq)]
pub struct Solution {
    pub position: Point3,
    pub t0_s: f64,
    /// Covariance of (x, y, z, t₀) in m², m², m², s² (and the cross terms).
    pub covariance: Matrix4<f64>,
    /// Measured minus predicted arrival time, seconds, per arrival (input order).
    pub residuals_s: Vec<f64>,
    /// Robust weights, 0..=1, per arrival.
    pub weights: Vec<f64>,
    /// The arrival-time standard deviation used for the covariance, seconds.
    pub sigma_s: f64,
    /// Degrees of freedom of that estimate (`None`: the prior value was used).
    pub dof: Option<usize>,
    pub err95_m: f64,
}

impl Solution {
    /// Weighted RMS residual, seconds.
    pub fn rms_residual_s(&self) -> f64 {
        let (num, den) = self
            .residuals_s
            .iter()
            .zip(&self.weights)
            .fold((0.0, 0.0), |(n, d), (r, w)| (n + w * r * r, d + w));
        if den > 0.0 {
            (num / den).sqrt()
        } else {
            0.0
        }
    }

    /// Covariance of (x, y), m².
    pub fn horizontal_covariance(&self) -> [[f64; 2]; 2] {
        let c = &self.covariance;
        [[c[(0, 0)], c[(0, 1)]], [c[(1, 0)], c[(1, 1)]]]
    }
}

/// The prior on the shot's height: mean and standard deviation, metres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeightPrior {
    pub z_m: f64,
    pub sigma_m: f64,
}

impl HeightPrior {
    /// The mean height of the three sensors nearest (horizontally) to `near`.
    pub fn from_nearest_sensors(arrivals: &Arrivals, near: Point3, sigma_m: f64) -> HeightPrior {
        let mut by_range: Vec<(f64, f64)> = arrivals
            .points()
            .iter()
            .map(|p| (p.position.distance_2d(near), p.position.z))
            .collect();
        by_range.sort_by(|a, b| a.0.total_cmp(&b.0));
        let k = by_range.len().min(3);
        let z_m = by_range[..k].iter().map(|p| p.1).sum::<f64>() / k as f64;
        HeightPrior { z_m, sigma_m }
    }
}

/// Huber's tuning constant, in units of the residual scale.
const HUBER_K: f64 = 1.345;
/// MAD to standard deviation for normal errors.
const MAD_TO_SIGMA: f64 = 1.4826;

/// Solves for position and emission time. `hints` are extra starting points (for
/// example the hypothesis that association built the arrival set from).
pub fn solve(
    arrivals: &Arrivals,
    medium: &Medium,
    config: &LocateConfig,
    hints: &[Candidate],
) -> Option<Solution> {
    solve_unrated(arrivals, medium, config, hints).map(|mut s| {
        s.err95_m = err95(&s);
        s
    })
}

/// [`solve`] without `err95_m` (left NaN): association solves many candidate sets
/// and rates only the shots it keeps, with [`err95`].
pub(crate) fn solve_unrated(
    arrivals: &Arrivals,
    medium: &Medium,
    config: &LocateConfig,
    hints: &[Candidate],
) -> Option<Solution> {
    let c = medium.speed_of_sound_m_s;
    let points = arrivals.points();
    let mut starts: Vec<Candidate> = hints.to_vec();
    let mean_z = points.iter().map(|p| p.position.z).sum::<f64>() / points.len() as f64;
    if let Some(k) = start::linear_least_squares(points, mean_z, c) {
        starts.push(k);
    }
    if starts.is_empty() && points.len() >= 3 {
        starts.extend(start::triple_2d([points[0], points[1], points[2]], c));
    }
    if starts.is_empty() {
        // Degenerate geometry for the closed forms: start under the earliest sensor.
        let first = points.iter().min_by(|a, b| a.t_s.total_cmp(&b.t_s))?;
        starts.push(Candidate {
            position: first.position,
            t0_s: first.t_s,
        });
    }
    let mut best: Option<(f64, Solution)> = None;
    for s in starts {
        let prior =
            HeightPrior::from_nearest_sensors(arrivals, s.position, config.height_prior_sigma_m);
        let Some(sol) = fit(points, medium, config, prior, s) else {
            continue;
        };
        let cost = robust_cost(&sol.residuals_s, config.prior_arrival_sigma_s);
        if best.as_ref().is_none_or(|(b, _)| cost < *b) {
            best = Some((cost, sol));
        }
    }
    best.map(|(_, s)| s)
}

/// The Huber cost of residuals at a fixed scale, used to compare end points.
fn robust_cost(residuals_s: &[f64], scale_s: f64) -> f64 {
    let k = HUBER_K * scale_s;
    residuals_s
        .iter()
        .map(|r| {
            if r.abs() <= k {
                r * r / 2.0
            } else {
                k * (r.abs() - k / 2.0)
            }
        })
        .sum()
}

fn residuals(points: &[TimedPoint], medium: &Medium, x: &Vector4<f64>) -> Vec<f64> {
    let src = Point3::new(x[0], x[1], x[2]);
    points
        .iter()
        .map(|p| p.t_s - x[3] - medium.travel_time(src, p.position).0)
        .collect()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Weighted normal equations (information matrix and gradient) of the normalised
/// problem at `x`, and its cost.
fn normal_equations(
    points: &[TimedPoint],
    medium: &Medium,
    weights: &[f64],
    sigma_s: f64,
    prior: HeightPrior,
    x: &Vector4<f64>,
) -> (Matrix4<f64>, Vector4<f64>, f64) {
    let src = Point3::new(x[0], x[1], x[2]);
    let mut h = Matrix4::zeros();
    let mut g = Vector4::zeros();
    let mut cost = 0.0;
    for (p, &w) in points.iter().zip(weights) {
        let (t, grad) = medium.travel_time(src, p.position);
        let r = (p.t_s - x[3] - t) / sigma_s;
        // d r / d(x, y, z, t0)
        let j = Vector4::new(-grad[0], -grad[1], -grad[2], -1.0) / sigma_s;
        h += w * j * j.transpose();
        g += w * j * r;
        cost += w * r * r;
    }
    let rz = (x[2] - prior.z_m) / prior.sigma_m;
    h[(2, 2)] += 1.0 / prior.sigma_m.powi(2);
    g[2] += rz / prior.sigma_m;
    cost += rz * rz;
    (h, g, cost)
}

fn fit(
    points: &[TimedPoint],
    medium: &Medium,
    config: &LocateConfig,
    prior: HeightPrior,
    start: Candidate,
) -> Option<Solution> {
    let sigma_n = config.prior_arrival_sigma_s;
    let mut x = Vector4::new(start.position.x, start.position.y, prior.z_m, start.t0_s);
    let mut weights = vec![1.0; points.len()];
    for outer in 0..8 {
        // Levenberg–Marquardt with the current weights.
        let mut lambda = 1e-3;
        let (mut h, mut g, mut cost) =
            normal_equations(points, medium, &weights, sigma_n, prior, &x);
        for _ in 0..100 {
            let mut damped = h;
            for i in 0..4 {
                damped[(i, i)] += lambda * h[(i, i)].max(1e-12);
            }
            let Some(step) = damped.cholesky().map(|ch| ch.solve(&(-g))) else {
                lambda *= 10.0;
                continue;
            };
            let trial = x + step;
            let (th, tg, tcost) =
                normal_equations(points, medium, &weights, sigma_n, prior, &trial);
            if tcost.is_finite() && tcost <= cost {
                let converged = (cost - tcost) <= 1e-12 * cost.max(1e-300)
                    || step.fixed_rows::<3>(0).norm() < 1e-6 && step[3].abs() < 1e-9;
                x = trial;
                (h, g, cost) = (th, tg, tcost);
                lambda = (lambda / 10.0).max(1e-12);
                if converged {
                    break;
                }
            } else {
                lambda *= 10.0;
                if lambda > 1e12 {
                    break;
                }
            }
        }
        // Re-weight: Huber on the current residuals with a robust scale.
        let r = residuals(points, medium, &x);
        let mut abs: Vec<f64> = r.iter().map(|v| v.abs()).collect();
        let scale = (MAD_TO_SIGMA * median(&mut abs)).max(config.min_arrival_sigma_s);
        let new_weights: Vec<f64> = r
            .iter()
            .map(|v| {
                if v.abs() <= HUBER_K * scale {
                    1.0
                } else {
                    HUBER_K * scale / v.abs()
                }
            })
            .collect();
        let change = new_weights
            .iter()
            .zip(&weights)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        weights = new_weights;
        if change < 1e-3 && outer > 0 {
            break;
        }
    }
    if !x.iter().all(|v| v.is_finite()) {
        return None;
    }
    let residuals_s = residuals(points, medium, &x);
    // The arrival-time scatter, from the unweighted residuals: down-weighted
    // arrivals still say how scattered urban arrivals are, and leaving them out
    // would make err95 overconfident. x, y and t₀ are fixed by the arrivals (z
    // mostly by its prior), so n − 3 degrees of freedom.
    let dof = (points.len() as i64 - 3).max(0) as usize;
    let (sigma_s, dof) = if dof >= 1 {
        let ss: f64 = residuals_s.iter().map(|r| r * r).sum();
        let s2 = ss / dof as f64;
        (s2.sqrt().max(config.min_arrival_sigma_s), Some(dof))
    } else {
        (sigma_n, None)
    };
    // Information at the solution with the estimated scatter, plus the height prior.
    let (h, _, _) = normal_equations(points, medium, &weights, sigma_s, prior, &x);
    let covariance = h.try_inverse()?;
    Some(Solution {
        position: Point3::new(x[0], x[1], x[2]),
        t0_s: x[3],
        covariance,
        residuals_s,
        weights,
        sigma_s,
        dof,
        err95_m: f64::NAN,
    })
}

/// The 95 % horizontal radius of a solution, widened for an estimated variance.
pub(crate) fn err95(solution: &Solution) -> f64 {
    let inflation = uncertainty::variance_inflation(solution.dof);
    let h = solution.horizontal_covariance();
    let scaled = [
        [h[0][0] * inflation, h[0][1] * inflation],
        [h[1][0] * inflation, h[1][1] * inflation],
    ];
    uncertainty::circular_radius(scaled, uncertainty::COVERAGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(source: Point3, t0: f64, sensors: &[Point3], medium: &Medium) -> Arrivals {
        Arrivals::new(
            sensors
                .iter()
                .map(|&s| TimedPoint {
                    position: s,
                    t_s: t0 + medium.travel_time(source, s).0,
                })
                .collect(),
        )
        .unwrap()
    }

    fn ring() -> Vec<Point3> {
        (0..7)
            .map(|i| {
                let a = i as f64 * 0.9;
                Point3::new(600.0 * a.cos(), 500.0 * a.sin(), 10.0 * (i % 3) as f64)
            })
            .collect()
    }

    #[test]
    fn exact_data_gives_the_source() {
        let medium = Medium::still(331.3);
        let source = Point3::new(80.0, -40.0, 5.0);
        let sol = solve(
            &exact(source, 2.0, &ring(), &medium),
            &medium,
            &LocateConfig::default(),
            &[],
        )
        .unwrap();
        // The height prior (at the nearest sensors' height, not the source's) costs
        // centimetres horizontally on exact data.
        assert!(sol.position.distance_2d(source) < 0.05, "{sol:?}");
        assert!((sol.t0_s - 2.0).abs() < 1e-4);
        assert!(sol.residuals_s.iter().all(|r| r.abs() < 2e-4));
    }

    #[test]
    fn wind_is_modelled() {
        let medium = Medium {
            speed_of_sound_m_s: 331.3,
            wind_m_s: [6.0, 2.0],
        };
        let source = Point3::new(-120.0, 90.0, 5.0);
        let arrivals = exact(source, 0.5, &ring(), &medium);
        let windy = solve(&arrivals, &medium, &LocateConfig::default(), &[]).unwrap();
        assert!(
            windy.position.distance_2d(source) < 0.05,
            "{:?}",
            windy.position
        );
        // Ignoring that same wind moves the answer by metres.
        let naive = solve(
            &arrivals,
            &Medium::still(331.3),
            &LocateConfig::default(),
            &[],
        )
        .unwrap();
        assert!(
            naive.position.distance_2d(source) > 2.0,
            "{:?}",
            naive.position
        );
    }

    #[test]
    fn one_late_arrival_does_not_pull_the_solution() {
        let medium = Medium::still(331.3);
        let source = Point3::new(30.0, 20.0, 5.0);
        let mut sensors = ring();
        sensors.extend([
            Point3::new(-200.0, -300.0, 0.0),
            Point3::new(250.0, 350.0, 0.0),
        ]);
        let clean = exact(source, 1.0, &sensors, &medium);
        let mut points = clean.points().to_vec();
        points[2].t_s += 0.030; // a 10 m diffraction detour
        let sol = solve(
            &Arrivals::new(points).unwrap(),
            &medium,
            &LocateConfig::default(),
            &[],
        )
        .unwrap();
        assert!(sol.position.distance_2d(source) < 1.0, "{:?}", sol.position);
        assert!(sol.weights[2] < 0.2, "{:?}", sol.weights);
    }

    #[test]
    fn too_few_or_non_finite_arrivals_are_rejected() {
        let p = |x: f64, t: f64| TimedPoint {
            position: Point3::new(x, 0.0, 0.0),
            t_s: t,
        };
        assert_eq!(
            Arrivals::new(vec![p(0.0, 0.0), p(1.0, 0.0)]).unwrap_err(),
            SolveError::TooFewArrivals { count: 2 }
        );
        assert_eq!(
            Arrivals::new(vec![p(0.0, 0.0), p(0.0, 0.1), p(5.0, 0.0)]).unwrap_err(),
            SolveError::TooFewArrivals { count: 2 }
        );
        assert_eq!(
            Arrivals::new(vec![p(0.0, 0.0), p(1.0, f64::NAN), p(5.0, 0.0)]).unwrap_err(),
            SolveError::NonFinite { index: 1 }
        );
    }
}
