//! The nearest address to a shot, from a CSV of address points (`address,lat,lon`
//! header; an OpenStreetMap extract converted to points, or a city's own address
//! file). Without one, alerts carry coordinates only.

use std::path::Path;

/// Address points, bucketed by a grid of about 200 m so a lookup reads a few
/// cells instead of the whole city.
#[derive(Debug, Clone)]
pub struct Addresses {
    points: Vec<(String, f64, f64)>,
    grid: std::collections::HashMap<(i64, i64), Vec<usize>>,
}

/// Grid cell size, degrees of latitude (≈ 220 m).
const CELL_DEG: f64 = 0.002;
/// An address farther than this is not "the address" of a shot, metres.
const MAX_DISTANCE_M: f64 = 500.0;

fn cell(lat: f64, lon: f64) -> (i64, i64) {
    (
        (lat / CELL_DEG).floor() as i64,
        (lon / CELL_DEG).floor() as i64,
    )
}

/// Great-circle distance, metres (haversine on a 6,371 km sphere; < 0.5 % off).
pub fn distance_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let (dp, dl) = (p2 - p1, (lon2 - lon1).to_radians());
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6_371_000.0 * a.sqrt().asin()
}

impl Addresses {
    /// Reads the CSV. Rows with a bad latitude or longitude are an error naming the row.
    pub fn load(path: &Path) -> Result<Addresses, String> {
        let mut reader =
            csv::Reader::from_path(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let headers = reader
            .headers()
            .map_err(|e| format!("{}: {e}", path.display()))?
            .clone();
        let col = |name: &str| {
            headers
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    format!(
                        "{}: no '{name}' column (need address,lat,lon)",
                        path.display()
                    )
                })
        };
        let (ca, clat, clon) = (col("address")?, col("lat")?, col("lon")?);
        let mut points = Vec::new();
        for (i, row) in reader.records().enumerate() {
            let row = row.map_err(|e| format!("{}: {e}", path.display()))?;
            let num = |c: usize| row.get(c).and_then(|v| v.trim().parse::<f64>().ok());
            match (row.get(ca), num(clat), num(clon)) {
                (Some(a), Some(lat), Some(lon))
                    if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) =>
                {
                    points.push((a.trim().to_string(), lat, lon))
                }
                _ => {
                    return Err(format!(
                        "{}: row {}: need an address and a valid lat, lon",
                        path.display(),
                        i + 2
                    ))
                }
            }
        }
        Ok(Addresses::new(points))
    }

    pub fn new(points: Vec<(String, f64, f64)>) -> Addresses {
        let mut grid: std::collections::HashMap<(i64, i64), Vec<usize>> = Default::default();
        for (i, (_, lat, lon)) in points.iter().enumerate() {
            grid.entry(cell(*lat, *lon)).or_default().push(i);
        }
        Addresses { points, grid }
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The nearest address within 500 m, and its distance in metres.
    pub fn nearest(&self, lat: f64, lon: f64) -> Option<(&str, f64)> {
        let (cy, cx) = cell(lat, lon);
        // Cells are ≥ 0.002° × cos(lat) wide; three rings cover 500 m up to ~60° N.
        let ring = 3;
        let mut best: Option<(usize, f64)> = None;
        for dy in -ring..=ring {
            for dx in -ring..=ring {
                for &i in self.grid.get(&(cy + dy, cx + dx)).map_or(&[][..], |v| v) {
                    let (_, plat, plon) = &self.points[i];
                    let d = distance_m(lat, lon, *plat, *plon);
                    if d <= MAX_DISTANCE_M && best.is_none_or(|(_, bd)| d < bd) {
                        best = Some((i, d));
                    }
                }
            }
        }
        best.map(|(i, d)| (self.points[i].0.as_str(), d))
    }
}
