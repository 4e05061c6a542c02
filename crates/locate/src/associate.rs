//! Association: which pulses belong to which shot.
//!
//! Around a real shot, most pulses are echoes or unrelated noise. A shot's direct
//! (near-line-of-sight) arrivals are the ones that agree with a single source
//! point and emission time; echoes come from a different apparent source at each
//! sensor and do not (Tech Note 098 §II.A). So association is a search for the
//! largest mutually consistent sets, taken greedily, largest first:
//!
//! 1. Physical gate. Two pulses at sensors d apart can come from one shot only if
//!    |t_i − t_j| ≤ d / c + tolerance.
//! 2. Hypotheses. Every unused pulse is tried as an *anchor*: the first arrival of
//!    its shot. With two more gate-consistent pulses at other nearby sensors, the
//!    exact three-arrival solution ([`crate::start::triple_2d`]) proposes a source
//!    and emission time.
//! 3. Support. A hypothesis is scored by how many sensors within range have an
//!    unused pulse within the tolerance of its predicted arrival.
//! 4. Refinement. The best-supported hypothesis is refined: gather each sensor's
//!    consistent pulse, solve robustly, gather again with the better solution,
//!    until the set is stable; arrivals beyond the tolerance are dropped.
//! 5. Consumption. An accepted shot uses each of its pulses, so no pulse serves
//!    two shots, and the next-best hypothesis is taken, until none has the
//!    minimum support.
//!
//! Echo rule: at each sensor the *earliest* pulse within the tolerance window is
//! taken, never a later one, because an echo always travels a longer path than the
//! direct sound and so arrives after it.
//!
//! Cost. Hypotheses use only pulses within one sensor-to-sensor travel time of the
//! anchor, at the nearest sensors, so the work per pulse is bounded by the local
//! density of sensors and pulses, not by the size of the network or the night.
//! After a shot is accepted only the anchors whose best hypothesis used one of its
//! pulses are recomputed.

use std::borrow::Cow;

use model::{Class, Sensor, Shot, ShotArrival};

use crate::config::LocateConfig;
use crate::input::PulseSet;
use crate::medium::Medium;
use crate::solve::{self, Arrivals, Solution};
use crate::start::{self, Candidate, TimedPoint};

/// Sensors whose pulses seed hypotheses for one anchor: the nearest ones that have
/// a gate-consistent pulse. A shot heard by 4–20 sensors is nearly always heard by
/// most of the anchor's six nearest reporting neighbours, and six sensors give 15
/// pairs, enough to find one good triple; more sensors only add hypotheses built
/// from echoes and noise (Pittsburgh FP1–FP4 locate the same rounds with 6 as with 10).
const HYPOTHESIS_SENSORS: usize = 8;

/// Pulses per sensor that seed hypotheses: the strongest few in the gate. A shot's
/// direct arrival is usually among the strongest pulses a nearby sensor hears in a
/// second or two (its own echoes are weaker, having travelled farther and lost
/// energy at a facade). Without this cap the hypotheses per anchor grow with the
/// square of each sensor's pulse rate, which a noisy night (fireworks, traffic)
/// makes explode; with it the work per anchor is bounded. Only hypothesis seeding
/// is capped, and only where every pulse carries an SNR: support and refinement
/// still look at every pulse.
const HYPOTHESIS_PULSES_PER_SENSOR: usize = 3;

/// Anchors below which hypotheses are built on one thread. One anchor costs a
/// few to a few hundred microseconds (more where pulses are dense); starting
/// and joining threads costs about a hundred, and a single test's few hundred
/// pulses were measured slower split (Pittsburgh 5.8 → 7.8 ms per test at 32).
const PARALLEL_ANCHORS: usize = 256;

/// The same for streaming association, whose anchors are a server's newest
/// pulses in a window of tens of thousands under load, each costing about half
/// a millisecond there: a run of a few dozen is worth splitting.
const PARALLEL_NEW_ANCHORS: usize = 32;

/// How far from the false-alarm budget a hypothesis's best-case significance
/// may be and still be refined ([`Search::could_be_significant`]): a factor
/// of 10⁵, about what three or four more supporting sensors are worth where
/// sensors hear a pulse every second or so. (Measured: of the shots accepted
/// on Pittsburgh FP1–FP4 and a simulated busy city, the least promising
/// hypothesis was 30 times inside this margin; 97 % of the busy city's
/// chance alignments fall outside it and are not refined.)
const REFINE_MARGIN: f64 = 1e5;

/// How many hypotheses each anchor's search scored, for the look-elsewhere
/// correction of the significance test.
struct Trials {
    /// By pulse; zero for pulses that were never anchors.
    per_pulse: Vec<usize>,
    /// The anchors, in time order (pulse indices are).
    anchors: Vec<usize>,
}

/// A neighbour of an anchor's sensor, as hypothesis scoring reads it.
#[derive(Debug, Clone, Copy)]
struct Near {
    position: model::Point3,
    sensor: usize,
    /// From the anchor's sensor, metres.
    distance_m: f64,
}

/// A proposed shot and its support.
#[derive(Debug, Clone)]
struct Hypothesis {
    candidate: Candidate,
    /// How many hypotheses the anchor's search scored (for the look-elsewhere correction).
    trials: usize,
    /// Supporting pulse indices, one per sensor.
    support: Vec<usize>,
    /// Sum of squared residuals of the support, s².
    sum_sq_s2: f64,
}

