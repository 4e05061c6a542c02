//! Per-pulse features for classification, computed from fixed buffers.
//!
//! All are measured from the pulse's onset (picked by the detector) on the
//! high-passed waveform, except the peak level, which is of the raw samples:
//! - `rise_time_s`: onset to the largest |sample| in the first 10 ms;
//! - `positive_phase_s`: onset to the first zero crossing (of the raw waveform
//!   about its pre-onset level) after the first major excursion (a muzzle blast's Friedlander wave: 1–3 ms; an echo or a door
//!   slam is slower), with the excursion's polarity, whatever the microphone's;
//! - `decay_20db_s`: from the peak of the 1 ms energy until it is 20 dB lower;
//! - spectral centroid and bandwidth (the power-weighted mean and spread of
//!   frequency) of the first 20 ms;
//! - `band_energy_db`: octave bands 63 Hz–8 kHz of that spectrum, in dB relative
//!   to its total, so they describe shape, not loudness (−120 dB where a band lies
//!   above the Nyquist frequency);
//! - `log_mel`: a [`MEL_FRAMES`] × [`MEL_BANDS`] patch of log mel energies (dBFS),
//!   20 ms Hann frames every 10 ms from 5 ms before the onset, 50 Hz to
//!   min(8 kHz, Nyquist), the usual input of a small classifier.
//!
//! References: S. S. Stevens, J. Volkmann, E. B. Newman (1937) and D. O'Shaughnessy
//! (1987) for the mel scale m = 2595 log10(1 + f/700); IEC 61260 octave bands.

use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

/// Mel bands in the log-mel patch.
pub const MEL_BANDS: usize = 24;
/// Frames (10 ms apart) in the log-mel patch.
pub const MEL_FRAMES: usize = 8;
/// Octave band centre frequencies, Hz.
pub const BAND_CENTRES_HZ: [f32; 8] = [63.0, 125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0];
/// The level given to an empty band or frame, dB.
pub const EMPTY_DB: f32 = -120.0;
/// Samples before the onset that the feature window starts, s.
pub(crate) const LEAD_S: f64 = 0.005;
/// How much audio after the onset the features need, s.
pub(crate) const SPAN_S: f64 = LEAD_S + 0.010 * (MEL_FRAMES as f64 - 1.0) + 0.020;

/// What a pulse looks like.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Features {
    pub duration_s: f32,
    pub rise_time_s: f32,
    pub positive_phase_s: f32,
    pub decay_20db_s: f32,
    pub spectral_centroid_hz: f32,
    pub spectral_bandwidth_hz: f32,
    /// Octave bands at [`BAND_CENTRES_HZ`], dB relative to the window's total.
    pub band_energy_db: [f32; 8],
    /// Log mel energies, dBFS, `[frame][band]`.
    pub log_mel: [[f32; MEL_BANDS]; MEL_FRAMES],
}

/// Levels measured alongside the features.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Levels {
    pub peak_dbfs: f32,
    pub snr_db: f32,
}

/// The FFT plan, windows and filter banks for one sample rate; no allocation
/// after construction.
pub(crate) struct Extractor {
    fs: f64,
    fft: Arc<dyn Fft<f32>>,
    frame_len: usize,
    hop: usize,
    window: Vec<f32>,
    buffer: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    power: Vec<f32>,
    /// Per mel band: first bin and triangular weights.
    mel: Vec<(usize, Vec<f32>)>,
    /// Per octave band: bin range [lo, hi).
    octaves: [(usize, usize); 8],
    envelope_alpha: f64,
}

impl std::fmt::Debug for Extractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extractor")
            .field("fs", &self.fs)
            .field("frame_len", &self.frame_len)
            .finish_non_exhaustive()
    }
}

fn hz_to_mel(f: f64) -> f64 {
    2595.0 * (1.0 + f / 700.0).log10()
}

fn mel_to_hz(m: f64) -> f64 {
    700.0 * (10f64.powf(m / 2595.0) - 1.0)
}

