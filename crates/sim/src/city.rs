//! The built environment: buildings as convex 2-D footprints with a height, on
//! flat ground at z = 0, and a generator of street-grid cities.
//!
//! Buildings block the straight line of sight (then sound goes over the roof or
//! around a corner, see [`crate::propagation`]) and their facades reflect it.

use model::Point3;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// A building: a convex footprint, counter-clockwise, and a flat roof.
#[derive(Debug, Clone, PartialEq)]
pub struct Building {
    pub footprint: Vec<[f64; 2]>,
    pub height_m: f64,
}

impl Building {
    /// An axis-aligned rectangular building.
    pub fn rectangle(x0: f64, y0: f64, x1: f64, y1: f64, height_m: f64) -> Building {
        Building {
            footprint: vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1]],
            height_m,
        }
    }

    /// The centre of the footprint (vertex mean; exact for rectangles).
    pub fn centre(&self) -> [f64; 2] {
        let n = self.footprint.len() as f64;
        let (sx, sy) = self
            .footprint
            .iter()
            .fold((0.0, 0.0), |(sx, sy), p| (sx + p[0], sy + p[1]));
        [sx / n, sy / n]
    }

    /// Is the footprint a convex, counter-clockwise polygon with finite corners?
    pub fn is_valid(&self) -> bool {
        let n = self.footprint.len();
        if n < 3 || !self.height_m.is_finite() || self.height_m <= 0.0 {
            return false;
        }
        (0..n).all(|i| {
            let (a, b, c) = (
                self.footprint[i],
                self.footprint[(i + 1) % n],
                self.footprint[(i + 2) % n],
            );
            a[0].is_finite() && a[1].is_finite() && cross(sub(b, a), sub(c, b)) > 0.0
        })
    }

    /// The parameter interval [t_in, t_out] ⊂ [0, 1] over which the 2-D segment
    /// p → q lies inside the footprint (Cyrus–Beck clipping), if any.
    pub fn clip(&self, p: [f64; 2], q: [f64; 2]) -> Option<(f64, f64)> {
        let d = sub(q, p);
        let (mut t_in, mut t_out) = (0.0f64, 1.0f64);
        let n = self.footprint.len();
        for i in 0..n {
            let a = self.footprint[i];
            let b = self.footprint[(i + 1) % n];
            let edge = sub(b, a);
            // Inside is to the left of every edge: cross(edge, x − a) ≥ 0.
            let num = cross(edge, sub(p, a));
            let den = cross(edge, d);
            if den == 0.0 {
                if num < 0.0 {
                    return None;
                }
                continue;
            }
            let t = -num / den;
            if den > 0.0 {
                t_in = t_in.max(t);
            } else {
                t_out = t_out.min(t);
            }
            if t_in > t_out {
                return None;
            }
        }
        (t_out - t_in > 1e-9).then_some((t_in, t_out))
    }
}

/// One facade: a footprint edge with the building's height. `normal` points out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Wall {
    pub a: [f64; 2],
    pub b: [f64; 2],
    pub normal: [f64; 2],
    pub height_m: f64,
    pub building: usize,
}

/// Buildings with a uniform grid over them for fast line-of-sight queries.
#[derive(Debug, Clone)]
pub struct City {
    buildings: Vec<Building>,
    walls: Vec<Wall>,
    origin: [f64; 2],
    cell_m: f64,
    cols: usize,
    rows: usize,
    /// Per cell: indices of the buildings whose bounding box touches it.
    cells: Vec<Vec<u32>>,
}

/// Grid cell size, metres: about one city block.
const CELL_M: f64 = 50.0;

