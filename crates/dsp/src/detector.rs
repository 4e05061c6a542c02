//! The streaming impulse detector. See the crate documentation for the method.

use crate::config::{ConfigError, DetectorConfig};
use crate::features::{self, Extractor, Features};
use crate::filter::Biquad;
use crate::floor::QuantileTracker;

/// One detected impulse.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectedPulse {
    /// Onset, seconds from the first sample of the stream (sub-sample precision).
    pub onset_s: f64,
    /// 0 for the first arrival of a group; 1, 2… for later arrivals within
    /// [`DetectorConfig::echo_window_s`] of it (usually echoes).
    pub rank: u32,
    /// Peak |sample| of the raw audio, dB relative to digital full scale.
    pub peak_dbfs: f32,
    /// The same peak in dB SPL, when the full scale is known.
    pub peak_db_spl: Option<f32>,
    /// Peak 1 ms energy of the filtered signal over the noise floor, dB.
    pub snr_db: f32,
    /// Peak level against the group's first arrival, dB (0 for rank 0).
    pub level_vs_first_db: f32,
    pub features: Features,
}

/// A pulse that has ended (or is still going) and waits for the audio its
/// features need.
#[derive(Debug, Clone, Copy, Default)]
struct Pending {
    trigger: u64,
    /// First sample of the quiet run that ended it (or the cut, or end of stream).
    end: u64,
    floor_energy: f64,
    /// The sample at which it is finalised.
    ready: u64,
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// The floor is still being learned; no triggers.
    Warmup,
    Idle,
    /// In a pulse since `trigger`; `quiet` samples in a row near the floor.
    Active {
        trigger: u64,
        quiet: u64,
        floor_energy: f64,
        /// A new arrival may start within this pulse once its own rise is over.
        armed: bool,
    },
    /// Cut at the maximum length; waits for the energy to fall back.
    Rearm,
}

const PENDING_MAX: usize = 8;
/// The floor is learned from this much audio before the first trigger, s: a
/// hundred times the 1 ms energy's time constant.
const WARMUP_S: f64 = 0.1;

/// The delay of the tail average that a new arrival inside a pulse is compared
/// with, s: longer than a muzzle blast's rise (≲ 1 ms), so the arrival has not
/// yet raised the average it is measured against.
const TAIL_DELAY_S: f64 = 0.003;

/// How far after the trigger the picker looks for the energy's first peak, s:
/// the rise of a muzzle blast's first arrival is over within a few ms.
const PICK_RISE_S: f64 = 0.020;

/// This much digital silence (exact zeros) is a gap in the recording, not quiet
/// air, s: real microphones always hiss. After a gap the floor is learned anew.
const GAP_S: f64 = 0.010;

/// The noise floor, following a change in the background by 10 dB per
/// [`DetectorConfig::floor_adapt_s`].
fn new_floor(config: &DetectorConfig) -> QuantileTracker {
    QuantileTracker::new(config.samples(config.floor_adapt_s), 10.0)
}

/// A streaming impulse detector for one mono channel.
///
/// Feed samples with [`Detector::process`] in blocks of any size, then call
/// [`Detector::finish`]; pulses come out through the callback, in onset order.
#[derive(Debug)]
pub struct Detector {
    config: DetectorConfig,
    fs: f64,
    highpass: Biquad,
    sta: f64,
    sta_alpha: f64,
    lta: f64,
    lta_alpha: f64,
    lta_delayed: Vec<f64>,
    floor: QuantileTracker,
    warmup_len: u64,
    warmup_seen: u64,
    warmup_log_sum: f64,
    zeros: u64,
    gap_len: u64,
    trigger_ratio: f64,
    release_ratio: f64,
    hold: u64,
    max_pulse: u64,
    pick_before: usize,
    pick_after: usize,
    pick_rise: usize,
    span: u64,
    raw: Vec<f32>,
    filtered: Vec<f32>,
    /// Samples seen so far.
    n: u64,
    state: State,
    pending: [Pending; PENDING_MAX],
    pending_len: usize,
    extractor: Extractor,
    // Scratch for the onset picker and feature windows.
    win_raw: Vec<f32>,
    win_filtered: Vec<f32>,
    cum: Vec<(f64, f64)>,
    group: Option<(f64, f32)>,
    group_rank: u32,
}

