//! Validated input to the locate engine.
//!
//! A [`PulseSet`] can only be built from sensors with finite positions, pulses
//! from known sensors with unique ids, and at least three distinct sensors: the
//! rest of the engine relies on these facts and does not check them again.

use std::collections::HashMap;

use model::{Point3, Pulse, PulseId, Sensor, SensorId, UtcNanos};

use crate::start::TimedPoint;

/// Why a set of pulses cannot be located.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InputError {
    #[error("sensor {sensor}: position ({x}, {y}, {z}) is not finite")]
    NonFinitePosition {
        sensor: SensorId,
        x: f64,
        y: f64,
        z: f64,
    },
    #[error("sensor {sensor} is listed twice with positions {distance_m:.1} m apart")]
    ConflictingSensor { sensor: SensorId, distance_m: f64 },
    #[error("pulse {pulse}: sensor {sensor} is not a known sensor")]
    UnknownSensor { pulse: PulseId, sensor: SensorId },
    #[error("pulse id {pulse} occurs more than once")]
    DuplicatePulse { pulse: PulseId },
    #[error("pulse {pulse}: {field} {value} is not a finite number")]
    NonFiniteValue {
        pulse: PulseId,
        field: &'static str,
        value: f64,
    },
    #[error("only {count} sensor(s) reported pulses: locating needs at least 3")]
    TooFewSensors { count: usize },
}

/// A pulse as the engine sees it: which sensor (by index) and when (seconds since
/// the set's reference instant).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PulseRef {
    pub sensor: usize,
    pub t_s: f64,
}

/// Sensors and pulses, validated, with the pulses sorted by time.
#[derive(Debug, Clone)]
pub struct PulseSet {
    sensors: Vec<Sensor>,
    pulses: Vec<Pulse>,
    refs: Vec<PulseRef>,
    /// Indices into `pulses` by sensor, each sensor's in time order; sensor
    /// `s`'s are `by_sensor[sensor_start[s]..sensor_start[s + 1]]`. One flat
    /// array, as association reads it many times per candidate source.
    by_sensor: Vec<usize>,
    /// The times of those pulses (`PulseRef::t_s`), in the same layout.
    times_by_sensor: Vec<f64>,
    sensor_start: Vec<usize>,
    epoch: UtcNanos,
}

/// Sensors listed more than once must agree to within this distance, metres.
/// Single GPS fixes of a fixed sensor scatter by a few metres (u-blox MAX-7: 2.5 m
/// CEP; the Pittsburgh files show the same sensor up to 2.3 m apart between
/// pulses); a larger disagreement means two different places.
const SENSOR_POSITION_AGREEMENT_M: f64 = 30.0;