impl Extractor {
    pub(crate) fn new(sample_rate_hz: u32, short_term_s: f64) -> Extractor {
        let fs = sample_rate_hz as f64;
        // A power of two near 20 ms.
        let frame_len = (0.020 * fs).log2().round().exp2() as usize;
        let hop = (0.010 * fs).round() as usize;
        let fft = FftPlanner::<f32>::new().plan_fft_forward(frame_len);
        let scratch = vec![Complex::default(); fft.get_inplace_scratch_len()];
        let window = (0..frame_len)
            .map(|i| {
                let x = std::f64::consts::PI * 2.0 * i as f64 / frame_len as f64;
                (0.5 - 0.5 * x.cos()) as f32
            })
            .collect();
        let bins = frame_len / 2 + 1;
        let bin_hz = fs / frame_len as f64;
        let (m_lo, m_hi) = (hz_to_mel(50.0), hz_to_mel((fs / 2.0).min(8_000.0)));
        let edges: Vec<f64> = (0..MEL_BANDS + 2)
            .map(|i| mel_to_hz(m_lo + (m_hi - m_lo) * i as f64 / (MEL_BANDS + 1) as f64))
            .collect();
        let mel = (0..MEL_BANDS)
            .map(|b| {
                let (lo, mid, hi) = (edges[b], edges[b + 1], edges[b + 2]);
                let first = ((lo / bin_hz).floor() as usize).min(bins - 1);
                let last = ((hi / bin_hz).ceil() as usize).min(bins - 1);
                let mut weights: Vec<f32> = (first..=last)
                    .map(|k| {
                        let f = k as f64 * bin_hz;
                        let w = if f <= mid {
                            (f - lo) / (mid - lo)
                        } else {
                            (hi - f) / (hi - mid)
                        };
                        w.max(0.0) as f32
                    })
                    .collect();
                // A band narrower than one bin still gets its nearest bin.
                if weights.iter().all(|&w| w == 0.0) {
                    let k = ((mid / bin_hz).round() as usize).clamp(first, last);
                    weights[k - first] = 1.0;
                }
                (first, weights)
            })
            .collect();
        let octaves = BAND_CENTRES_HZ.map(|c| {
            let (lo, hi) = (
                c as f64 / std::f64::consts::SQRT_2,
                c as f64 * std::f64::consts::SQRT_2,
            );
            let lo = ((lo / bin_hz).ceil() as usize).min(bins);
            let hi = ((hi / bin_hz).ceil() as usize).min(bins);
            (lo, hi.max(lo))
        });
        Extractor {
            fs,
            fft,
            frame_len,
            hop,
            window,
            buffer: vec![Complex::default(); frame_len],
            scratch,
            power: vec![0.0; bins],
            mel,
            octaves,
            envelope_alpha: 1.0 - (-1.0 / (short_term_s * fs)).exp(),
        }
    }

    /// Samples of audio the features need from `LEAD_S` before the onset.
    pub(crate) fn span_samples(&self) -> usize {
        (SPAN_S * self.fs).ceil() as usize + self.frame_len
    }

    /// The power spectrum of `frame_len` samples of `x` from `start` (zeros
    /// beyond its end) into `self.power`; returns the total power.
    fn spectrum(&mut self, x: &[f32], start: usize) -> f32 {
        for (i, c) in self.buffer.iter_mut().enumerate() {
            let v = x.get(start + i).copied().unwrap_or(0.0);
            *c = Complex::new(v * self.window[i], 0.0);
        }
        self.fft
            .process_with_scratch(&mut self.buffer, &mut self.scratch);
        // One-sided power, normalised so a full-scale sine reads about 0 dBFS.
        let norm = 4.0 / (self.frame_len as f32 * self.frame_len as f32 / 4.0);
        let mut total = 0.0;
        for (p, c) in self.power.iter_mut().zip(&self.buffer) {
            *p = c.norm_sqr() * norm / 2.0;
            total += *p;
        }
        total
    }

