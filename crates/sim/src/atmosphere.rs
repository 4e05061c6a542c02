//! Atmospheric absorption of sound, ISO 9613-1:1993.
//!
//! Air absorbs sound through viscosity and heat conduction (classical) and through
//! the vibrational relaxation of oxygen and nitrogen molecules, whose relaxation
//! frequencies depend on humidity. The result is a pure-tone attenuation
//! coefficient α(f) in dB per metre that grows roughly with f², so a distant
//! gunshot loses its high frequencies first: its onset gets slower and its peak
//! lower (Tech Note 098 §II; ISO 9613-1 §6).
//!
//! # References
//! - ISO 9613-1:1993, "Acoustics — Attenuation of sound during propagation
//!   outdoors — Part 1: Calculation of the absorption of sound by the atmosphere",
//!   equations (3)–(5) and Annex B (molar concentration of water vapour).
//! - ISO 9613-2:1996 Table 2 (octave-band coefficients, used in the tests).

/// Reference atmospheric pressure, kPa.
const P_REF_KPA: f64 = 101.325;
/// Reference air temperature, K (20 °C).
const T_REF_K: f64 = 293.15;
/// Triple-point isotherm temperature, K.
const T_TRIPLE_K: f64 = 273.16;

/// The state of the air that absorption depends on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Air {
    pub temperature_c: f64,
    /// Relative humidity, percent.
    pub humidity_pct: f64,
    /// Atmospheric pressure, kPa.
    pub pressure_kpa: f64,
}

impl Default for Air {
    /// The ISA sea-level standard atmosphere at 70 % humidity, a typical night.
    fn default() -> Air {
        Air {
            temperature_c: 15.0,
            humidity_pct: 70.0,
            pressure_kpa: P_REF_KPA,
        }
    }
}

impl Air {
    /// Pure-tone attenuation coefficient, dB per metre, at `frequency_hz`
    /// (ISO 9613-1 eq. 5).
    pub fn absorption_db_per_m(&self, frequency_hz: f64) -> f64 {
        let t = self.temperature_c + 273.15;
        let pa = self.pressure_kpa / P_REF_KPA;
        let tr = t / T_REF_K;
        // Molar concentration of water vapour, percent (Annex B).
        let c = -6.8346 * (T_TRIPLE_K / t).powf(1.261) + 4.6151;
        let h = self.humidity_pct * 10f64.powf(c) / pa;
        // Relaxation frequencies of oxygen and nitrogen, Hz (eqs. 3 and 4).
        let fr_o = pa * (24.0 + 4.04e4 * h * (0.02 + h) / (0.391 + h));
        let fr_n =
            pa * tr.powf(-0.5) * (9.0 + 280.0 * h * (-4.170 * (tr.powf(-1.0 / 3.0) - 1.0)).exp());
        let f2 = frequency_hz * frequency_hz;
        8.686
            * f2
            * (1.84e-11 / pa * tr.sqrt()
                + tr.powf(-2.5)
                    * (0.01275 * (-2239.1 / t).exp() / (fr_o + f2 / fr_o)
                        + 0.1068 * (-3352.0 / t).exp() / (fr_n + f2 / fr_n)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ISO 9613-2 Table 2: α in dB/km at the octave midbands 63 Hz – 8 kHz,
    /// computed from ISO 9613-1 and printed to 0.1 dB/km.
    #[test]
    fn matches_iso_9613_2_table_2() {
        // Exact midbands 1000 · 10^(n/10), as the table was computed.
        let bands: Vec<f64> = [-12, -9, -6, -3, 0, 3, 6, 9]
            .iter()
            .map(|&n| 1000.0 * 10f64.powf(f64::from(n) / 10.0))
            .collect();
        let table: [(f64, f64, [f64; 8]); 6] = [
            (10.0, 70.0, [0.1, 0.4, 1.0, 1.9, 3.7, 9.7, 32.8, 117.0]),
            (20.0, 70.0, [0.1, 0.3, 1.1, 2.8, 5.0, 9.0, 22.9, 76.6]),
            (30.0, 70.0, [0.1, 0.3, 1.0, 3.1, 7.4, 12.7, 23.1, 59.3]),
            (15.0, 20.0, [0.3, 0.6, 1.2, 2.7, 8.2, 28.2, 88.8, 202.0]),
            (15.0, 50.0, [0.1, 0.5, 1.2, 2.2, 4.2, 10.8, 36.2, 129.0]),
            (15.0, 80.0, [0.1, 0.3, 1.1, 2.4, 4.1, 8.3, 23.7, 82.8]),
        ];
        for (temperature_c, humidity_pct, expected) in table {
            let air = Air {
                temperature_c,
                humidity_pct,
                pressure_kpa: P_REF_KPA,
            };
            for (f, want) in bands.iter().zip(expected) {
                // The table is rounded to 0.1 dB/km (three figures above 100).
                let got = air.absorption_db_per_m(*f) * 1000.0;
                let tolerance = (0.055f64).max(0.005 * want);
                assert!(
                    (got - want).abs() <= tolerance,
                    "{temperature_c} °C {humidity_pct} % {f} Hz: {got:.2} dB/km, table {want}"
                );
            }
        }
    }

    #[test]
    fn grows_with_frequency() {
        let air = Air::default();
        let mut last = 0.0;
        for f in [100.0, 300.0, 1000.0, 3000.0, 10000.0] {
            let a = air.absorption_db_per_m(f);
            assert!(a > last);
            last = a;
        }
    }
}