impl PulseSet {
    /// Validates and indexes. Sensors may be listed more than once (as in files that
    /// repeat a sensor's position with every pulse) if the positions agree; the
    /// position used is then the mean of the reports.
    pub fn new(sensors: Vec<Sensor>, mut pulses: Vec<Pulse>) -> Result<PulseSet, InputError> {
        let mut unique: Vec<Sensor> = Vec::new();
        let mut sums: Vec<(Point3, f64)> = Vec::new();
        let mut index: HashMap<SensorId, usize> = HashMap::new();
        for sensor in sensors {
            let p = sensor.position;
            if !p.is_finite() {
                return Err(InputError::NonFinitePosition {
                    sensor: sensor.id,
                    x: p.x,
                    y: p.y,
                    z: p.z,
                });
            }
            match index.get(&sensor.id) {
                Some(&i) => {
                    let distance_m = unique[i].position.distance(p);
                    if distance_m > SENSOR_POSITION_AGREEMENT_M {
                        return Err(InputError::ConflictingSensor {
                            sensor: sensor.id,
                            distance_m,
                        });
                    }
                    let (sum, n) = &mut sums[i];
                    (sum.x, sum.y, sum.z, *n) = (sum.x + p.x, sum.y + p.y, sum.z + p.z, *n + 1.0);
                }
                None => {
                    index.insert(sensor.id.clone(), unique.len());
                    unique.push(sensor);
                    sums.push((p, 1.0));
                }
            }
        }
        for (sensor, (sum, n)) in unique.iter_mut().zip(&sums) {
            sensor.position = Point3::new(sum.x / n, sum.y / n, sum.z / n);
        }
        let mut seen: HashMap<&PulseId, ()> = HashMap::with_capacity(pulses.len());
        for pulse in &pulses {
            if seen.insert(&pulse.id, ()).is_some() {
                return Err(InputError::DuplicatePulse {
                    pulse: pulse.id.clone(),
                });
            }
            if !index.contains_key(&pulse.sensor) {
                return Err(InputError::UnknownSensor {
                    pulse: pulse.id.clone(),
                    sensor: pulse.sensor.clone(),
                });
            }
            for (field, value) in [
                ("snr_db", pulse.snr_db),
                ("level_db_spl", pulse.level_db_spl),
            ] {
                if let Some(v) = value.filter(|v| !v.is_finite()) {
                    return Err(InputError::NonFiniteValue {
                        pulse: pulse.id.clone(),
                        field,
                        value: v,
                    });
                }
            }
        }
        drop(seen);
        // Time order, ties broken by id, so the engine's output does not depend on input order.
        pulses.sort_by(|a, b| a.t.cmp(&b.t).then_with(|| a.id.cmp(&b.id)));
        let epoch = pulses.first().map_or(UtcNanos(0), |p| p.t);
        let refs: Vec<PulseRef> = pulses
            .iter()
            .map(|p| PulseRef {
                sensor: index[&p.sensor],
                t_s: p.t.seconds_since(epoch),
            })
            .collect();
        // Counting sort by sensor; within a sensor, time order is kept.
        let mut sensor_start = vec![0usize; unique.len() + 1];
        for r in &refs {
            sensor_start[r.sensor + 1] += 1;
        }
        for s in 0..unique.len() {
            sensor_start[s + 1] += sensor_start[s];
        }
        let mut next = sensor_start.clone();
        let mut by_sensor = vec![0usize; refs.len()];
        let mut times_by_sensor = vec![0.0f64; refs.len()];
        for (i, r) in refs.iter().enumerate() {
            let k = next[r.sensor];
            by_sensor[k] = i;
            times_by_sensor[k] = r.t_s;
            next[r.sensor] += 1;
        }
        let reporting = sensor_start.windows(2).filter(|w| w[1] > w[0]).count();
        if reporting < 3 {
            return Err(InputError::TooFewSensors { count: reporting });
        }
        Ok(PulseSet {
            sensors: unique,
            pulses,
            refs,
            by_sensor,
            times_by_sensor,
            sensor_start,
            epoch,
        })
    }

    pub fn sensors(&self) -> &[Sensor] {
        &self.sensors
    }

    /// The pulses, in time order.
    pub fn pulses(&self) -> &[Pulse] {
        &self.pulses
    }

    pub fn refs(&self) -> &[PulseRef] {
        &self.refs
    }

    pub fn sensor_position(&self, sensor: usize) -> Point3 {
        self.sensors[sensor].position
    }

    /// Indices into [`PulseSet::pulses`] of one sensor's pulses, in time order.
    pub fn pulses_of_sensor(&self, sensor: usize) -> &[usize] {
        &self.by_sensor[self.sensor_start[sensor]..self.sensor_start[sensor + 1]]
    }

    /// The times of [`PulseSet::pulses_of_sensor`], in the same order.
    pub fn times_of_sensor(&self, sensor: usize) -> &[f64] {
        &self.times_by_sensor[self.sensor_start[sensor]..self.sensor_start[sensor + 1]]
    }

