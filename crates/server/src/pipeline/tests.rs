//! The pipeline on a synthetic shot: found provisionally as pulses arrive, kept
//! under one key and one incident, alerted once, then final.

#![allow(clippy::unwrap_used)]

use super::*;
use model::{Point3, SensorId};

fn setup() -> (Vec<Sensor>, Vec<Pulse>) {
    let medium = Medium::still(343.0);
    let source = Point3::new(120.0, -80.0, 2.0);
    let t0 = UtcNanos(1_800_000_000_000_000_000);
    let mut sensors = Vec::new();
    let mut pulses = Vec::new();
    for i in 0..8 {
        let a = i as f64 * std::f64::consts::TAU / 8.0;
        let p = Point3::new(600.0 * a.cos(), 600.0 * a.sin(), 10.0 + i as f64);
        let id = SensorId(format!("S{i}"));
        let (tt, _) = medium.travel_time(source, p);
        pulses.push(Pulse {
            id: PulseId(format!("S{i}/p")),
            sensor: id.clone(),
            t: t0.offset_by_seconds(tt),
            snr_db: Some(30.0),
            level_db_spl: None,
        });
        sensors.push(Sensor { id, position: p });
    }
    pulses.sort_by_key(|p| p.t);
    (sensors, pulses)
}

#[test]
fn a_shot_is_alerted_once_as_its_pulses_arrive_and_then_becomes_final() {
    let (sensors, pulses) = setup();
    let config = LocateConfig::default();
    let mut assoc = Associator::new(sensors, Medium::still(343.0), config.clone());
    let mut builder = IncidentBuilder::new(config, None);
    let mut versions = Vec::new();
    let mut keys = BTreeSet::new();
    for p in pulses {
        assoc.push([p]);
        let changes = assoc.run();
        for c in &changes {
            if let ShotChange::Upsert(s) = c {
                keys.insert(s.key.clone());
            }
        }
        versions.extend(builder.apply(changes));
    }
    assert_eq!(keys.len(), 1, "one shot, one key: {keys:?}");
    assert!(!versions.is_empty());
    assert!(
        versions.iter().all(|v| v.id == versions[0].id),
        "one incident"
    );
    let alerts: Vec<_> = versions.iter().filter(|v| v.alert == Some(ALERT)).collect();
    assert_eq!(alerts.len(), 1, "alerted exactly once");
    let last = versions.last().unwrap();
    assert_eq!(last.shots.len(), 1);
    assert!(
        last.shots[0]
            .position
            .distance_2d(Point3::new(120.0, -80.0, 2.0))
            < 0.5
    );
    assert_eq!(last.shots[0].arrivals.len(), 8);
    // Quiet for longer than the reach: final, pulses leave the pool, nothing changes.
    assoc.advance(30.0);
    assert!(assoc.run().is_empty());
    assert_eq!(assoc.pool_len(), 0);
}

#[test]
fn a_rerun_that_finds_the_same_shots_writes_no_version() {
    let (sensors, pulses) = setup();
    let config = LocateConfig::default();
    let mut assoc = Associator::new(sensors, Medium::still(343.0), config.clone());
    let mut builder = IncidentBuilder::new(config, None);
    assoc.push(pulses.clone());
    let first = builder.apply(assoc.run());
    assert_eq!(first.len(), 1);
    // The same pulses again (a retried report) change nothing.
    assoc.push(pulses);
    assert!(builder.apply(assoc.run()).is_empty());
}

