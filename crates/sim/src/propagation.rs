//! Sound paths from a source to a sensor through a city.
//!
//! - Direct: the straight line, when no building is in the way. Its ground
//!   reflection (image source below the street, hard asphalt) follows closely.
//! - Diffracted: when buildings block the line of sight, sound bends over the
//!   roofs (the shortest path over them, the upper convex hull of the building
//!   profile in the vertical plane) or around a corner (the shortest path via one
//!   vertical building edge); the shorter one is heard. Its excess length δ sets
//!   the insertion loss (Maekawa).
//! - Echoes: first-order specular reflections off facades near the sensor and near
//!   the source (image sources), whose legs are both clear.
//!
//! Travel times use the speed of sound plus the wind component along the
//! source-to-sensor direction (Tech Note 098 eq. 9), for every path.
//!
//! # References
//! - Z. Maekawa, "Noise reduction by screens", Applied Acoustics 1, 1968; the
//!   form 10 log10(3 + 20 N) with N = 2δ/λ is ISO 9613-2:1996 eq. (14); the cap
//!   is discussed at [`MAX_DIFFRACTION_DB`].
//! - J. B. Allen, D. A. Berkley, "Image method for efficiently simulating
//!   small-room acoustics", JASA 65, 1979 (image sources).

use model::Point3;

use crate::city::{cross, sub, City};

/// How a path reaches the sensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    Direct,
    Ground,
    Diffracted,
    Echo,
}

/// One path: its length (for the travel time, spherical spreading and
/// absorption), the diffraction excess δ (0 when there is none) and the product
/// of reflection coefficients along it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Path {
    pub kind: PathKind,
    pub length_m: f64,
    pub excess_m: f64,
    pub reflection: f64,
}

/// Amplitude reflection coefficient of asphalt or concrete ground (absorption
/// coefficient ≈ 0.02–0.05 at 0.5–2 kHz, so |R| ≈ 0.98; 0.95 allows for the
/// rougher, dirtier real surface).
pub const GROUND_REFLECTION: f64 = 0.95;

/// Amplitude of a specular facade echo. Brick and concrete absorb little
/// (|R| ≈ 0.98), but windows, recesses and balconies scatter much of the energy
/// out of the specular direction; 0.7 (−3 dB) is a typical effective value for
/// urban facades at 0.5–2 kHz (Kang, "Urban Sound Environment", 2007, ch. 4).
pub const FACADE_REFLECTION: f64 = 0.7;

/// Facades farther than this from the sensor or the source give no echo here,
/// metres: beyond, an echo is weaker than the sensor's background by spreading
/// alone, and echoes later than ~0.6 s rarely matter for association.
pub const ECHO_RADIUS_SENSOR_M: f64 = 120.0;
pub const ECHO_RADIUS_SOURCE_M: f64 = 80.0;

/// At most this many echoes per source–sensor pair (the shortest ones).
pub const MAX_ECHOES: usize = 8;

/// Largest diffraction insertion loss, dB. ISO 9613-2 §7.4 allows 20 dB for one
/// edge and 25 dB for several, but at the ranges and in the weather that matter
/// here the geometric shadow fills in: turbulence scatters sound into it and the
/// night-time inversion (most gunfire is at night) bends sound down over the
/// roofs (G. A. Daigle, "Diffraction of sound by a noise barrier in the presence
/// of atmospheric turbulence", JASA 71, 1982: measured shielding limited to
/// about 10–15 dB). 10 dB is the value calibrated against the real Pittsburgh
/// levels (`shotfix eval calibration`, docs/simulator.md): with 15 or 20 dB the
/// simulated first arrivals are 10–15 dB quieter than the real ones at 300–1000 m.
pub const MAX_DIFFRACTION_DB: f64 = 10.0;

/// Maekawa's insertion loss, dB, of a barrier with path-length excess `excess_m`
/// at `frequency_hz` (ISO 9613-2 eq. 14 with C₂ = 20, capped).
pub fn diffraction_loss_db(excess_m: f64, frequency_hz: f64, speed_of_sound_m_s: f64) -> f64 {
    let n = 2.0 * excess_m * frequency_hz / speed_of_sound_m_s;
    (10.0 * (3.0 + 20.0 * n).log10()).min(MAX_DIFFRACTION_DB)
}

/// Reusable buffers for path finding.
#[derive(Debug, Default)]
pub struct Scratch {
    cells: Vec<u32>,
    obstacles: Vec<(f64, f64, f64)>,
    hull: Vec<(f64, f64)>,
}

