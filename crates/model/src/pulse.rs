//! Sensors and the pulses they report.
//!
//! A pulse is one impulsive arrival reported by one sensor: when it started and,
//! where known, how loud it was. Most pulses around a real shot are echoes or
//! unrelated noise; deciding which ones belong together is the locate engine's job.

use serde::{Deserialize, Serialize};

use crate::{Point3, UtcNanos};

/// A sensor's stable name, such as its serial number (`SCP-00-BNG-5567`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SensorId(pub String);

/// A pulse's id, unique within one input (a UUID from the sensor, or a derived name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PulseId(pub String);

/// A sensor and its position in the local frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sensor {
    pub id: SensorId,
    pub position: Point3,
}

/// One impulsive arrival at one sensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pulse {
    pub id: PulseId,
    pub sensor: SensorId,
    /// Onset (start of the pulse), UTC.
    pub t: UtcNanos,
    pub snr_db: Option<f64>,
    /// Peak or pulse power level at the sensor, dB SPL, when the sensor is calibrated.
    pub level_db_spl: Option<f64>,
}

impl std::fmt::Display for SensorId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for PulseId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
