//! Bullet shockwaves: is the bullet supersonic, and how fast?
//!
//! A supersonic bullet drags a Mach cone behind it. Sensors near its path hear
//! the cone's N-wave *before* the muzzle blast: the bullet outruns the sound
//! of the shot. A pulse that reaches a sensor earlier than any sound from the
//! located shot could (and after the shot was fired) is no echo and no blast;
//! it is either a shockwave or unrelated noise. Shockwaves at several sensors
//! fit one straight path from the muzzle with one bullet speed (Whitham
//! 1952); noise does not. So the bullet's azimuth and speed are searched, and
//! the speed is reported when enough sensors agree.
//!
//! The speed tells the firearm class: rifle bullets leave at 700–1,000 m/s,
//! supersonic handgun bullets at 350–450 m/s (9 mm), and shotgun pellets and
//! most handgun rounds are subsonic and make no cone at all. Without a cone
//! nothing is said.

use model::{Point3, Shot};

use crate::input::PulseSet;
use crate::medium::Medium;

/// Sensors whose precursor pulses must fit one bullet path: four, so that a
/// chance fit of noise pulses is rare even where sensors hear a pulse a second
/// (three pulses within the tolerance among thirty candidate sensors happen by
/// chance about once per search on a busy night; four about once in a hundred).
pub const SHOCK_MIN_SENSORS: usize = 4;

/// A precursor fits a path when it arrives within this of the predicted shock
/// arrival, s: the pulse picking error (≤ 1 ms) plus the N-wave's own length
/// (≤ 0.5 ms).
pub const SHOCK_TOLERANCE_S: f64 = 0.0015;

/// A pulse is a precursor when it arrives at least this long before the
/// blast's predicted arrival, s: beyond the blast's timing error, so that the
/// blast itself is never taken for its own shockwave.
pub const PRECURSOR_LEAD_S: f64 = 0.003;

/// Bullet speeds searched, as Mach numbers: from just supersonic to the
/// fastest rifle cartridges (≈ 1,200 m/s).
const MACH_MIN: f64 = 1.05;
const MACH_MAX: f64 = 3.5;
const MACH_STEP: f64 = 0.05;

/// Azimuths searched, degrees apart.
const AZIMUTH_STEP_DEG: f64 = 2.0;

/// How far a bullet stays supersonic at most, m: a rifle bullet falls below
/// Mach 1 within about a kilometre.
const SUPERSONIC_RANGE_M: f64 = 1000.0;

/// Bullets faster than this are rifle bullets, m/s: the fastest handgun
/// cartridges in common use leave at about 450 m/s, the slowest common rifle
/// cartridges (7.62×39) at about 700.
pub const RIFLE_MIN_SPEED_M_S: f64 = 575.0;

/// When the shockwave of a bullet fired horizontally from `muzzle` at
/// `azimuth` (radians, counter-clockwise from +x) with Mach number `mach`
/// reaches `sensor`, seconds after firing; `None` if the cone never reaches it
/// (the sensor is behind the muzzle or beyond the supersonic range).
pub fn shock_arrival_s(
    muzzle: Point3,
    azimuth: f64,
    mach: f64,
    speed_of_sound_m_s: f64,
    sensor: Point3,
) -> Option<f64> {
    let (ux, uy) = (azimuth.cos(), azimuth.sin());
    let (dx, dy, dz) = (
        sensor.x - muzzle.x,
        sensor.y - muzzle.y,
        sensor.z - muzzle.z,
    );
    let along = dx * ux + dy * uy;
    let miss = ((dx - along * ux).powi(2) + (dy - along * uy).powi(2) + dz * dz).sqrt();
    let cot = (mach * mach - 1.0).sqrt();
    // The cone reaching the sensor left the path this far from the muzzle.
    let emitted = along - miss / cot;
    if !(0.0..=SUPERSONIC_RANGE_M).contains(&emitted) {
        return None;
    }
    let v = mach * speed_of_sound_m_s;
    Some(emitted / v + miss * mach / (speed_of_sound_m_s * cot))
}

