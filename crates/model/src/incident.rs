//! Located shots and the incidents they form.
//!
//! Guarantee: every located [`Shot`] carries its covariance and the evidence it was
//! computed from: the pulses used and each one's residual against the solution.

use serde::{Deserialize, Serialize};

use crate::{Point3, PulseId, SensorId, UtcNanos};

/// What an incident or shot is judged to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    Gunfire,
    ProbableGunfire,
    Fireworks,
    Other,
    /// No evidence to classify (for example, pulses without audio features).
    Unknown,
}

impl Class {
    /// The name used in JSON and CAP (`gunfire`, `probable_gunfire`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Gunfire => "gunfire",
            Class::ProbableGunfire => "probable_gunfire",
            Class::Fireworks => "fireworks",
            Class::Other => "other",
            Class::Unknown => "unknown",
        }
    }
}

/// One pulse used by a shot's solution, with its residual.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShotArrival {
    pub pulse: PulseId,
    pub sensor: SensorId,
    pub t: UtcNanos,
    /// Measured minus predicted arrival time, seconds.
    pub residual_s: f64,
    /// Horizontal distance from the solution to the sensor, metres.
    pub range_m: f64,
    /// The weight the robust solver gave this arrival, 0..=1.
    pub weight: f64,
}

/// One located discharge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shot {
    /// Estimated emission (discharge) time.
    pub t_emit: UtcNanos,
    pub position: Point3,
    /// Covariance of (x, y, z), m².
    pub covariance_m2: [[f64; 3]; 3],
    /// Standard deviation of the emission time, seconds.
    pub t_sigma_s: f64,
    /// Radius of the 95 % horizontal confidence region, metres.
    pub err95_m: f64,
    /// Robust RMS of the arrival-time residuals, seconds.
    pub rms_residual_s: f64,
    /// The arrivals used, in the order of their arrival times.
    pub arrivals: Vec<ShotArrival>,
    pub class: Class,
    pub confidence: f64,
    /// The bullet's speed, m/s, when its shockwave was heard (a supersonic
    /// bullet); `None` when no shockwave fitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bullet_speed_m_s: Option<f64>,
}

/// The class of firearm, as its bullet's shockwave shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeaponClass {
    /// A supersonic handgun bullet (350–575 m/s).
    Handgun,
    /// A rifle bullet (575 m/s and faster).
    Rifle,
}

impl WeaponClass {
    pub fn as_str(self) -> &'static str {
        match self {
            WeaponClass::Handgun => "handgun",
            WeaponClass::Rifle => "rifle",
        }
    }
}

impl Shot {
    pub fn sensor_count(&self) -> usize {
        self.arrivals.len()
    }
}

/// Shots close in space and time, reported together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Stable for the same input: derived from the pulses used.
    pub id: String,
    pub class: Class,
    pub confidence: f64,
    pub rounds: usize,
    pub shooters: usize,
    pub automatic: bool,
    /// From the shots' bullet speeds, when a shockwave showed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weapon_class: Option<WeaponClass>,
    /// In time order.
    pub shots: Vec<Shot>,
}
