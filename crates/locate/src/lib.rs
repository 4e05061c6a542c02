//! The locate engine: from pulse arrival times reported by many sensors, find the
//! shots and locate each one with an honest uncertainty.
//!
//! The pipeline, left to right:
//! 1. [`PulseSet`] validates the input (known sensors, finite values, unique ids).
//! 2. [`associate`] finds mutually consistent sets of pulses, one per shot, and
//!    rejects echoes and noise (about two thirds of all pulses around a real shot).
//! 3. [`solve`] fits emission time and 3-D position to each set, robustly, and
//!    gives the covariance, `err95_m` and per-sensor residuals.
//!    [`significance`] rejects sets that chance alignments of echoes and noise
//!    would explain.
//! 4. [`incident`] groups shots close in space and time and counts shooters.
//!
//! Architecture Invariant: no I/O, no clock, no async runtime. The same input
//! always gives the same output, bit for bit.

pub mod associate;
pub mod config;
pub mod incident;
pub mod input;
pub mod medium;
pub mod plan;
pub mod shock;
pub mod significance;
pub mod solve;
pub mod start;
pub mod uncertainty;

pub use config::LocateConfig;
pub use input::{InputError, PulseSet};
pub use medium::Medium;

use model::Incident;

/// Everything [`locate`] found, with counts for diagnostics.
#[derive(Debug, Clone)]
pub struct LocateOutput {
    pub incidents: Vec<Incident>,
    /// Pulses that no shot used (echoes, noise, or shots too weakly heard to locate).
    pub unused_pulses: usize,
}

/// Runs association, solving and incident building on one set of pulses.
pub fn locate(pulses: &PulseSet, medium: &Medium, config: &LocateConfig) -> LocateOutput {
    let mut found = associate::find_shots(pulses, medium, config);
    let speeds: Vec<Option<f64>> = {
        let used: std::collections::HashSet<&model::PulseId> = found
            .iter()
            .flat_map(|s| s.arrivals.iter().map(|a| &a.pulse))
            .collect();
        found
            .iter()
            .map(|shot| shock::bullet_speed_m_s(pulses, medium, shot, &used))
            .collect()
    };
    for (shot, speed) in found.iter_mut().zip(speeds) {
        shot.bullet_speed_m_s = speed;
    }
    let used: usize = found.iter().map(|s| s.arrivals.len()).sum();
    let incidents = incident::build_incidents(found, config);
    LocateOutput {
        incidents,
        unused_pulses: pulses.pulses().len() - used,
    }
}