/// The speed of the bullet of `shot`, m/s, from precursor pulses in `set`
/// (pulses no other located shot used — `used` holds every shot's — arriving
/// after it was fired and at least [`PRECURSOR_LEAD_S`] before its blast
/// could), when at least
/// [`SHOCK_MIN_SENSORS`] sensors' precursors fit one straight path.
pub fn bullet_speed_m_s(
    set: &PulseSet,
    medium: &Medium,
    shot: &Shot,
    used: &std::collections::HashSet<&model::PulseId>,
) -> Option<f64> {
    let t0 = shot.t_emit.seconds_since(set.epoch());
    let c = medium.speed_of_sound_m_s;
    // Per sensor: its position and precursor times (seconds after firing).
    let mut heard: Vec<(Point3, Vec<f64>)> = Vec::new();
    for s in 0..set.sensors().len() {
        let at = set.sensor_position(s);
        if at.distance_2d(shot.position) > 2.0 * SUPERSONIC_RANGE_M {
            continue;
        }
        let blast = medium.travel_time_s(shot.position, at);
        let times: Vec<f64> = set
            .pulses_of_sensor(s)
            .iter()
            .map(|&p| (p, set.refs()[p].t_s - t0))
            .filter(|&(_, t)| t > 0.0 && t < blast - PRECURSOR_LEAD_S)
            .filter(|&(p, _)| {
                // A pulse of another shot is that shot's; one of this shot's
                // own that arrived this early is a shockwave association took
                // for the blast (the earliest pulse within the tolerance).
                let id = &set.pulses()[p].id;
                !used.contains(id) || shot.arrivals.iter().any(|a| &a.pulse == id)
            })
            .map(|(_, t)| t)
            .collect();
        if !times.is_empty() {
            heard.push((at, times));
        }
    }
    if heard.len() < SHOCK_MIN_SENSORS {
        return None;
    }
    let mut best: Option<(usize, f64, f64)> = None; // (sensors, -misfit, mach)
    let steps = (360.0 / AZIMUTH_STEP_DEG) as usize;
    for k in 0..steps {
        let azimuth = (k as f64 * AZIMUTH_STEP_DEG).to_radians();
        let mut mach = MACH_MIN;
        while mach <= MACH_MAX + 1e-9 {
            let (mut count, mut misfit) = (0usize, 0.0);
            for (at, times) in &heard {
                let Some(t) = shock_arrival_s(shot.position, azimuth, mach, c, *at) else {
                    continue;
                };
                let off = times
                    .iter()
                    .map(|x| (x - t).abs())
                    .fold(f64::INFINITY, f64::min);
                if off <= SHOCK_TOLERANCE_S {
                    count += 1;
                    misfit += off;
                }
            }
            if best.is_none_or(|(n, m, _)| count > n || (count == n && -misfit > m)) {
                best = Some((count, -misfit, mach));
            }
            mach += MACH_STEP;
        }
    }
    best.filter(|&(n, _, _)| n >= SHOCK_MIN_SENSORS)
        .map(|(_, _, mach)| mach * c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cone_reaches_a_sensor_beside_the_path_before_the_blast() {
        // Mach 2.5 along +x; a sensor 300 m down the path, 50 m to the side.
        let c = 343.0;
        let muzzle = Point3::new(0.0, 0.0, 1.5);
        let sensor = Point3::new(300.0, 50.0, 1.5);
        let t = shock_arrival_s(muzzle, 0.0, 2.5, c, sensor).unwrap();
        // Emitted 50/√(2.5²−1) = 21.8 m before abeam, travelling 50·2.5/√5.25 m.
        let cot = (2.5f64 * 2.5 - 1.0).sqrt();
        let expected = (300.0 - 50.0 / cot) / (2.5 * c) + 50.0 * 2.5 / (c * cot);
        assert!((t - expected).abs() < 1e-12);
        let blast = muzzle.distance(sensor) / c;
        assert!(t < blast - 0.3, "shock {t} s, blast {blast} s");
        // Behind the muzzle the cone never arrives.
        assert!(shock_arrival_s(muzzle, 0.0, 2.5, c, Point3::new(-100.0, 10.0, 1.5)).is_none());
    }
}