#[test]
fn a_stored_document_has_the_signature_of_the_shots_it_was_built_from() {
    // After a restart the builder compares what it finds again with the
    // signature of the stored document (positions rounded to the millimetre
    // there): equal shots must compare equal, even a coordinate next to a
    // centimetre's rounding boundary.
    let (sensors, pulses) = setup();
    let config = LocateConfig::default();
    let mut assoc = Associator::new(sensors, Medium::still(343.0), config.clone());
    let mut builder = IncidentBuilder::new(config, None);
    assoc.push(pulses);
    let version = builder.apply(assoc.run()).pop().unwrap();
    let frame = model::LocalFrame::new(model::Geodetic {
        lat_deg: 40.44,
        lon_deg: -80.0,
        alt_m: 250.0,
    });
    for (x, y) in [
        (1.2349, -0.0051),
        (-11452.5649, 3651.9749),
        (0.0049, 2.675),
        (120.0, -80.0),
    ] {
        let mut v = version.clone();
        v.shots[0].position.x = x;
        v.shots[0].position.y = y;
        let doc = crate::doc::IncidentDoc::build(&v, &frame, None);
        let stored: crate::doc::IncidentDoc =
            serde_json::from_str(&serde_json::to_string(&doc).unwrap()).unwrap();
        assert_eq!(stored.signature(), signature(&v.shots), "x {x}, y {y}");
    }
}

/// Eight sensors on a 600 m ring around `centre`, named `{name}{i}`.
fn ring(name: &str, centre: Point3) -> Vec<Sensor> {
    (0..8)
        .map(|i| {
            let a = i as f64 * std::f64::consts::TAU / 8.0;
            Sensor {
                id: SensorId(format!("{name}{i}")),
                position: Point3::new(centre.x + 600.0 * a.cos(), centre.y + 600.0 * a.sin(), 10.0),
            }
        })
        .collect()
}

/// A shot at `source`, emitted at `t`, as heard by `sensors` in still air.
fn shot_pulses(tag: &str, sensors: &[Sensor], source: Point3, t: UtcNanos) -> Vec<Pulse> {
    let medium = Medium::still(343.0);
    sensors
        .iter()
        .map(|s| Pulse {
            id: PulseId(format!("{}/{tag}", s.id.0)),
            sensor: s.id.clone(),
            t: t.offset_by_seconds(medium.travel_time(source, s.position).0),
            snr_db: Some(30.0),
            level_db_spl: None,
        })
        .collect()
}

#[test]
fn a_shot_across_the_city_is_final_while_a_burst_elsewhere_goes_on() {
    // Shot A, then a burst at B, 20 km away, a round every 3 s for 24 s: the
    // burst's rounds compete for pulses and wait for each other, but A shares
    // no sensor with them and must not wait for the burst to end.
    let (a, b) = (Point3::new(0.0, 0.0, 2.0), Point3::new(20_000.0, 0.0, 2.0));
    let mut sensors = ring("A", a);
    sensors.extend(ring("B", b));
    let t0 = UtcNanos(1_800_000_000_000_000_000);
    let mut pulses = shot_pulses("a", &sensors[..8], a, t0);
    for k in 0..9 {
        let t = t0.offset_by_seconds(1.0 + 3.0 * k as f64);
        pulses.extend(shot_pulses(&format!("b{k}"), &sensors[8..], b, t));
    }
    pulses.sort_by(|x, y| x.t.cmp(&y.t).then_with(|| x.id.cmp(&y.id)));
    let config = LocateConfig::default();
    let mut assoc = Associator::new(sensors, Medium::still(343.0), config.clone());
    let near_a = |assoc: &Associator| {
        assoc
            .live
            .iter()
            .filter(|s| s.shot.position.distance_2d(a) < 100.0)
            .count()
    };
    let mut a_followed = false;
    let mut a_final_at = None;
    for p in pulses {
        let t = p.t;
        assoc.push([p]);
        assoc.run();
        a_followed |= near_a(&assoc) == 1;
        if a_followed && a_final_at.is_none() && near_a(&assoc) == 0 {
            a_final_at = Some(t.seconds_since(t0));
        }
    }
    let a_final_at = a_final_at.expect("shot A became final during the burst");
    // Final once no sensor can add to it (one travel time plus the allowed
    // lateness), long before the burst's last round at 25 s.
    assert!(
        a_final_at <= assoc.reach_s() + LATENESS_S + 3.5,
        "A final only at {a_final_at:.1} s"
    );
    assert!(
        assoc
            .live
            .iter()
            .any(|s| s.shot.position.distance_2d(b) < 100.0),
        "the burst is still followed"
    );
}

