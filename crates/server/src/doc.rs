//! The incident document: what the API returns, what an alert carries, what is
//! stored with every version. Its shots use CONTRACT.md §4's fields (in the
//! `wgs84` frame, with local `x`, `y`, `z` too) plus the evidence: every pulse
//! used, its arrival time and residual, and the software version.

use model::{LocalFrame, Shot, UtcNanos};
use serde::{Deserialize, Serialize};

use crate::address::Addresses;
use crate::pipeline::{self, IncidentVersion};

/// One pulse a shot used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArrivalDoc {
    pub sensor: String,
    pub pulse: String,
    pub t_utc: String,
    pub residual_ms: f64,
    pub range_m: f64,
}

/// One shot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShotDoc {
    pub t_utc: String,
    pub lat: f64,
    pub lon: f64,
    pub alt_m: f64,
    pub x: f64,
    pub y: f64,
    pub z: f64,
    pub err95_m: f64,
    pub sensors: Vec<String>,
    pub class: String,
    pub confidence: f64,
    pub arrivals: Vec<ArrivalDoc>,
    /// The horizontal 95 % error ellipse (absent from documents stored
    /// before it was added).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ellipse95: Option<EllipseDoc>,
}

/// A 95 % error ellipse: semi-axes in metres, and the major axis's azimuth in
/// degrees clockwise from north (0–180).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EllipseDoc {
    pub major_m: f64,
    pub minor_m: f64,
    pub azimuth_deg: f64,
}

/// The 95 % ellipse of a horizontal covariance (x east, y north, m²), scaled
/// like the shot's `err95_m`: the covariance's own 95 % circle is stretched
/// to `err95_m` (which carries the inflation for an estimated variance,
/// [`locate::uncertainty::variance_inflation`]), and the ellipse with it.
pub fn ellipse95(cov: [[f64; 2]; 2], err95_m: f64) -> Option<EllipseDoc> {
    let (a, b, d) = (cov[0][0], 0.5 * (cov[0][1] + cov[1][0]), cov[1][1]);
    let mean = (a + d) / 2.0;
    let spread = (((a - d) / 2.0).powi(2) + b * b).sqrt();
    let (l1, l2) = ((mean + spread).max(0.0), (mean - spread).max(0.0));
    let circle =
        locate::uncertainty::circular_radius([[a, b], [b, d]], locate::uncertainty::COVERAGE);
    if !(l1 > 0.0 && circle > 0.0 && circle.is_finite() && err95_m.is_finite()) {
        return None;
    }
    // χ²(2) at 0.95: −2 ln 0.05.
    let k = (-2.0 * 0.05f64.ln()).sqrt() * err95_m / circle;
    // The major axis's angle from east, counter-clockwise; azimuth from north, clockwise.
    let theta = 0.5 * (2.0 * b).atan2(a - d);
    let azimuth = (90.0 - theta.to_degrees()).rem_euclid(180.0);
    Some(EllipseDoc {
        major_m: round(k * l1.sqrt(), 2),
        minor_m: round(k * l2.sqrt(), 2),
        azimuth_deg: round(azimuth, 1),
    })
}

/// One incident version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentDoc {
    pub id: String,
    pub version: i64,
    pub class: String,
    pub confidence: f64,
    pub rounds: usize,
    pub shooters: usize,
    pub automatic: bool,
    pub first_utc: String,
    pub last_utc: String,
    /// Where to send officers: the first shot's position.
    pub lat: f64,
    pub lon: f64,
    pub err95_m: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_distance_m: Option<f64>,
    pub shots: Vec<ShotDoc>,
    pub software: String,
    /// A person's review, when there has been one: their decision (the fields
    /// above then carry it) and the machine's result beside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<ReviewDoc>,
    /// Where an imported incident came from (absent for the ones shotfix
    /// located itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceDoc>,
}

/// An imported alert's origin: the file, its layout, the line and the
/// file's own id and type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceDoc {
    pub file: String,
    pub layout: String,
    pub line: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The type as the file gives it (e.g. `Multiple Gunshots`).
    pub kind: String,
}

