//! A scenario: what happens where and when, and who listens. Written by people
//! (as TOML, read by the `shotfix` binary), so every field is checked and has a
//! documented default.

use serde::Deserialize;

/// Why a scenario cannot be simulated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScenarioError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
}

pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> ScenarioError {
    ScenarioError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    /// Everything random (city, sensors, events, noise) follows from this seed.
    #[serde(default)]
    pub seed: u64,
    /// UTC of the scenario's first instant, RFC 3339.
    pub start_utc: String,
    pub duration_s: f64,
    pub origin: Origin,
    #[serde(default)]
    pub weather: WeatherSpec,
    pub city: CitySpec,
    #[serde(default)]
    pub sensor: SensorDefaults,
    /// Sensors at given positions; when empty, `city.sensors_per_km2` places them.
    #[serde(default)]
    pub sensors: Vec<SensorSpec>,
    #[serde(default)]
    pub output: OutputSpec,
    #[serde(default)]
    pub background: Background,
    #[serde(default, rename = "fault")]
    pub faults: Vec<FaultSpec>,
    #[serde(default, rename = "event")]
    pub events: Vec<EventSpec>,
    #[serde(default, rename = "random")]
    pub random: Vec<RandomSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Origin {
    pub lat: f64,
    pub lon: f64,
    #[serde(default)]
    pub alt_m: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WeatherSpec {
    pub temperature_c: f64,
    pub humidity_pct: f64,
    pub pressure_kpa: f64,
    pub wind_speed_m_s: f64,
    /// Direction the wind blows from, degrees clockwise from north.
    pub wind_from_deg: f64,
}

impl Default for WeatherSpec {
    fn default() -> WeatherSpec {
        WeatherSpec {
            temperature_c: 15.0,
            humidity_pct: 70.0,
            pressure_kpa: 101.325,
            wind_speed_m_s: 0.0,
            wind_from_deg: 270.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CitySpec {
    pub width_m: f64,
    pub depth_m: f64,
    #[serde(default = "default_block")]
    pub block_m: f64,
    #[serde(default = "default_street")]
    pub street_m: f64,
    #[serde(default = "default_min_height")]
    pub min_height_m: f64,
    #[serde(default = "default_max_height")]
    pub max_height_m: f64,
    /// Rooftop sensors per km² (ShotSpotter deploys about 15–20 per km²; Tech Note 098).
    #[serde(default)]
    pub sensors_per_km2: f64,
    /// No buildings at all: flat open ground (for tests against closed forms).
    #[serde(default)]
    pub open_ground: bool,
}

impl CitySpec {
    /// The street grid to build, or `None` for open ground.
    pub fn plan(&self) -> Option<crate::city::CityPlan> {
        (!self.open_ground).then_some(crate::city::CityPlan {
            width_m: self.width_m,
            depth_m: self.depth_m,
            block_m: self.block_m,
            street_m: self.street_m,
            min_height_m: self.min_height_m,
            max_height_m: self.max_height_m,
        })
    }
}

fn default_block() -> f64 {
    100.0
}
fn default_street() -> f64 {
    20.0
}
fn default_min_height() -> f64 {
    6.0
}
fn default_max_height() -> f64 {
    30.0
}

/// Settings every sensor shares unless a sensor entry says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SensorDefaults {
    pub sample_rate_hz: u32,
    /// Peak sound pressure level of digital full scale, dB SPL: the acoustic
    /// overload point of a MEMS microphone is 120–150 dB; Pittsburgh's sensors
    /// were set near 93 dB (the `fullScale` of their `smj0` metadata).
    pub full_scale_db_spl: f64,
    /// Microphone self-noise, dB SPL (MEMS: about 30–35 dB(A)).
    pub self_noise_db_spl: f64,
    /// Height of the microphone above the roof, metres.
    pub mast_m: f64,
    /// Standard deviation of timestamp jitter, seconds (GPS time pulse ≈ 30 ns,
    /// plus sampling-clock discipline: 1 µs).
    pub jitter_s: f64,
}

impl Default for SensorDefaults {
    fn default() -> SensorDefaults {
        SensorDefaults {
            sample_rate_hz: 12_000,
            full_scale_db_spl: 130.0,
            self_noise_db_spl: 35.0,
            mast_m: 3.0,
            jitter_s: 1e-6,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorSpec {
    pub id: String,
    pub x: f64,
    pub y: f64,
    pub z: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputSpec {
    pub audio: bool,
    pub pulses: bool,
}

impl Default for OutputSpec {
    fn default() -> OutputSpec {
        OutputSpec {
            audio: true,
            pulses: true,
        }
    }
}

/// Continuous sound at every sensor, dB SPL (overall, unweighted); 0 means none.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Background {
    /// Distant traffic, mostly below 500 Hz. A city rooftop at night: 45–55 dB.
    pub traffic_db_spl: f64,
    /// Rain on and around the microphone, broadband, mostly above 1 kHz: 50–65 dB.
    pub rain_db_spl: f64,
    /// Wind noise at the windscreen, from the weather's wind speed (see
    /// [`crate::render::wind_noise_db_spl`]).
    pub wind_noise: bool,
    /// Unrelated impulses heard by one sensor only (a dropped bin lid on the
    /// next roof, a bird at the windscreen), per minute per sensor.
    pub local_impulses_per_min: f64,
}

impl Default for Background {
    fn default() -> Background {
        Background {
            traffic_db_spl: 50.0,
            rain_db_spl: 0.0,
            wind_noise: true,
            local_impulses_per_min: 1.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// No audio and no pulses.
    Dead,
    /// The clock is off by `value` seconds.
    ClockOffset,
    /// The clock drifts by `value` parts per million from the start.
    ClockDrift,
    /// The gain is stuck `value` dB away from its calibration.
    StuckGain,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    pub sensor: String,
    pub kind: FaultKind,
    #[serde(default)]
    pub value: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cadence {
    /// Aimed fire by hand: irregular intervals around 1/rate (σ = 25 %).
    Semi,
    /// Fully automatic: very regular intervals (σ = 1 %).
    Auto,
    /// Strings of firecrackers and the like: exponential (Poisson) intervals.
    Irregular,
}

/// One event: a burst of `count` impulses of one kind from about one place.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    pub kind: crate::ImpulseKind,
    /// Seconds after the start.
    pub t_s: f64,
    /// Position in the local frame, metres; a random street point when absent.
    pub x: Option<f64>,
    pub y: Option<f64>,
    /// Height above the street, metres: 1.5 for a shooter, 60–150 for aerial
    /// shells; defaults by kind.
    pub z: Option<f64>,
    /// Firearm name for gunshots (see `sim::source::WEAPONS`).
    pub weapon: Option<String>,
    #[serde(default = "one")]
    pub count: u32,
    pub cadence: Option<Cadence>,
    /// Mean impulses per second within the burst.
    pub rate_hz: Option<f64>,
    /// Bore azimuth, degrees clockwise from north; random when absent.
    pub aim_deg: Option<f64>,
    /// Who fired (truth only), default 1.
    pub shooter: Option<u32>,
}

fn one() -> u32 {
    1
}

/// Events of one kind at random times and street positions.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomSpec {
    pub kind: crate::ImpulseKind,
    pub per_hour: f64,
    pub weapon: Option<String>,
    #[serde(default = "one")]
    pub count: u32,
    pub rate_hz: Option<f64>,
}

impl Scenario {
    /// Checks every number a person could get wrong.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let finite = |field: &str, v: f64| {
            if v.is_finite() {
                Ok(())
            } else {
                Err(invalid(field, format!("{v} is not a finite number")))
            }
        };
        let positive = |field: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(invalid(field, format!("{v} must be a positive number")))
            }
        };
        positive("duration_s", self.duration_s)?;
        if self.duration_s > 7.0 * 86_400.0 {
            return Err(invalid("duration_s", "at most one week"));
        }
        if !(-90.0..=90.0).contains(&self.origin.lat)
            || !(-180.0..=180.0).contains(&self.origin.lon)
        {
            return Err(invalid("origin", "not a valid latitude/longitude"));
        }
        finite("origin.alt_m", self.origin.alt_m)?;
        let w = &self.weather;
        if !(-50.0..=60.0).contains(&w.temperature_c) {
            return Err(invalid(
                "weather.temperature_c",
                "must be between −50 and 60 °C",
            ));
        }
        if !(0.0..=100.0).contains(&w.humidity_pct) {
            return Err(invalid("weather.humidity_pct", "must be between 0 and 100"));
        }
        if !(50.0..=110.0).contains(&w.pressure_kpa) {
            return Err(invalid(
                "weather.pressure_kpa",
                "must be between 50 and 110 kPa",
            ));
        }
        if !(0.0..=40.0).contains(&w.wind_speed_m_s) {
            return Err(invalid(
                "weather.wind_speed_m_s",
                "must be between 0 and 40 m/s",
            ));
        }
        finite("weather.wind_from_deg", w.wind_from_deg)?;
        let c = &self.city;
        positive("city.width_m", c.width_m)?;
        positive("city.depth_m", c.depth_m)?;
        if c.width_m * c.depth_m > 400e6 {
            return Err(invalid("city", "at most 400 km²"));
        }
        positive("city.block_m", c.block_m)?;
        if !(c.street_m >= 0.0 && c.street_m < c.block_m) {
            return Err(invalid(
                "city.street_m",
                "must be at least 0 and less than city.block_m",
            ));
        }
        positive("city.min_height_m", c.min_height_m)?;
        if !(c.max_height_m >= c.min_height_m && c.max_height_m <= 500.0) {
            return Err(invalid(
                "city.max_height_m",
                "must be at least min_height_m and at most 500",
            ));
        }
        if !(0.0..=500.0).contains(&c.sensors_per_km2) {
            return Err(invalid("city.sensors_per_km2", "must be between 0 and 500"));
        }
        let s = &self.sensor;
        if !(8_000..=96_000).contains(&s.sample_rate_hz) {
            return Err(invalid("sensor.sample_rate_hz", "must be 8000–96000 Hz"));
        }
        if !(80.0..=180.0).contains(&s.full_scale_db_spl) {
            return Err(invalid("sensor.full_scale_db_spl", "must be 80–180 dB SPL"));
        }
        if !(0.0..=80.0).contains(&s.self_noise_db_spl) {
            return Err(invalid("sensor.self_noise_db_spl", "must be 0–80 dB SPL"));
        }
        if !(0.0..=50.0).contains(&s.mast_m) {
            return Err(invalid("sensor.mast_m", "must be 0–50 m"));
        }
        if !(0.0..=1.0).contains(&s.jitter_s) {
            return Err(invalid("sensor.jitter_s", "must be 0–1 s"));
        }
        for (i, sensor) in self.sensors.iter().enumerate() {
            let field = format!("sensors[{i}]");
            if sensor.id.trim().is_empty() {
                return Err(invalid(field, "empty id"));
            }
            for v in [sensor.x, sensor.y, sensor.z] {
                finite(&field, v)?;
            }
            if self.sensors[..i].iter().any(|o| o.id == sensor.id) {
                return Err(invalid(
                    field,
                    format!("sensor id {} is used twice", sensor.id),
                ));
            }
        }
        let b = &self.background;
        for (field, v) in [
            ("background.traffic_db_spl", b.traffic_db_spl),
            ("background.rain_db_spl", b.rain_db_spl),
        ] {
            if !(0.0..=100.0).contains(&v) {
                return Err(invalid(field, "must be 0–100 dB SPL"));
            }
        }
        if !(0.0..=600.0).contains(&b.local_impulses_per_min) {
            return Err(invalid(
                "background.local_impulses_per_min",
                "must be 0–600",
            ));
        }
        for (i, f) in self.faults.iter().enumerate() {
            finite(&format!("fault[{i}].value"), f.value)?;
        }
        for (i, e) in self.events.iter().enumerate() {
            let field = format!("event[{i}]");
            if !(0.0..=self.duration_s).contains(&e.t_s) {
                return Err(invalid(
                    field,
                    format!("t_s {} is outside the scenario", e.t_s),
                ));
            }
            for v in [e.x, e.y, e.z, e.rate_hz, e.aim_deg].into_iter().flatten() {
                finite(&field, v)?;
            }
            if e.rate_hz.is_some_and(|r| !(r > 0.0 && r <= 100.0)) {
                return Err(invalid(field, "rate_hz must be in (0, 100]"));
            }
            if e.count == 0 || e.count > 10_000 {
                return Err(invalid(field, "count must be 1–10000"));
            }
            check_weapon(&field, e.kind, e.weapon.as_deref())?;
        }
        for (i, r) in self.random.iter().enumerate() {
            let field = format!("random[{i}]");
            if !(r.per_hour >= 0.0 && r.per_hour <= 100_000.0) {
                return Err(invalid(field, "per_hour must be 0–100000"));
            }
            if r.count == 0 || r.count > 10_000 {
                return Err(invalid(field, "count must be 1–10000"));
            }
            if r.rate_hz.is_some_and(|r| !(r > 0.0 && r <= 100.0)) {
                return Err(invalid(field, "rate_hz must be in (0, 100]"));
            }
            check_weapon(&field, r.kind, r.weapon.as_deref())?;
        }
        Ok(())
    }
}

fn check_weapon(
    field: &str,
    kind: crate::ImpulseKind,
    weapon: Option<&str>,
) -> Result<(), ScenarioError> {
    match (kind, weapon) {
        (crate::ImpulseKind::Gunshot, Some(name)) if crate::source::weapon(name).is_none() => {
            let known: Vec<&str> = crate::source::WEAPONS.iter().map(|w| w.name).collect();
            Err(invalid(
                field,
                format!("unknown weapon {name:?}; known: {}", known.join(", ")),
            ))
        }
        (crate::ImpulseKind::Gunshot, _) => Ok(()),
        (_, Some(_)) => Err(invalid(field, "only gunshots have a weapon")),
        _ => Ok(()),
    }
}
