//! The acoustic scene simulator: gunshots, fireworks and other impulses in a city
//! of buildings, heard by rooftop sensors, with the ground truth.
//!
//! The pipeline, left to right:
//! 1. [`scenario`] says what happens: a city plan, sensors, weather, events,
//!    background noise and sensor faults.
//! 2. [`city`] builds the streets and buildings; sensors go on rooftops.
//! 3. [`source`] turns events into emissions: muzzle blasts (Friedlander waves by
//!    weapon), bullet shockwaves, firecrackers, aerial shells, door slams, in
//!    their rhythm (semi-automatic, automatic, irregular strings).
//! 4. [`propagation`] finds each emission's paths to each sensor (direct,
//!    ground reflection, diffraction over roofs or around corners, facade
//!    echoes); [`atmosphere`] gives ISO 9613-1 absorption.
//! 5. [`render`] makes what each sensor records: the audio (arrivals plus
//!    background, clipped at the microphone's full scale) and the pulse reports a
//!    sensor would send, both on the sensor's own (possibly faulty) clock.
//!
//! Architecture Invariant: no I/O and no clock. The same scenario and seed give
//! the same scene, bit for bit, whatever the number of threads.

pub mod atmosphere;
pub mod city;
pub mod propagation;
pub mod render;
pub mod scenario;
pub mod source;

use model::{Geodetic, Point3, Pulse, PulseId, Sensor, SensorId, TruthEvent, UtcNanos, Weather};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Exp, Normal, StandardNormal};

pub use scenario::{Scenario, ScenarioError};
pub use source::ImpulseKind;

use crate::atmosphere::Air;
use crate::city::{Building, City};
use crate::propagation::{diffraction_loss_db, PathKind};
use crate::render::{absorption_cutoff_hz, Arrival, Noise, Wave};
use crate::scenario::{invalid, Cadence, FaultKind};
use crate::source::{db_spl, pascal, Emission};

/// One sensor's recording.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorAudio {
    pub sensor: SensorId,
    pub sample_rate_hz: u32,
    /// UTC of the first sample, as the sensor's clock labels it.
    pub start: UtcNanos,
    /// Peak SPL of digital full scale.
    pub full_scale_db_spl: f64,
    /// Digital samples, full scale ±1, clipped.
    pub samples: Vec<f32>,
}

/// Everything a simulation produces.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    pub name: String,
    pub origin: Geodetic,
    pub weather: Weather,
    pub start: UtcNanos,
    pub duration_s: f64,
    /// Every sensor, dead ones included (a dead sensor is installed but silent).
    pub sensors: Vec<Sensor>,
    pub audio: Vec<SensorAudio>,
    /// Pulse reports of every sensor, in time order.
    pub pulses: Vec<Pulse>,
    pub truth: Vec<TruthEvent>,
    pub buildings: Vec<Building>,
}

/// A pulse is reported when its 1 ms energy is this far above the detector's
/// noise power, dB: the dsp detector's trigger (+12 dB).
pub const DETECTION_SNR_DB: f64 = 12.0;

/// A sensor reports a new pulse only when no report at least as loud started
/// within this time before it, s: the detector's hold-off inside a pulse.
const DEAD_TIME_S: f64 = 0.010;

/// Onset-picking scatter at 30 dB SNR, s (about 100 µs on good pulses, PRODUCT.md),
/// growing as the noise-to-signal amplitude ratio and capped at 2 ms.
const PICK_SIGMA_30DB_S: f64 = 100e-6;

/// Emissions too weak to reach a sensor 10 dB under its noise by spherical
/// spreading alone are skipped (they could never be detected or heard).
const AUDIBILITY_MARGIN_DB: f64 = 10.0;

/// Independent random streams, so that changing one part of a scenario (the
/// events, say) does not change another (the city or the noise).
#[derive(Clone, Copy)]
enum Stream {
    City = 1,
    Sensors = 2,
    Events = 3,
    Pulses = 4,
    Noise = 5,
}

fn rng(seed: u64, stream: Stream, sub: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(((stream as u64) << 32) | sub);
    r
}

/// Per-sensor settings after faults.
#[derive(Debug, Clone)]
struct Listener {
    sensor: Sensor,
    dead: bool,
    clock_offset_s: f64,
    clock_drift: f64,
    gain_db: f64,
}