impl City {
    /// Indexes `buildings`, which must be valid (see [`Building::is_valid`]).
    pub fn new(buildings: Vec<Building>) -> City {
        let mut lo = [f64::INFINITY; 2];
        let mut hi = [f64::NEG_INFINITY; 2];
        for b in &buildings {
            for p in &b.footprint {
                for k in 0..2 {
                    lo[k] = lo[k].min(p[k]);
                    hi[k] = hi[k].max(p[k]);
                }
            }
        }
        if buildings.is_empty() {
            lo = [0.0, 0.0];
            hi = [0.0, 0.0];
        }
        let cols = (((hi[0] - lo[0]) / CELL_M).ceil() as usize).max(1);
        let rows = (((hi[1] - lo[1]) / CELL_M).ceil() as usize).max(1);
        let mut cells = vec![Vec::new(); cols * rows];
        let mut walls = Vec::new();
        for (i, b) in buildings.iter().enumerate() {
            let (mut bl, mut bh) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
            for p in &b.footprint {
                for k in 0..2 {
                    bl[k] = bl[k].min(p[k]);
                    bh[k] = bh[k].max(p[k]);
                }
            }
            let c0 = (((bl[0] - lo[0]) / CELL_M).floor() as usize).min(cols - 1);
            let c1 = (((bh[0] - lo[0]) / CELL_M).floor() as usize).min(cols - 1);
            let r0 = (((bl[1] - lo[1]) / CELL_M).floor() as usize).min(rows - 1);
            let r1 = (((bh[1] - lo[1]) / CELL_M).floor() as usize).min(rows - 1);
            for r in r0..=r1 {
                for c in c0..=c1 {
                    cells[r * cols + c].push(i as u32);
                }
            }
            let n = b.footprint.len();
            for k in 0..n {
                let (a, e) = (b.footprint[k], b.footprint[(k + 1) % n]);
                let d = sub(e, a);
                let len = (d[0] * d[0] + d[1] * d[1]).sqrt();
                walls.push(Wall {
                    a,
                    b: e,
                    normal: [d[1] / len, -d[0] / len],
                    height_m: b.height_m,
                    building: i,
                });
            }
        }
        City {
            buildings,
            walls,
            origin: lo,
            cell_m: CELL_M,
            cols,
            rows,
            cells,
        }
    }

    pub fn buildings(&self) -> &[Building] {
        &self.buildings
    }

    pub fn walls(&self) -> &[Wall] {
        &self.walls
    }

    /// Buildings whose grid cells the 2-D segment p → q passes through (a
    /// superset of those it crosses), each once, in `out`.
    pub fn candidates(&self, p: [f64; 2], q: [f64; 2], out: &mut Vec<u32>) {
        out.clear();
        if self.buildings.is_empty() {
            return;
        }
        // Walk the cells along the segment (Amanatides & Woo 1987).
        let to_cell = |v: f64, lo: f64, n: usize| {
            ((v - lo) / self.cell_m).floor().clamp(-1.0, n as f64) as i64
        };
        let (mut cx, mut cy) = (
            to_cell(p[0], self.origin[0], self.cols),
            to_cell(p[1], self.origin[1], self.rows),
        );
        let (ex, ey) = (
            to_cell(q[0], self.origin[0], self.cols),
            to_cell(q[1], self.origin[1], self.rows),
        );
        let d = sub(q, p);
        let step_x = if d[0] > 0.0 { 1 } else { -1 };
        let step_y = if d[1] > 0.0 { 1 } else { -1 };
        let next_boundary =
            |c: i64, step: i64, lo: f64| lo + (c + i64::from(step > 0)) as f64 * self.cell_m;
        let mut t_max_x = if d[0] != 0.0 {
            (next_boundary(cx, step_x, self.origin[0]) - p[0]) / d[0]
        } else {
            f64::INFINITY
        };
        let mut t_max_y = if d[1] != 0.0 {
            (next_boundary(cy, step_y, self.origin[1]) - p[1]) / d[1]
        } else {
            f64::INFINITY
        };
        let t_delta_x = if d[0] != 0.0 {
            self.cell_m / d[0].abs()
        } else {
            f64::INFINITY
        };
        let t_delta_y = if d[1] != 0.0 {
            self.cell_m / d[1].abs()
        } else {
            f64::INFINITY
        };
        let max_steps = self.cols + self.rows + 4;
        for _ in 0..max_steps {
            if cx >= 0 && cy >= 0 && (cx as usize) < self.cols && (cy as usize) < self.rows {
                out.extend_from_slice(&self.cells[cy as usize * self.cols + cx as usize]);
            }
            if (cx, cy) == (ex, ey) || (t_max_x > 1.0 && t_max_y > 1.0) {
                break;
            }
            if t_max_x < t_max_y {
                cx += step_x;
                t_max_x += t_delta_x;
            } else {
                cy += step_y;
                t_max_y += t_delta_y;
            }
        }
        out.sort_unstable();
        out.dedup();
    }