/// Every path from `source` to `sensor` that this model knows, into `out`.
pub fn paths(
    city: &City,
    source: Point3,
    sensor: Point3,
    scratch: &mut Scratch,
    out: &mut Vec<Path>,
) {
    out.clear();
    let direct = source.distance(sensor);
    city.obstacles(source, sensor, &mut scratch.cells, &mut scratch.obstacles);
    if scratch.obstacles.is_empty() {
        out.push(Path {
            kind: PathKind::Direct,
            length_m: direct,
            excess_m: 0.0,
            reflection: 1.0,
        });
        if let Some(p) = ground_path(city, source, sensor, &mut scratch.cells) {
            out.push(p);
        }
    } else {
        let over = over_roofs(source, sensor, &scratch.obstacles, &mut scratch.hull);
        let around = around_corner(city, source, sensor, &mut scratch.cells);
        let length = around.map_or(over, |a| a.min(over));
        out.push(Path {
            kind: PathKind::Diffracted,
            length_m: length,
            excess_m: length - direct,
            reflection: 1.0,
        });
    }
    let first = out.len();
    echoes(city, source, sensor, &mut scratch.cells, out);
    let echoes = &mut out[first..];
    echoes.sort_by(|a, b| a.length_m.total_cmp(&b.length_m));
    let keep = first + echoes.len().min(MAX_ECHOES);
    out.truncate(keep);
}

/// The ground reflection of a clear direct path, if its two legs are clear.
fn ground_path(city: &City, s: Point3, r: Point3, cells: &mut Vec<u32>) -> Option<Path> {
    let (zs, zr) = (s.z.max(0.0), r.z.max(0.0));
    if zs + zr <= 0.0 {
        return None;
    }
    let f = zs / (zs + zr);
    let g = Point3::new(s.x + (r.x - s.x) * f, s.y + (r.y - s.y) * f, 0.01);
    if !city.clear(s, g, cells) || !city.clear(g, r, cells) {
        return None;
    }
    let d = s.distance_2d(r);
    Some(Path {
        kind: PathKind::Ground,
        length_m: (d * d + (zs + zr) * (zs + zr)).sqrt(),
        excess_m: 0.0,
        reflection: GROUND_REFLECTION,
    })
}

/// Length of the shortest path over the roofs: the upper convex hull of the
/// profile (distance along the ground, height) from source to sensor.
fn over_roofs(
    s: Point3,
    r: Point3,
    obstacles: &[(f64, f64, f64)],
    hull: &mut Vec<(f64, f64)>,
) -> f64 {
    hull.clear();
    let d = s.distance_2d(r);
    let mut points = Vec::with_capacity(2 + 2 * obstacles.len());
    points.push((0.0, s.z));
    for &(a, b, h) in obstacles {
        points.push((a, h));
        points.push((b, h));
    }
    points.push((d, r.z));
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Andrew's monotone chain, upper half.
    for &p in &points {
        while hull.len() >= 2 {
            let (o, a) = (hull[hull.len() - 2], hull[hull.len() - 1]);
            if (a.0 - o.0) * (p.1 - o.1) - (a.1 - o.1) * (p.0 - o.0) >= 0.0 {
                hull.pop();
            } else {
                break;
            }
        }
        hull.push(p);
    }
    hull.windows(2)
        .map(|w| ((w[1].0 - w[0].0).powi(2) + (w[1].1 - w[0].1).powi(2)).sqrt())
        .sum()
}

/// Length of the shortest path around one vertical building edge whose two legs
/// are clear, if any. Only the corners of buildings that block the line of sight
/// are tried.
fn around_corner(city: &City, s: Point3, r: Point3, cells: &mut Vec<u32>) -> Option<f64> {
    let (s2, r2) = ([s.x, s.y], [r.x, r.y]);
    let mut blockers = Vec::new();
    city.candidates(s2, r2, cells);
    for &i in cells.iter() {
        if city.buildings()[i as usize].clip(s2, r2).is_some() {
            blockers.push(i as usize);
        }
    }
    let mut best: Option<f64> = None;
    for i in blockers {
        let b = &city.buildings()[i];
        let c = b.centre();
        for v in &b.footprint {
            // Step just outside the corner so the legs do not graze the building.
            let out = sub(*v, c);
            let n = (out[0] * out[0] + out[1] * out[1]).sqrt().max(1e-9);
            let p = [v[0] + 0.05 * out[0] / n, v[1] + 0.05 * out[1] / n];
            let (a, e) = (
                ((p[0] - s.x).powi(2) + (p[1] - s.y).powi(2)).sqrt(),
                ((r.x - p[0]).powi(2) + (r.y - p[1]).powi(2)).sqrt(),
            );
            let length = ((a + e).powi(2) + (r.z - s.z).powi(2)).sqrt();
            if best.is_some_and(|b| b <= length) {
                continue;
            }
            let z = s.z + (r.z - s.z) * a / (a + e).max(1e-9);
            let corner = Point3::new(p[0], p[1], z);
            if city.clear(s, corner, cells) && city.clear(corner, r, cells) {
                best = Some(length);
            }
        }
    }
    best
}

