//! From paths to what a sensor records: waveforms at the microphone, the
//! continuous background, clipping, and the pulse reports a sensor would send.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::atmosphere::Air;
use crate::source::{friedlander, friedlander_duration, n_wave_at, pascal};

/// The shape of an arriving impulse.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Wave {
    /// A Friedlander blast with this positive phase, s.
    Blast { positive_phase_s: f64 },
    /// A supersonic bullet's N-wave of this length, s.
    NWave { duration_s: f64 },
}

/// One impulse at one microphone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arrival {
    /// Onset on the sensor's clock, seconds after the scenario start.
    pub t_s: f64,
    /// Peak pressure of the unfiltered wave at the microphone, Pa.
    pub peak_pa: f64,
    pub wave: Wave,
    /// Causal one-pole low-passes standing for air absorption and diffraction.
    pub lowpass_hz: [Option<f64>; 2],
    /// Index of the truth event, or `None` for local noise.
    pub truth: Option<usize>,
}

/// The −3 dB frequency of air absorption over `length_m`: where α(f)·L = 3 dB.
/// A one-pole low-pass there stands for the absorption (which rises faster,
/// about as f², so the model keeps a little too much high-frequency energy).
/// `None` when even `max_hz` loses less than 3 dB.
pub fn absorption_cutoff_hz(air: &Air, length_m: f64, max_hz: f64) -> Option<f64> {
    if air.absorption_db_per_m(max_hz) * length_m < 3.0 {
        return None;
    }
    let (mut lo, mut hi) = (10.0f64.ln(), max_hz.ln());
    for _ in 0..40 {
        let mid = 0.5 * (lo + hi);
        if air.absorption_db_per_m(mid.exp()) * length_m < 3.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some((0.5 * (lo + hi)).exp())
}

/// Wind noise at a windscreened microphone, dB SPL unweighted, for a wind of
/// `speed_m_s`: about 55 dB at 1 m/s rising 20 dB per decade of speed, almost all
/// below 100 Hz and falling about 12 dB per octave above 40 Hz (Strasberg, "Dimensional analysis of windscreen noise", JASA 83,
/// 1988, for 90–180 mm foam screens). 0 for calm air.
pub fn wind_noise_db_spl(speed_m_s: f64) -> f64 {
    if speed_m_s < 0.5 {
        0.0
    } else {
        55.0 + 20.0 * speed_m_s.log10()
    }
}

/// Corner frequencies of the background noises' one-pole spectra, Hz.
const TRAFFIC_CORNER_HZ: f64 = 250.0;
const WIND_CORNER_HZ: f64 = 40.0;
const RAIN_CORNER_HZ: f64 = 1000.0;
/// The detector's high-pass corner (dsp: 100 Hz): noise below it does not count.
const DETECTOR_HIGH_PASS_HZ: f64 = 100.0;

/// A sensor's continuous background: levels in dB SPL (0 = absent).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Noise {
    pub traffic_db: f64,
    pub wind_db: f64,
    pub rain_db: f64,
    pub self_db: f64,
}

impl Noise {
    /// The noise power a pulse detector sees (above its 100 Hz high-pass), Pa².
    /// For a one-pole low-pass spectrum with corner f_c, the share of power above
    /// f₁ is 1 − (2/π) atan(f₁/f_c); rain (a high-pass) and self-noise (white) are
    /// almost all above 100 Hz.
    pub fn detector_power_pa2(&self) -> f64 {
        let above =
            |fc: f64| 1.0 - std::f64::consts::FRAC_2_PI * (DETECTOR_HIGH_PASS_HZ / fc).atan();
        let p2 = |db: f64| if db > 0.0 { pascal(db).powi(2) } else { 0.0 };
        // Wind noise falls 12 dB per octave (two poles): its share above f₁ is
        // 1 − (2/π) [atan x + x / (1 + x²)], x = f₁/f_c.
        let x = DETECTOR_HIGH_PASS_HZ / WIND_CORNER_HZ;
        let wind_above = 1.0 - std::f64::consts::FRAC_2_PI * (x.atan() + x / (1.0 + x * x));
        p2(self.traffic_db) * above(TRAFFIC_CORNER_HZ)
            + p2(self.wind_db) * wind_above
            + p2(self.rain_db)
            + p2(self.self_db)
    }