    /// The buildings the 3-D segment p → q passes through: for each, the 2-D
    /// distances from p where the segment enters and leaves the footprint, and the
    /// height. A building is crossed when the segment is below its roof anywhere
    /// over the footprint (z is linear along the segment, so checking the entry
    /// and exit suffices).
    pub fn obstacles(
        &self,
        p: Point3,
        q: Point3,
        scratch: &mut Vec<u32>,
        out: &mut Vec<(f64, f64, f64)>,
    ) {
        out.clear();
        let (p2, q2) = ([p.x, p.y], [q.x, q.y]);
        let length = p.distance_2d(q);
        self.candidates(p2, q2, scratch);
        for &i in scratch.iter() {
            let b = &self.buildings[i as usize];
            if let Some((t0, t1)) = b.clip(p2, q2) {
                let z0 = p.z + (q.z - p.z) * t0;
                let z1 = p.z + (q.z - p.z) * t1;
                if z0.min(z1) < b.height_m {
                    out.push((t0 * length, t1 * length, b.height_m));
                }
            }
        }
        out.sort_by(|a, b| a.0.total_cmp(&b.0));
    }

    /// Is the 3-D segment p → q free of buildings?
    pub fn clear(&self, p: Point3, q: Point3, scratch: &mut Vec<u32>) -> bool {
        let (p2, q2) = ([p.x, p.y], [q.x, q.y]);
        self.candidates(p2, q2, scratch);
        scratch.iter().all(|&i| {
            let b = &self.buildings[i as usize];
            match b.clip(p2, q2) {
                Some((t0, t1)) => {
                    let z0 = p.z + (q.z - p.z) * t0;
                    let z1 = p.z + (q.z - p.z) * t1;
                    z0.min(z1) >= b.height_m
                }
                None => true,
            }
        })
    }

    /// The index of the building whose footprint contains (x, y), if any.
    pub fn building_at(&self, x: f64, y: f64) -> Option<usize> {
        let c = ((x - self.origin[0]) / self.cell_m).floor();
        let r = ((y - self.origin[1]) / self.cell_m).floor();
        if c < 0.0 || r < 0.0 || c as usize >= self.cols || r as usize >= self.rows {
            return None;
        }
        self.cells[r as usize * self.cols + c as usize]
            .iter()
            .map(|&i| i as usize)
            .find(|&i| {
                let f = &self.buildings[i].footprint;
                let n = f.len();
                (0..n).all(|k| cross(sub(f[(k + 1) % n], f[k]), sub([x, y], f[k])) >= 0.0)
            })
    }
}

/// A street-grid city: square blocks separated by streets, each block holding one
/// to four buildings with set-backs, heights drawn log-uniformly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CityPlan {
    /// Extent east–west and north–south, metres, centred on the origin.
    pub width_m: f64,
    pub depth_m: f64,
    /// Block pitch (block plus one street), metres. Pittsburgh's downtown and
    /// many US grids have 80–120 m pitches.
    pub block_m: f64,
    /// Street width, façade to façade, metres (a two-lane street with sidewalks is 15–25 m).
    pub street_m: f64,
    pub min_height_m: f64,
    pub max_height_m: f64,
}

impl CityPlan {
    /// The streets' centre lines (local metres), each from one end of the
    /// grid to the other: they run between the blocks [`CityPlan::generate`]
    /// fills, on every block boundary.
    pub fn streets(&self) -> Vec<[[f64; 2]; 2]> {
        let nx = (self.width_m / self.block_m).floor().max(1.0) as usize;
        let ny = (self.depth_m / self.block_m).floor().max(1.0) as usize;
        let (x0, y0) = (
            -(nx as f64) * self.block_m / 2.0,
            -(ny as f64) * self.block_m / 2.0,
        );
        let (x1, y1) = (-x0, -y0);
        let mut out = Vec::with_capacity(nx + ny + 2);
        for i in 0..=nx {
            let x = x0 + i as f64 * self.block_m;
            out.push([[x, y0], [x, y1]]);
        }
        for j in 0..=ny {
            let y = y0 + j as f64 * self.block_m;
            out.push([[x0, y], [x1, y]]);
        }
        out
    }

