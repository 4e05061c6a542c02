//! Incidents: shots close in space and time, with rounds and shooters counted.
//!
//! A shot joins the latest open incident when it comes within
//! `incident_gap_s` of that incident's last shot and within `incident_radius_m`
//! of any of its shots; otherwise it opens a new one. Rounds are the shots.
//! Shooters are the groups of shots that are clearly apart: single-linkage
//! clustering where two shots link when they are closer than the larger of
//! `shooter_separation_m` and their combined 95 % radii (two shots are only
//! told apart when both measures say so). Automatic fire is a
//! run of rounds from one position faster than a trigger finger
//! ([`AUTOMATIC_MAX_INTERVAL_S`]).
//!
//! An incident's id is stable for the same input: a hash of the ids of the pulses
//! its shots used, prefixed by the first shot's time.

use model::{Class, Incident, Shot, WeaponClass};
use sha2::{Digest, Sha256};

use crate::config::LocateConfig;

/// Groups time-ordered shots into incidents.
pub fn build_incidents(mut shots: Vec<Shot>, config: &LocateConfig) -> Vec<Incident> {
    shots.sort_by_key(|s| s.t_emit);
    let mut groups: Vec<Vec<Shot>> = Vec::new();
    for shot in shots {
        let joins = groups.iter().rposition(|g| {
            let last = g.last().map_or(shot.t_emit, |s| s.t_emit);
            shot.t_emit.seconds_since(last) <= config.incident_gap_s
                && g.iter()
                    .any(|s| s.position.distance_2d(shot.position) <= config.incident_radius_m)
        });
        match joins {
            Some(i) => groups[i].push(shot),
            None => groups.push(vec![shot]),
        }
    }
    let mut incidents: Vec<Incident> = groups
        .into_iter()
        .map(|shots| incident(shots, config))
        .collect();
    incidents.sort_by(|a, b| a.shots[0].t_emit.cmp(&b.shots[0].t_emit));
    incidents
}

fn incident(shots: Vec<Shot>, config: &LocateConfig) -> Incident {
    let mut hasher = Sha256::new();
    for shot in &shots {
        for a in &shot.arrivals {
            hasher.update(a.pulse.0.as_bytes());
            hasher.update([0u8]);
        }
        hasher.update([1u8]);
    }
    let digest = hasher.finalize();
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    let first = chrono_compact(&shots[0].t_emit.to_rfc3339());
    Incident {
        id: format!("{first}-{hex}"),
        class: Class::Unknown,
        confidence: 0.0,
        rounds: shots.len(),
        shooters: count_shooters(&shots, config),
        automatic: is_automatic(&shots, config),
        weapon_class: weapon_class(&shots),
        shots,
    }
}

/// The firearm class the shots' bullet speeds show: the median of the speeds
/// measured (a shockwave is heard only near the bullet's path, so often on
/// some rounds only); `None` when no round's shockwave was heard.
pub fn weapon_class(shots: &[Shot]) -> Option<WeaponClass> {
    let mut speeds: Vec<f64> = shots.iter().filter_map(|s| s.bullet_speed_m_s).collect();
    if speeds.is_empty() {
        return None;
    }
    speeds.sort_by(f64::total_cmp);
    Some(
        if speeds[speeds.len() / 2] >= crate::shock::RIFLE_MIN_SPEED_M_S {
            WeaponClass::Rifle
        } else {
            WeaponClass::Handgun
        },
    )
}

/// `2018-12-19T00:49:26.612Z` → `20181219T004926.612Z`.
fn chrono_compact(rfc3339: &str) -> String {
    rfc3339.chars().filter(|c| *c != '-' && *c != ':').collect()
}

/// Automatic fire: at least this many rounds from one position in a row…
pub const AUTOMATIC_MIN_ROUNDS: usize = 3;

