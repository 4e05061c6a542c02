//! The transforms between ingest and the sinks: streaming association and
//! locating ([`Associator`]), then incidents with versions and alert decisions
//! ([`IncidentBuilder`]). Both are plain state machines driven by event time (the
//! pulses' own timestamps), with no I/O and no clock, so a replay gives the same
//! shots as `shotfix locate` on the same pulses, and a restart can rebuild them.
//!
//! Streaming association. Accepted pulses join a pool. Whenever new pulses have
//! arrived, the locate engine's streaming association
//! ([`locate::associate::find_shots_completed_by`]) runs on the pool's recent
//! window (one horizon: twice the longest sensor-to-shot travel time, so every
//! pulse a shot in the window could have produced is in it), with only the new
//! pulses as anchors: the shots they complete, seeded from earlier pulses and
//! supported by every pulse in the window. Each pulse is an anchor once, so the
//! cost per second of load is one association pass over that second's pulses,
//! not over the whole window. A shot found is *provisional*: it is published at
//! once (the alert does not wait), and every later pulse that belongs to it finds
//! it again with more arrivals; it is matched to its earlier self by shared
//! pulses, so it keeps its key. Once event time has passed its emission by the
//! longest travel time plus the allowed lateness, no sensor can still add to it:
//! it is refined once more over every pulse that arrived (so late and
//! out-of-order arrivals count), made *final*, its pulses leave the pool, and it
//! never changes again.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use locate::{LocateConfig, Medium, PulseSet};
use model::{Class, Pulse, PulseId, Sensor, Shot, UtcNanos};
use sha2::{Digest, Sha256};

/// How late (event time) a sensor's pulses may arrive behind the newest pulse
/// and still join association, seconds: cellular uplinks buffer for a few
/// seconds; later pulses are stored but only join shots still in the window.
pub const LATENESS_S: f64 = 5.0;

/// Longest a provisional shot waits, seconds of event time past the moment it
/// could be final, for the shots chained to it within one travel time to become
/// final too (a long burst of automatic fire is finalised in pieces).
pub const MAX_DEFER_S: f64 = 30.0;

/// A shot the associator currently believes in.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveShot {
    /// Stable key: derived from the first pulse the shot was found with.
    pub key: String,
    pub shot: Shot,
    pub pulses: BTreeSet<PulseId>,
    /// What the classifier is given about it: ranges, bearings and reported
    /// levels of its arrivals (times in seconds since the Unix epoch).
    pub evidence: classify::ShotEvidence,
}

impl LiveShot {
    /// Whether `other` says the same as this: the same pulses, emission time,
    /// and position to the centimetre (a re-run that found the same thing).
    fn same_as(&self, other: &LiveShot) -> bool {
        // The evidence follows from the shot and its pulses.
        self.pulses == other.pulses
            && self.shot.t_emit == other.shot.t_emit
            && self.shot.position.distance(other.shot.position) <= 0.01
    }
}

/// What one association run changed.
#[derive(Debug, Clone, PartialEq)]
pub enum ShotChange {
    /// A new shot, or a known one whose pulses or position changed.
    Upsert(Box<LiveShot>),
    /// A provisional shot that the latest run no longer supports.
    Lost(String),
}

/// Streaming association and locating over a sliding window of event time.
#[derive(Debug)]
pub struct Associator {
    sensors: Vec<Sensor>,
    medium: Medium,
    config: LocateConfig,
    pool: BTreeMap<(UtcNanos, PulseId), Pulse>,
    /// Newest pulse time seen (event time).
    newest: Option<UtcNanos>,
    live: Vec<LiveShot>,
    /// Pulses pushed since the last run: the next run's anchors.
    fresh: Vec<(UtcNanos, PulseId)>,
    /// Pulses final shots took out of the pool, while a copy could still be
    /// pushed inside the window (a sensor resends a pulse with its clip, a
    /// replay repeats one): a copy is ignored, so it cannot start a second shot.
    taken: BTreeSet<(UtcNanos, PulseId)>,
    /// Each sensor's index in `sensors`, for the push filter and lookups.
    known: HashMap<model::SensorId, usize>,
    /// The sensors' neighbour lists, built once per sensor list.
    neighbours: locate::associate::Neighbours,
}

impl Associator {
    pub fn new(sensors: Vec<Sensor>, medium: Medium, config: LocateConfig) -> Associator {
        Associator {
            known: sensors
                .iter()
                .enumerate()
                .map(|(i, s)| (s.id.clone(), i))
                .collect(),
            neighbours: locate::associate::Neighbours::new(&sensors, &config),
            sensors,
            medium,
            config,
            pool: BTreeMap::new(),
            newest: None,
            live: Vec::new(),
            fresh: Vec::new(),
            taken: BTreeSet::new(),
        }
    }

