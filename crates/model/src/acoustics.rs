//! The propagation medium: speed of sound from temperature, and wind.
//!
//! # References
//! - ISO 9613-1:1993, "Acoustics — Attenuation of sound during propagation outdoors",
//!   and the ideal-gas relation c = 331.3 √(1 + T/273.15) m/s for dry air
//!   (humidity changes c by well under 0.5 %).
//! - Calhoun et al., ShotSpotter Tech Note 098 (2020), eq. (8)–(9): the same relation,
//!   and wind treated as a uniform drift of the medium.

use serde::{Deserialize, Serialize};

/// Speed of sound in dry air at 0 °C, m/s.
pub const SPEED_OF_SOUND_0C_M_S: f64 = 331.3;

/// Air temperature assumed when nothing is known, °C (the ISA standard atmosphere at sea level).
pub const DEFAULT_TEMPERATURE_C: f64 = 15.0;

/// Speed of sound in dry air, m/s, at `temperature_c` degrees Celsius.
pub fn speed_of_sound_m_s(temperature_c: f64) -> f64 {
    SPEED_OF_SOUND_0C_M_S * (1.0 + temperature_c / 273.15).sqrt()
}

/// Weather at the time of an event. Every field is optional; missing values take
/// the defaults (15 °C, no wind).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Weather {
    pub temperature_c: Option<f64>,
    pub wind_speed_m_s: Option<f64>,
    /// Direction the wind blows *from*, degrees clockwise from north (meteorological convention).
    pub wind_from_deg: Option<f64>,
}

impl Weather {
    pub fn temperature_c(&self) -> f64 {
        self.temperature_c.unwrap_or(DEFAULT_TEMPERATURE_C)
    }

    pub fn speed_of_sound_m_s(&self) -> f64 {
        speed_of_sound_m_s(self.temperature_c())
    }

    /// The velocity of the air, (east, north) m/s. A wind *from* 270° (west) blows toward +x (east).
    pub fn wind_velocity_m_s(&self) -> [f64; 2] {
        match (self.wind_speed_m_s, self.wind_from_deg) {
            (Some(speed), Some(from_deg))
                if speed.is_finite() && from_deg.is_finite() && speed > 0.0 =>
            {
                let to = (from_deg + 180.0).to_radians();
                [speed * to.sin(), speed * to.cos()]
            }
            _ => [0.0, 0.0],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_of_sound_matches_tables() {
        assert!((speed_of_sound_m_s(0.0) - 331.3).abs() < 1e-9);
        assert!((speed_of_sound_m_s(20.0) - 343.2).abs() < 0.1);
        assert!((speed_of_sound_m_s(-10.0) - 325.2).abs() < 0.1);
    }

    #[test]
    fn wind_from_west_blows_east() {
        let w = Weather {
            wind_speed_m_s: Some(5.0),
            wind_from_deg: Some(270.0),
            ..Weather::default()
        };
        let [e, n] = w.wind_velocity_m_s();
        assert!((e - 5.0).abs() < 1e-9 && n.abs() < 1e-9);
        let calm = Weather::default();
        assert_eq!(calm.wind_velocity_m_s(), [0.0, 0.0]);
        assert_eq!(calm.temperature_c(), 15.0);
    }
}