/// … each at most this long after the one before, s. Automatic weapons fire
/// 600–900 rounds a minute (AK pattern ~600: 100 ms; AR pattern 700–950:
/// 63–86 ms; Glock-switch pistols ~1,200: 50 ms). Fast semi-automatic fire by
/// an ordinary shooter is 3–5 shots a second (200–330 ms); only trained
/// competitors reach 150 ms splits. 130 ms sits between the slowest common
/// automatic rate and the fastest ordinary trigger finger.
pub const AUTOMATIC_MAX_INTERVAL_S: f64 = 0.130;

/// Whether the shots (in time order) hold automatic fire: a run of
/// [`AUTOMATIC_MIN_ROUNDS`] rounds from one shooting position (as
/// [`count_shooters`] groups them), each within [`AUTOMATIC_MAX_INTERVAL_S`]
/// of the one before. Rounds from two shooters interleaved are not one run.
pub fn is_automatic(shots: &[Shot], config: &LocateConfig) -> bool {
    let groups = shooter_groups(shots, config);
    let mut order: Vec<usize> = (0..shots.len()).collect();
    order.sort_by_key(|&i| shots[i].t_emit);
    let mut by_group: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for i in order {
        by_group.entry(groups[i]).or_default().push(i);
    }
    by_group.values().any(|members| {
        let times: Vec<model::UtcNanos> = members.iter().map(|&i| shots[i].t_emit).collect();
        has_automatic_run(&times)
    })
}

/// Whether one shooter's rounds, at `times` (in order), hold a run of
/// [`AUTOMATIC_MIN_ROUNDS`] each within [`AUTOMATIC_MAX_INTERVAL_S`] of the
/// one before.
pub fn has_automatic_run(times: &[model::UtcNanos]) -> bool {
    let mut run = 1;
    times.windows(2).any(|w| {
        run = if w[1].seconds_since(w[0]) <= AUTOMATIC_MAX_INTERVAL_S {
            run + 1
        } else {
            1
        };
        run >= AUTOMATIC_MIN_ROUNDS
    })
}

/// The number of clearly distinct shooting positions.
pub fn count_shooters(shots: &[Shot], config: &LocateConfig) -> usize {
    let groups = shooter_groups(shots, config);
    (0..shots.len()).filter(|&i| groups[i] == i).count()
}

/// Each shot's shooting position, as the index of one shot of its group:
/// single linkage, two shots linking when closer than the larger of the
/// shooter separation and their combined 95 % radii.
fn shooter_groups(shots: &[Shot], config: &LocateConfig) -> Vec<usize> {
    linked_groups(shots.len(), |i, j| {
        let d = shots[i].position.distance_2d(shots[j].position);
        let combined = shots[i].err95_m.hypot(shots[j].err95_m);
        d < config.shooter_separation_m.max(combined)
    })
}

/// Which shooter fired each shot, numbered 1, 2, … in the order they first
/// fired, for shots given in time order as (east m, north m, err95 m): the
/// grouping [`count_shooters`] counts, by the same linkage rule.
pub fn shooter_labels(shots: &[(f64, f64, f64)], shooter_separation_m: f64) -> Vec<usize> {
    let groups = linked_groups(shots.len(), |i, j| {
        let (a, b) = (shots[i], shots[j]);
        let d = (a.0 - b.0).hypot(a.1 - b.1);
        d < shooter_separation_m.max(a.2.hypot(b.2))
    });
    let mut order: Vec<usize> = Vec::new();
    groups
        .iter()
        .map(|g| match order.iter().position(|o| o == g) {
            Some(k) => k + 1,
            None => {
                order.push(*g);
                order.len()
            }
        })
        .collect()
}