impl Listener {
    /// The sensor's clock reading at true scenario time `t`.
    fn clock(&self, t: f64) -> f64 {
        t + self.clock_offset_s + self.clock_drift * t
    }
}

/// Runs the scenario.
pub fn simulate(scenario: &Scenario) -> Result<Scene, ScenarioError> {
    let world = World::new(scenario)?;
    let World {
        start,
        weather,
        listeners,
        emissions,
        truth,
        noise,
        noise_power,
        ..
    } = &world;
    let (start, noise_power) = (*start, *noise_power);
    let env = world.env(scenario);

    // Arrivals per live sensor, computed in parallel (each sensor is independent).
    let live: Vec<usize> = (0..listeners.len())
        .filter(|&i| !listeners[i].dead)
        .collect();
    let arrivals: Vec<Vec<Arrival>> = parallel_map(&live, |&i| {
        let mut list = arrivals_at(&env, emissions, &listeners[i]);
        add_local_impulses(scenario, &listeners[i], i as u64, &mut list);
        list.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
        list
    });

    let full_scale = scenario.sensor.full_scale_db_spl;
    let mut pulses = Vec::new();
    if scenario.output.pulses {
        let reports: Vec<Vec<Pulse>> = live
            .iter()
            .zip(&arrivals)
            .map(|(&i, list)| {
                report_pulses(
                    scenario,
                    &listeners[i],
                    i as u64,
                    list,
                    start,
                    noise_power,
                    full_scale,
                )
            })
            .collect();
        pulses = reports.into_iter().flatten().collect();
        pulses.sort_by(|a, b| a.t.cmp(&b.t).then_with(|| a.sensor.cmp(&b.sensor)));
    }
    let mut audio = Vec::new();
    if scenario.output.audio {
        let jobs: Vec<(usize, &Vec<Arrival>)> = live.iter().copied().zip(&arrivals).collect();
        audio = parallel_map(&jobs, |&(i, list)| {
            record(
                scenario,
                &listeners[i],
                i as u64,
                list,
                noise,
                start,
                full_scale,
            )
        });
    }
    let origin = Geodetic {
        lat_deg: scenario.origin.lat,
        lon_deg: scenario.origin.lon,
        alt_m: scenario.origin.alt_m,
    };
    Ok(Scene {
        name: scenario.name.clone(),
        origin,
        weather: *weather,
        start,
        duration_s: scenario.duration_s,
        sensors: listeners.iter().map(|l| l.sensor.clone()).collect(),
        audio,
        pulses,
        truth: truth.clone(),
        buildings: world.city.buildings().to_vec(),
    })
}

/// Everything a scenario sets up before any sound is rendered: the air, the
/// city, the sensors, the emissions and the background.
struct World {
    start: UtcNanos,
    air: Air,
    weather: Weather,
    city: City,
    listeners: Vec<Listener>,
    emissions: Vec<Emission>,
    truth: Vec<TruthEvent>,
    noise: Noise,
    /// The detector's noise power, Pa² (see [`Noise::detector_power_pa2`]).
    noise_power: f64,
}

impl World {
    fn new(scenario: &Scenario) -> Result<World, ScenarioError> {
        scenario.validate()?;
        let start = UtcNanos::parse_rfc3339(&scenario.start_utc)
            .map_err(|e| invalid("start_utc", e.to_string()))?;
        let w = &scenario.weather;
        let c = &scenario.city;
        let city = match c.plan() {
            None => City::new(Vec::new()),
            Some(plan) => City::new(plan.generate(&mut rng(scenario.seed, Stream::City, 0))),
        };
        let listeners = place_sensors(scenario, &city)?;
        let (emissions, truth) = emissions(scenario, &city, start)?;
        let b = &scenario.background;
        let noise = Noise {
            traffic_db: b.traffic_db_spl,
            wind_db: if b.wind_noise {
                render::wind_noise_db_spl(w.wind_speed_m_s)
            } else {
                0.0
            },
            rain_db: b.rain_db_spl,
            self_db: scenario.sensor.self_noise_db_spl,
        };
        Ok(World {
            start,
            air: Air {
                temperature_c: w.temperature_c,
                humidity_pct: w.humidity_pct,
                pressure_kpa: w.pressure_kpa,
            },
            weather: Weather {
                temperature_c: Some(w.temperature_c),
                wind_speed_m_s: Some(w.wind_speed_m_s),
                wind_from_deg: Some(w.wind_from_deg),
            },
            city,
            listeners,
            emissions,
            truth,
            noise_power: noise.detector_power_pa2(),
            noise,
        })
    }