/// The machine's result, kept beside a person's changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineDoc {
    pub class: String,
    pub confidence: f64,
    pub rounds: usize,
    pub shooters: usize,
    pub lat: f64,
    pub lon: f64,
}

/// The reviewed state of an incident: the latest decision, with every
/// override any review so far has made (a later one replaces an earlier one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewDoc {
    /// `confirmed`, `reclassified`, `dismissed`, `adjusted` or `relocated`.
    pub status: String,
    /// `user:NAME` or `token:NAME`.
    pub by: String,
    pub at_utc: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounds: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shooters: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
    /// Filled in when applied ([`IncidentDoc::apply_review`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<MachineDoc>,
}

/// An alert message: a first alert, an update or a cancel, with the incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertDoc {
    /// Position in the alert feed (SSE event id); 0 until stored.
    #[serde(default)]
    pub seq: i64,
    pub kind: String,
    pub incident: IncidentDoc,
    /// When the server published it (the feeds add it; stored and webhook
    /// documents leave it out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_utc: Option<String>,
}

pub fn software() -> String {
    format!("shotfix {}", env!("CARGO_PKG_VERSION"))
}

impl IncidentDoc {
    /// The stored row of this version: its first and last shots' times, when
    /// it was made, and the document itself.
    pub fn row(&self, first_ns: i64, last_ns: i64, updated_ns: i64) -> store::IncidentRow {
        store::IncidentRow {
            id: self.id.clone(),
            version: self.version,
            first_ns,
            last_ns,
            lat: self.lat,
            lon: self.lon,
            class: self.class.clone(),
            confidence: self.confidence,
            rounds: self.rounds as i64,
            shooters: self.shooters as i64,
            automatic: self.automatic,
            updated_ns,
            doc: serde_json::to_string(self).unwrap_or_default(),
        }
    }

    /// Builds the document of an incident version.
    pub fn build(
        v: &IncidentVersion,
        frame: &LocalFrame,
        addresses: Option<&Addresses>,
    ) -> IncidentDoc {
        let shots: Vec<ShotDoc> = v.shots.iter().map(|s| shot_doc(s, frame)).collect();
        let (first, last) = (
            v.shots
                .iter()
                .map(|s| s.t_emit)
                .min()
                .unwrap_or(UtcNanos(0)),
            v.shots
                .iter()
                .map(|s| s.t_emit)
                .max()
                .unwrap_or(UtcNanos(0)),
        );
        let (lat, lon, err95_m) = shots
            .first()
            .map_or((0.0, 0.0, 0.0), |s| (s.lat, s.lon, s.err95_m));
        let nearest = addresses.and_then(|a| a.nearest(lat, lon));
        let class = match v.shots.first() {
            Some(s) => s.class,
            None => model::Class::Unknown,
        };
        IncidentDoc {
            id: v.id.clone(),
            version: v.version,
            class: class.as_str().to_string(),
            confidence: v.shots.iter().map(|s| s.confidence).fold(0.0, f64::max),
            rounds: v.shots.len(),
            shooters: v.shooters,
            automatic: v.automatic,
            first_utc: first.to_rfc3339(),
            last_utc: last.to_rfc3339(),
            lat,
            lon,
            err95_m,
            address: nearest.map(|(a, _)| a.to_string()),
            address_distance_m: nearest.map(|(_, d)| round(d, 1)),
            shots,
            software: software(),
            review: None,
            source: None,
        }
    }

    /// Puts a person's decision on the document: its overrides replace the
    /// published class, rounds, shooters and place, and the machine's result
    /// (as it was before any review) is kept beside it.
    pub fn apply_review(&mut self, review: &ReviewDoc) {
        let machine = self
            .review
            .as_ref()
            .and_then(|r| r.machine.clone())
            .unwrap_or(MachineDoc {
                class: self.class.clone(),
                confidence: self.confidence,
                rounds: self.rounds,
                shooters: self.shooters,
                lat: self.lat,
                lon: self.lon,
            });
        // Overrides apply to the machine's values, not to an earlier review's.
        self.class = review
            .class
            .clone()
            .unwrap_or_else(|| machine.class.clone());
        self.rounds = review.rounds.unwrap_or(machine.rounds);
        self.shooters = review.shooters.unwrap_or(machine.shooters);
        self.lat = review.lat.unwrap_or(machine.lat);
        self.lon = review.lon.unwrap_or(machine.lon);
        if review.lat.is_some() {
            // A place a person gave has no machine error radius, and the
            // address came from the machine's place.
            self.address = None;
            self.address_distance_m = None;
        }
        self.review = Some(ReviewDoc {
            machine: Some(machine),
            ..review.clone()
        });
    }