/// Single-linkage groups of `n` items under the symmetric relation `linked`:
/// each item's group, named by the index of one of its members (a group's
/// name is a member of it, so `group[i] == i` picks one item per group).
pub fn linked_groups(n: usize, linked: impl Fn(usize, usize) -> bool) -> Vec<usize> {
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for i in 0..n {
        for j in i + 1..n {
            if linked(i, j) {
                let (ri, rj) = (root(&mut parent, i), root(&mut parent, j));
                parent[ri] = rj;
            }
        }
    }
    (0..n).map(|i| root(&mut parent, i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{Point3, UtcNanos};

    #[test]
    fn shooters_are_numbered_in_the_order_they_first_fired() {
        // B fires first from 100 m east, then A at the origin, then B, then A.
        let shots = [
            (100.0, 0.0, 2.0),
            (0.0, 0.0, 2.0),
            (101.0, 0.0, 2.0),
            (0.5, 0.0, 2.0),
        ];
        assert_eq!(shooter_labels(&shots, 10.0), [1, 2, 1, 2]);
        // Overlapping uncertainty links two positions 20 m apart into one.
        assert_eq!(
            shooter_labels(&[(0.0, 0.0, 15.0), (20.0, 0.0, 15.0)], 10.0),
            [1, 1]
        );
        assert!(shooter_labels(&[], 10.0).is_empty());
    }

    fn shot(t_s: f64, x: f64, err95_m: f64) -> Shot {
        Shot {
            t_emit: UtcNanos((t_s * 1e9) as i64),
            position: Point3::new(x, 0.0, 0.0),
            covariance_m2: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            t_sigma_s: 0.001,
            err95_m,
            rms_residual_s: 0.001,
            arrivals: vec![],
            class: Class::Unknown,
            confidence: 0.0,
            bullet_speed_m_s: None,
        }
    }

    #[test]
    fn automatic_fire_is_a_fast_run_from_one_place() {
        let config = LocateConfig::default();
        let burst = |interval: f64, n: usize, x: f64, t0: f64| -> Vec<Shot> {
            (0..n)
                .map(|k| shot(t0 + interval * k as f64, x, 3.0))
                .collect()
        };
        // 10 rounds/s from one rifle: automatic.
        assert!(is_automatic(&burst(0.1, 5, 0.0, 0.0), &config));
        // Fast semi-automatic fire, 4 shots/s: not.
        assert!(!is_automatic(&burst(0.25, 5, 0.0, 0.0), &config));
        // Two rounds fast, then a pause: fewer than three in a run.
        let mut two = burst(0.1, 2, 0.0, 0.0);
        two.extend(burst(0.1, 2, 0.0, 1.0));
        assert!(!is_automatic(&two, &config));
        // Two shooters 60 m apart, firing alternately 70 ms apart: each alone
        // fires every 140 ms, slower than automatic, though the rounds
        // together come fast.
        let mut pair = burst(0.14, 4, 0.0, 0.0);
        pair.extend(burst(0.14, 4, 60.0, 0.07));
        pair.sort_by_key(|s| s.t_emit);
        assert!(!is_automatic(&pair, &config));
        assert_eq!(count_shooters(&pair, &config), 2);
    }

    #[test]
    fn groups_by_time_and_place_and_counts_shooters() {
        let config = LocateConfig::default();
        let shots = vec![
            shot(0.0, 0.0, 3.0),
            shot(0.6, 1.5, 3.0),
            shot(1.1, 40.0, 3.0),    // a second shooter across the street
            shot(100.0, 0.0, 3.0),   // much later: a new incident
            shot(100.5, 900.0, 3.0), // far away at the same time: another incident
        ];
        let incidents = build_incidents(shots, &config);
        assert_eq!(incidents.len(), 3);
        assert_eq!((incidents[0].rounds, incidents[0].shooters), (3, 2));
        assert_eq!((incidents[1].rounds, incidents[1].shooters), (1, 1));
        assert_eq!(incidents[2].rounds, 1);
    }

    #[test]
    fn uncertain_shots_are_not_counted_as_extra_shooters() {
        let config = LocateConfig::default();
        // 30 m apart but each only known to ±40 m: not clearly distinct.
        assert_eq!(
            count_shooters(&[shot(0.0, 0.0, 40.0), shot(1.0, 30.0, 40.0)], &config),
            1
        );
        assert_eq!(
            count_shooters(&[shot(0.0, 0.0, 2.0), shot(1.0, 30.0, 2.0)], &config),
            2
        );
    }
}
