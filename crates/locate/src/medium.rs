//! The propagation model: straight rays through a uniform atmosphere that may be
//! drifting with a uniform horizontal wind.
//!
//! With air moving at velocity w, sound emitted at x reaches s after the time T
//! for which |s − x − w T| = c T (the wavefront is a sphere of radius cT whose
//! centre drifts with the air). That is a quadratic in T with one positive root,
//! so the model is exact for uniform wind and reduces to |s − x| / c without it.
//! Tech Note 098 eq. (9) applies the same physics by moving each sensor's apparent
//! position by −w (t_i − t*).
//!
//! # References
//! - Calhoun et al., ShotSpotter Tech Note 098 (2020), §II.F.
//! - D. K. Wilson, "Atmospheric effects on acoustic arrival times", ARL report, 1999
//!   (the moving-medium travel-time model).

use model::{Point3, Weather};

/// A uniform atmosphere: speed of sound and horizontal wind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Medium {
    pub speed_of_sound_m_s: f64,
    /// Air velocity (east, north), m/s.
    pub wind_m_s: [f64; 2],
}

impl Medium {
    pub fn still(speed_of_sound_m_s: f64) -> Medium {
        Medium {
            speed_of_sound_m_s,
            wind_m_s: [0.0, 0.0],
        }
    }

    pub fn from_weather(weather: &Weather) -> Medium {
        let wind = weather.wind_velocity_m_s();
        let c = weather.speed_of_sound_m_s();
        // A wind near the speed of sound is not weather; ignore it rather than
        // produce a model with no solution.
        let wind = if wind[0].hypot(wind[1]) < 0.2 * c {
            wind
        } else {
            [0.0, 0.0]
        };
        Medium {
            speed_of_sound_m_s: c,
            wind_m_s: wind,
        }
    }

    /// Travel time from `source` to `sensor`, seconds: the straight path in
    /// still air, or the one whose wavefront the wind carries to the sensor
    /// (|d − w t| = c t, d the source-to-sensor vector, w the horizontal wind).
    /// Association calls this for every sensor near every candidate source.
    #[inline]
    pub fn travel_time_s(&self, source: Point3, sensor: Point3) -> f64 {
        let c = self.speed_of_sound_m_s;
        let d = Self::path(source, sensor);
        let [wx, wy] = self.wind_m_s;
        let dd = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
        if wx == 0.0 && wy == 0.0 {
            return dd.sqrt() / c;
        }
        let a = c * c - (wx * wx + wy * wy);
        let b = d[0] * wx + d[1] * wy;
        (-b + (b * b + a * dd).sqrt()) / a
    }

    /// [`Medium::travel_time_s`] and its gradient with respect to the source
    /// position, s/m (for the solver).
    pub fn travel_time(&self, source: Point3, sensor: Point3) -> (f64, [f64; 3]) {
        let c = self.speed_of_sound_m_s;
        let t = self.travel_time_s(source, sensor);
        let d = Self::path(source, sensor);
        let [wx, wy] = self.wind_m_s;
        if t == 0.0 {
            return (0.0, [0.0; 3]);
        }
        if wx == 0.0 && wy == 0.0 {
            let r = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
            return (t, [-d[0] / (r * c), -d[1] / (r * c), -d[2] / (r * c)]);
        }
        // Implicit differentiation of |d − w t|² = c² t² with respect to d, then
        // d/dsource = −d/dd.
        let e = [d[0] - wx * t, d[1] - wy * t, d[2]];
        let denom = e[0] * wx + e[1] * wy + c * c * t;
        if denom == 0.0 {
            return (t, [0.0; 3]);
        }
        (t, [-e[0] / denom, -e[1] / denom, -e[2] / denom])
    }

    /// The vector from `source` to `sensor`.
    fn path(source: Point3, sensor: Point3) -> [f64; 3] {
        [
            sensor.x - source.x,
            sensor.y - source.y,
            sensor.z - source.z,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn still_air_is_distance_over_c() {
        let m = Medium::still(340.0);
        let (t, g) = m.travel_time(Point3::new(0.0, 0.0, 0.0), Point3::new(300.0, 400.0, 0.0));
        assert!((t - 500.0 / 340.0).abs() < 1e-12);
        assert!((g[0] + 0.6 / 340.0).abs() < 1e-12 && (g[1] + 0.8 / 340.0).abs() < 1e-12);
    }

    #[test]
    fn wind_speeds_downwind_paths_and_slows_upwind_ones() {
        let m = Medium {
            speed_of_sound_m_s: 340.0,
            wind_m_s: [10.0, 0.0],
        };
        let src = Point3::new(0.0, 0.0, 0.0);
        let (down, _) = m.travel_time(src, Point3::new(700.0, 0.0, 0.0));
        let (up, _) = m.travel_time(src, Point3::new(-700.0, 0.0, 0.0));
        assert!((down - 700.0 / 350.0).abs() < 1e-12);
        assert!((up - 700.0 / 330.0).abs() < 1e-12);
        // Crosswind: the wavefront centre drifts, so the path is slightly longer.
        let (cross, _) = m.travel_time(src, Point3::new(0.0, 700.0, 0.0));
        assert!((cross - 700.0 / (340.0f64.powi(2) - 100.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn travel_time_without_gradient_is_the_same_time() {
        let src = Point3::new(12.0, -40.0, 3.0);
        for wind_m_s in [[0.0, 0.0], [3.0, -4.0], [-12.0, 7.5]] {
            let m = Medium {
                speed_of_sound_m_s: 338.0,
                wind_m_s,
            };
            for sensor in [
                Point3::new(-250.0, 310.0, 22.0),
                Point3::new(1800.0, 5.0, -3.0),
                src,
            ] {
                let (t, _) = m.travel_time(src, sensor);
                assert_eq!(m.travel_time_s(src, sensor).to_bits(), t.to_bits());
            }
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let m = Medium {
            speed_of_sound_m_s: 331.0,
            wind_m_s: [3.0, -4.0],
        };
        let src = Point3::new(12.0, -40.0, 3.0);
        let sensor = Point3::new(-250.0, 310.0, 22.0);
        let (_, g) = m.travel_time(src, sensor);
        let h = 1e-4;
        for (k, gk) in g.iter().enumerate() {
            let mut a = src;
            let mut b = src;
            match k {
                0 => (a.x -= h, b.x += h),
                1 => (a.y -= h, b.y += h),
                _ => (a.z -= h, b.z += h),
            };
            let numeric = (m.travel_time(b, sensor).0 - m.travel_time(a, sensor).0) / (2.0 * h);
            assert!(
                (numeric - gk).abs() < 1e-9,
                "component {k}: {numeric} vs {gk}"
            );
        }
    }
}