/// The synthetic shot's pulses with received levels from a source of
/// `level_db` at 1 m that is `directivity_db` louder towards +x than its mean.
fn heard_at(level_db: f64, directivity_db: f64) -> (Vec<Sensor>, Vec<Pulse>) {
    let (sensors, mut pulses) = setup();
    let source = Point3::new(120.0, -80.0, 2.0);
    for p in &mut pulses {
        let at = sensors.iter().find(|s| s.id == p.sensor).unwrap().position;
        let r = at.distance(source);
        let bearing = (at.y - source.y).atan2(at.x - source.x);
        p.level_db_spl = Some(
            level_db + directivity_db * bearing.cos()
                - 20.0 * r.log10()
                - classify::incident::ABSORPTION_DB_PER_M * r,
        );
    }
    (sensors, pulses)
}

fn versions_of(sensors: Vec<Sensor>, pulses: Vec<Pulse>) -> Vec<IncidentVersion> {
    let config = LocateConfig::default();
    let classifier = std::sync::Arc::new(classify::Classifier::shipped().unwrap());
    let mut assoc = Associator::new(sensors, Medium::still(343.0), config.clone());
    let mut builder = IncidentBuilder::new(config, Some(classifier));
    let mut versions = Vec::new();
    for p in pulses {
        assoc.push([p]);
        versions.extend(builder.apply(assoc.run()));
    }
    versions
}

#[test]
fn the_shipped_classifier_decides_from_reported_levels_and_holds_the_alert_only_for_a_non_gunfire_class(
) {
    // No levels (uncalibrated sensors) and no waveform: nothing says what it
    // sounded like, so `unknown`, and alerted.
    let (sensors, pulses) = setup();
    let v = versions_of(sensors, pulses);
    let last = v.last().unwrap();
    assert_eq!(last.shots[0].class, Class::Unknown);
    assert!(v.iter().any(|v| v.alert == Some(ALERT)));

    // A door slam's level (120 dB at 1 m), the same all round: published,
    // classed, not alerted.
    let (sensors, pulses) = heard_at(120.0, 0.0);
    let v = versions_of(sensors, pulses);
    let last = v.last().unwrap();
    assert!(
        matches!(last.shots[0].class, Class::Other | Class::Fireworks),
        "{:?} at {}",
        last.shots[0].class,
        last.shots[0].confidence
    );
    assert!(last.shots[0].confidence > 0.95);
    assert!(v.iter().all(|v| v.alert.is_none()), "no alert");

    // A handgun's muzzle blast, 8 dB louder ahead of the muzzle: alerted as
    // gunfire or probable gunfire. Its level is given as the network measures
    // it: buildings and the ground take 10–15 dB from the free-field 153–155
    // dB, so a handgun's back-computed level reads about 140 dB, in the
    // simulated city as on the Pittsburgh sensors (docs/classify.md); at 160 dB
    // with no waveform it would read as an aerial shell.
    let (sensors, pulses) = heard_at(140.0, 8.0);
    let v = versions_of(sensors, pulses);
    let last = v.last().unwrap();
    assert!(
        matches!(last.shots[0].class, Class::Gunfire | Class::ProbableGunfire),
        "{:?} at {}",
        last.shots[0].class,
        last.shots[0].confidence
    );
    assert!(v.iter().any(|v| v.alert == Some(ALERT)));
}