    /// A followed shot under `key`, with the pulses its arrivals used and the
    /// classifier's evidence (the reported levels from the pool, which still
    /// holds every pulse a shot being followed or finalised used).
    fn live(&self, key: String, shot: Shot) -> LiveShot {
        let pulses = shot.arrivals.iter().map(|a| a.pulse.clone()).collect();
        let evidence = classify::shot_evidence(
            &shot,
            UtcNanos(0),
            |id| self.known.get(id).map(|&i| self.sensors[i].position),
            |a| classify::Heard {
                level_db_spl: self
                    .pool
                    .get(&(a.t, a.pulse.clone()))
                    .and_then(|p| p.level_db_spl),
                features: None,
                snr_db: None,
            },
        );
        LiveShot {
            key,
            shot,
            pulses,
            evidence,
        }
    }

    /// Adds or moves a sensor (positions in the local frame).
    pub fn set_sensor(&mut self, sensor: Sensor) {
        match self.known.get(&sensor.id) {
            Some(&i) => self.sensors[i] = sensor,
            None => {
                self.known.insert(sensor.id.clone(), self.sensors.len());
                self.sensors.push(sensor);
            }
        }
        self.neighbours = locate::associate::Neighbours::new(&self.sensors, &self.config);
    }

    /// Longest travel time from a shot to a sensor that can hear it, seconds.
    fn reach_s(&self) -> f64 {
        self.config.max_range_m / self.medium.speed_of_sound_m_s
            + self.config.consistency_tolerance_s
    }

    /// The window association looks at, seconds before the newest pulse.
    pub fn horizon_s(&self) -> f64 {
        2.0 * self.reach_s() + LATENESS_S
    }

    /// Newest pulse time seen, moved on by [`Associator::advance`].
    pub fn newest(&self) -> Option<UtcNanos> {
        self.newest
    }

    /// Pulses waiting in the pool (diagnostics).
    pub fn pool_len(&self) -> usize {
        self.pool.len()
    }

    /// Adds accepted pulses. Pulses from unknown sensors are ignored (ingest has
    /// already refused them); pulses already past the window are kept in storage
    /// but cannot join a shot any more.
    pub fn push(&mut self, pulses: impl IntoIterator<Item = Pulse>) {
        for p in pulses {
            if !self.known.contains_key(&p.sensor) {
                continue;
            }
            if let Some(newest) = self.newest {
                if p.t.seconds_since(newest) < -self.horizon_s() {
                    continue;
                }
            }
            let key = (p.t, p.id.clone());
            if self.pool.contains_key(&key) || self.taken.contains(&key) {
                continue;
            }
            self.newest = Some(self.newest.map_or(p.t, |n| n.max(p.t)));
            self.fresh.push(key.clone());
            self.pool.insert(key, p);
        }
    }

    /// Moves event time on by `seconds` with no new pulses (the quiet after a
    /// shot), so its shots become final.
    pub fn advance(&mut self, seconds: f64) {
        if let Some(n) = self.newest {
            self.newest = Some(n.offset_by_seconds(seconds));
        }
    }

    /// Runs streaming association if anything arrived since the last run,
    /// finalises the shots no sensor can add to any more, and returns what
    /// changed. A final shot leaves the live set and its pulses the pool; it is
    /// published again only if the final association moved it or changed its
    /// pulses, and lost if that association does not find it.
    pub fn run(&mut self) -> Vec<ShotChange> {
        let Some(newest) = self.newest else {
            return Vec::new();
        };
        let mut changes = Vec::new();
        if !self.fresh.is_empty() {
            let fresh = std::mem::take(&mut self.fresh);
            if let Some(set) = self.window(newest) {
                changes = self.follow(&set, &fresh);
            }
        }
        // Finalise what no sensor can add to any more, and forget old pulses.
        let final_before = newest.offset_by_seconds(-(self.reach_s() + LATENESS_S));
        let mut consumed = BTreeSet::new();
        for group in self.final_groups(final_before) {
            // The pulses of groups finalised before it in this run are taken.
            let (finals, used) = self.finalise(&group, &consumed);
            changes.extend(finals);
            consumed.extend(used);
        }
        let keep_from = newest.offset_by_seconds(-self.horizon_s());
        let in_live: BTreeSet<PulseId> = self
            .live
            .iter()
            .flat_map(|s| s.pulses.iter().cloned())
            .collect();
        let taken = &mut self.taken;
        self.pool.retain(|(t, id), _| {
            if consumed.contains(id) {
                taken.insert((*t, id.clone()));
                return false;
            }
            *t >= keep_from || in_live.contains(id)
        });
        self.taken = self.taken.split_off(&(keep_from, PulseId(String::new())));
        changes
    }