impl Detector {
    pub fn new(config: DetectorConfig) -> Result<Detector, ConfigError> {
        config.validate()?;
        let fs = config.sample_rate_hz as f64;
        let extractor = Extractor::new(config.sample_rate_hz, config.short_term_s);
        let pick_before = config.samples(config.pick_before_s);
        let pick_after = config.samples(config.pick_after_s);
        let hold = config.samples(config.hold_s) as u64;
        let max_pulse = config.samples(config.max_pulse_s) as u64;
        let span = (extractor.span_samples() as u64)
            .max((config.samples(PICK_RISE_S) + pick_after) as u64 + 1);
        // Everything from the picker's look-back to the latest finalisation.
        let capacity = pick_before
            + (max_pulse + hold).max(span) as usize
            + span as usize
            + config.samples(PICK_RISE_S)
            + 16;
        Ok(Detector {
            fs,
            highpass: Biquad::highpass(fs, config.highpass_hz),
            sta: 0.0,
            sta_alpha: 1.0 - (-1.0 / (config.short_term_s * fs)).exp(),
            lta: 0.0,
            lta_delayed: vec![0.0; config.samples(TAIL_DELAY_S)],
            lta_alpha: 1.0 - (-1.0 / (config.tail_s * fs)).exp(),
            floor: new_floor(&config),
            warmup_len: config.samples(WARMUP_S) as u64,
            warmup_seen: 0,
            warmup_log_sum: 0.0,
            zeros: 0,
            gap_len: config.samples(GAP_S) as u64,
            trigger_ratio: 10f64.powf(config.trigger_db / 10.0),
            release_ratio: 10f64.powf(config.release_db / 10.0),
            hold,
            max_pulse,
            pick_before,
            pick_after,
            pick_rise: config.samples(PICK_RISE_S),
            span,
            raw: vec![0.0; capacity],
            filtered: vec![0.0; capacity],
            n: 0,
            state: State::Warmup,
            pending: [Pending::default(); PENDING_MAX],
            pending_len: 0,
            extractor,
            win_raw: vec![0.0; capacity],
            win_filtered: vec![0.0; capacity],
            cum: vec![(0.0, 0.0); pick_before + config.samples(PICK_RISE_S) + pick_after + 2],
            group: None,
            group_rank: 0,
            config,
        })
    }

    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// The noise floor: the median short-term mean square of the high-passed
    /// signal, dB relative to digital full scale (a full-scale square wave is
    /// 0 dB, a full-scale sine −3 dB); `None` until the tracker has settled.
    pub fn noise_floor_dbfs(&self) -> Option<f64> {
        (self.floor.is_started() && self.floor.value() > 0.0)
            .then(|| 10.0 * self.floor.value().log10())
    }

    /// Feeds a block of samples (full scale ±1). Non-finite samples count as 0.
    pub fn process(&mut self, block: &[f32], on_pulse: &mut impl FnMut(DetectedPulse)) {
        for &x in block {
            self.step(if x.is_finite() { x } else { 0.0 }, on_pulse);
        }
    }

    /// Ends the stream: a pulse still in progress ends here and every pending
    /// pulse is reported with the audio there is.
    pub fn finish(mut self, on_pulse: &mut impl FnMut(DetectedPulse)) {
        if let State::Active {
            trigger,
            floor_energy,
            ..
        } = self.state
        {
            self.push_pending(trigger, self.n, floor_energy, on_pulse);
        }
        while self.pending_len > 0 {
            self.finalise_first(on_pulse);
        }
    }

