//! Clips: the short stretch of audio sent with a pulse, and the recent audio
//! they are cut from.

use std::collections::VecDeque;

use dsp::filter::Biquad;

/// Lower and upper edges of the speech band removed by `suppress_speech`, Hz:
/// the telephone band (ITU-T G.712), which carries what makes speech
/// intelligible. A muzzle blast's energy below 300 Hz and its crack above
/// 3.4 kHz are kept, so the clip still shows the pulse's onset and shape.
pub const SPEECH_BAND_HZ: (f64, f64) = (300.0, 3_400.0);

/// The last few seconds of audio, in memory.
#[derive(Debug)]
pub struct Recent {
    samples: VecDeque<f32>,
    capacity: usize,
    /// Position (samples since the stream began) of `samples[0]`.
    first: u64,
}

impl Recent {
    pub fn new(capacity: usize) -> Recent {
        Recent {
            samples: VecDeque::with_capacity(capacity),
            capacity,
            first: 0,
        }
    }

    pub fn push(&mut self, block: &[f32]) {
        for &s in block {
            if self.samples.len() == self.capacity {
                self.samples.pop_front();
                self.first += 1;
            }
            self.samples.push_back(s);
        }
    }

    /// Position just past the newest sample.
    pub fn end(&self) -> u64 {
        self.first + self.samples.len() as u64
    }

    /// Samples `[from, from + len)`; positions no longer (or not yet) held
    /// are silence.
    pub fn cut(&self, from: i64, len: usize) -> Vec<f32> {
        (0..len as i64)
            .map(|k| {
                let at = from + k - self.first as i64;
                if at >= 0 {
                    self.samples.get(at as usize).copied().unwrap_or(0.0)
                } else {
                    0.0
                }
            })
            .collect()
    }
}

/// Removes the speech band: the sum of a low-pass below it and a high-pass
/// above it, each four 2nd-order Butterworth sections (48 dB per octave), so
/// the band is at least 30 dB down from 700 Hz to 2 kHz and far more between.
pub fn suppress_speech(samples: &mut [f32], rate_hz: u32) {
    let fs = f64::from(rate_hz);
    let (lo, hi) = SPEECH_BAND_HZ;
    let mut low: [Biquad; 4] = std::array::from_fn(|_| Biquad::lowpass(fs, lo));
    // Above 0.45 fs there is no band left to keep: the high path is dropped.
    let mut high: Option<[Biquad; 4]> =
        (hi < 0.45 * fs).then(|| std::array::from_fn(|_| Biquad::highpass(fs, hi)));
    let cascade =
        |sections: &mut [Biquad], x: f64| sections.iter_mut().fold(x, |y, s| s.process(y));
    for s in samples.iter_mut() {
        let x = f64::from(*s);
        let l = cascade(&mut low, x);
        let h = high.as_mut().map_or(0.0, |h| cascade(h, x));
        *s = (l + h) as f32;
    }
}

/// A mono 16-bit WAV file of `samples` (shared with the server's replay).
pub use formats::wav_bytes;

#[cfg(test)]
mod tests {
    use super::*;

    fn rms(x: &[f32]) -> f64 {
        (x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    fn tone(f: f64, fs: u32) -> Vec<f32> {
        (0..fs)
            .map(|n| (2.0 * std::f64::consts::PI * f * f64::from(n) / f64::from(fs)).sin() as f32)
            .collect()
    }

    #[test]
    fn the_speech_band_is_removed_and_the_rest_kept() {
        let fs = 48_000;
        let db = |f: f64| {
            let x = tone(f, fs);
            let mut y = x.clone();
            suppress_speech(&mut y, fs);
            // Skip the filters' settling.
            20.0 * (rms(&y[4800..]) / rms(&x[4800..])).log10()
        };
        assert!(db(1_000.0) < -30.0, "1 kHz: {}", db(1_000.0));
        assert!(db(700.0) < -30.0, "700 Hz: {}", db(700.0));
        assert!(db(2_000.0) < -30.0, "2 kHz: {}", db(2_000.0));
        assert!(db(100.0) > -3.0, "100 Hz: {}", db(100.0));
        assert!(db(8_000.0) > -3.0, "8 kHz: {}", db(8_000.0));
    }

    #[test]
    fn recent_audio_cuts_with_silence_outside_what_it_holds() {
        let mut r = Recent::new(5);
        r.push(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
        assert_eq!(r.end(), 7);
        assert_eq!(r.cut(1, 4), [0.0, 3.0, 4.0, 5.0]);
        assert_eq!(r.cut(5, 4), [6.0, 7.0, 0.0, 0.0]);
        let wav = wav_bytes(&[0.5, -0.5], 8000);
        assert_eq!(&wav[..4], b"RIFF");
        assert_eq!(wav.len(), 44 + 4);
    }
}