    /// Takes out of the live set the shots that are final at `final_before`,
    /// in groups to finalise together. Shots within one travel time of each
    /// other and near enough to share sensors (2 × max range) compete for the
    /// same pulses, so a group is a connected set of such shots, and it waits
    /// while any of it is still provisional: a run of gunfire waits for its
    /// last round, for at most [`MAX_DEFER_S`] (the alert never waits). Shots
    /// elsewhere in the city, or long before, are finalised on their own, so
    /// each final association covers one cluster's pulses, not a busy city's.
    fn final_groups(&mut self, final_before: UtcNanos) -> Vec<Vec<LiveShot>> {
        let reach = self.reach_s();
        let near = 2.0 * self.config.max_range_m;
        let shots = std::mem::take(&mut self.live);
        // Connected components of the "compete for pulses" relation.
        let group = locate::incident::linked_groups(shots.len(), |i, j| {
            let (a, b) = (&shots[i].shot, &shots[j].shot);
            a.t_emit.seconds_since(b.t_emit).abs() <= reach
                && a.position.distance_2d(b.position) <= near
        });
        let mut members: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, g) in group.into_iter().enumerate() {
            members.entry(g).or_default().push(i);
        }
        let mut groups_ready: Vec<Vec<usize>> = Vec::new();
        for list in members.into_values() {
            let done: Vec<usize> = list
                .iter()
                .copied()
                .filter(|&i| shots[i].shot.t_emit < final_before)
                .collect();
            let Some(first) = done.iter().map(|&i| shots[i].shot.t_emit).min() else {
                continue;
            };
            let waiting = done.len() < list.len();
            if waiting && final_before.seconds_since(first) < MAX_DEFER_S {
                continue;
            }
            groups_ready.push(done);
        }
        let mut slots: Vec<Option<LiveShot>> = shots.into_iter().map(Some).collect();
        let out = groups_ready
            .into_iter()
            .map(|g| g.into_iter().filter_map(|i| slots[i].take()).collect())
            .collect();
        self.live = slots.into_iter().flatten().collect();
        out
    }

    /// The pool's pulses within one horizon of `newest`, as a locate input;
    /// `None` while fewer than three sensors have reported.
    fn window(&self, newest: UtcNanos) -> Option<PulseSet> {
        let from = newest.offset_by_seconds(-self.horizon_s());
        let pulses: Vec<Pulse> = self
            .pool
            .range((from, PulseId(String::new()))..)
            .map(|(_, p)| p.clone())
            .collect();
        PulseSet::new(self.sensors.clone(), pulses).ok()
    }

    /// The last word on shots no sensor can add to. Streaming association saw
    /// their pulses in arrival batches, with only the new ones as anchors; now
    /// that every arrival is in, the locate engine's batch association
    /// ([`locate::associate::find_shots`]) runs once over the pulses around
    /// them: every pulse within one longest travel time (before and after) of
    /// their emissions, at sensors within range of them. That is what
    /// `shotfix locate` would see, so a final shot is the one it would find.
    /// A provisional shot is matched to its final self by shared pulses and keeps
    /// its key; one with no final self is lost, and a final shot that streaming
    /// missed is added.
    fn finalise(
        &mut self,
        done: &[LiveShot],
        taken: &BTreeSet<PulseId>,
    ) -> (Vec<ShotChange>, BTreeSet<PulseId>) {
        let reach = self.reach_s();
        let (Some(first), Some(last)) = (
            done.iter().map(|s| s.shot.t_emit).min(),
            done.iter().map(|s| s.shot.t_emit).max(),
        ) else {
            return (Vec::new(), BTreeSet::new());
        };
        let near: BTreeSet<&model::SensorId> = self
            .sensors
            .iter()
            .filter(|sensor| {
                done.iter().any(|s| {
                    sensor.position.distance_2d(s.shot.position) <= self.config.max_range_m
                })
            })
            .map(|sensor| &sensor.id)
            .collect();
        let (from, to) = (
            first.offset_by_seconds(-reach),
            last.offset_by_seconds(reach),
        );
        let pulses: Vec<Pulse> = self
            .pool
            .range((from, PulseId(String::new()))..)
            .take_while(|((t, _), _)| *t <= to)
            .filter(|(_, p)| near.contains(&p.sensor) && !taken.contains(&p.id))
            .map(|(_, p)| p.clone())
            .collect();
        let found = match PulseSet::new(self.sensors.clone(), pulses) {
            Ok(set) => locate::associate::find_shots(&set, &self.medium, &self.config),
            Err(_) => Vec::new(),
        };
        // The final shots: those of the span being finalised, and any streaming
        // missed in the travel time before it (the pulses of shots finalised
        // earlier have left the pool, so those are not found twice). Shots after
        // the span are still provisional.
        let tol = self.config.consistency_tolerance_s;
        let (lo, hi) = (from, last.offset_by_seconds(tol));
        let mut old: Vec<&LiveShot> = done.iter().collect();
        let mut changes = Vec::new();
        let mut consumed: BTreeSet<PulseId> =
            done.iter().flat_map(|s| s.pulses.iter().cloned()).collect();
        for shot in found {
            let mut next = self.live(String::new(), shot);
            let best = old
                .iter()
                .enumerate()
                .map(|(i, o)| (i, o.pulses.intersection(&next.pulses).count()))
                .filter(|&(_, n)| n > 0)
                .max_by_key(|&(i, n)| (n, std::cmp::Reverse(i)));
            next.key = match best {
                Some((i, _)) => {
                    let previous = old.swap_remove(i);
                    if previous.same_as(&next) {
                        continue;
                    }
                    previous.key.clone()
                }
                None if next.shot.t_emit >= lo && next.shot.t_emit <= hi => new_key(&next.shot),
                None => continue,
            };
            consumed.extend(next.pulses.iter().cloned());
            changes.push(ShotChange::Upsert(Box::new(next)));
        }
        changes.extend(old.into_iter().map(|o| ShotChange::Lost(o.key.clone())));
        (changes, consumed)
    }

    /// Which of the window `set`'s pulses the followed shots hold, but for
    /// the shot at `except`.
    fn held(&self, set: &PulseSet, except: Option<usize>) -> Vec<bool> {
        let mut taken = vec![false; set.pulses().len()];
        for (j, shot) in self.live.iter().enumerate() {
            if Some(j) == except {
                continue;
            }
            for a in &shot.shot.arrivals {
                if let Some(k) = position_in(set, a.t, &a.pulse) {
                    taken[k] = true;
                }
            }
        }
        taken
    }

    /// One streaming step over the window `set`, with `fresh` the pulses that
    /// arrived since the last. First the shots being followed take the new
    /// arrivals that fit them (each is gathered and solved again, keeping its
    /// key). Then the remaining new pulses anchor the search for new shots,
    /// among the pulses no followed shot holds: a pulse serves one shot.
    fn follow(&mut self, set: &PulseSet, fresh: &[(UtcNanos, PulseId)]) -> Vec<ShotChange> {
        let tol = self.config.consistency_tolerance_s;
        let position: HashMap<&model::SensorId, model::Point3> =
            self.sensors.iter().map(|s| (&s.id, s.position)).collect();
        // The new pulses still in the window, by their place in it.
        let mut fresh_at: Vec<usize> = fresh
            .iter()
            .filter_map(|(t, id)| position_in(set, *t, id))
            .collect();
        fresh_at.sort_unstable();
        fresh_at.dedup();
        let new_pulses: Vec<&Pulse> = fresh_at.iter().map(|&k| &set.pulses()[k]).collect();
        let mut changes = Vec::new();
        for i in 0..self.live.len() {
            let shot = &self.live[i].shot;
            let fits = new_pulses.iter().any(|p| {
                position.get(&p.sensor).is_some_and(|&at| {
                    let predicted = shot
                        .t_emit
                        .offset_by_seconds(self.medium.travel_time(shot.position, at).0);
                    p.t.seconds_since(predicted).abs() <= tol
                })
            });
            if !fits {
                continue;
            }
            let taken = self.held(set, Some(i));
            let Some(shot) = locate::associate::refine_shot(
                set,
                &self.medium,
                &self.config,
                &self.neighbours,
                &self.live[i].shot,
                &taken,
            ) else {
                continue; // keeps what it had; finalisation has the last word
            };
            let next = self.live(self.live[i].key.clone(), shot);
            if !next.same_as(&self.live[i]) {
                changes.push(ShotChange::Upsert(Box::new(next.clone())));
                self.live[i] = next;
            }
        }
        let taken = self.held(set, None);
        let mut completing = vec![false; set.pulses().len()];
        for &k in &fresh_at {
            completing[k] = !taken[k];
        }
        if completing.iter().any(|&c| c) {
            let found = locate::associate::find_shots_completed_by(
                set,
                &self.medium,
                &self.config,
                &self.neighbours,
                &completing,
                &taken,
            );
            for shot in found {
                let next = self.live(new_key(&shot), shot);
                changes.push(ShotChange::Upsert(Box::new(next.clone())));
                self.live.push(next);
            }
        }
        changes
    }
}