impl Hypothesis {
    /// Better: more sensors, then smaller residuals.
    fn better_than(&self, other: &Hypothesis) -> bool {
        other.beaten_by(self.support.len(), self.sum_sq_s2)
    }

    /// Whether a support of `count` sensors with squared residuals summing to
    /// `sum_sq_s2` would be better than this.
    fn beaten_by(&self, count: usize, sum_sq_s2: f64) -> bool {
        count > self.support.len() || count == self.support.len() && sum_sq_s2 < self.sum_sq_s2
    }
}

struct Search<'a> {
    set: &'a PulseSet,
    medium: &'a Medium,
    config: &'a LocateConfig,
    used: Vec<bool>,
    /// Per sensor: other reporting sensors within 2 × max range, nearest first, with distances.
    neighbours: Cow<'a, [Vec<(usize, f64)>]>,
    /// The sensors by place, to find those within range of a point.
    grid: Cow<'a, SensorGrid>,
    /// Anchors are the latest arrival of their hypothesis (streaming), not the first.
    backward: bool,
}

/// Finds every shot in the set, in time order.
pub fn find_shots(set: &PulseSet, medium: &Medium, config: &LocateConfig) -> Vec<Shot> {
    search_shots(set, medium, config, None)
}

/// Streaming association: the shots that the pulses marked in `completing` (one
/// flag per pulse of `set`, in [`PulseSet::pulses`] order) can have completed,
/// in time order.
///
/// A server receives a shot's arrivals one by one; the shot becomes locatable
/// when the last pulse it needs arrives, and that pulse is the *latest* of the
/// ones heard so far, not the first. So here the hypotheses are anchored on the
/// new pulses and seeded from *earlier* pulses at the nearest sensors (within one
/// sensor-to-sensor travel time before the anchor); support, refinement and the
/// significance test are those of [`find_shots`], over every pulse in the set.
/// Each pulse is an anchor once, when it arrives, so the work per second is that
/// of one [`find_shots`] pass over the pulses of that second, whatever the
/// window; the earlier pulses of a shot found before are not consumed, so the
/// same shot is found again, with more arrivals, as they come in.
///
/// Pulses marked in `taken` already belong to a shot (one found before and
/// still being followed): they neither seed nor support a new one, as in
/// [`find_shots`] a pulse serves one shot.
///
/// `neighbours` must be built from the same sensor list as `set`; if not (a
/// sensor was added since), they are built afresh for this call.
pub fn find_shots_completed_by(
    set: &PulseSet,
    medium: &Medium,
    config: &LocateConfig,
    neighbours: &Neighbours,
    completing: &[bool],
    taken: &[bool],
) -> Vec<Shot> {
    search_shots(set, medium, config, Some((neighbours, completing, taken)))
}

/// A shot found earlier, gathered and solved again over every pulse in `set`
/// (for a streaming server: when new arrivals fit it). Pulses marked in `taken`
/// belong to other shots and are not gathered. `None` if fewer than the minimum
/// number of sensors still agree with it.
///
/// `neighbours` are as for [`find_shots_completed_by`].
pub fn refine_shot(
    set: &PulseSet,
    medium: &Medium,
    config: &LocateConfig,
    neighbours: &Neighbours,
    shot: &Shot,
    taken: &[bool],
) -> Option<Shot> {
    let n = set.pulses().len();
    let search = Search {
        set,
        medium,
        config,
        used: (0..n)
            .map(|i| taken.get(i).copied().unwrap_or(false))
            .collect(),
        neighbours: Cow::Owned(Vec::new()),
        grid: neighbours.grid_for(set, config),
        backward: false,
    };
    let candidate = Candidate {
        position: shot.position,
        t0_s: shot.t_emit.seconds_since(set.epoch()),
    };
    let hypothesis = Hypothesis {
        candidate,
        trials: 1,
        support: search.gather(candidate, config.consistency_tolerance_s),
        sum_sq_s2: 0.0,
    };
    let (solution, pulses) = search.refine(&hypothesis)?;
    Some(search.to_shot(&solution, &pulses))
}

