//! A biquad section (direct form I in f64) and the Butterworth high- and low-pass.
//!
//! Reference: R. Bristow-Johnson, "Cookbook formulae for audio EQ biquad filter
//! coefficients" (the high-pass with Q = 1/√2 is the 2nd-order Butterworth).

/// One second-order IIR section; state carries across calls, so a stream can be
/// filtered in blocks of any size with identical output.
#[derive(Debug, Clone)]
pub struct Biquad {
    b: [f64; 3],
    a: [f64; 2],
    x: [f64; 2],
    y: [f64; 2],
}

impl Biquad {
    /// The 2nd-order Butterworth high-pass with its corner at `corner_hz`.
    pub fn highpass(sample_rate_hz: f64, corner_hz: f64) -> Biquad {
        let w0 = 2.0 * std::f64::consts::PI * corner_hz / sample_rate_hz;
        let (sin, cos) = w0.sin_cos();
        let alpha = sin / (2.0 * std::f64::consts::FRAC_1_SQRT_2);
        let a0 = 1.0 + alpha;
        Biquad {
            b: [
                (1.0 + cos) / 2.0 / a0,
                -(1.0 + cos) / a0,
                (1.0 + cos) / 2.0 / a0,
            ],
            a: [-2.0 * cos / a0, (1.0 - alpha) / a0],
            x: [0.0; 2],
            y: [0.0; 2],
        }
    }

    /// The 2nd-order Butterworth low-pass with its corner at `corner_hz`.
    pub fn lowpass(sample_rate_hz: f64, corner_hz: f64) -> Biquad {
        let w0 = 2.0 * std::f64::consts::PI * corner_hz / sample_rate_hz;
        let (sin, cos) = w0.sin_cos();
        let alpha = sin / (2.0 * std::f64::consts::FRAC_1_SQRT_2);
        let a0 = 1.0 + alpha;
        Biquad {
            b: [
                (1.0 - cos) / 2.0 / a0,
                (1.0 - cos) / a0,
                (1.0 - cos) / 2.0 / a0,
            ],
            a: [-2.0 * cos / a0, (1.0 - alpha) / a0],
            x: [0.0; 2],
            y: [0.0; 2],
        }
    }

    pub fn process(&mut self, x: f64) -> f64 {
        let y = self.b[0] * x + self.b[1] * self.x[0] + self.b[2] * self.x[1]
            - self.a[0] * self.y[0]
            - self.a[1] * self.y[1];
        self.x = [x, self.x[0]];
        self.y = [y, self.y[0]];
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gain(fs: f64, corner: f64, f: f64) -> f64 {
        let mut hp = Biquad::highpass(fs, corner);
        let n = (fs * 2.0) as usize;
        let mut peak: f64 = 0.0;
        for i in 0..n {
            let y = hp.process((2.0 * std::f64::consts::PI * f * i as f64 / fs).sin());
            if i > n / 2 {
                peak = peak.max(y.abs());
            }
        }
        peak
    }

    #[test]
    fn butterworth_highpass_response() {
        // −3 dB at the corner, flat well above, −12 dB/octave well below.
        assert!((gain(12_000.0, 100.0, 100.0) - std::f64::consts::FRAC_1_SQRT_2).abs() < 0.01);
        assert!((gain(12_000.0, 100.0, 1_000.0) - 1.0).abs() < 0.01);
        assert!(gain(12_000.0, 100.0, 25.0) < 0.07);
    }
}
