//! Domain types shared by every shotfix crate: time, positions, sensors, pulses,
//! shots and incidents, plus the geodesy and acoustics they need.
//!
//! Architecture Invariant: this crate does no I/O, never reads the clock and
//! does not depend on an async runtime. Everything here is plain data and pure
//! functions, so the algorithmic core built on it is deterministic.

pub mod acoustics;
pub mod geo;
pub mod incident;
pub mod pulse;
pub mod time;
pub mod truth;

pub use acoustics::{speed_of_sound_m_s, Weather};
pub use geo::{Geodetic, LocalFrame, Point3};
pub use incident::{Class, Incident, Shot, ShotArrival, WeaponClass};
pub use pulse::{Pulse, PulseId, Sensor, SensorId};
pub use time::UtcNanos;
pub use truth::TruthEvent;