fn search_shots(
    set: &PulseSet,
    medium: &Medium,
    config: &LocateConfig,
    streaming: Option<(&Neighbours, &[bool], &[bool])>,
) -> Vec<Shot> {
    let n = set.pulses().len();
    let flag = |flags: &[bool], i: usize| flags.get(i).copied().unwrap_or(false);
    let mut search = Search {
        set,
        medium,
        config,
        used: match streaming {
            Some((_, _, taken)) => (0..n).map(|i| flag(taken, i)).collect(),
            None => vec![false; n],
        },
        neighbours: match streaming {
            Some((cached, _, _)) if cached.lists.len() == set.sensors().len() => {
                Cow::Borrowed(&cached.lists[..])
            }
            _ => Cow::Owned(neighbours(set, config)),
        },
        grid: match streaming {
            Some((cached, _, _)) => cached.grid_for(set, config),
            None => Cow::Owned(SensorGrid::new(set.sensors(), config)),
        },
        backward: streaming.is_some(),
    };
    let mut cache: Vec<Option<Hypothesis>> = vec![None; n];
    let mut dirty = vec![true; n];
    // Only the completing pulses are anchors in streaming mode. The anchors
    // still in play (not used, not exhausted) are kept in a list, so a
    // streaming run over a long window costs what its few anchors cost.
    let mut anchors: Vec<usize> = match streaming {
        Some((_, completing, _)) => (0..n).filter(|&i| flag(completing, i)).collect(),
        None => (0..n).collect(),
    };
    let mut trials = Trials {
        per_pulse: vec![0; n],
        anchors: anchors.clone(),
    };
    let mut shots: Vec<(Solution, Vec<usize>)> = Vec::new();
    loop {
        anchors.retain(|&a| !search.used[a]);
        // Best first. A cached hypothesis made stale by consumed pulses can only
        // have lost support (pulses are never given back), so its old support
        // bounds its new one: only stale anchors that could still match the best
        // fresh one are recomputed. The choice is the same as recomputing all.
        let best = loop {
            let mut best: Option<usize> = None;
            for &a in &anchors {
                if dirty[a] {
                    continue;
                }
                if let Some(h) = &cache[a] {
                    if h.support.len() >= config.min_sensors
                        && best.is_none_or(|b| cache[b].as_ref().is_none_or(|bh| h.better_than(bh)))
                    {
                        best = Some(a);
                    }
                }
            }
            let bar = best
                .and_then(|b| cache[b].as_ref())
                .map_or(config.min_sensors, |h| h.support.len());
            let stale: Vec<usize> = anchors
                .iter()
                .copied()
                .filter(|&a| dirty[a])
                .filter(|&a| cache[a].as_ref().is_none_or(|h| h.support.len() >= bar))
                .collect();
            if stale.is_empty() {
                break best;
            }
            for (a, h) in search.best_hypotheses(&stale) {
                trials.per_pulse[a] = trials.per_pulse[a].max(h.as_ref().map_or(0, |h| h.trials));
                cache[a] = h;
                dirty[a] = false;
            }
        };
        let Some(anchor) = best else { break };
        let Some(hypothesis) = cache[anchor].take() else {
            break;
        };
        let refined = if search.could_be_significant(&hypothesis, &trials) {
            search.refine(&hypothesis)
        } else {
            None
        };
        match refined.filter(|(solution, pulses)| search.significant(solution, pulses, &trials)) {
            Some((solution, pulses)) => {
                for &p in &pulses {
                    search.used[p] = true;
                }
                for &a in &anchors {
                    if let Some(h) = &cache[a] {
                        if h.support.iter().any(|&p| search.used[p]) {
                            dirty[a] = true;
                        }
                    }
                }
                shots.push((solution, pulses));
                dirty[anchor] = true;
            }
            None => anchors.retain(|&a| a != anchor),
        }
    }
    if streaming.is_none() {
        shots = search.retime_bursts(shots);
    }
    let mut out: Vec<Shot> = shots
        .into_iter()
        .map(|(s, p)| search.to_shot(&s, &p))
        .collect();
    out.sort_by_key(|s| s.t_emit);
    out
}

/// Shots this close in emission time, one after another from about one place,
/// are a burst whose rounds may have been mixed: within the 40 ms consistency
/// tolerance plus the tens of milliseconds a diffracted path adds, a round's
/// arrival at one sensor can pass for its neighbour's. 150 ms covers every
/// automatic rate (600–1,200 rounds/min: 50–100 ms) and no aimed fire
/// (200 ms and slower).
const BURST_INTERVAL_S: f64 = 0.150;

/// Mixed rounds of one burst scatter up to about an incident radius around
/// the firing position (seen: 100 m), so a burst's shots are gathered within
/// twice that of its first.
const BURST_RADIUS_FACTOR: f64 = 2.0;

/// Rounds fewer than this are not re-timed as a burst: two shots are too few
/// to show a per-sensor delay pattern against mixing.
const BURST_MIN_ROUNDS: usize = 3;

/// One round's arrivals agree on its emission time within this, s, once each
/// sensor's own delay is removed: picking jitter (≤ 1 ms) plus the small
/// round-to-round change of a diffracted path. Rounds are at least 50 ms apart.
const ROUND_SPREAD_S: f64 = 0.005;