    fn step(&mut self, x: f32, on_pulse: &mut impl FnMut(DetectedPulse)) {
        let y = self.highpass.process(x as f64);
        let cap = self.raw.len();
        let slot = (self.n % cap as u64) as usize;
        self.raw[slot] = x;
        self.filtered[slot] = y as f32;
        // The tail average as it was `TAIL_DELAY_S` ago, before any rise now in
        // progress, so an arrival is compared with what came before it.
        self.lta += self.lta_alpha * (y * y - self.lta);
        let slot_d = (self.n % self.lta_delayed.len() as u64) as usize;
        let before = std::mem::replace(&mut self.lta_delayed[slot_d], self.lta);
        self.sta += self.sta_alpha * (y * y - self.sta);
        let n = self.n;
        self.n += 1;

        self.zeros = if x == 0.0 { self.zeros + 1 } else { 0 };
        if self.zeros >= self.gap_len {
            if let State::Active {
                trigger,
                floor_energy,
                ..
            } = self.state
            {
                self.push_pending(trigger, n + 1 - self.zeros, floor_energy, on_pulse);
            }
            self.state = State::Warmup;
            self.warmup_seen = 0;
            self.warmup_log_sum = 0.0;
            self.floor = new_floor(&self.config);
        }
        match self.state {
            State::Warmup => {
                if self.zeros == 0 {
                    self.warmup_log_sum += self.sta.max(1e-30).ln();
                    self.warmup_seen += 1;
                }
                if self.warmup_seen >= self.warmup_len {
                    // Start the median from the geometric mean of the warm-up.
                    let mean = (self.warmup_log_sum / self.warmup_seen as f64).exp();
                    self.floor.update(mean);
                    self.state = State::Idle;
                }
            }
            State::Idle => {
                let floor = self.floor.value();
                if self.sta > floor * self.trigger_ratio {
                    self.state = State::Active {
                        trigger: n,
                        quiet: 0,
                        floor_energy: floor,
                        armed: false,
                    };
                } else {
                    self.floor.update(self.sta);
                }
            }
            State::Active {
                trigger,
                quiet,
                floor_energy,
                armed,
            } => {
                let quiet = if self.sta < floor_energy * self.release_ratio {
                    quiet + 1
                } else {
                    0
                };
                let armed = armed || (n - trigger >= self.hold && self.sta < before);
                if armed
                    && self.sta > before * self.trigger_ratio
                    && self.sta > floor_energy * self.trigger_ratio
                {
                    // A new arrival standing out of this pulse's tail as much as a
                    // pulse stands out of the noise: end this one, start that one.
                    self.push_pending(trigger, n, floor_energy, on_pulse);
                    self.state = State::Active {
                        trigger: n,
                        quiet: 0,
                        floor_energy,
                        armed: false,
                    };
                } else if quiet >= self.hold {
                    self.state = State::Idle;
                    self.push_pending(trigger, n + 1 - quiet, floor_energy, on_pulse);
                } else if n + 1 - trigger >= self.max_pulse {
                    self.state = State::Rearm;
                    self.push_pending(trigger, n + 1, floor_energy, on_pulse);
                } else {
                    self.state = State::Active {
                        trigger,
                        quiet,
                        floor_energy,
                        armed,
                    };
                }
            }
            State::Rearm => {
                // The floor keeps learning here: a lasting rise in the background
                // (wind, an idling engine) must not hold the detector off forever.
                self.floor.update(self.sta);
                let floor = self.floor.value();
                if self.sta > before * self.trigger_ratio && self.sta > floor * self.trigger_ratio {
                    self.state = State::Active {
                        trigger: n,
                        quiet: 0,
                        floor_energy: floor,
                        armed: false,
                    };
                } else if self.sta < floor * self.release_ratio {
                    self.state = State::Idle;
                }
            }
        }
        while self.pending_len > 0 && self.pending[0].ready <= self.n {
            self.finalise_first(on_pulse);
        }
    }

    fn push_pending(
        &mut self,
        trigger: u64,
        end: u64,
        floor_energy: f64,
        on_pulse: &mut impl FnMut(DetectedPulse),
    ) {
        if self.pending_len == PENDING_MAX {
            self.finalise_first(on_pulse);
        }
        let ready = (trigger + self.span).max(end);
        self.pending[self.pending_len] = Pending {
            trigger,
            end,
            floor_energy,
            ready,
        };
        self.pending_len += 1;
    }

