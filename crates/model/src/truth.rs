//! Ground truth of a simulated scene (`truth.json`, CONTRACT.md §5): what really
//! happened. Written by the simulator and read only by evaluation code.

use serde::{Deserialize, Serialize};

use crate::{Point3, UtcNanos};

/// One impulse that really happened: a round fired, a firecracker, a door slammed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthEvent {
    /// When it left the source (for a gunshot, the muzzle blast), UTC.
    pub t: UtcNanos,
    pub position: Point3,
    /// `gunshot`, `firecracker`, `aerial_firework`, `door_slam`, `backfire`, …
    pub kind: String,
    pub weapon: Option<String>,
    /// Which shooter (gunshots) or which source, numbered from 1 within a scene.
    pub shooter: Option<u32>,
}

impl TruthEvent {
    pub fn is_gunshot(&self) -> bool {
        self.kind == "gunshot"
    }
}
