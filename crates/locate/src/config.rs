//! The locate engine's constants, each one physically motivated and explained.
//!
//! None of these is tuned to a particular city, firing position or data set; they
//! come from the physics of urban sound propagation and from published figures.

/// Settings for association, solving and incident building.
#[derive(Debug, Clone, PartialEq)]
pub struct LocateConfig {
    /// Largest |measured − predicted| arrival time, seconds, for a pulse to count as
    /// the near-line-of-sight arrival of a shot.
    ///
    /// In cities the first arrival is usually diffracted over a roof or around a
    /// corner, which lengthens the path by metres to a few tens of metres
    /// (10 m ≈ 30 ms). ShotSpotter's published pulse sets keep every pulse within
    /// 40 ms of the straight-line model (Tech Note 098 §II.C); we use the same bound.
    pub consistency_tolerance_s: f64,
    /// Largest sensor-to-shot distance considered, metres. A 9 mm handgun's
    /// ~153 dB at 1 m falls, by spherical spreading (−20 log r) plus excess
    /// attenuation in a city, to about the 65–70 dB SPL noise floor of a rooftop
    /// sensor near 2 km; Pittsburgh's sensors measured ~84 dB at 490 m.
    pub max_range_m: f64,
    /// Fewest sensors for a shot. A position in 2-D plus the emission time has 3
    /// unknowns; one more arrival (d + 2 = 4, Tech Note 098 §II.D) makes the
    /// solution unique and lets it check itself, which is what rejects echoes.
    pub min_sensors: usize,
    /// Standard deviation of the arrival-time error before the data speak,
    /// seconds: onset picking (~0.1 ms) is negligible next to the path-length
    /// error of diffracted urban paths (a few metres ≈ 5 ms). Used only where a
    /// solution has too few arrivals to estimate its own scatter.
    pub prior_arrival_sigma_s: f64,
    /// Smallest arrival-time standard deviation a solution may claim, seconds:
    /// a timestamp quantised to 1 ms has a uniform error of 1/√12 ms ≈ 0.29 ms.
    pub min_arrival_sigma_s: f64,
    /// Standard deviation, metres, of the prior on the shot's height about the
    /// height of the nearest sensors. Rooftop sensors sit a few metres to a few
    /// tens of metres above street level, and hilly terrain moves the street by
    /// tens of metres within a kilometre; networks are nearly planar, so the
    /// arrivals alone barely constrain height (Tech Note 098 §V.B).
    pub height_prior_sigma_m: f64,
    /// Shots whose emission times are at most this far apart, seconds, and whose
    /// positions are within [`LocateConfig::incident_radius_m`], form one incident.
    /// 30 s covers a burst, a reload and a second burst.
    pub incident_gap_s: f64,
    /// See [`LocateConfig::incident_gap_s`]. 100 m: a person on foot covers less
    /// in the gap, and it is about one city block.
    pub incident_radius_m: f64,
    /// Two groups of shots in an incident are counted as different shooters when
    /// they are at least this far apart, metres, and farther than their combined
    /// 95 % error radii. 10 m is well above the scatter of repeated shots from one
    /// place (≈ 1–2 m σ in Tech Note 098 Table III).
    pub shooter_separation_m: f64,
}

impl Default for LocateConfig {
    fn default() -> LocateConfig {
        LocateConfig {
            consistency_tolerance_s: 0.040,
            max_range_m: 2_000.0,
            min_sensors: 4,
            prior_arrival_sigma_s: 0.005,
            min_arrival_sigma_s: 0.000_29,
            height_prior_sigma_m: 30.0,
            incident_gap_s: 30.0,
            incident_radius_m: 100.0,
            shooter_separation_m: 10.0,
        }
    }
}