/// Where the pulse (`t`, `id`) is in `set`: its pulses are in (time, id)
/// order, as the pool's keys are.
fn position_in(set: &PulseSet, t: UtcNanos, id: &PulseId) -> Option<usize> {
    set.pulses()
        .binary_search_by(|p| p.t.cmp(&t).then_with(|| p.id.cmp(id)))
        .ok()
}

/// A new shot's key: from its first arrival, so it is stable across re-runs.
fn new_key(shot: &Shot) -> String {
    let first = shot
        .arrivals
        .iter()
        .min_by(|a, b| a.t.cmp(&b.t).then_with(|| a.pulse.cmp(&b.pulse)))
        .map_or_else(String::new, |a| a.pulse.0.clone());
    format!("s-{}", short_hash(&first))
}

/// 16 hex digits of SHA-256: stable ids from stable inputs.
pub fn short_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    hex::encode(&digest[..8])
}

/// Alert message kinds (CAP msgType Alert, Update, Cancel).
pub const ALERT: &str = "alert";
pub const UPDATE: &str = "update";
pub const CANCEL: &str = "cancel";

/// An incident as the builder holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenIncident {
    pub id: String,
    pub version: i64,
    /// Shots by key.
    pub shots: BTreeMap<String, Shot>,
    pub alerted: bool,
    /// [`signature`] of the shots as last published, to tell a real change from a
    /// re-run that found the same thing.
    published: String,
    /// Last emission time published (for closing restored incidents).
    published_last: Option<UtcNanos>,
    /// (rounds, shooters, first shot position) as last sent in an alert message.
    announced: Option<(usize, usize, model::Point3)>,
    /// The classifier's evidence per shot key.
    evidence: BTreeMap<String, classify::ShotEvidence>,
    /// The classifier's decision on the shots as last published.
    decision: Option<classify::Decision>,
    /// People's review of it so far (applied to every version after it).
    pub review: Option<crate::doc::ReviewDoc>,
    /// When its first alert was held for review ([`crate::config::ReviewConfig`]).
    held_since: Option<std::time::Instant>,
}