    fn env(&self, scenario: &Scenario) -> Env<'_> {
        Env {
            city: &self.city,
            air: &self.air,
            c: self.weather.speed_of_sound_m_s(),
            wind: self.weather.wind_velocity_m_s(),
            fs: f64::from(scenario.sensor.sample_rate_hz),
            noise_db: db_spl(self.noise_power.sqrt()),
        }
    }
}

/// Maps `f` over `items` on all cores, keeping the order.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len().max(1));
    if threads <= 1 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(|| part.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// Sensors from the scenario's list, or on random rooftops at the asked density.
fn place_sensors(scenario: &Scenario, city: &City) -> Result<Vec<Listener>, ScenarioError> {
    let mut sensors: Vec<Sensor> = scenario
        .sensors
        .iter()
        .map(|s| Sensor {
            id: SensorId(s.id.clone()),
            position: Point3::new(s.x, s.y, s.z),
        })
        .collect();
    if sensors.is_empty() {
        let area_km2 = scenario.city.width_m * scenario.city.depth_m / 1e6;
        let want = (scenario.city.sensors_per_km2 * area_km2).round() as usize;
        let buildings = city.buildings();
        if want > buildings.len() {
            return Err(invalid(
                "city.sensors_per_km2",
                format!("{want} sensors but only {} rooftops", buildings.len()),
            ));
        }
        if want < 3 {
            return Err(invalid(
                "city.sensors_per_km2",
                format!("gives {want} sensors; at least 3 are needed"),
            ));
        }
        // Operators mount sensors on the taller roofs, for a clear view over
        // their neighbours: candidates are the tallest half of the buildings (or
        // as many as are needed).
        let mut by_height: Vec<usize> = (0..buildings.len()).collect();
        by_height.sort_by(|&a, &b| {
            buildings[b]
                .height_m
                .total_cmp(&buildings[a].height_m)
                .then(a.cmp(&b))
        });
        by_height.truncate((buildings.len() / 2).max(want));
        by_height.sort_unstable();
        let mut r = rng(scenario.seed, Stream::Sensors, 0);
        let chosen = rand::seq::index::sample(&mut r, by_height.len(), want);
        let mut roofs: Vec<usize> = chosen.into_iter().map(|k| by_height[k]).collect();
        // Number sensors west to east, then south to north, so ids read like a map.
        roofs.sort_by(|&a, &b| {
            let (ca, cb) = (buildings[a].centre(), buildings[b].centre());
            ca[1].total_cmp(&cb[1]).then(ca[0].total_cmp(&cb[0]))
        });
        let width = want.to_string().len().max(2);
        for (k, &b) in roofs.iter().enumerate() {
            let [x, y] = buildings[b].centre();
            sensors.push(Sensor {
                id: SensorId(format!("S{:0width$}", k + 1)),
                position: Point3::new(x, y, buildings[b].height_m + scenario.sensor.mast_m),
            });
        }
    }
    let mut listeners: Vec<Listener> = sensors
        .into_iter()
        .map(|sensor| Listener {
            sensor,
            dead: false,
            clock_offset_s: 0.0,
            clock_drift: 0.0,
            gain_db: 0.0,
        })
        .collect();
    for (i, fault) in scenario.faults.iter().enumerate() {
        let Some(l) = listeners.iter_mut().find(|l| l.sensor.id.0 == fault.sensor) else {
            return Err(invalid(
                format!("fault[{i}]"),
                format!("no sensor {}", fault.sensor),
            ));
        };
        match fault.kind {
            FaultKind::Dead => l.dead = true,
            FaultKind::ClockOffset => l.clock_offset_s = fault.value,
            FaultKind::ClockDrift => l.clock_drift = fault.value * 1e-6,
            FaultKind::StuckGain => l.gain_db = fault.value,
        }
    }
    Ok(listeners)
}

/// A random point on a street (outside every building) in the city.
fn street_point(scenario: &Scenario, city: &City, r: &mut ChaCha8Rng) -> (f64, f64) {
    let (hw, hd) = (scenario.city.width_m / 2.0, scenario.city.depth_m / 2.0);
    let mut p = (0.0, 0.0);
    for _ in 0..200 {
        p = (r.gen_range(-hw..hw), r.gen_range(-hd..hd));
        if city.building_at(p.0, p.1).is_none() {
            break;
        }
    }
    p
}

/// Default source height above the street by kind, metres.
fn default_height(kind: ImpulseKind, r: &mut ChaCha8Rng) -> f64 {
    match kind {
        ImpulseKind::Gunshot | ImpulseKind::Balloon => 1.5,
        ImpulseKind::Firecracker => 0.2,
        // Consumer and display shells burst 60–150 m up.
        ImpulseKind::AerialFirework => r.gen_range(60.0..150.0),
        ImpulseKind::Backfire => 0.4,
        ImpulseKind::DoorSlam => 1.0,
        ImpulseKind::NailGun => 3.0,
    }
}

/// Default cadence and rate by kind.
fn default_rhythm(kind: ImpulseKind) -> (Cadence, f64) {
    match kind {
        ImpulseKind::Gunshot => (Cadence::Semi, 3.0),
        ImpulseKind::Firecracker => (Cadence::Irregular, 12.0),
        ImpulseKind::AerialFirework => (Cadence::Irregular, 0.5),
        ImpulseKind::NailGun => (Cadence::Irregular, 1.5),
        _ => (Cadence::Irregular, 1.0),
    }
}

/// Every emission and its truth event, in time order.
fn emissions(
    scenario: &Scenario,
    city: &City,
    start: UtcNanos,
) -> Result<(Vec<Emission>, Vec<TruthEvent>), ScenarioError> {
    let mut r = rng(scenario.seed, Stream::Events, 0);
    let mut bursts: Vec<scenario::EventSpec> = scenario.events.clone();
    for spec in &scenario.random {
        let hours = scenario.duration_s / 3600.0;
        let mean = spec.per_hour * hours;
        let count = if mean > 0.0 {
            rand_distr::Poisson::new(mean).map_or(0, |p| r.sample::<f64, _>(p) as usize)
        } else {
            0
        };
        for _ in 0..count {
            bursts.push(scenario::EventSpec {
                kind: spec.kind,
                t_s: r.gen_range(0.0..scenario.duration_s),
                x: None,
                y: None,
                z: None,
                weapon: spec.weapon.clone(),
                count: spec.count,
                cadence: None,
                rate_hz: spec.rate_hz,
                aim_deg: None,
                shooter: None,
            });
        }
    }
    let mut out = Vec::new();
    let mut next_source = 1 + scenario
        .events
        .iter()
        .filter_map(|e| e.shooter)
        .max()
        .unwrap_or(0);
    for burst in &bursts {
        let (x, y) = match (burst.x, burst.y) {
            (Some(x), Some(y)) => (x, y),
            _ => street_point(scenario, city, &mut r),
        };
        let z = match burst.z {
            Some(z) => z,
            None => default_height(burst.kind, &mut r),
        };
        let (default_cadence, default_rate) = default_rhythm(burst.kind);
        let cadence = burst.cadence.unwrap_or(default_cadence);
        let rate = burst.rate_hz.unwrap_or(default_rate);
        let aim_deg = burst.aim_deg.unwrap_or_else(|| r.gen_range(0.0..360.0));
        let weapon = match burst.kind {
            ImpulseKind::Gunshot => {
                let name = burst.weapon.as_deref().unwrap_or("9mm");
                Some(
                    source::weapon(name)
                        .ok_or_else(|| invalid("event", format!("unknown weapon {name:?}")))?,
                )
            }
            _ => None,
        };
        let shooter = match burst.shooter {
            Some(s) => s,
            None => {
                next_source += 1;
                next_source - 1
            }
        };
        let (level, t_pos) = match (weapon, burst.kind.blast()) {
            (Some(w), _) => (w.level_db_1m, w.positive_phase_s),
            (None, Some(b)) => b,
            (None, None) => return Err(invalid("event", "a gunshot needs a weapon")),
        };
        let mut t = burst.t_s;
        for k in 0..burst.count {
            if k > 0 {
                let mean = 1.0 / rate;
                t += match cadence {
                    Cadence::Semi => sample_normal(&mut r, mean, 0.25 * mean).max(0.4 * mean),
                    Cadence::Auto => sample_normal(&mut r, mean, 0.01 * mean).max(0.5 * mean),
                    Cadence::Irregular => Exp::new(rate)
                        .map_or(mean, |e| r.sample::<f64, _>(e))
                        .max(0.002),
                };
            }
            if t > scenario.duration_s {
                break;
            }
            // A string of firecrackers writhes about on the ground; a shooter stands.
            let (jx, jy) = match burst.kind {
                ImpulseKind::Firecracker => (r.gen_range(-1.0..1.0), r.gen_range(-1.0..1.0)),
                _ => (0.0, 0.0),
            };
            let position = Point3::new(x + jx, y + jy, z);
            let az = aim_deg.to_radians();
            let aim = weapon.map(|_| [az.sin(), az.cos(), 0.0]);
            out.push((
                Emission {
                    t_s: t,
                    position,
                    kind: burst.kind,
                    level_db_1m: level,
                    positive_phase_s: t_pos,
                    aim,
                    bullet: weapon.and_then(|w| w.bullet),
                    truth: 0,
                },
                TruthEvent {
                    t: start.offset_by_seconds(t),
                    position,
                    kind: burst.kind.name().to_string(),
                    weapon: weapon.map(|w| w.name.to_string()),
                    shooter: Some(shooter),
                },
            ));
        }
    }
    out.sort_by(|a, b| a.0.t_s.total_cmp(&b.0.t_s));
    let mut emissions = Vec::with_capacity(out.len());
    let mut truth = Vec::with_capacity(out.len());
    for (i, (mut e, t)) in out.into_iter().enumerate() {
        e.truth = i;
        emissions.push(e);
        truth.push(t);
    }
    Ok((emissions, truth))
}

fn sample_normal(r: &mut ChaCha8Rng, mean: f64, sigma: f64) -> f64 {
    Normal::new(mean, sigma).map_or(mean, |n| r.sample(n))
}

/// What every sensor's arrival computation shares.
struct Env<'a> {
    city: &'a City,
    air: &'a Air,
    c: f64,
    wind: [f64; 2],
    fs: f64,
    /// The detector's noise level, dB SPL (RMS).
    noise_db: f64,
}