/// First-order facade echoes with clear legs.
fn echoes(city: &City, s: Point3, r: Point3, cells: &mut Vec<u32>, out: &mut Vec<Path>) {
    let (s2, r2) = ([s.x, s.y], [r.x, r.y]);
    for wall in city.walls() {
        let mid = [(wall.a[0] + wall.b[0]) / 2.0, (wall.a[1] + wall.b[1]) / 2.0];
        let half = 0.5 * ((wall.b[0] - wall.a[0]).powi(2) + (wall.b[1] - wall.a[1]).powi(2)).sqrt();
        let near = |p: [f64; 2], radius: f64| {
            ((p[0] - mid[0]).powi(2) + (p[1] - mid[1]).powi(2)).sqrt() <= radius + half
        };
        if !near(r2, ECHO_RADIUS_SENSOR_M) && !near(s2, ECHO_RADIUS_SOURCE_M) {
            continue;
        }
        let n = wall.normal;
        let ds = (s2[0] - wall.a[0]) * n[0] + (s2[1] - wall.a[1]) * n[1];
        let dr = (r2[0] - wall.a[0]) * n[0] + (r2[1] - wall.a[1]) * n[1];
        if ds <= 0.0 || dr <= 0.0 {
            continue;
        }
        let image = [s2[0] - 2.0 * ds * n[0], s2[1] - 2.0 * ds * n[1]];
        // Where image → sensor crosses the wall line: the fraction along it.
        let along = ds / (ds + dr);
        let p = [
            image[0] + (r2[0] - image[0]) * along,
            image[1] + (r2[1] - image[1]) * along,
        ];
        let edge = sub(wall.b, wall.a);
        let u = ((p[0] - wall.a[0]) * edge[0] + (p[1] - wall.a[1]) * edge[1])
            / (edge[0] * edge[0] + edge[1] * edge[1]);
        if !(0.0..=1.0).contains(&u) || cross(edge, sub(p, wall.a)).abs() > 1e-6 * (1.0 + half) {
            continue;
        }
        let z = s.z + (r.z - s.z) * along;
        if z < 0.0 || z > wall.height_m {
            continue;
        }
        let hit = Point3::new(p[0] + 0.05 * n[0], p[1] + 0.05 * n[1], z);
        if !city.clear(s, hit, cells) || !city.clear(hit, r, cells) {
            continue;
        }
        let d2 = ((r2[0] - image[0]).powi(2) + (r2[1] - image[1]).powi(2)).sqrt();
        out.push(Path {
            kind: PathKind::Echo,
            length_m: (d2 * d2 + (r.z - s.z).powi(2)).sqrt(),
            excess_m: 0.0,
            reflection: FACADE_REFLECTION,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::city::Building;

    #[test]
    fn open_ground_gives_direct_and_ground_paths() {
        let city = City::new(Vec::new());
        let mut out = Vec::new();
        let (s, r) = (Point3::new(0.0, 0.0, 1.5), Point3::new(300.0, 0.0, 20.0));
        paths(&city, s, r, &mut Scratch::default(), &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].kind, PathKind::Direct);
        assert!((out[0].length_m - s.distance(r)).abs() < 1e-9);
        assert_eq!(out[1].kind, PathKind::Ground);
        let want = (300.0f64.powi(2) + 21.5f64.powi(2)).sqrt();
        assert!((out[1].length_m - want).abs() < 1e-9);
    }

    #[test]
    fn a_wall_between_gives_the_path_over_its_top() {
        // A long, thin 20 m wall halfway: the path goes over its top edge.
        let city = City::new(vec![Building::rectangle(49.9, -1000.0, 50.1, 1000.0, 20.0)]);
        let (s, r) = (Point3::new(0.0, 0.0, 0.0), Point3::new(100.0, 0.0, 0.0));
        let mut out = Vec::new();
        paths(&city, s, r, &mut Scratch::default(), &mut out);
        let d = out
            .iter()
            .find(|p| p.kind == PathKind::Diffracted)
            .expect("diffracted");
        let want = 2.0 * (49.9f64.powi(2) + 400.0).sqrt() + 0.2;
        assert!((d.length_m - want).abs() < 1e-6, "{} vs {want}", d.length_m);
        assert!((d.excess_m - (want - 100.0)).abs() < 1e-6);
    }

    #[test]
    fn a_facade_behind_the_sensor_echoes_by_the_image_source() {
        // Wall along y = 30 facing south; source and sensor on y = 0.
        let city = City::new(vec![Building::rectangle(-500.0, 30.0, 500.0, 60.0, 25.0)]);
        let (s, r) = (Point3::new(0.0, 0.0, 2.0), Point3::new(100.0, 0.0, 2.0));
        let mut out = Vec::new();
        paths(&city, s, r, &mut Scratch::default(), &mut out);
        let e = out.iter().find(|p| p.kind == PathKind::Echo).expect("echo");
        // Image source at (0, 60): path √(100² + 60²).
        assert!((e.length_m - (100.0f64.powi(2) + 3600.0).sqrt()).abs() < 1e-6);
        assert_eq!(e.reflection, FACADE_REFLECTION);
    }

    #[test]
    fn maekawa_at_grazing_and_deep_shadow() {
        assert!((diffraction_loss_db(0.0, 1000.0, 343.0) - 10.0 * 3f64.log10()).abs() < 1e-12);
        // N = 0.25 → 10 log10(8) = 9.0 dB.
        assert!(
            (diffraction_loss_db(343.0 / 8000.0, 1000.0, 343.0) - 10.0 * 8f64.log10()).abs() < 1e-9
        );
        assert_eq!(
            diffraction_loss_db(100.0, 4000.0, 343.0),
            MAX_DIFFRACTION_DB
        );
    }
}