impl Search<'_> {
    /// Re-times bursts of fast fire as one firing position.
    ///
    /// Rounds fired 50–100 ms apart from one place reach every sensor in the
    /// order fired, each sensor adding the same delay to every round (the same
    /// path, diffracted or not). Association shot by shot can take round k's
    /// pulse at some sensors and round k+1's at others and still fit within
    /// the tolerance, by moving the source (seen: 20–70 m too high, 10–30 ms
    /// off). So for each burst (shots at most [`BURST_INTERVAL_S`] apart, one
    /// after another, within [`BURST_RADIUS_FACTOR`] incident radii): the earliest
    /// burst pulse at each sensor is the first round's (echoes and later rounds
    /// come after it), and solving those gives the firing position and each
    /// sensor's own delay (its residual). Every burst pulse at a sensor with a
    /// known delay then implies an emission time; those times fall into tight
    /// clusters, one per round ([`ROUND_SPREAD_S`]), and each cluster is solved
    /// as a round. The re-timed rounds replace the burst's shots when there are
    /// at least as many of them (a second shooter's shots caught in the
    /// burst make the rounds fewer than the shots, and the burst stays as
    /// found).
    fn retime_bursts(
        &mut self,
        mut shots: Vec<(Solution, Vec<usize>)>,
    ) -> Vec<(Solution, Vec<usize>)> {
        shots.sort_by(|a, b| a.0.t0_s.total_cmp(&b.0.t0_s));
        let mut out = Vec::with_capacity(shots.len());
        let mut start = 0;
        while start < shots.len() {
            let mut end = start + 1;
            while end < shots.len()
                && shots[end].0.t0_s - shots[end - 1].0.t0_s <= BURST_INTERVAL_S
                && shots[end].0.position.distance_2d(shots[start].0.position)
                    <= BURST_RADIUS_FACTOR * self.config.incident_radius_m
            {
                end += 1;
            }
            let burst = &shots[start..end];
            match (burst.len() >= BURST_MIN_ROUNDS)
                .then(|| self.retime(burst))
                .flatten()
            {
                Some(rounds) if rounds.len() >= burst.len() => {
                    // Each pulse serves one shot: what the burst's shots held
                    // is given back, and what the rounds hold is taken.
                    for (_, pulses) in burst {
                        for &p in pulses {
                            self.used[p] = false;
                        }
                    }
                    for (_, pulses) in &rounds {
                        for &p in pulses {
                            self.used[p] = true;
                        }
                    }
                    out.extend(rounds);
                }
                _ => out.extend(burst.iter().cloned()),
            }
            start = end;
        }
        out
    }

    /// The rounds of one burst, re-timed (see [`Search::retime_bursts`]).
    fn retime(&self, burst: &[(Solution, Vec<usize>)]) -> Option<Vec<(Solution, Vec<usize>)>> {
        // Every pulse the burst's rounds can have made at the sensors that
        // heard it: a round mixed away can have left its pulse at a sensor
        // unused, up to an interval before or after the burst's pulses there
        // (mixed shots can be late by up to an interval, so the first round
        // can lie that much before the first shot). Pulses of shots outside
        // the burst stay theirs.
        let taken: Vec<usize> = burst.iter().flat_map(|(_, p)| p.iter().copied()).collect();
        let mut sensors: Vec<usize> = taken.iter().map(|&p| self.sensor(p)).collect();
        sensors.sort_unstable();
        sensors.dedup();
        let mut pulses: Vec<usize> = Vec::new();
        for &s in &sensors {
            let times = taken
                .iter()
                .filter(|&&p| self.sensor(p) == s)
                .map(|&p| self.t(p));
            let (lo, hi) = times.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), t| {
                (lo.min(t), hi.max(t))
            });
            pulses.extend(
                self.pulses_in(s, lo - BURST_INTERVAL_S, hi + BURST_INTERVAL_S)
                    .iter()
                    .copied()
                    .filter(|&p| !self.used[p] || taken.contains(&p)),
            );
        }
        pulses.sort_by(|&a, &b| self.t(a).total_cmp(&self.t(b)));
        // The first round: each sensor's earliest burst pulse.
        let mut first: Vec<usize> = Vec::new();
        for &p in &pulses {
            if !first.iter().any(|&q| self.sensor(q) == self.sensor(p)) {
                first.push(p);
            }
        }
        let hint = Candidate {
            position: burst[0].0.position,
            t0_s: burst[0].0.t0_s,
        };
        let opening = self.solve(&first, hint)?;
        // Each sensor's own delay, where its earliest pulse is the first round:
        // a sensor that missed that round shows a whole interval more.
        // (The shots' own intervals are those of mixed rounds; their median
        // is the burst's cadence.)
        let mut intervals: Vec<f64> = burst
            .windows(2)
            .map(|w| w[1].0.t0_s - w[0].0.t0_s)
            .collect();
        intervals.sort_by(f64::total_cmp);
        let most = self
            .config
            .consistency_tolerance_s
            .min(0.8 * intervals[intervals.len() / 2]);
        let mut emitted: Vec<(f64, usize)> = Vec::new();
        let mut timed_sensors = 0;
        for (&q, &delay) in first.iter().zip(&opening.residuals_s) {
            if !(-most..=most).contains(&delay) {
                continue;
            }
            let s = self.sensor(q);
            timed_sensors += 1;
            let travel = self
                .medium
                .travel_time_s(opening.position, self.set.sensor_position(s));
            for &p in pulses.iter().filter(|&&p| self.sensor(p) == s) {
                emitted.push((self.t(p) - travel - delay, p));
            }
        }
        emitted.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut rounds = Vec::new();
        let mut k = 0;
        while k < emitted.len() {
            let mut end = k + 1;
            while end < emitted.len() && emitted[end].0 - emitted[end - 1].0 <= ROUND_SPREAD_S {
                end += 1;
            }
            // One pulse per sensor: the one nearest the cluster's middle.
            let mid = emitted[(k + end) / 2].0;
            let mut members: Vec<usize> = Vec::new();
            let mut by_closeness: Vec<&(f64, usize)> = emitted[k..end].iter().collect();
            by_closeness.sort_by(|a, b| (a.0 - mid).abs().total_cmp(&(b.0 - mid).abs()));
            for &&(_, p) in &by_closeness {
                if !members.iter().any(|&q| self.sensor(q) == self.sensor(p)) {
                    members.push(p);
                }
            }
            // A round is heard by most of the sensors that heard the first;
            // a few echoes that happen to line up are not a round.
            if members.len() >= self.config.min_sensors.max(timed_sensors / 2 + 1) {
                members.sort_unstable();
                let here = Candidate {
                    position: opening.position,
                    t0_s: mid,
                };
                // As in `refine`: what the solution does not explain goes.
                let solved = self.solve(&members, here).and_then(|solution| {
                    let keep: Vec<usize> = members
                        .iter()
                        .zip(&solution.residuals_s)
                        .filter(|(_, r)| r.abs() <= self.config.consistency_tolerance_s)
                        .map(|(&p, _)| p)
                        .collect();
                    if keep.len() == members.len() {
                        Some((solution, members))
                    } else if keep.len() >= self.config.min_sensors {
                        self.solve(&keep, here).map(|s| (s, keep))
                    } else {
                        None
                    }
                });
                rounds.extend(solved);
            }
            k = end;
        }
        Some(rounds)
    }
}