    /// Adds `out.len()` samples of this background, Pa, at `fs`, from `rng`.
    pub fn add_to(&self, out: &mut [f32], fs: f64, rng: &mut ChaCha8Rng) {
        let pole = |fc: f64| (-2.0 * std::f64::consts::PI * fc / fs).exp();
        // Input scale so that a one-pole low-pass of white noise has the wanted RMS:
        // var(out) = σ² (1 − a) / (1 + a).
        let lp_gain = |a: f64| ((1.0 + a) / (1.0 - a)).sqrt();
        let level = |db: f64| if db > 0.0 { pascal(db) } else { 0.0 };
        let (traffic, wind, rain, own) = (
            level(self.traffic_db),
            level(self.wind_db),
            level(self.rain_db),
            level(self.self_db),
        );
        let (at, aw, ar) = (
            pole(TRAFFIC_CORNER_HZ),
            pole(WIND_CORNER_HZ),
            pole(RAIN_CORNER_HZ),
        );
        let gt = traffic * lp_gain(at);
        // Two cascaded poles: var(out) = σ² (1 − a)⁴ (1 + a²) / (1 − a²)³.
        let gw = wind / ((1.0 - aw).powi(4) * (1.0 + aw * aw) / (1.0 - aw * aw).powi(3)).sqrt();
        // Rain is white minus its low-pass: var = σ² [1 + (1−a)/(1+a) − 2(1−a)].
        let rain_var = 1.0 + (1.0 - ar) / (1.0 + ar) - 2.0 * (1.0 - ar);
        let gr = rain / rain_var.sqrt();
        // Gusts: the wind noise swells and fades over a few seconds.
        let gust_hz = 0.15;
        let phase: f64 = rng.gen_range(0.0..std::f64::consts::TAU);
        let (mut yt, mut yw0, mut yw, mut yr) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
        for (n, o) in out.iter_mut().enumerate() {
            let mut v = 0.0;
            if traffic > 0.0 {
                let x: f64 = rng.sample(StandardNormal);
                yt = (1.0 - at) * x * gt + at * yt;
                v += yt;
            }
            if wind > 0.0 {
                let x: f64 = rng.sample(StandardNormal);
                yw0 = (1.0 - aw) * x * gw + aw * yw0;
                yw = (1.0 - aw) * yw0 + aw * yw;
                let gust =
                    1.0 + 0.6 * (std::f64::consts::TAU * gust_hz * n as f64 / fs + phase).sin();
                v += yw * gust / 1.086; // RMS of the gust factor: √(1 + 0.6²/2)
            }
            if rain > 0.0 {
                let x: f64 = rng.sample(StandardNormal);
                yr = (1.0 - ar) * x + ar * yr;
                v += (x - yr) * gr;
            }
            if own > 0.0 {
                let x: f64 = rng.sample(StandardNormal);
                v += x * own;
            }
            *o += v as f32;
        }
    }
}

/// Renders one arrival at sample rate `fs` into `scratch` and returns the index
/// (on the scene's sample grid) of its first sample. The wave is evaluated at
/// the exact sub-sample onset, then low-passed causally, so the onset is never
/// smeared earlier than it is.
pub fn render(arrival: &Arrival, fs: f64, scratch: &mut Vec<f32>) -> i64 {
    let first = (arrival.t_s * fs).ceil() as i64;
    let wave_s = match arrival.wave {
        Wave::Blast { positive_phase_s } => friedlander_duration(positive_phase_s),
        Wave::NWave { duration_s } => duration_s,
    };
    // Five time constants of the slowest low-pass let its tail die to < 1 %.
    let tail_s = arrival
        .lowpass_hz
        .iter()
        .flatten()
        .map(|fc| 5.0 / (std::f64::consts::TAU * fc))
        .fold(0.0, f64::max);
    let n = ((wave_s + tail_s) * fs).ceil() as usize + 2;
    scratch.clear();
    scratch.extend((0..n).map(|i| {
        let t = (first + i as i64) as f64 / fs - arrival.t_s;
        let v = match arrival.wave {
            Wave::Blast { positive_phase_s } => friedlander(arrival.peak_pa, positive_phase_s, t),
            Wave::NWave { duration_s } => n_wave_at(arrival.peak_pa, duration_s, t),
        };
        v as f32
    }));
    for fc in arrival.lowpass_hz.iter().flatten() {
        let a = (-std::f64::consts::TAU * fc / fs).exp() as f32;
        let mut y = 0.0f32;
        for v in scratch.iter_mut() {
            y = (1.0 - a) * *v + a * y;
            *v = y;
        }
    }
    first
}