    /// Features of the pulse whose onset is at `onset` (fractional index) in the
    /// windows `raw` and `filtered` (the same samples, before and after the
    /// high-pass), ending at `end` (exclusive), against a noise floor energy.
    pub(crate) fn compute(
        &mut self,
        raw: &[f32],
        filtered: &[f32],
        onset: f64,
        end: usize,
        floor_energy: f64,
    ) -> (Features, Levels) {
        let fs = self.fs;
        let n = filtered.len().min(raw.len());
        let i0 = (onset.ceil().max(0.0) as usize).min(n);
        let end = end.clamp(i0, n);
        let peak_raw = raw[i0..end.max((i0 + 1).min(n))]
            .iter()
            .fold(0.0f32, |m, v| m.max(v.abs()));
        let peak_dbfs = db20(peak_raw);

        // Rise: the largest excursion in the first 10 ms.
        let first = (i0 + (0.010 * fs) as usize).min(n);
        let (peak_i, _) =
            filtered[i0..first]
                .iter()
                .enumerate()
                .fold((0, 0.0f32), |(bi, bv), (i, &v)| {
                    if v.abs() > bv.abs() {
                        (i, v)
                    } else {
                        (bi, bv)
                    }
                });
        let rise_time_s = ((i0 + peak_i) as f64 - onset).max(0.0) / fs;

        // Positive phase, on the raw waveform about its level just before the
        // onset (a high-pass would shorten a slow wave's positive phase): from
        // the onset until the first major excursion's polarity flips.
        let baseline = if i0 > 0 {
            raw[..i0].iter().map(|&v| v as f64).sum::<f64>() / i0 as f64
        } else {
            0.0
        } as f32;
        let raw_peak = raw[i0..first]
            .iter()
            .map(|&v| v - baseline)
            .fold(
                0.0f32,
                |best, v| if v.abs() > best.abs() { v } else { best },
            );
        let positive_phase_s = if raw_peak == 0.0 {
            0.0
        } else {
            let polarity = raw_peak.signum();
            let major = raw[i0..first]
                .iter()
                .position(|&v| (v - baseline) * polarity >= 0.3 * raw_peak.abs())
                .map_or(i0, |k| i0 + k);
            let cross = (major..n.saturating_sub(1))
                .find(|&k| (raw[k + 1] - baseline) * polarity <= 0.0)
                .map_or(n as f64, |k| {
                    let (a, b) = ((raw[k] - baseline) as f64, (raw[k + 1] - baseline) as f64);
                    k as f64 + a / (a - b)
                });
            (cross - onset).max(0.0) / fs
        };

        // Envelope (the detector's 1 ms energy, recomputed from the window start).
        let mut env = 0.0f64;
        let (mut env_peak, mut env_peak_i) = (0.0f64, i0);
        let mut decay_end = None;
        for (k, &v) in filtered.iter().enumerate().take(n) {
            env += self.envelope_alpha * ((v as f64).powi(2) - env);
            if k < i0 {
                continue;
            }
            if k < end.max(i0 + 1) && env > env_peak {
                env_peak = env;
                env_peak_i = k;
                decay_end = None;
            } else if decay_end.is_none() && env < env_peak / 100.0 {
                decay_end = Some(k);
            }
        }
        let decay_20db_s = (decay_end.unwrap_or(n) - env_peak_i) as f64 / fs;
        let snr_db = if floor_energy > 0.0 && env_peak > 0.0 {
            10.0 * (env_peak / floor_energy).log10()
        } else {
            0.0
        };

        // Spectrum of the first 20 ms.
        let lead = (LEAD_S * fs).round() as usize;
        let start = i0.saturating_sub(lead);
        let total = self.spectrum(raw, start);
        let bin_hz = (fs / self.frame_len as f64) as f32;
        let (mut centroid, mut spread) = (0.0f32, 0.0f32);
        if total > 0.0 {
            centroid = self
                .power
                .iter()
                .enumerate()
                .map(|(k, p)| k as f32 * bin_hz * p)
                .sum::<f32>()
                / total;
            spread = (self
                .power
                .iter()
                .enumerate()
                .map(|(k, p)| (k as f32 * bin_hz - centroid).powi(2) * p)
                .sum::<f32>()
                / total)
                .sqrt();
        }
        let band_energy_db = self.octaves.map(|(lo, hi)| {
            let e: f32 = self.power[lo..hi].iter().sum();
            if total > 0.0 && e > 0.0 {
                (10.0 * (e / total).log10()).max(EMPTY_DB)
            } else {
                EMPTY_DB
            }
        });

        let mut log_mel = [[EMPTY_DB; MEL_BANDS]; MEL_FRAMES];
        for (f, row) in log_mel.iter_mut().enumerate() {
            let s = start + f * self.hop;
            if s >= raw.len() {
                break;
            }
            self.spectrum(raw, s);
            for (cell, (first, weights)) in row.iter_mut().zip(&self.mel) {
                let e: f32 = weights
                    .iter()
                    .zip(&self.power[*first..])
                    .map(|(w, p)| w * p)
                    .sum();
                *cell = if e > 0.0 {
                    (10.0 * e.log10()).max(EMPTY_DB)
                } else {
                    EMPTY_DB
                };
            }
        }

        (
            Features {
                duration_s: ((end as f64 - onset).max(0.0) / fs) as f32,
                rise_time_s: rise_time_s as f32,
                positive_phase_s: positive_phase_s as f32,
                decay_20db_s: decay_20db_s as f32,
                spectral_centroid_hz: centroid,
                spectral_bandwidth_hz: spread,
                band_energy_db,
                log_mel,
            },
            Levels {
                peak_dbfs,
                snr_db: snr_db as f32,
            },
        )
    }
}

fn db20(v: f32) -> f32 {
    if v > 0.0 {
        (20.0 * v.log10()).max(EMPTY_DB)
    } else {
        EMPTY_DB
    }
}