/// Neighbour lists of the reporting sensors (those with pulses in the set).
fn neighbours(set: &PulseSet, config: &LocateConfig) -> Vec<Vec<(usize, f64)>> {
    let reporting: Vec<usize> = (0..set.sensors().len())
        .filter(|&i| !set.pulses_of_sensor(i).is_empty())
        .collect();
    neighbour_lists(set.sensors(), &reporting, config)
}

/// Neighbour lists through a uniform grid of cells 2 × max range wide, so building
/// them costs O(sensors × local density), not O(sensors²).
fn neighbour_lists(
    sensors: &[Sensor],
    among: &[usize],
    config: &LocateConfig,
) -> Vec<Vec<(usize, f64)>> {
    let reach = 2.0 * config.max_range_m;
    let grid = SensorGrid::over(sensors, among, reach);
    let mut out = vec![Vec::new(); sensors.len()];
    for &i in among {
        let pi = sensors[i].position;
        let list = &mut out[i];
        for j in grid.around(pi) {
            let d = pi.distance(sensors[j].position);
            if j != i && d <= reach {
                list.push((j, d));
            }
        }
        list.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    }
    out
}

/// Every sensor's neighbours, reporting or not: the other sensors within twice
/// the maximum range, nearest first. They depend only on where the sensors are,
/// so a streaming caller builds them once for its network instead of on every
/// call ([`find_shots_completed_by`]). Sensors are indexed as in the
/// [`PulseSet`]s built from the same sensor list.
#[derive(Debug, Clone)]
pub struct Neighbours {
    lists: Vec<Vec<(usize, f64)>>,
    grid: SensorGrid,
}

impl Neighbours {
    pub fn new(sensors: &[Sensor], config: &LocateConfig) -> Neighbours {
        let all: Vec<usize> = (0..sensors.len()).collect();
        Neighbours {
            lists: neighbour_lists(sensors, &all, config),
            grid: SensorGrid::new(sensors, config),
        }
    }

    /// The grid, if built from the same sensor places as `set`'s; else a new one.
    fn grid_for(&self, set: &PulseSet, config: &LocateConfig) -> Cow<'_, SensorGrid> {
        let same = self.grid.positions.len() == set.sensors().len()
            && self
                .grid
                .positions
                .iter()
                .zip(set.sensors())
                .all(|(p, s)| *p == s.position);
        if same {
            Cow::Borrowed(&self.grid)
        } else {
            Cow::Owned(SensorGrid::new(set.sensors(), config))
        }
    }
}

/// Sensors by place: a uniform grid of square cells (one maximum range wide
/// for "who can hear this point", two for neighbour lists), so the sensors
/// within a cell width of a point are found in its cell and the eight around
/// it, whatever the size of the network.
#[derive(Debug, Clone)]
struct SensorGrid {
    cell_m: f64,
    cells: std::collections::HashMap<(i64, i64), Vec<usize>>,
    /// Where the sensors it was built from stand, by index.
    positions: Vec<model::Point3>,
}

impl SensorGrid {
    fn new(sensors: &[Sensor], config: &LocateConfig) -> SensorGrid {
        let all: Vec<usize> = (0..sensors.len()).collect();
        SensorGrid::over(sensors, &all, config.max_range_m)
    }

    /// A grid of the sensors `among`, in cells `cell_m` wide.
    fn over(sensors: &[Sensor], among: &[usize], cell_m: f64) -> SensorGrid {
        let cell_m = cell_m.max(1.0);
        let mut cells: std::collections::HashMap<(i64, i64), Vec<usize>> = Default::default();
        for &i in among {
            cells
                .entry(Self::key(cell_m, sensors[i].position))
                .or_default()
                .push(i);
        }
        SensorGrid {
            cell_m,
            cells,
            positions: sensors.iter().map(|s| s.position).collect(),
        }
    }

    fn key(cell_m: f64, p: model::Point3) -> (i64, i64) {
        ((p.x / cell_m).floor() as i64, (p.y / cell_m).floor() as i64)
    }

    /// Every sensor that can be within one cell width of `point`, in index
    /// order (a superset: callers test the distance themselves).
    fn around(&self, point: model::Point3) -> Vec<usize> {
        let (cx, cy) = Self::key(self.cell_m, point);
        let mut out = Vec::new();
        for dx in -1..=1 {
            for dy in -1..=1 {
                let key = (cx.saturating_add(dx), cy.saturating_add(dy));
                if let Some(list) = self.cells.get(&key) {
                    out.extend_from_slice(list);
                }
            }
        }
        out.sort_unstable();
        out
    }
}