/// Every arrival of every emission at one sensor, on the sensor's clock.
fn arrivals_at(env: &Env, emissions: &[Emission], listener: &Listener) -> Vec<Arrival> {
    let r = listener.sensor.position;
    let mut scratch = propagation::Scratch::default();
    let mut paths = Vec::new();
    let mut cells = Vec::new();
    let mut obstacles = Vec::new();
    let mut out = Vec::new();
    let max_hz = 0.45 * env.fs;
    for e in emissions {
        let level = e.level_toward(r);
        let d = e.position.distance(r).max(1.0);
        if level - 20.0 * d.log10() < env.noise_db - AUDIBILITY_MARGIN_DB {
            continue;
        }
        // The wind's component along the horizontal direction to the sensor.
        let d2 = e.position.distance_2d(r).max(1e-9);
        let along = (env.wind[0] * (r.x - e.position.x) + env.wind[1] * (r.y - e.position.y)) / d2;
        let speed = env.c + along;
        propagation::paths(env.city, e.position, r, &mut scratch, &mut paths);
        for p in &paths {
            let mut gain = p.reflection / p.length_m.max(1.0);
            let mut lowpass = [absorption_cutoff_hz(env.air, p.length_m, max_hz), None];
            if p.kind == PathKind::Diffracted {
                // Broadband loss at 500 Hz, near the spectral peak of a distant
                // muzzle blast, and a low-pass where the loss is 3 dB more.
                let at_500 = diffraction_loss_db(p.excess_m, 500.0, env.c);
                gain *= 10f64.powf(-at_500 / 20.0);
                let n500 = 2.0 * p.excess_m * 500.0 / env.c;
                let n3 = (3.0 + 40.0 * n500) / 20.0;
                let f3 = n3 * env.c / (2.0 * p.excess_m.max(1e-6));
                lowpass[1] = (f3 < max_hz).then_some(f3);
            }
            out.push(Arrival {
                t_s: listener.clock(e.t_s + p.length_m / speed),
                peak_pa: pascal(level) * gain,
                wave: Wave::Blast {
                    positive_phase_s: e.positive_phase_s,
                },
                lowpass_hz: lowpass,
                truth: Some(e.truth),
            });
        }
        // The bullet's shockwave, if it passes the sensor supersonically and its
        // trajectory is not stopped by a building first.
        if let (Some(bullet), Some(aim)) = (e.bullet, e.aim) {
            let mut flight = bullet;
            let end = Point3::new(
                e.position.x + aim[0] * bullet.supersonic_range_m,
                e.position.y + aim[1] * bullet.supersonic_range_m,
                e.position.z + aim[2] * bullet.supersonic_range_m,
            );
            env.city
                .obstacles(e.position, end, &mut cells, &mut obstacles);
            if let Some(&(s_in, _, _)) = obstacles.first() {
                flight.supersonic_range_m = s_in;
            }
            if let Some((t, miss)) = source::shock_arrival(e.position, aim, &flight, env.c, r) {
                let m = flight.speed_m_s / env.c;
                let s = {
                    let rel = [r.x - e.position.x, r.y - e.position.y, r.z - e.position.z];
                    rel[0] * aim[0] + rel[1] * aim[1] + rel[2] * aim[2]
                        - miss / (m * m - 1.0).sqrt()
                };
                let from = Point3::new(
                    e.position.x + aim[0] * s,
                    e.position.y + aim[1] * s,
                    e.position.z + aim[2] * s,
                );
                if env.city.clear(from, r, &mut cells) {
                    if let Some((peak, duration)) = source::n_wave(&flight, env.c, miss) {
                        out.push(Arrival {
                            t_s: listener.clock(e.t_s + t),
                            peak_pa: peak,
                            wave: Wave::NWave {
                                duration_s: duration,
                            },
                            lowpass_hz: [
                                absorption_cutoff_hz(env.air, from.distance(r), max_hz),
                                None,
                            ],
                            truth: Some(e.truth),
                        });
                    }
                }
            }
        }
    }
    out
}

