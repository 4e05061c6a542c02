//! Positions and geodesy.
//!
//! Inside the core every position is a [`Point3`] in a local east-north-up (ENU)
//! frame, in metres. Inputs in WGS84 latitude/longitude/height are turned into that
//! frame through a [`LocalFrame`] anchored at an origin, and results are turned back.
//! The conversion is exact (through Earth-centred, Earth-fixed coordinates), not a
//! flat-earth approximation, so it holds over a whole city and beyond.
//!
//! # References
//! - NIMA TR8350.2, "Department of Defense World Geodetic System 1984", 3rd ed., 2000
//!   (ellipsoid constants).
//! - J. Zhu, "Conversion of Earth-centered Earth-fixed coordinates to geodetic
//!   coordinates", IEEE Trans. Aerospace and Electronic Systems 30(3), 1994
//!   (the inverse, done here by the classic fixed-point iteration on latitude).

use serde::{Deserialize, Serialize};

/// WGS84 semi-major axis, metres.
pub const WGS84_A_M: f64 = 6_378_137.0;
/// WGS84 flattening.
pub const WGS84_F: f64 = 1.0 / 298.257_223_563;
/// WGS84 first eccentricity squared.
const WGS84_E2: f64 = WGS84_F * (2.0 - WGS84_F);

/// A point in a local Cartesian frame: x east, y north, z up, metres.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Point3 {
    pub x: f64,
    pub y: f64,
    pub z: f64,
}

impl Point3 {
    pub const fn new(x: f64, y: f64, z: f64) -> Point3 {
        Point3 { x, y, z }
    }

    pub fn distance(self, other: Point3) -> f64 {
        ((self.x - other.x).powi(2) + (self.y - other.y).powi(2) + (self.z - other.z).powi(2))
            .sqrt()
    }

    /// Horizontal (x, y) distance, ignoring height. (A plain square root, not
    /// `hypot`: local coordinates are metres, far from overflow, and this sits on
    /// association's hot path.)
    pub fn distance_2d(self, other: Point3) -> f64 {
        ((self.x - other.x).powi(2) + (self.y - other.y).powi(2)).sqrt()
    }

    pub fn is_finite(self) -> bool {
        self.x.is_finite() && self.y.is_finite() && self.z.is_finite()
    }
}

/// A WGS84 position: degrees, degrees, metres above the ellipsoid
/// (or above mean sea level, used consistently).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Geodetic {
    pub lat_deg: f64,
    pub lon_deg: f64,
    pub alt_m: f64,
}

impl Geodetic {
    /// Earth-centred, Earth-fixed coordinates, metres.
    pub fn to_ecef(self) -> [f64; 3] {
        let (lat, lon) = (self.lat_deg.to_radians(), self.lon_deg.to_radians());
        let n = WGS84_A_M / (1.0 - WGS84_E2 * lat.sin().powi(2)).sqrt();
        [
            (n + self.alt_m) * lat.cos() * lon.cos(),
            (n + self.alt_m) * lat.cos() * lon.sin(),
            (n * (1.0 - WGS84_E2) + self.alt_m) * lat.sin(),
        ]
    }

    /// The inverse of [`Geodetic::to_ecef`]; sub-millimetre for any point within
    /// 100 km of the Earth's surface.
    pub fn from_ecef([x, y, z]: [f64; 3]) -> Geodetic {
        let lon = y.atan2(x);
        let p = x.hypot(y);
        // Start from the geocentric latitude corrected for flattening, then iterate.
        let mut lat = z.atan2(p * (1.0 - WGS84_E2));
        let mut alt = 0.0;
        for _ in 0..8 {
            let n = WGS84_A_M / (1.0 - WGS84_E2 * lat.sin().powi(2)).sqrt();
            alt = if lat.cos().abs() > 1e-9 {
                p / lat.cos() - n
            } else {
                z.abs() - n * (1.0 - WGS84_E2)
            };
            lat = z.atan2(p * (1.0 - WGS84_E2 * n / (n + alt)));
        }
        Geodetic {
            lat_deg: lat.to_degrees(),
            lon_deg: lon.to_degrees(),
            alt_m: alt,
        }
    }

    /// True for a latitude in [-90, 90], a longitude in [-180, 360] and a finite height.
    pub fn is_valid(self) -> bool {
        (-90.0..=90.0).contains(&self.lat_deg)
            && (-180.0..=360.0).contains(&self.lon_deg)
            && self.alt_m.is_finite()
    }
}

/// A local east-north-up frame tangent to the WGS84 ellipsoid at `origin`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LocalFrame {
    origin: Geodetic,
    origin_ecef: [f64; 3],
    /// Rows: the east, north and up unit vectors in ECEF.
    axes: [[f64; 3]; 3],
}