#[test]
fn a_held_alert_goes_out_on_a_review_or_after_the_timeout_and_reviews_stick() {
    let run = |builder: &mut IncidentBuilder| {
        let (sensors, pulses) = heard_at(140.0, 8.0);
        let mut assoc = Associator::new(sensors, Medium::still(343.0), LocateConfig::default());
        let mut versions = Vec::new();
        for p in pulses {
            assoc.push([p]);
            versions.extend(builder.apply(assoc.run()));
        }
        versions
    };
    let classifier = std::sync::Arc::new(classify::Classifier::shipped().unwrap());
    let new = || {
        let mut b = IncidentBuilder::new(LocateConfig::default(), Some(classifier.clone()));
        // Hold everything: even a confident gunfire call waits for a person.
        b.hold_for_review_below(1.01);
        b
    };

    // Nobody reviews: held, then released by the timeout, once.
    let mut builder = new();
    let versions = run(&mut builder);
    assert!(!versions.is_empty());
    assert!(versions.iter().all(|v| v.alert.is_none()), "held");
    let released = builder.release_held(std::time::Duration::ZERO);
    assert_eq!(released.len(), 1);
    assert_eq!(released[0].alert, Some(ALERT));
    assert_eq!(released[0].change.action, "release");
    assert!(builder.release_held(std::time::Duration::ZERO).is_empty());

    // Nobody reviews and the incident closes before the timeout: closing
    // releases it rather than dropping it.
    let mut builder = new();
    let versions = run(&mut builder);
    assert!(builder
        .release_held(std::time::Duration::from_secs(3_600))
        .is_empty());
    let later = versions[0].shots[0].t_emit.0 + 3_600_000_000_000;
    let released = builder.close_before(model::UtcNanos(later));
    assert_eq!(released.len(), 1);
    assert_eq!(released[0].alert, Some(ALERT));
    assert!(builder.open_incidents().is_empty());

    // A reviewer confirms first: it goes out then, as the reviewer's version.
    let mut builder = new();
    let versions = run(&mut builder);
    let id = versions[0].id.clone();
    let confirm = crate::doc::ReviewDoc {
        status: "confirmed".into(),
        by: "user:rita".into(),
        at_utc: "2026-11-21T00:00:00Z".into(),
        reason: "three shots on the clip".into(),
        class: None,
        rounds: Some(4),
        shooters: None,
        lat: None,
        lon: None,
        machine: None,
    };
    let change = store::Change {
        actor: "user:rita".into(),
        action: "confirm".into(),
        reason: Some(confirm.reason.clone()),
    };
    let reviewed = builder.review(&id, &confirm, change).unwrap();
    assert_eq!(reviewed.alert, Some(ALERT));
    assert_eq!(reviewed.version, versions.last().unwrap().version + 1);
    assert_eq!(reviewed.change.actor, "user:rita");
    assert!(
        builder.release_held(std::time::Duration::ZERO).is_empty(),
        "already out"
    );
    assert!(builder
        .review("no-such-incident", &confirm, store::Change::machine())
        .is_none());
    // The review stays on the incident for later machine versions.
    assert_eq!(
        builder.open_incidents()[0].review.as_ref().unwrap().rounds,
        Some(4)
    );
}

#[test]
fn a_pulse_sent_again_after_its_shot_is_final_starts_no_second_shot() {
    // A sensor resends a pulse with its clip, or a replay repeats it, after
    // the shot it belongs to is final but while it is still inside the window.
    let (sensors, pulses) = setup();
    let config = LocateConfig::default();
    let mut assoc = Associator::new(sensors, Medium::still(343.0), config);
    assoc.push(pulses.clone());
    let first = assoc.run();
    assert!(first.iter().any(|c| matches!(c, ShotChange::Upsert(_))));
    // Past the moment no sensor can add to it, still inside the window.
    assoc.advance(13.0);
    assert!(13.0 < assoc.horizon_s());
    assoc.run();
    assert_eq!(assoc.pool_len(), 0, "final: its pulses left the pool");
    assoc.push(pulses.clone());
    assert_eq!(assoc.pool_len(), 0, "the copies are not taken in");
    let again = assoc.run();
    assert!(
        !again.iter().any(|c| matches!(c, ShotChange::Upsert(_))),
        "{again:?}"
    );
}