/// Impulses only this sensor hears: Poisson in time, 60–85 dB SPL peak (a bin
/// lid or a slammed hatch 10–30 m away: about 100–110 dB at 1 m).
fn add_local_impulses(
    scenario: &Scenario,
    listener: &Listener,
    index: u64,
    out: &mut Vec<Arrival>,
) {
    let rate = scenario.background.local_impulses_per_min / 60.0;
    if rate <= 0.0 {
        return;
    }
    let mut r = rng(scenario.seed, Stream::Events, 1 + index);
    let Ok(gap) = Exp::new(rate) else { return };
    let mut t = r.sample::<f64, _>(gap);
    while t < scenario.duration_s {
        let level = r.gen_range(60.0..85.0);
        out.push(Arrival {
            t_s: listener.clock(t),
            peak_pa: pascal(level),
            wave: Wave::Blast {
                positive_phase_s: r.gen_range(0.0003..0.005),
            },
            lowpass_hz: [Some(r.gen_range(1000.0..4000.0)), None],
            truth: None,
        });
        t += r.sample::<f64, _>(gap);
    }
}

/// The pulse reports of one sensor: the arrivals a detector would trigger on.
fn report_pulses(
    scenario: &Scenario,
    listener: &Listener,
    index: u64,
    arrivals: &[Arrival],
    start: UtcNanos,
    noise_power: f64,
    full_scale_db: f64,
) -> Vec<Pulse> {
    let fs = f64::from(scenario.sensor.sample_rate_hz);
    let mut r = rng(scenario.seed, Stream::Pulses, index);
    let mut scratch = Vec::new();
    let mut reported: Vec<(f64, f64)> = Vec::new(); // (t, energy)
    let mut out = Vec::new();
    for a in arrivals {
        render::render(a, fs, &mut scratch);
        let (peak, energy) = render::measure(&scratch, fs);
        let snr_db = 10.0 * (energy / noise_power).log10();
        if snr_db < DETECTION_SNR_DB {
            continue;
        }
        let masked = reported
            .iter()
            .rev()
            .take_while(|(t, _)| a.t_s - t < DEAD_TIME_S)
            .any(|&(_, e)| e >= energy);
        if masked {
            continue;
        }
        reported.push((a.t_s, energy));
        let sigma = (PICK_SIGMA_30DB_S * 10f64.powf(-(snr_db - 30.0) / 20.0)).min(0.002);
        let jitter = scenario.sensor.jitter_s;
        let noise: f64 = sigma * r.sample::<f64, _>(StandardNormal)
            + jitter * r.sample::<f64, _>(StandardNormal);
        let t = a.t_s + noise.abs().min(3.0 * sigma + 3.0 * jitter) * noise.signum();
        let level = (db_spl(peak) + listener.gain_db).min(full_scale_db);
        out.push(Pulse {
            id: PulseId(format!("{}-{:06}", listener.sensor.id, out.len() + 1)),
            sensor: listener.sensor.id.clone(),
            t: start.offset_by_seconds(t),
            snr_db: Some(snr_db),
            level_db_spl: Some(level),
        });
    }
    out
}