    /// Picks the onset and measures the oldest pending pulse with the audio in
    /// the ring, then reports it.
    fn finalise_first(&mut self, on_pulse: &mut impl FnMut(DetectedPulse)) {
        let p = self.pending[0];
        self.pending.copy_within(1..self.pending_len, 0);
        self.pending_len -= 1;

        let cap = self.raw.len() as u64;
        let oldest = self.n.saturating_sub(cap);
        let start = p
            .trigger
            .saturating_sub(self.pick_before as u64)
            .max(oldest);
        let stop = self.n.min(start + self.win_raw.len() as u64);
        let len = (stop - start) as usize;
        for (i, k) in (start..stop).enumerate() {
            let slot = (k % cap) as usize;
            self.win_raw[i] = self.raw[slot];
            self.win_filtered[i] = self.filtered[slot];
        }
        let trigger_at = (p.trigger - start) as usize;
        // The picker looks from `pick_before` ahead of the trigger to just past
        // the energy's first peak, so that a trigger on a noise spike just ahead
        // of the real arrival still finds the real one.
        let mut env = 0.0f64;
        let (mut peak, mut peak_at) = (0.0f64, trigger_at);
        let rise_end = (trigger_at + self.pick_rise).min(len);
        for (i, &v) in self.win_filtered[..rise_end].iter().enumerate() {
            env += self.sta_alpha * ((v as f64).powi(2) - env);
            if i >= trigger_at && env > peak {
                peak = env;
                peak_at = i;
            }
        }
        let pick_end = (peak_at + self.pick_after + 1).min(len);
        let onset = aic_onset(&self.win_filtered[..pick_end], &mut self.cum);
        let end = (p.end.saturating_sub(start) as usize).min(len);
        // Features from LEAD_S before the onset.
        let lead = (features::LEAD_S * self.fs).round() as usize;
        let f0 = (onset.floor().max(0.0) as usize).saturating_sub(lead);
        let (feats, levels) = self.extractor.compute(
            &self.win_raw[f0..len],
            &self.win_filtered[f0..len],
            onset - f0 as f64,
            end.saturating_sub(f0),
            p.floor_energy,
        );
        let onset_s = (start as f64 + onset) / self.fs;
        let (rank, level_vs_first_db) = match self.group {
            Some((lead_s, lead_db)) if onset_s - lead_s <= self.config.echo_window_s => {
                self.group_rank += 1;
                (self.group_rank, levels.peak_dbfs - lead_db)
            }
            _ => {
                self.group = Some((onset_s, levels.peak_dbfs));
                self.group_rank = 0;
                (0, 0.0)
            }
        };
        on_pulse(DetectedPulse {
            onset_s,
            rank,
            peak_dbfs: levels.peak_dbfs,
            peak_db_spl: self
                .config
                .full_scale_db_spl
                .map(|fs| levels.peak_dbfs + fs as f32),
            snr_db: levels.snr_db,
            level_vs_first_db,
            features: feats,
        });
    }
}

/// Fewest samples on either side of an AIC split.
const MIN_SEGMENT: usize = 4;

/// The Akaike-information-criterion onset of `x`: the split into a quiet head
/// and a loud tail, each modelled as white noise of its own variance, that
/// explains the samples best; refined by a parabola through the criterion's
/// minimum. Returns a fractional index (the first sample of the tail).
fn aic_onset(x: &[f32], cum: &mut [(f64, f64)]) -> f64 {
    // The scratch is sized for the longest window; never read past it.
    let x = &x[..x.len().min(cum.len().saturating_sub(1))];
    let n = x.len();
    if n < 2 * MIN_SEGMENT + 2 {
        return n.saturating_sub(1) as f64;
    }
    // Mean-removed prefix sums of x and x².
    cum[0] = (0.0, 0.0);
    for (i, &v) in x.iter().enumerate() {
        let v = v as f64;
        cum[i + 1] = (cum[i].0 + v, cum[i].1 + v * v);
    }
    let raw_var = |a: usize, b: usize| {
        let m = (b - a) as f64;
        let s = cum[b].0 - cum[a].0;
        let s2 = cum[b].1 - cum[a].1;
        (s2 - s * s / m) / m
    };
    // A segment of a few samples can have a variance of almost nothing by
    // chance; floor it far below the window's, so digital silence stays finite
    // without letting tiny segments win.
    let floor = (raw_var(0, n) * 1e-9).max(1e-30);
    let var = |a: usize, b: usize| raw_var(a, b).max(floor);
    let aic = |k: usize| k as f64 * var(0, k).ln() + (n - k) as f64 * var(k, n).ln();
    // Each side keeps at least `MIN_SEGMENT` samples.
    let lo = MIN_SEGMENT.min(n / 2);
    let hi = n.saturating_sub(MIN_SEGMENT).max(lo + 1);
    let (mut best_k, mut best) = (lo, f64::INFINITY);
    for k in lo..hi {
        let v = aic(k);
        if v < best {
            best = v;
            best_k = k;
        }
    }
    if best_k <= lo || best_k + 1 >= hi {
        return best_k as f64;
    }
    let (a, b, c) = (aic(best_k - 1), best, aic(best_k + 1));
    let denom = a - 2.0 * b + c;
    let delta = if denom > 0.0 && denom.is_finite() {
        (0.5 * (a - c) / denom).clamp(-0.5, 0.5)
    } else {
        0.0
    };
    best_k as f64 + delta
}

/// Detects the pulses of a whole recording (one block, then finish).
pub fn detect(samples: &[f32], config: DetectorConfig) -> Result<Vec<DetectedPulse>, ConfigError> {
    let mut detector = Detector::new(config)?;
    let mut out = Vec::new();
    let mut push = |p: DetectedPulse| out.push(p);
    detector.process(samples, &mut push);
    detector.finish(&mut push);
    Ok(out)
}