    /// Pulse `index` as the solver sees it: its sensor's position and its time.
    pub fn timed_point(&self, index: usize) -> TimedPoint {
        let r = self.refs[index];
        TimedPoint {
            position: self.sensor_position(r.sensor),
            t_s: r.t_s,
        }
    }

    /// The index into [`PulseSet::pulses`] of the pulse with this id.
    pub fn index_of(&self, id: &PulseId) -> Option<usize> {
        self.pulses.iter().position(|p| &p.id == id)
    }

    /// The reference instant that pulse times (`PulseRef::t_s`) count from.
    pub fn epoch(&self) -> UtcNanos {
        self.epoch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sensor(id: &str, x: f64) -> Sensor {
        Sensor {
            id: SensorId(id.into()),
            position: Point3::new(x, 0.0, 0.0),
        }
    }

    fn pulse(id: &str, sensor: &str, t: i64) -> Pulse {
        Pulse {
            id: PulseId(id.into()),
            sensor: SensorId(sensor.into()),
            t: UtcNanos(t),
            snr_db: None,
            level_db_spl: None,
        }
    }

    #[test]
    fn rejects_bad_sets() {
        let sensors = vec![sensor("a", 0.0), sensor("b", 100.0), sensor("c", 200.0)];
        let ok = vec![pulse("1", "a", 0), pulse("2", "b", 5), pulse("3", "c", 9)];
        assert!(PulseSet::new(sensors.clone(), ok.clone()).is_ok());

        let dup = vec![pulse("1", "a", 0), pulse("1", "b", 5), pulse("3", "c", 9)];
        assert!(matches!(
            PulseSet::new(sensors.clone(), dup),
            Err(InputError::DuplicatePulse { .. })
        ));

        let two = vec![pulse("1", "a", 0), pulse("2", "b", 5), pulse("3", "b", 9)];
        assert_eq!(
            PulseSet::new(sensors.clone(), two).unwrap_err(),
            InputError::TooFewSensors { count: 2 }
        );

        let unknown = vec![pulse("1", "z", 0), pulse("2", "b", 5), pulse("3", "c", 9)];
        assert!(matches!(
            PulseSet::new(sensors.clone(), unknown),
            Err(InputError::UnknownSensor { .. })
        ));

        let mut nan = sensors.clone();
        nan[0].position.x = f64::NAN;
        assert!(matches!(
            PulseSet::new(nan, ok.clone()),
            Err(InputError::NonFinitePosition { .. })
        ));

        let mut jittered = sensors.clone();
        jittered.push(sensor("a", 2.0));
        let set = PulseSet::new(jittered, ok.clone()).unwrap();
        assert_eq!(
            set.sensor_position(0).x,
            1.0,
            "repeated reports are averaged"
        );

        let mut moved = sensors.clone();
        moved.push(sensor("a", 50.0));
        assert!(matches!(
            PulseSet::new(moved, ok.clone()),
            Err(InputError::ConflictingSensor { .. })
        ));

        let mut inf = ok;
        inf[1].snr_db = Some(f64::INFINITY);
        assert!(matches!(
            PulseSet::new(sensors, inf),
            Err(InputError::NonFiniteValue { .. })
        ));
    }

    #[test]
    fn sorts_by_time_and_indexes_by_sensor() {
        let sensors = vec![sensor("a", 0.0), sensor("b", 100.0), sensor("c", 200.0)];
        let pulses = vec![
            pulse("3", "c", 900),
            pulse("1", "a", 100),
            pulse("2", "a", 50),
            pulse("4", "b", 70),
        ];
        let set = PulseSet::new(sensors, pulses).unwrap();
        let ids: Vec<_> = set.pulses().iter().map(|p| p.id.0.as_str()).collect();
        assert_eq!(ids, ["2", "4", "1", "3"]);
        assert_eq!(set.pulses_of_sensor(0), &[0, 2]);
        assert_eq!(set.epoch(), UtcNanos(50));
        assert!((set.refs()[3].t_s - 850e-9).abs() < 1e-15);
    }
}
