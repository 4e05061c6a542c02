//! The detector's constants, each physically motivated and explained. None is
//! tuned to a data set: they follow from what a muzzle blast is (a pressure step
//! lasting a few milliseconds, energy from ~100 Hz to a few kHz) and from the
//! statistics of background noise.

/// Why a configuration cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("sample rate {0} Hz: must be 8000–96000")]
    SampleRate(u32),
    #[error("{name} = {value}: {rule}")]
    Invalid {
        name: &'static str,
        value: f64,
        rule: &'static str,
    },
}

/// Settings for [`crate::Detector`]. Times are seconds, levels decibels.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorConfig {
    pub sample_rate_hz: u32,
    /// The dB SPL of a digital full-scale peak, when the sensor is calibrated
    /// (ShotSpotter's `smj0` `fullScale`); levels are then also given in dB SPL.
    pub full_scale_db_spl: Option<f64>,
    /// High-pass corner, Hz. Wind and traffic rumble sit mostly below 100 Hz,
    /// while a distant muzzle blast keeps most of its energy between ~150 Hz and
    /// 2 kHz (Maher 2007); 100 Hz removes the first and keeps the second.
    pub highpass_hz: f64,
    /// Time constant of the short-term energy, s. A muzzle blast's positive phase
    /// lasts 1–3 ms; 1 ms follows its rise without smearing it.
    pub short_term_s: f64,
    /// Time constant of the noise floor's adaptation, s: long against a pulse (so
    /// a shot does not lift the floor) and short against traffic changes.
    pub floor_adapt_s: f64,
    /// Trigger: short-term energy this far above the floor, dB. The floor is the
    /// median of a 1 ms energy of noise, whose upper tail (≈ χ² with tens of
    /// degrees of freedom) rarely passes +10 dB; 12 dB keeps false triggers on
    /// steady noise to a few per minute while still catching pulses that are
    /// 6 dB above the background peaks.
    pub trigger_db: f64,
    /// A pulse ends when the short-term energy has stayed within this many dB of
    /// the floor for [`DetectorConfig::hold_s`].
    pub release_db: f64,
    /// Time constant of the tail average, s. A new arrival inside a pulse (an
    /// echo, or a second shot in a burst) starts a pulse of its own when its 1 ms
    /// energy rises `trigger_db` above the average of the preceding 20 ms: the
    /// same contrast a pulse needs against the noise, against the reverberant
    /// tail instead.
    pub tail_s: f64,
    /// See [`DetectorConfig::release_db`]. 10 ms spans the gap between a blast
    /// and its first ground/wall reflection, so one arrival is not split in two.
    pub hold_s: f64,
    /// Longest pulse, s; a longer event (a siren, a passing truck) is cut here
    /// and must fall back to the floor before a new pulse can start.
    pub max_pulse_s: f64,
    /// How far before the trigger the onset picker looks, s. The 1 ms energy
    /// needs at most a few ms to rise 12 dB on a real onset; 20 ms also gives the
    /// picker a stretch of background to compare against.
    pub pick_before_s: f64,
    /// How far after the trigger the onset picker looks, s.
    pub pick_after_s: f64,
    /// Pulses starting within this time after a rank-0 pulse are ranked as later
    /// arrivals of it. 0.5 s is 170 m of extra path: reflections from the
    /// buildings around a sensor, and the rooftop diffraction delays of Tech Note
    /// 098, arrive well within it.
    pub echo_window_s: f64,
}

impl DetectorConfig {
    /// The defaults for audio at `sample_rate_hz`.
    pub fn new(sample_rate_hz: u32) -> DetectorConfig {
        DetectorConfig {
            sample_rate_hz,
            full_scale_db_spl: None,
            highpass_hz: 100.0,
            short_term_s: 0.001,
            floor_adapt_s: 2.0,
            trigger_db: 12.0,
            release_db: 6.0,
            tail_s: 0.020,
            hold_s: 0.010,
            max_pulse_s: 0.250,
            pick_before_s: 0.020,
            pick_after_s: 0.003,
            echo_window_s: 0.5,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if !(8_000..=96_000).contains(&self.sample_rate_hz) {
            return Err(ConfigError::SampleRate(self.sample_rate_hz));
        }
        let nyquist = self.sample_rate_hz as f64 / 2.0;
        let checks: [(&'static str, f64, bool, &'static str); 11] = [
            (
                "highpass_hz",
                self.highpass_hz,
                self.highpass_hz > 0.0 && self.highpass_hz < nyquist / 2.0,
                "must be above 0 and below a quarter of the sample rate",
            ),
            (
                "short_term_s",
                self.short_term_s,
                in_range(self.short_term_s, 1e-4, 0.1),
                "must be 0.1 ms–100 ms",
            ),
            (
                "floor_adapt_s",
                self.floor_adapt_s,
                in_range(self.floor_adapt_s, 0.05, 600.0),
                "must be 50 ms–10 min",
            ),
            (
                "trigger_db",
                self.trigger_db,
                in_range(self.trigger_db, 1.0, 60.0),
                "must be 1–60 dB",
            ),
            (
                "release_db",
                self.release_db,
                in_range(self.release_db, 0.0, self.trigger_db),
                "must be 0 dB to trigger_db",
            ),
            (
                "tail_s",
                self.tail_s,
                in_range(self.tail_s, 0.002, 1.0),
                "must be 2 ms–1 s",
            ),
            (
                "hold_s",
                self.hold_s,
                in_range(self.hold_s, 0.0, 1.0),
                "must be 0–1 s",
            ),
            (
                "max_pulse_s",
                self.max_pulse_s,
                in_range(self.max_pulse_s, 0.01, 5.0),
                "must be 10 ms–5 s",
            ),
            (
                "pick_before_s",
                self.pick_before_s,
                in_range(self.pick_before_s, 0.002, 0.5),
                "must be 2 ms–500 ms",
            ),
            (
                "pick_after_s",
                self.pick_after_s,
                in_range(self.pick_after_s, 0.0005, 0.1),
                "must be 0.5 ms–100 ms",
            ),
            (
                "echo_window_s",
                self.echo_window_s,
                in_range(self.echo_window_s, 0.0, 60.0),
                "must be 0–60 s",
            ),
        ];
        for (name, value, ok, rule) in checks {
            if !ok {
                return Err(ConfigError::Invalid { name, value, rule });
            }
        }
        if let Some(fs) = self.full_scale_db_spl {
            if !in_range(fs, 0.0, 250.0) {
                return Err(ConfigError::Invalid {
                    name: "full_scale_db_spl",
                    value: fs,
                    rule: "must be 0–250 dB SPL",
                });
            }
        }
        Ok(())
    }

    /// Whole samples in `seconds` (at least one).
    pub(crate) fn samples(&self, seconds: f64) -> usize {
        ((seconds * self.sample_rate_hz as f64).round() as usize).max(1)
    }
}

fn in_range(v: f64, lo: f64, hi: f64) -> bool {
    v.is_finite() && v >= lo && v <= hi
}