impl Search<'_> {
    fn t(&self, pulse: usize) -> f64 {
        self.set.refs()[pulse].t_s
    }

    fn sensor(&self, pulse: usize) -> usize {
        self.set.refs()[pulse].sensor
    }

    fn timed(&self, pulse: usize) -> TimedPoint {
        self.set.timed_point(pulse)
    }

    /// `sensor`'s pulses in [lo, hi], seconds, in time order.
    #[inline]
    fn pulses_in(&self, sensor: usize, lo: f64, hi: f64) -> &[usize] {
        let times = self.set.times_of_sensor(sensor);
        let start = times.partition_point(|&t| t < lo);
        let end = start + times[start..].partition_point(|&t| t <= hi);
        &self.set.pulses_of_sensor(sensor)[start..end]
    }

    /// The earliest unused pulse of `sensor` in [lo, hi], seconds. (The
    /// innermost step of association: one search for `lo`, then a walk.)
    #[inline]
    fn earliest_in(&self, sensor: usize, lo: f64, hi: f64) -> Option<usize> {
        let times = self.set.times_of_sensor(sensor);
        let start = times.partition_point(|&t| t < lo);
        times[start..]
            .iter()
            .take_while(|&&t| t <= hi)
            .zip(&self.set.pulses_of_sensor(sensor)[start..])
            .map(|(_, &p)| p)
            .find(|&p| !self.used[p])
    }

    /// Unused pulses of `sensor` in [lo, hi].
    fn unused_in(&self, sensor: usize, lo: f64, hi: f64) -> impl Iterator<Item = usize> + '_ {
        self.pulses_in(sensor, lo, hi)
            .iter()
            .copied()
            .filter(|&p| !self.used[p])
    }

    /// [`Search::best_hypothesis`] of each anchor. The anchors are independent
    /// (each only reads the search state), so a long list is shared among the
    /// machine's cores; the result is the same as one at a time.
    fn best_hypotheses(&self, anchors: &[usize]) -> Vec<(usize, Option<Hypothesis>)> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let least = if self.backward {
            PARALLEL_NEW_ANCHORS
        } else {
            PARALLEL_ANCHORS
        };
        if threads < 2 || anchors.len() < least {
            return anchors
                .iter()
                .map(|&a| (a, self.best_hypothesis(a)))
                .collect();
        }
        let chunk = anchors.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let parts: Vec<_> = anchors
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|&a| (a, self.best_hypothesis(a)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            // A part whose thread failed is done again here, so every anchor
            // gets its answer.
            parts
                .into_iter()
                .zip(anchors.chunks(chunk))
                .flat_map(|(p, part)| {
                    p.join().unwrap_or_else(|_| {
                        part.iter().map(|&a| (a, self.best_hypothesis(a))).collect()
                    })
                })
                .collect()
        })
    }

    fn best_hypothesis(&self, anchor: usize) -> Option<Hypothesis> {
        let tol = self.config.consistency_tolerance_s;
        let c = self.medium.speed_of_sound_m_s;
        let (sa, ta) = (self.sensor(anchor), self.t(anchor));
        // Gate-consistent pulses at the nearest sensors, taking the anchor as the
        // shot's first arrival (so later pulses only, up to the travel time
        // between), or in streaming mode as its latest (earlier pulses only).
        let mut candidates: Vec<usize> = Vec::new();
        let mut sensors_used = 0;
        let mut here: Vec<usize> = Vec::new();
        for &(s, d) in &self.neighbours[sa] {
            let before = candidates.len();
            here.clear();
            let (lo, hi) = if self.backward {
                (ta - d / c - tol, ta + tol)
            } else {
                (ta - tol, ta + d / c + tol)
            };
            here.extend(self.unused_in(s, lo, hi));
            let snr = |p: usize| self.set.pulses()[p].snr_db;
            if here.len() > HYPOTHESIS_PULSES_PER_SENSOR && here.iter().all(|&p| snr(p).is_some()) {
                // Strongest first (a stable sort keeps equal SNRs in time order),
                // then back to time order. Without SNRs there is no telling a
                // direct arrival from the previous shot's echoes, so all are kept.
                let snr = |p: usize| snr(p).unwrap_or(f64::NEG_INFINITY);
                here.sort_by(|&x, &y| snr(y).total_cmp(&snr(x)));
                here.truncate(HYPOTHESIS_PULSES_PER_SENSOR);
                here.sort_unstable();
            }
            candidates.extend_from_slice(&here);
            if candidates.len() > before {
                sensors_used += 1;
                if sensors_used == HYPOTHESIS_SENSORS {
                    break;
                }
            }
        }
        let a = self.timed(anchor);
        // The anchor's neighbours, side by side with their positions: every
        // trial below scans a prefix of them.
        let near: Vec<Near> = self.neighbours[sa]
            .iter()
            .map(|&(s, d)| Near {
                position: self.set.sensor_position(s),
                sensor: s,
                distance_m: d,
            })
            .collect();
        let mut best: Option<Hypothesis> = None;
        let mut trials = 0;
        for (i, &b) in candidates.iter().enumerate() {
            for &d in &candidates[i + 1..] {
                let (sb, sd) = (self.sensor(b), self.sensor(d));
                if sb == sd {
                    continue;
                }
                let dist = self
                    .set
                    .sensor_position(sb)
                    .distance(self.set.sensor_position(sd));
                if (self.t(b) - self.t(d)).abs() > dist / c + tol {
                    continue;
                }
                for candidate in start::triple_2d([a, self.timed(b), self.timed(d)], c) {
                    if candidate.position.distance_2d(a.position) > self.config.max_range_m {
                        continue;
                    }
                    trials += 1;
                    let floor = best.as_ref().map_or(0, |bh| bh.support.len());
                    let Some((count, sum_sq_s2)) =
                        self.score(candidate, a.position, &near, floor, None)
                    else {
                        continue;
                    };
                    let better = best
                        .as_ref()
                        .is_none_or(|bh| bh.beaten_by(count, sum_sq_s2));
                    if better {
                        let mut support = Vec::with_capacity(count);
                        support.push(anchor);
                        self.score(candidate, a.position, &near, 0, Some(&mut support));
                        best = Some(Hypothesis {
                            candidate,
                            trials: 1,
                            support,
                            sum_sq_s2,
                        });
                    }
                }
            }
        }
        best.map(|h| Hypothesis { trials, ..h })
    }

    /// Support of a hypothesis that includes the anchor, whose sensor's
    /// neighbours are `near`: how many sensors (the anchor's included) have a
    /// consistent pulse, and the sum of their squared residuals, s². `None` as
    /// soon as it cannot reach `floor` sensors (a hypothesis with less support
    /// than the best so far can never be better, so stopping early changes
    /// nothing but the time taken). With `support`, the supporting pulses are
    /// also pushed onto it.
    fn score(
        &self,
        candidate: Candidate,
        anchor_at: model::Point3,
        near: &[Near],
        floor: usize,
        mut support: Option<&mut Vec<usize>>,
    ) -> Option<(usize, f64)> {
        let tol = self.config.consistency_tolerance_s;
        let range_sq = self.config.max_range_m * self.config.max_range_m;
        let mut count = 1;
        let mut sum_sq_s2 = 0.0;
        let source = candidate.position;
        // Only sensors within max range of the source can support it, and by the
        // triangle inequality they lie within d(anchor sensor, source) + max range
        // of the anchor's sensor: a prefix of its distance-sorted neighbours.
        let reach = anchor_at.distance(source) + self.config.max_range_m;
        let near = &near[..near.partition_point(|n| n.distance_m <= reach)];
        for (k, n) in near.iter().enumerate() {
            if count + (near.len() - k) < floor {
                return None;
            }
            let (dx, dy) = (n.position.x - source.x, n.position.y - source.y);
            if dx * dx + dy * dy > range_sq {
                continue;
            }
            let predicted = candidate.t0_s + self.medium.travel_time_s(source, n.position);
            if let Some(p) = self.earliest_in(n.sensor, predicted - tol, predicted + tol) {
                count += 1;
                sum_sq_s2 += (self.t(p) - predicted).powi(2);
                if let Some(support) = support.as_deref_mut() {
                    support.push(p);
                }
            }
        }
        Some((count, sum_sq_s2))
    }

    /// The significance test of [`crate::significance`] for a refined shot.
    fn significant(&self, solution: &Solution, pulses: &[usize], trials: &Trials) -> bool {
        let supporting: Vec<(usize, usize, f64)> = pulses
            .iter()
            .zip(&solution.residuals_s)
            .map(|(&p, &r)| (p, self.sensor(p), r))
            .collect();
        let candidate = Candidate {
            position: solution.position,
            t0_s: solution.t0_s,
        };
        self.expected_false_shots(candidate, &supporting, trials)
            <= crate::significance::FALSE_ALARM_BUDGET
    }

    /// Whether refining a hypothesis could give a significant shot: the
    /// significance test on its support as it stands, with every supporting
    /// arrival taken to fit as well as a real arrival can (`prior_arrival_sigma_s`),
    /// passes with room for [`REFINE_MARGIN`]. Refinement moves the source by
    /// metres, which changes the fits but rarely the support by more than a
    /// sensor or two; a hypothesis this far from significance stays there, so
    /// its refinement (several robust solves) is skipped.
    fn could_be_significant(&self, hypothesis: &Hypothesis, trials: &Trials) -> bool {
        let best_fit = self.config.prior_arrival_sigma_s;
        let supporting: Vec<(usize, usize, f64)> = hypothesis
            .support
            .iter()
            .map(|&p| (p, self.sensor(p), best_fit))
            .collect();
        self.expected_false_shots(hypothesis.candidate, &supporting, trials)
            <= crate::significance::FALSE_ALARM_BUDGET * REFINE_MARGIN
    }

    /// The expected number of chance shots as well supported as a source at
    /// `candidate` with these (pulse, sensor, residual) arrivals
    /// ([`crate::significance::expected_false_shots`]).
    fn expected_false_shots(
        &self,
        candidate: Candidate,
        supporting: &[(usize, usize, f64)],
        trials: &Trials,
    ) -> f64 {
        use crate::significance::{chance_match, expected_false_shots, RATE_WINDOW_S};
        let tol = self.config.consistency_tolerance_s;
        let refs = self.set.refs();
        let (t_first, t_last) = (refs[0].t_s, refs[refs.len() - 1].t_s);
        let source = candidate.position;
        let (mut p_supporting, mut p_silent) = (Vec::new(), Vec::new());
        for s in self.grid.around(source) {
            let position = self.set.sensor_position(s);
            if position.distance_2d(source) > self.config.max_range_m
                || self.set.pulses_of_sensor(s).is_empty()
            {
                continue;
            }
            let predicted = candidate.t0_s + self.medium.travel_time_s(source, position);
            // The window, clipped to the span the data cover (but never shorter
            // than one second, so a lone pulse does not look like a high rate).
            let (lo, hi) = (
                (predicted - RATE_WINDOW_S).max(t_first),
                (predicted + RATE_WINDOW_S).min(t_last),
            );
            let window = self.pulses_in(s, lo, hi);
            let span = (hi - lo).max(1.0);
            match supporting.iter().find(|(_, sensor, _)| *sensor == s) {
                // A chance pulse would have had to fit as well as this one did
                // (but no better than the scatter of real urban arrivals), and
                // be at least as strong: the rate is of pulses with an SNR no
                // lower than this one's, when SNRs are known.
                Some((pulse, _, r)) => {
                    let snr = self.set.pulses()[*pulse].snr_db;
                    let count = window
                        .iter()
                        .filter(|&&q| match (snr, self.set.pulses()[q].snr_db) {
                            (Some(mine), Some(other)) => other >= mine,
                            _ => true,
                        })
                        .count()
                        .max(1);
                    p_supporting.push(chance_match(
                        count as f64 / span,
                        r.abs().max(self.config.prior_arrival_sigma_s),
                    ))
                }
                None => p_silent.push(chance_match(window.len() as f64 / span, tol)),
            }
        }
        let reach = 2.0 * self.config.max_range_m / self.medium.speed_of_sound_m_s;
        let (lo, hi) = (candidate.t0_s - reach, candidate.t0_s + reach);
        let anchors = &trials.anchors;
        let start = anchors.partition_point(|&a| refs[a].t_s < lo);
        let tried: usize = anchors[start..]
            .iter()
            .take_while(|&&a| refs[a].t_s <= hi)
            .map(|&a| trials.per_pulse[a])
            .sum();
        expected_false_shots(&p_supporting, &p_silent, tried)
    }

    /// Each reporting sensor's earliest unused pulse consistent with `candidate`.
    fn gather(&self, candidate: Candidate, tolerance_s: f64) -> Vec<usize> {
        let mut out = Vec::new();
        for s in self.grid.around(candidate.position) {
            let position = self.set.sensor_position(s);
            if self.set.pulses_of_sensor(s).is_empty()
                || position.distance_2d(candidate.position) > self.config.max_range_m
            {
                continue;
            }
            let predicted =
                candidate.t0_s + self.medium.travel_time_s(candidate.position, position);
            if let Some(p) = self.earliest_in(s, predicted - tolerance_s, predicted + tolerance_s) {
                out.push(p);
            }
        }
        out
    }

    fn solve(&self, pulses: &[usize], hint: Candidate) -> Option<Solution> {
        let arrivals = Arrivals::new(pulses.iter().map(|&p| self.timed(p)).collect()).ok()?;
        solve::solve_unrated(&arrivals, self.medium, self.config, &[hint])
    }

    /// Gather, solve and gather again until the pulse set is stable.
    fn refine(&self, hypothesis: &Hypothesis) -> Option<(Solution, Vec<usize>)> {
        let tol = self.config.consistency_tolerance_s;
        let mut pulses = hypothesis.support.clone();
        pulses.sort_unstable();
        let mut solution = self.solve(&pulses, hypothesis.candidate)?;
        for _ in 0..6 {
            let here = Candidate {
                position: solution.position,
                t0_s: solution.t0_s,
            };
            let mut next = self.gather(here, tol);
            next.sort_unstable();
            if next.len() < self.config.min_sensors {
                return None;
            }
            if next == pulses {
                break;
            }
            pulses = next;
            solution = self.solve(&pulses, here)?;
        }
        // Drop what the final solution does not explain, and solve once more.
        let keep: Vec<usize> = pulses
            .iter()
            .zip(&solution.residuals_s)
            .filter(|(_, r)| r.abs() <= tol)
            .map(|(&p, _)| p)
            .collect();
        if keep.len() < self.config.min_sensors {
            return None;
        }
        if keep.len() != pulses.len() {
            let here = Candidate {
                position: solution.position,
                t0_s: solution.t0_s,
            };
            solution = self.solve(&keep, here)?;
            pulses = keep;
        }
        Some((solution, pulses))
    }

    fn to_shot(&self, solution: &Solution, pulses: &[usize]) -> Shot {
        let epoch = self.set.epoch();
        let mut arrivals: Vec<ShotArrival> = pulses
            .iter()
            .zip(solution.residuals_s.iter().zip(&solution.weights))
            .map(|(&p, (&residual_s, &weight))| {
                let pulse = &self.set.pulses()[p];
                ShotArrival {
                    pulse: pulse.id.clone(),
                    sensor: pulse.sensor.clone(),
                    t: pulse.t,
                    residual_s,
                    range_m: self
                        .set
                        .sensor_position(self.sensor(p))
                        .distance_2d(solution.position),
                    weight,
                }
            })
            .collect();
        arrivals.sort_by(|a, b| a.t.cmp(&b.t).then_with(|| a.sensor.cmp(&b.sensor)));
        let cov = &solution.covariance;
        Shot {
            t_emit: epoch.offset_by_seconds(solution.t0_s),
            position: solution.position,
            covariance_m2: std::array::from_fn(|i| std::array::from_fn(|j| cov[(i, j)])),
            t_sigma_s: cov[(3, 3)].max(0.0).sqrt(),
            err95_m: solve::err95(solution),
            rms_residual_s: solution.rms_residual_s(),
            arrivals,
            class: Class::Unknown,
            confidence: 0.0,
            bullet_speed_m_s: None,
        }
    }
}
