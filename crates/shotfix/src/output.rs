//! The JSON document `locate` prints (CONTRACT.md §4): the versioned wire form of
//! located incidents, kept apart from the domain types.
//!
//! Beyond the contract's fields each shot carries its evidence: every pulse used
//! with its residual and robust weight, the RMS residual and the covariance, and the
//! document names the software version and the speed of sound used, so a result
//! can be re-derived by anyone.

use std::fmt::Write as _;

use formats::{Frame, LocateInput};
use locate::{LocateOutput, Medium};
use model::{Class, Point3};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Document {
    pub frame: &'static str,
    pub incidents: Vec<IncidentOut>,
    pub software: String,
    pub speed_of_sound_m_s: f64,
    pub wind_m_s: [f64; 2],
    pub pulses_total: usize,
    pub pulses_unused: usize,
}

#[derive(Debug, Serialize)]
pub struct IncidentOut {
    pub id: String,
    pub class: Class,
    pub confidence: f64,
    pub rounds: usize,
    pub shooters: usize,
    pub automatic: bool,
    /// `rifle` or `handgun` when a bullet's shockwave showed it (extension of
    /// CONTRACT.md §4: absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weapon_class: Option<model::WeaponClass>,
    pub shots: Vec<ShotOut>,
}

#[derive(Debug, Serialize)]
pub struct ShotOut {
    pub t_utc: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alt_m: Option<f64>,
    pub x: f64,
    pub y: f64,
    pub z: f64,
    pub err95_m: f64,
    pub sensors: Vec<String>,
    pub class: Class,
    pub confidence: f64,
    pub t_sigma_ms: f64,
    pub rms_residual_ms: f64,
    /// Covariance of (x, y, z), m².
    pub covariance_m2: [[f64; 3]; 3],
    pub arrivals: Vec<ArrivalOut>,
}

#[derive(Debug, Serialize)]
pub struct ArrivalOut {
    pub sensor: String,
    pub pulse: String,
    pub t_utc: String,
    pub residual_ms: f64,
    pub weight: f64,
    pub range_m: f64,
}

fn round(v: f64, decimals: i32) -> f64 {
    let k = 10f64.powi(decimals);
    (v * k).round() / k
}

pub fn document(input: &LocateInput, medium: &Medium, out: &LocateOutput) -> Document {
    let (frame, geo) = match input.frame {
        Frame::Local { .. } => ("local", None),
        Frame::Wgs84 { frame } => ("wgs84", Some(frame)),
    };
    let incidents = out
        .incidents
        .iter()
        .map(|inc| IncidentOut {
            id: inc.id.clone(),
            class: inc.class,
            confidence: inc.confidence,
            rounds: inc.rounds,
            shooters: inc.shooters,
            automatic: inc.automatic,
            weapon_class: inc.weapon_class,
            shots: inc
                .shots
                .iter()
                .map(|s| {
                    let p: Point3 = s.position;
                    let g = geo.map(|f| f.to_geodetic(p));
                    ShotOut {
                        t_utc: s.t_emit.to_rfc3339(),
                        lat: g.map(|g| round(g.lat_deg, 7)),
                        lon: g.map(|g| round(g.lon_deg, 7)),
                        alt_m: g.map(|g| round(g.alt_m, 2)),
                        x: round(p.x, 3),
                        y: round(p.y, 3),
                        z: round(p.z, 3),
                        err95_m: round(s.err95_m, 2),
                        sensors: s.arrivals.iter().map(|a| a.sensor.0.clone()).collect(),
                        class: s.class,
                        confidence: s.confidence,
                        t_sigma_ms: round(s.t_sigma_s * 1e3, 3),
                        rms_residual_ms: round(s.rms_residual_s * 1e3, 3),
                        covariance_m2: s.covariance_m2.map(|row| row.map(|v| round(v, 4))),
                        arrivals: s
                            .arrivals
                            .iter()
                            .map(|a| ArrivalOut {
                                sensor: a.sensor.0.clone(),
                                pulse: a.pulse.0.clone(),
                                t_utc: a.t.to_rfc3339(),
                                residual_ms: round(a.residual_s * 1e3, 3),
                                weight: round(a.weight, 3),
                                range_m: round(a.range_m, 1),
                            })
                            .collect(),
                    }
                })
                .collect(),
        })
        .collect();
    Document {
        frame,
        incidents,
        software: concat!("shotfix ", env!("CARGO_PKG_VERSION")).to_owned(),
        speed_of_sound_m_s: round(medium.speed_of_sound_m_s, 3),
        wind_m_s: medium.wind_m_s.map(|v| round(v, 3)),
        pulses_total: input.pulses.len(),
        pulses_unused: out.unused_pulses,
    }
}

/// A table for people.
pub fn table(doc: &Document) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} incident(s); {} of {} pulses unused; c = {} m/s",
        doc.incidents.len(),
        doc.pulses_unused,
        doc.pulses_total,
        doc.speed_of_sound_m_s
    );
    for inc in &doc.incidents {
        let _ = writeln!(
            s,
            "\nincident {}  rounds {}  shooters {}  {} ({:.2})",
            inc.id,
            inc.rounds,
            inc.shooters,
            inc.class.as_str(),
            inc.confidence
        );
        let _ = writeln!(
            s,
            "  {:<28} {:>12} {:>12} {:>9} {:>8} {:>8} {:>8}",
            "t_utc", "x", "y", "z", "err95_m", "sensors", "rms_ms"
        );
        for shot in &inc.shots {
            let _ = writeln!(
                s,
                "  {:<28} {:>12.2} {:>12.2} {:>9.2} {:>8.2} {:>8} {:>8.2}",
                shot.t_utc,
                shot.x,
                shot.y,
                shot.z,
                shot.err95_m,
                shot.sensors.len(),
                shot.rms_residual_ms
            );
        }
    }
    s
}
