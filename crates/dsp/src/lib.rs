//! Sensor DSP: turn mono audio into precisely timed, well-described pulses.
//!
//! The pipeline, per sample, in [`Detector`]:
//!
//! 1. A second-order Butterworth high-pass ([`filter::Biquad`]) removes wind and
//!    traffic rumble below the muzzle-blast band.
//! 2. A 1 ms short-term energy follows the filtered signal; an adaptive noise
//!    floor (a running median of that energy, [`floor::QuantileTracker`]) says
//!    what "quiet" is right now.
//! 3. A pulse triggers when the short-term energy rises a fixed number of
//!    decibels above the floor, and ends when it has stayed near the floor for a
//!    hold time.
//! 4. The onset is picked on the filtered waveform before the trigger with the
//!    Akaike information criterion (the sample where a quiet segment turns into a
//!    loud one) and refined to a fraction of a sample by a parabola through the
//!    criterion's minimum.
//! 5. When the pulse is over, [`features`] describes it: levels, SNR, rise time,
//!    positive-phase duration, decay, spectrum, octave-band energies and a log-mel
//!    patch, all from fixed buffers.
//! 6. Pulses close after a leading one are ranked (0 = the first arrival, 1, 2…
//!    = later arrivals, usually echoes), with their level against the leader.
//!
//! Architecture Invariants:
//! - No I/O, no clock: time is the sample index.
//! - Block-size independence: every decision is made per sample, so feeding the
//!   same audio in blocks of any size gives bit-identical pulses.
//! - No allocation after [`Detector::new`]: buffers, FFT plan and scratch are
//!   made once; pulses go to a caller's callback by value.
//!
//! # References
//! - H. Akaike (1974); R. Sleeman & T. van Eck (1999), "Robust automatic P-phase
//!   picking: an on-line implementation in the analysis of broadband seismogram
//!   recordings", Phys. Earth Planet. Inter. 113: the AIC onset picker.
//! - R. Maher, "Acoustical characterization of gunshots" (IEEE SAFE 2007): muzzle
//!   blast duration (a few ms), spectrum (hundreds of Hz to a few kHz), echoes.
//! - Calhoun et al., ShotSpotter Tech Note 098 (2020) §III: pulse detection on
//!   rooftop sensors, ~100 µs onset timing error.

mod config;
mod detector;
pub mod features;
pub mod filter;
pub mod floor;

pub use config::{ConfigError, DetectorConfig};
pub use detector::{detect, DetectedPulse, Detector};
pub use features::{Features, BAND_CENTRES_HZ, MEL_BANDS, MEL_FRAMES};