impl OpenIncident {
    /// Shots in time order.
    pub fn shots_in_order(&self) -> Vec<Shot> {
        let mut shots: Vec<Shot> = self.shots.values().cloned().collect();
        shots.sort_by(|a, b| {
            a.t_emit
                .cmp(&b.t_emit)
                .then_with(|| a.position.x.total_cmp(&b.position.x))
        });
        shots
    }

    /// This incident's current version with these shots, to publish.
    fn version_of(
        &self,
        (shots, shooters, automatic): (Vec<Shot>, usize, bool),
        alert: Option<&'static str>,
        change: store::Change,
    ) -> IncidentVersion {
        IncidentVersion {
            id: self.id.clone(),
            version: self.version,
            shots,
            shooters,
            automatic,
            alert,
            review: self.review.clone(),
            change,
        }
    }

    pub fn last_t(&self) -> Option<UtcNanos> {
        self.shots.values().map(|s| s.t_emit).max()
    }

    /// The class the incident is published under: the classifier's, or
    /// `unknown` without one.
    pub fn class(&self) -> Class {
        self.decision.map_or(Class::Unknown, |d| d.class)
    }

    /// The classifier's decision on the shots as they are now, their
    /// evidence in time order; `None` when no arrival has a level (nor a
    /// waveform): then the incident is `unknown`, and alerted.
    fn decide(&self, classifier: &classify::Classifier) -> Option<classify::Decision> {
        let mut shots: Vec<&classify::ShotEvidence> = self.evidence.values().collect();
        shots.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
        let evidence = classify::IncidentEvidence {
            shots: shots.into_iter().cloned().collect(),
        };
        evidence
            .says_what_it_sounded_like()
            .then(|| classifier.classify(&evidence))
    }
}

/// A new version of an incident to store and publish.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentVersion {
    pub id: String,
    pub version: i64,
    pub shots: Vec<Shot>,
    pub shooters: usize,
    /// Whether the shots hold automatic fire ([`locate::incident::is_automatic`]).
    pub automatic: bool,
    /// `Some(kind)` when this version goes out as an alert message.
    pub alert: Option<&'static str>,
    /// The review to put on the document ([`crate::doc::IncidentDoc::apply_review`]).
    pub review: Option<crate::doc::ReviewDoc>,
    /// Who made this version, for the history.
    pub change: store::Change,
}