    /// Whether a person dismissed this incident.
    pub fn dismissed(&self) -> bool {
        self.review
            .as_ref()
            .is_some_and(|r| r.status == "dismissed")
    }

    /// The signature of the shots (see [`pipeline::signature`]).
    pub fn signature(&self) -> String {
        pipeline::shot_signature(self.shots.iter().map(|s| {
            (
                UtcNanos::parse_rfc3339(&s.t_utc).map_or(0, |t| t.0),
                s.x,
                s.y,
                s.arrivals.iter().map(|a| a.pulse.clone()).collect(),
            )
        }))
    }
}

fn shot_doc(s: &Shot, frame: &LocalFrame) -> ShotDoc {
    let g = frame.to_geodetic(s.position);
    let mut sensors: Vec<String> = s.arrivals.iter().map(|a| a.sensor.0.clone()).collect();
    sensors.sort();
    sensors.dedup();
    ShotDoc {
        t_utc: s.t_emit.to_rfc3339(),
        lat: round(g.lat_deg, 7),
        lon: round(g.lon_deg, 7),
        alt_m: round(g.alt_m, 2),
        x: round(s.position.x, 3),
        y: round(s.position.y, 3),
        z: round(s.position.z, 3),
        err95_m: round(s.err95_m, 2),
        sensors,
        class: s.class.as_str().to_string(),
        confidence: s.confidence,
        arrivals: s
            .arrivals
            .iter()
            .map(|a| ArrivalDoc {
                sensor: a.sensor.0.clone(),
                pulse: a.pulse.0.clone(),
                t_utc: a.t.to_rfc3339(),
                residual_ms: round(a.residual_s * 1e3, 3),
                range_m: round(a.range_m, 1),
            })
            .collect(),
        ellipse95: ellipse95(
            [
                [s.covariance_m2[0][0], s.covariance_m2[0][1]],
                [s.covariance_m2[1][0], s.covariance_m2[1][1]],
            ],
            s.err95_m,
        ),
    }
}

fn round(v: f64, digits: i32) -> f64 {
    let k = 10f64.powi(digits);
    (v * k).round() / k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ellipse_takes_its_axes_from_the_covariance_and_its_size_from_err95() {
        // σ = 4 m east, 1 m north: the major axis points east (azimuth 90°).
        let cov = [[16.0, 0.0], [0.0, 1.0]];
        let circle = locate::uncertainty::circular_radius(cov, 0.95);
        let e = ellipse95(cov, circle).unwrap();
        let k = (-2.0 * 0.05f64.ln()).sqrt();
        assert!((e.major_m - 4.0 * k).abs() < 0.01, "{e:?}");
        assert!((e.minor_m - k).abs() < 0.01, "{e:?}");
        assert!((e.azimuth_deg - 90.0).abs() < 0.1, "{e:?}");
        // Doubling err95 (an inflated variance) doubles the ellipse.
        let wide = ellipse95(cov, 2.0 * circle).unwrap();
        assert!((wide.major_m - 2.0 * e.major_m).abs() < 0.02);
        // Rotated 45° toward north-east: the azimuth says so.
        let (a, b) = (8.5, 7.5); // eigenvalues 16 and 1 along (1, 1)/√2 and (1, −1)/√2
        let ne = ellipse95([[a, b], [b, a]], circle).unwrap();
        assert!((ne.azimuth_deg - 45.0).abs() < 0.1, "{ne:?}");
        assert!((ne.major_m - e.major_m).abs() < 0.02);
        // Nothing to draw from a zero or broken covariance.
        assert_eq!(ellipse95([[0.0, 0.0], [0.0, 0.0]], 1.0), None);
        assert_eq!(ellipse95([[f64::NAN, 0.0], [0.0, 1.0]], 1.0), None);
    }
}