/// Peak |p| (Pa) of a rendered arrival, and the largest short-term energy (Pa²)
/// a pulse detector would see in it: after a 100 Hz high-pass, the square
/// averaged with a 1 ms time constant, as the dsp detector measures it (there
/// a second-order high-pass; one pole is close enough for a level estimate).
pub fn measure(samples: &[f32], fs: f64) -> (f64, f64) {
    let hp = (-std::f64::consts::TAU * DETECTOR_HIGH_PASS_HZ / fs).exp();
    let avg = 1.0 - (-1.0 / (0.001 * fs)).exp();
    let (mut peak, mut best) = (0.0f64, 0.0f64);
    let (mut last_x, mut y, mut energy) = (0.0f64, 0.0f64, 0.0f64);
    // Run on past the end so the averaged energy can reach its maximum.
    let tail = (0.003 * fs) as usize;
    for i in 0..samples.len() + tail {
        let x = samples.get(i).map_or(0.0, |&v| f64::from(v));
        peak = peak.max(x.abs());
        y = hp * (y + x - last_x);
        last_x = x;
        energy += avg * (y * y - energy);
        best = best.max(energy);
    }
    (peak, best)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn background_has_the_asked_level() {
        let fs = 12_000.0;
        for noise in [
            Noise {
                traffic_db: 60.0,
                wind_db: 0.0,
                rain_db: 0.0,
                self_db: 0.0,
            },
            Noise {
                traffic_db: 0.0,
                wind_db: 0.0,
                rain_db: 60.0,
                self_db: 0.0,
            },
            Noise {
                traffic_db: 0.0,
                wind_db: 0.0,
                rain_db: 0.0,
                self_db: 60.0,
            },
            Noise {
                traffic_db: 0.0,
                wind_db: 60.0,
                rain_db: 0.0,
                self_db: 0.0,
            },
        ] {
            let mut out = vec![0.0f32; 120_000];
            noise.add_to(&mut out, fs, &mut ChaCha8Rng::seed_from_u64(3));
            let rms =
                (out.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / out.len() as f64).sqrt();
            let db = 20.0 * (rms / 20e-6).log10();
            // Wind noise lives below 40 Hz and swells with 7 s gusts, so 10 s hold
            // few independent values of it.
            let tolerance = if noise.wind_db > 0.0 { 1.0 } else { 0.3 };
            assert!((db - 60.0).abs() < tolerance, "{noise:?}: {db:.2} dB");
        }
    }

    #[test]
    fn rendering_keeps_the_onset_and_peak() {
        let fs = 12_000.0;
        let a = Arrival {
            t_s: 1.000_04,
            peak_pa: 2.0,
            wave: Wave::Blast {
                positive_phase_s: 0.001,
            },
            lowpass_hz: [None, None],
            truth: None,
        };
        let mut buf = Vec::new();
        let first = render(&a, fs, &mut buf);
        assert_eq!(first, 12_001);
        // The first sample falls 1/12000 − 40 µs after the onset.
        let t = 12_001.0 / fs - 1.000_04;
        assert!((f64::from(buf[0]) - friedlander(2.0, 0.001, t)).abs() < 1e-6);
        let (peak, _) = measure(&buf, fs);
        assert!(peak <= 2.0 && peak > 1.6);
    }

    #[test]
    fn absorption_cutoff_falls_with_distance() {
        let air = Air::default();
        let near = absorption_cutoff_hz(&air, 100.0, 6000.0).expect("a cutoff");
        let far = absorption_cutoff_hz(&air, 1000.0, 6000.0).expect("a cutoff");
        assert!(far < near);
        assert!((air.absorption_db_per_m(far) * 1000.0 - 3.0).abs() < 1e-6);
        assert!(absorption_cutoff_hz(&air, 1.0, 6000.0).is_none());
    }
}