/// Groups shots into incidents, versions every change, and decides alerts.
#[derive(Debug)]
pub struct IncidentBuilder {
    config: LocateConfig,
    /// Decides each incident's class from the pulse reports (levels, places,
    /// times; reports carry no waveform yet). `None`: every incident is
    /// `unknown` and alerted.
    classifier: Option<std::sync::Arc<classify::Classifier>>,
    open: Vec<OpenIncident>,
    /// Shot key → incident id.
    shot_incident: HashMap<String, String>,
    /// Pulse → incident id, for incidents restored after a restart.
    restored_pulses: HashMap<PulseId, String>,
    /// Hold first alerts below this P(gunfire) for review (0: never).
    hold_below_p: f64,
}

impl IncidentBuilder {
    /// A builder that classifies with `classifier` (see
    /// [`classify::Classifier::shipped`]), or publishes every incident as
    /// `unknown` without one.
    pub fn new(
        config: LocateConfig,
        classifier: Option<std::sync::Arc<classify::Classifier>>,
    ) -> IncidentBuilder {
        IncidentBuilder {
            config,
            classifier,
            open: Vec::new(),
            shot_incident: HashMap::new(),
            restored_pulses: HashMap::new(),
            hold_below_p: 0.0,
        }
    }

    /// Holds first alerts with P(gunfire) below `p` for review
    /// ([`IncidentBuilder::release_held`] lets them go after a timeout).
    pub fn hold_for_review_below(&mut self, p: f64) {
        self.hold_below_p = p;
    }

    /// Restores an incident stored before a restart: its id, version, whether it
    /// was alerted, and the pulses its shots used. The associator finds those
    /// shots again from the same pulses; they rejoin this incident, and a version
    /// is only written if the result differs from what was published.
    #[allow(clippy::too_many_arguments)]
    pub fn restore(
        &mut self,
        id: String,
        version: i64,
        alerted: bool,
        published_signature: String,
        last: UtcNanos,
        pulses: Vec<PulseId>,
        review: Option<crate::doc::ReviewDoc>,
    ) {
        for p in pulses {
            self.restored_pulses.insert(p, id.clone());
        }
        self.open.push(OpenIncident {
            id,
            version,
            shots: BTreeMap::new(),
            alerted,
            published: published_signature,
            published_last: Some(last),
            announced: None,
            evidence: BTreeMap::new(),
            decision: None,
            review,
            held_since: None,
        });
    }

    pub fn open_incidents(&self) -> &[OpenIncident] {
        &self.open
    }

    /// Applies shot changes; returns the incident versions to store and publish.
    pub fn apply(&mut self, changes: Vec<ShotChange>) -> Vec<IncidentVersion> {
        let mut touched: BTreeSet<String> = BTreeSet::new();
        for change in changes {
            match change {
                ShotChange::Upsert(live) => {
                    let live = *live;
                    let id = self.incident_for(&live);
                    if let Some(inc) = self.open.iter_mut().find(|i| i.id == id) {
                        inc.shots.insert(live.key.clone(), live.shot);
                        inc.evidence.insert(live.key.clone(), live.evidence);
                    }
                    self.shot_incident.insert(live.key, id.clone());
                    touched.insert(id);
                }
                ShotChange::Lost(key) => {
                    if let Some(id) = self.shot_incident.remove(&key) {
                        if let Some(inc) = self.open.iter_mut().find(|i| i.id == id) {
                            inc.shots.remove(&key);
                            inc.evidence.remove(&key);
                        }
                        touched.insert(id);
                    }
                }
            }
        }
        let mut out = Vec::new();
        for id in touched {
            let Some(inc) = self.open.iter_mut().find(|i| i.id == id) else {
                continue;
            };
            let shots = inc.shots_in_order();
            // Decided before the change check: a restored incident that
            // re-forms unchanged writes no version but has its class again.
            inc.decision = match (&self.classifier, shots.is_empty()) {
                (Some(c), false) => inc.decide(c),
                _ => None,
            };
            let sig = signature(&shots);
            if sig == inc.published {
                continue;
            }
            if inc.review.as_ref().is_some_and(|r| r.status == "dismissed") {
                // New shots after a dismissal: the machine decides again (the
                // dismissal stays in the history) and a person looks again.
                inc.review = None;
            }
            let (shots, shooters, automatic) = published_shots(inc, &self.config);
            let now = shots.first().map(|s| (shots.len(), shooters, s.position));
            let alert = if shots.is_empty() {
                // Every shot withdrawn: cancel what was alerted; else nothing to say.
                inc.alerted.then_some(CANCEL)
            } else if inc.alerted {
                // Every change is a new version; dispatch hears of it only when
                // it matters to the response: more rounds, another shooter, or
                // the place moved by more than a shooter separation.
                let material = match (inc.announced, now) {
                    (Some((r, n, p)), Some((r2, n2, p2))) => {
                        r != r2 || n != n2 || p.distance_2d(p2) > self.config.shooter_separation_m
                    }
                    _ => true,
                };
                material.then_some(UPDATE)
            } else if let Some(r) = &inc.review {
                // A person has decided: their call, not the machine's, says
                // whether it goes out.
                let class = r.class.as_deref().unwrap_or(inc.class().as_str());
                crate::review::alert_kind(false, &r.status, class)
            } else if inc.decision.is_some_and(|d| d.holds_alert()) {
                // Near-certainly not gunfire: published with its class, not alerted.
                None
            } else if inc
                .decision
                .is_some_and(|d| d.p_gunfire < self.hold_below_p)
            {
                // Held for review until a person decides or the timeout passes.
                inc.held_since.get_or_insert_with(std::time::Instant::now);
                None
            } else {
                Some(ALERT)
            };
            if shots.is_empty() && !inc.alerted {
                inc.published = sig;
                continue;
            }
            inc.version += 1;
            if alert == Some(ALERT) {
                inc.alerted = true;
            }
            inc.published = sig;
            inc.published_last = shots.iter().map(|s| s.t_emit).max();
            if alert.is_some() {
                inc.announced = now;
            }
            out.push(inc.version_of(
                (shots, shooters, automatic),
                alert,
                store::Change::machine(),
            ));
        }
        out
    }