/// One sensor's audio: background plus every arrival, gain, clipping.
fn record(
    scenario: &Scenario,
    listener: &Listener,
    index: u64,
    arrivals: &[Arrival],
    noise: &Noise,
    start: UtcNanos,
    full_scale_db: f64,
) -> SensorAudio {
    let fs = f64::from(scenario.sensor.sample_rate_hz);
    let n = (scenario.duration_s * fs).round() as usize;
    let mut samples = vec![0.0f32; n];
    noise.add_to(
        &mut samples,
        fs,
        &mut rng(scenario.seed, Stream::Noise, index),
    );
    let mut scratch = Vec::new();
    for a in arrivals {
        let first = render::render(a, fs, &mut scratch);
        for (k, v) in scratch.iter().enumerate() {
            let i = first + k as i64;
            if i >= 0 && (i as usize) < n {
                samples[i as usize] += v;
            }
        }
    }
    let scale = (10f64.powf(listener.gain_db / 20.0) / pascal(full_scale_db)) as f32;
    for v in &mut samples {
        *v = (*v * scale).clamp(-1.0, 1.0);
    }
    SensorAudio {
        sensor: listener.sensor.id.clone(),
        sample_rate_hz: scenario.sensor.sample_rate_hz,
        start,
        full_scale_db_spl: full_scale_db,
        samples,
    }
}