impl LocalFrame {
    pub fn new(origin: Geodetic) -> LocalFrame {
        let (lat, lon) = (origin.lat_deg.to_radians(), origin.lon_deg.to_radians());
        let (sl, cl, so, co) = (lat.sin(), lat.cos(), lon.sin(), lon.cos());
        LocalFrame {
            origin,
            origin_ecef: origin.to_ecef(),
            axes: [
                [-so, co, 0.0],
                [-sl * co, -sl * so, cl],
                [cl * co, cl * so, sl],
            ],
        }
    }

    pub fn origin(&self) -> Geodetic {
        self.origin
    }

    pub fn to_local(&self, point: Geodetic) -> Point3 {
        let e = point.to_ecef();
        let d = [
            e[0] - self.origin_ecef[0],
            e[1] - self.origin_ecef[1],
            e[2] - self.origin_ecef[2],
        ];
        let dot = |a: [f64; 3]| a[0] * d[0] + a[1] * d[1] + a[2] * d[2];
        Point3::new(dot(self.axes[0]), dot(self.axes[1]), dot(self.axes[2]))
    }

    pub fn to_geodetic(&self, p: Point3) -> Geodetic {
        let [e, n, u] = self.axes;
        let ecef = [
            self.origin_ecef[0] + p.x * e[0] + p.y * n[0] + p.z * u[0],
            self.origin_ecef[1] + p.x * e[1] + p.y * n[1] + p.z * u[1],
            self.origin_ecef[2] + p.x * e[2] + p.y * n[2] + p.z * u[2],
        ];
        Geodetic::from_ecef(ecef)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_ecef_point() {
        // Equator, prime meridian, on the ellipsoid.
        let e = Geodetic {
            lat_deg: 0.0,
            lon_deg: 0.0,
            alt_m: 0.0,
        }
        .to_ecef();
        assert!((e[0] - WGS84_A_M).abs() < 1e-6 && e[1].abs() < 1e-6 && e[2].abs() < 1e-6);
        // North pole: z is the semi-minor axis b = a (1 - f).
        let p = Geodetic {
            lat_deg: 90.0,
            lon_deg: 0.0,
            alt_m: 0.0,
        }
        .to_ecef();
        assert!((p[2] - WGS84_A_M * (1.0 - WGS84_F)).abs() < 1e-6);
    }

    #[test]
    fn local_frame_axes_point_the_right_way() {
        let origin = Geodetic {
            lat_deg: 40.4406,
            lon_deg: -79.9959,
            alt_m: 250.0,
        };
        let frame = LocalFrame::new(origin);
        // 0.001 degree of latitude is about 111 m north.
        let north = frame.to_local(Geodetic {
            lat_deg: 40.4416,
            ..origin
        });
        assert!(
            (north.y - 111.05).abs() < 0.2 && north.x.abs() < 1e-6,
            "{north:?}"
        );
        // 0.001 degree of longitude at 40.44 N is about 84.8 m east.
        let east = frame.to_local(Geodetic {
            lon_deg: -79.9949,
            ..origin
        });
        assert!(
            (east.x - 84.8).abs() < 0.3 && east.y.abs() < 0.01,
            "{east:?}"
        );
        let up = frame.to_local(Geodetic {
            alt_m: 260.0,
            ..origin
        });
        assert!((up.z - 10.0).abs() < 1e-6);
    }

    proptest! {
        #[test]
        fn geodetic_round_trip(lat in -89.9f64..89.9, lon in -180.0f64..180.0, alt in -500.0f64..9000.0) {
            let g = Geodetic { lat_deg: lat, lon_deg: lon, alt_m: alt };
            let back = Geodetic::from_ecef(g.to_ecef());
            prop_assert!((back.lat_deg - lat).abs() < 1e-9);
            prop_assert!((back.lon_deg - lon).abs() < 1e-9);
            prop_assert!((back.alt_m - alt).abs() < 1e-4);
        }

        #[test]
        fn local_round_trip(lat in -80.0f64..80.0, lon in -179.0f64..179.0,
                            x in -20_000.0f64..20_000.0, y in -20_000.0f64..20_000.0, z in -300.0f64..300.0) {
            let frame = LocalFrame::new(Geodetic { lat_deg: lat, lon_deg: lon, alt_m: 100.0 });
            let p = Point3::new(x, y, z);
            let q = frame.to_local(frame.to_geodetic(p));
            prop_assert!(p.distance(q) < 1e-4, "{:?} -> {:?}", p, q);
        }
    }
}