    /// A person's review of an open incident: merged into its review state,
    /// published as a new version (see [`crate::review::alert_kind`]).
    /// `None` when the incident is not open here (closed, or never seen).
    pub fn review(
        &mut self,
        id: &str,
        request: &crate::doc::ReviewDoc,
        change: store::Change,
    ) -> Option<IncidentVersion> {
        let i = self.open.iter().position(|i| i.id == id)?;
        if self.open[i].shots.is_empty() {
            return None;
        }
        let (shots, shooters, automatic) = published_shots(&self.open[i], &self.config);
        let inc = &mut self.open[i];
        let merged = crate::review::merge(inc.review.as_ref(), request);
        let machine_class = inc.class().as_str();
        let class = merged.class.as_deref().unwrap_or(machine_class);
        let alert = crate::review::alert_kind(inc.alerted, &merged.status, class);
        inc.version += 1;
        inc.held_since = None;
        if alert == Some(ALERT) {
            inc.alerted = true;
        }
        if alert.is_some() {
            inc.announced = shots.first().map(|s| (shots.len(), shooters, s.position));
        }
        inc.review = Some(merged);
        Some(inc.version_of((shots, shooters, automatic), alert, change))
    }

    /// An open incident as it is now, to put back with
    /// [`IncidentBuilder::put_back`] if storing a change to it fails.
    pub fn snapshot(&self, id: &str) -> Option<OpenIncident> {
        self.open.iter().find(|i| i.id == id).cloned()
    }

    /// Puts back an incident as [`IncidentBuilder::snapshot`] took it.
    pub fn put_back(&mut self, inc: OpenIncident) {
        if let Some(slot) = self.open.iter_mut().find(|i| i.id == inc.id) {
            *slot = inc;
        }
    }

    /// A review stored from an incident's stored document (the builder had
    /// no shots of it to publish): if it is open here, its version and
    /// review state follow, so the next machine version neither reuses the
    /// number nor drops the decision.
    pub fn adopt_review(&mut self, id: &str, version: i64, review: crate::doc::ReviewDoc) {
        if let Some(inc) = self.open.iter_mut().find(|i| i.id == id) {
            inc.version = inc.version.max(version);
            inc.review = Some(review);
            inc.held_since = None;
        }
    }

    /// First alerts held for review longer than `timeout` with no review:
    /// they go out now.
    pub fn release_held(&mut self, timeout: std::time::Duration) -> Vec<IncidentVersion> {
        self.release(|inc| inc.held_since.is_some_and(|t| t.elapsed() >= timeout))
    }

    /// Held first alerts of the incidents `due` picks go out now.
    fn release(&mut self, due: impl Fn(&OpenIncident) -> bool) -> Vec<IncidentVersion> {
        let due: Vec<usize> = (0..self.open.len())
            .filter(|&i| {
                let inc = &self.open[i];
                !inc.alerted
                    && inc.review.is_none()
                    && !inc.shots.is_empty()
                    && inc.held_since.is_some()
                    && due(inc)
            })
            .collect();
        let mut out = Vec::new();
        for i in due {
            let (shots, shooters, automatic) = published_shots(&self.open[i], &self.config);
            let inc = &mut self.open[i];
            let held_s = inc.held_since.map_or(0.0, |t| t.elapsed().as_secs_f64());
            inc.version += 1;
            inc.alerted = true;
            inc.held_since = None;
            inc.announced = shots.first().map(|s| (shots.len(), shooters, s.position));
            let change = store::Change {
                actor: "machine".into(),
                action: "release".into(),
                reason: Some(format!("held for review {:.0} s; no review came", held_s)),
            };
            out.push(inc.version_of((shots, shooters, automatic), Some(ALERT), change));
        }
        out
    }