/// One emission heard at one sensor, for calibration against measured levels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Heard {
    /// Horizontal source-to-sensor distance, m.
    pub distance_m: f64,
    /// Peak level of the first arrival, dB SPL, clipped at the sensor's full scale.
    pub level_db_spl: f64,
    pub snr_db: f64,
    /// Did the first arrival come over a clear line of sight?
    pub line_of_sight: bool,
}

/// The first arrival of every gunshot at every sensor that would detect it
/// (SNR ≥ [`DETECTION_SNR_DB`]): the simulated counterpart of the levels real
/// sensors report for the pulses they use to locate.
pub fn first_arrival_levels(scenario: &Scenario) -> Result<Vec<Heard>, ScenarioError> {
    let world = World::new(scenario)?;
    let env = world.env(scenario);
    let noise_power = world.noise_power;
    let (emissions, listeners) = (&world.emissions, &world.listeners);
    let mut out = Vec::new();
    let mut scratch = Vec::new();
    let mut cells = Vec::new();
    for e in emissions.iter().filter(|e| e.kind == ImpulseKind::Gunshot) {
        for l in listeners.iter().filter(|l| !l.dead) {
            let arrivals = arrivals_at(&env, std::slice::from_ref(e), l);
            let Some(first) = arrivals
                .iter()
                .filter(|a| matches!(a.wave, Wave::Blast { .. }))
                .min_by(|a, b| a.t_s.total_cmp(&b.t_s))
            else {
                continue;
            };
            render::render(first, env.fs, &mut scratch);
            let (peak, energy) = render::measure(&scratch, env.fs);
            let snr_db = 10.0 * (energy / noise_power).log10();
            if snr_db >= DETECTION_SNR_DB {
                out.push(Heard {
                    distance_m: e.position.distance_2d(l.sensor.position),
                    level_db_spl: db_spl(peak).min(scenario.sensor.full_scale_db_spl),
                    snr_db,
                    line_of_sight: env.city.clear(e.position, l.sensor.position, &mut cells),
                });
            }
        }
    }
    Ok(out)
}
