//! Coverage planning: how well a layout of sensors would locate a shot at a
//! given place, before any shot is fired (PRODUCT.md: "plannable").
//!
//! A shot at `p` is heard by every sensor within [`LocateConfig::max_range_m`].
//! With fewer than [`LocateConfig::min_sensors`] of them there is no fix.
//! Otherwise the arrival times tᵢ = t₀ + |p − sᵢ|/c, each with the error
//! σ = [`LocateConfig::prior_arrival_sigma_s`] of diffracted urban paths,
//! give the Fisher information of (x, y, t₀): F = JᵀJ/σ², with the rows of J
//! ((x − xᵢ)/(c rᵢ), (y − yᵢ)/(c rᵢ), 1). The horizontal block of F⁻¹ is the
//! covariance the solver would report for that geometry (the Cramér–Rao
//! bound), and its 95 % circle ([`circular_radius`]) is the expected
//! `err95_m`. The height is held at the shot's given height: networks are
//! nearly planar, and the solver's height prior plays that role.
//!
//! This is a bound for the geometry alone. It does not know which sensors a
//! building hides, and it grows fast outside the sensors' convex hull, as
//! the real error does.

use model::Point3;
use nalgebra::Matrix3;

use crate::uncertainty::{circular_radius, COVERAGE};
use crate::LocateConfig;

/// What a layout gives at one place.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Expected {
    /// Sensors within hearing range.
    pub sensors: usize,
    /// Expected radius of the 95 % horizontal confidence region, metres.
    pub err95_m: f64,
}

/// The expected accuracy of a shot at `shot` heard by `sensors` (local
/// metres), with sound at `speed_m_s`; `None` where too few sensors hear it or
/// the geometry cannot fix it (all sensors in a line with the shot).
pub fn expected(
    sensors: &[Point3],
    shot: Point3,
    speed_m_s: f64,
    config: &LocateConfig,
) -> Option<Expected> {
    let mut info = Matrix3::<f64>::zeros();
    let mut heard = 0;
    for s in sensors {
        let (dx, dy, dz) = (shot.x - s.x, shot.y - s.y, shot.z - s.z);
        let r = (dx * dx + dy * dy + dz * dz).sqrt();
        if r > config.max_range_m {
            continue;
        }
        heard += 1;
        // A sensor at the shot itself tells the time, not the direction.
        let (gx, gy) = if r > 1e-6 {
            (dx / (speed_m_s * r), dy / (speed_m_s * r))
        } else {
            (0.0, 0.0)
        };
        let row = nalgebra::Vector3::new(gx, gy, 1.0);
        info += row * row.transpose();
    }
    if heard < config.min_sensors.max(3) {
        return None;
    }
    let sigma2 = config.prior_arrival_sigma_s * config.prior_arrival_sigma_s;
    let cov = (info / sigma2).try_inverse()?;
    let horizontal = [[cov[(0, 0)], cov[(0, 1)]], [cov[(1, 0)], cov[(1, 1)]]];
    let err95_m = circular_radius(horizontal, COVERAGE);
    (err95_m.is_finite() && horizontal[0][0] >= 0.0 && horizontal[1][1] >= 0.0).then_some(
        Expected {
            sensors: heard,
            err95_m,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(x: f64, y: f64) -> Point3 {
        Point3 { x, y, z: 0.0 }
    }

    #[test]
    fn a_square_of_sensors_locates_its_middle_best_and_its_outside_worse() {
        let config = LocateConfig::default();
        let square = [
            p(-500.0, -500.0),
            p(500.0, -500.0),
            p(500.0, 500.0),
            p(-500.0, 500.0),
        ];
        let inside = expected(&square, p(0.0, 0.0), 343.0, &config).unwrap();
        let edge = expected(&square, p(450.0, 0.0), 343.0, &config).unwrap();
        let outside = expected(&square, p(1_200.0, 0.0), 343.0, &config).unwrap();
        assert_eq!(inside.sensors, 4);
        assert!(inside.err95_m < edge.err95_m, "{inside:?} {edge:?}");
        assert!(edge.err95_m < outside.err95_m, "{edge:?} {outside:?}");
        // At the middle, by symmetry, each axis has variance 2σ²c²·… : the
        // rows are (±1/√2c, ±1/√2c, 1), so F = diag(2/c², 2/c², 4)/σ² and the
        // horizontal variance is c²σ²/2 per axis.
        let sd = 343.0 * config.prior_arrival_sigma_s / 2f64.sqrt();
        let want = circular_radius([[sd * sd, 0.0], [0.0, sd * sd]], COVERAGE);
        assert!(
            (inside.err95_m - want).abs() < 1e-9 * want,
            "{} vs {want}",
            inside.err95_m
        );
    }

    #[test]
    fn too_few_sensors_in_range_or_a_line_of_sensors_give_no_fix() {
        let config = LocateConfig::default();
        let square = [
            p(-500.0, -500.0),
            p(500.0, -500.0),
            p(500.0, 500.0),
            p(-500.0, 500.0),
        ];
        // 2.3 km away only two sensors are within 2 km.
        assert_eq!(expected(&square, p(2_300.0, 0.0), 343.0, &config), None);
        let line = [p(0.0, 0.0), p(100.0, 0.0), p(200.0, 0.0), p(300.0, 0.0)];
        assert_eq!(expected(&line, p(150.0, 0.0), 343.0, &config), None);
    }
}