    fn incident_for(&mut self, live: &LiveShot) -> String {
        if let Some(id) = self.shot_incident.get(&live.key) {
            return id.clone();
        }
        if let Some(id) = live.pulses.iter().find_map(|p| self.restored_pulses.get(p)) {
            if self.open.iter().any(|i| &i.id == id) {
                return id.clone();
            }
        }
        let (gap, radius) = (self.config.incident_gap_s, self.config.incident_radius_m);
        let joined = self.open.iter().find(|inc| {
            inc.shots.values().any(|s| {
                live.shot.t_emit.seconds_since(s.t_emit).abs() <= gap
                    && live.shot.position.distance_2d(s.position) <= radius
            })
        });
        if let Some(inc) = joined {
            return inc.id.clone();
        }
        let id = format!("inc-{}", &live.key[2..]);
        self.open.push(OpenIncident {
            id: id.clone(),
            version: 0,
            shots: BTreeMap::new(),
            alerted: false,
            published: String::new(),
            published_last: None,
            announced: None,
            evidence: BTreeMap::new(),
            decision: None,
            review: None,
            held_since: None,
        });
        id
    }

    /// Forgets incidents whose last shot is more than the incident gap before
    /// `now` (event time): no new shot can join them. A first alert still
    /// held for review goes out first (returned): closing never swallows one.
    pub fn close_before(&mut self, now: UtcNanos) -> Vec<IncidentVersion> {
        let gap = self.config.incident_gap_s;
        let closing = |i: &OpenIncident| {
            i.last_t()
                .or(i.published_last)
                .is_none_or(|t| now.seconds_since(t) > 2.0 * gap)
        };
        let released = self.release(closing);
        let closed: Vec<String> = self
            .open
            .iter()
            .filter(|i| closing(i))
            .map(|i| i.id.clone())
            .collect();
        self.open.retain(|i| !closed.contains(&i.id));
        self.shot_incident.retain(|_, id| !closed.contains(id));
        self.restored_pulses.retain(|_, id| !closed.contains(id));
        released
    }
}

/// The incident's shots as published: in time order, with the classifier's
/// class on each; and its shooters and automatic flag.
fn published_shots(inc: &OpenIncident, config: &LocateConfig) -> (Vec<Shot>, usize, bool) {
    let mut shots = inc.shots_in_order();
    if let Some(d) = inc.decision {
        for shot in &mut shots {
            shot.class = d.class;
            shot.confidence = d.confidence;
        }
    }
    let shooters = if shots.is_empty() {
        0
    } else {
        locate::incident::count_shooters(&shots, config)
    };
    let automatic = locate::incident::is_automatic(&shots, config);
    (shots, shooters, automatic)
}

/// What an incident's shots say, as text: emission time, position to the
/// centimetre and the pulses used, per shot in time order. Two runs that found
/// the same thing give the same signature; it is also computed from a stored
/// incident document ([`crate::doc::IncidentDoc::signature`]).
pub fn signature(shots: &[Shot]) -> String {
    shot_signature(shots.iter().map(|s| {
        (
            s.t_emit.0,
            s.position.x,
            s.position.y,
            s.arrivals.iter().map(|a| a.pulse.0.clone()).collect(),
        )
    }))
}

/// [`signature`] from (t ns, x, y, pulse ids) per shot.
///
/// Positions are first rounded to the millimetre, as the stored document
/// keeps them, and only then to the centimetre: rounding the exact value and
/// the stored one straight to centimetres can differ by one (1.2349 gives
/// 1.23, its stored 1.235 gives 1.24), which made a restart publish an
/// unchanged incident again as an update.
pub fn shot_signature(shots: impl Iterator<Item = (i64, f64, f64, Vec<String>)>) -> String {
    let mm = |v: f64| (v * 1e3).round() / 1e3;
    let mut out = String::new();
    for (t, x, y, mut pulses) in shots {
        pulses.sort();
        let (x, y) = (mm(x), mm(y));
        out.push_str(&format!("{t}:{x:.2}:{y:.2}:{};", pulses.join(",")));
    }
    out
}

#[cfg(test)]
mod tests;