    /// Builds the city deterministically from `rng`.
    pub fn generate(&self, rng: &mut ChaCha8Rng) -> Vec<Building> {
        let mut out = Vec::new();
        let nx = (self.width_m / self.block_m).floor().max(1.0) as usize;
        let ny = (self.depth_m / self.block_m).floor().max(1.0) as usize;
        let x_start = -(nx as f64) * self.block_m / 2.0;
        let y_start = -(ny as f64) * self.block_m / 2.0;
        let lot = self.block_m - self.street_m;
        for j in 0..ny {
            for i in 0..nx {
                let bx = x_start + i as f64 * self.block_m + self.street_m / 2.0;
                let by = y_start + j as f64 * self.block_m + self.street_m / 2.0;
                // Split the block into 1 × 1, 1 × 2, 2 × 1 or 2 × 2 lots.
                let sx = rng.gen_range(1..=2usize);
                let sy = rng.gen_range(1..=2usize);
                let (w, h) = (lot / sx as f64, lot / sy as f64);
                for a in 0..sx {
                    for b in 0..sy {
                        // A few lots stay empty (parking, yards).
                        if rng.gen_bool(0.1) {
                            continue;
                        }
                        let setback = rng.gen_range(0.0..(0.15 * w.min(h)));
                        let x0 = bx + a as f64 * w + setback;
                        let y0 = by + b as f64 * h + setback;
                        let x1 = bx + (a + 1) as f64 * w - setback;
                        let y1 = by + (b + 1) as f64 * h - setback;
                        let (ln0, ln1) = (self.min_height_m.ln(), self.max_height_m.ln());
                        let height = if ln1 > ln0 {
                            rng.gen_range(ln0..ln1).exp()
                        } else {
                            self.min_height_m
                        };
                        out.push(Building::rectangle(x0, y0, x1, y1, height));
                    }
                }
            }
        }
        out
    }
}

pub(crate) fn sub(a: [f64; 2], b: [f64; 2]) -> [f64; 2] {
    [a[0] - b[0], a[1] - b[1]]
}

pub(crate) fn cross(a: [f64; 2], b: [f64; 2]) -> f64 {
    a[0] * b[1] - a[1] * b[0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn clipping_a_square() {
        let b = Building::rectangle(0.0, 0.0, 10.0, 10.0, 5.0);
        assert!(b.is_valid());
        let (t0, t1) = b.clip([-10.0, 5.0], [20.0, 5.0]).expect("crosses");
        assert!((t0 - 1.0 / 3.0).abs() < 1e-12 && (t1 - 2.0 / 3.0).abs() < 1e-12);
        assert!(b.clip([-10.0, 15.0], [20.0, 15.0]).is_none());
        assert!(b.clip([-10.0, 5.0], [-1.0, 5.0]).is_none());
    }

    #[test]
    fn line_of_sight_over_and_through() {
        let city = City::new(vec![Building::rectangle(40.0, -10.0, 60.0, 10.0, 20.0)]);
        let mut scratch = Vec::new();
        assert!(!city.clear(
            Point3::new(0.0, 0.0, 1.5),
            Point3::new(100.0, 0.0, 1.5),
            &mut scratch
        ));
        assert!(city.clear(
            Point3::new(0.0, 0.0, 30.0),
            Point3::new(100.0, 0.0, 30.0),
            &mut scratch
        ));
        assert!(city.clear(
            Point3::new(0.0, 20.0, 1.5),
            Point3::new(100.0, 20.0, 1.5),
            &mut scratch
        ));
        assert_eq!(city.building_at(50.0, 0.0), Some(0));
        assert_eq!(city.building_at(30.0, 0.0), None);
    }

    #[test]
    fn grid_walk_finds_every_crossed_building() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let plan = CityPlan {
            width_m: 800.0,
            depth_m: 600.0,
            block_m: 100.0,
            street_m: 20.0,
            min_height_m: 6.0,
            max_height_m: 40.0,
        };
        let city = City::new(plan.generate(&mut rng));
        assert!(city.buildings().iter().all(Building::is_valid));
        // The streets run between the buildings: no street centre line
        // crosses a building.
        let streets = plan.streets();
        assert_eq!(streets.len(), 8 + 1 + 6 + 1);
        for b in city.buildings() {
            for [p, q] in &streets {
                assert!(b.clip(*p, *q).is_none(), "{b:?} is crossed by {p:?}–{q:?}");
            }
        }
        let mut scratch = Vec::new();
        for _ in 0..500 {
            let p = [rng.gen_range(-450.0..450.0), rng.gen_range(-350.0..350.0)];
            let q = [rng.gen_range(-450.0..450.0), rng.gen_range(-350.0..350.0)];
            city.candidates(p, q, &mut scratch);
            for (i, b) in city.buildings().iter().enumerate() {
                if b.clip(p, q).is_some() {
                    assert!(
                        scratch.contains(&(i as u32)),
                        "{p:?} → {q:?} misses building {i}"
                    );
                }
            }
        }
    }
}
