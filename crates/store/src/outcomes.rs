//! What happened after an alert, and what the alerts missed: officers'
//! outcomes per incident, shootings police report that no alert covered, and
//! 911 calls imported from the call centre's records. All are appended and
//! never edited: a corrected outcome is a new row, and the latest one counts.

use crate::backend::{args, Row};
use crate::{Db, StoreError};

/// What officers found at an incident.
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeRow {
    /// 0 until stored.
    pub seq: i64,
    pub incident: String,
    pub recorded_ns: i64,
    /// `user:NAME` or `token:NAME`.
    pub actor: String,
    /// What was found, comma-separated (`casings,arrest`, or `no_evidence`).
    pub found: String,
    pub officer_minutes: Option<f64>,
    pub note: Option<String>,
}

/// Gunfire police know of that no alert covered.
#[derive(Debug, Clone, PartialEq)]
pub struct MissRow {
    /// 0 until stored.
    pub seq: i64,
    pub t_ns: i64,
    pub lat: f64,
    pub lon: f64,
    pub recorded_ns: i64,
    pub actor: String,
    pub note: Option<String>,
}

/// A 911 call about shots.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRow {
    pub id: String,
    pub t_ns: i64,
    pub lat: f64,
    pub lon: f64,
    /// The call's type as the call centre records it.
    pub kind: String,
    /// `FILE:LINE` it was imported from.
    pub source: String,
}

impl Db {
    /// Appends an outcome; returns its sequence number.
    pub fn add_outcome(&mut self, o: &OutcomeRow) -> Result<i64, StoreError> {
        self.row(
            "record outcome",
            "INSERT INTO outcomes (incident, recorded_ns, actor, found, officer_minutes, note)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING seq",
            &args![
                &o.incident,
                o.recorded_ns,
                &o.actor,
                &o.found,
                o.officer_minutes,
                o.note.as_deref()
            ],
            Row::int,
        )?
        .ok_or_else(|| StoreError::Conflict("record outcome: no sequence number came back".into()))
    }

    /// Every outcome recorded for `incident`, oldest first.
    pub fn outcomes_of(&self, incident: &str) -> Result<Vec<OutcomeRow>, StoreError> {
        self.rows(
            "list outcomes",
            "SELECT seq, incident, recorded_ns, actor, found, officer_minutes, note
             FROM outcomes WHERE incident = ?1 ORDER BY seq",
            &args![incident],
            outcome_row,
        )
    }

    /// The latest outcome of each incident that has one.
    pub fn latest_outcomes(&self) -> Result<Vec<OutcomeRow>, StoreError> {
        self.rows(
            "list outcomes",
            "SELECT seq, incident, recorded_ns, actor, found, officer_minutes, note
             FROM outcomes o WHERE seq = (SELECT MAX(seq) FROM outcomes p WHERE p.incident = o.incident)
             ORDER BY incident",
            &[],
            outcome_row,
        )
    }

    /// Appends a reported miss; returns its sequence number.
    pub fn add_miss(&mut self, m: &MissRow) -> Result<i64, StoreError> {
        self.row(
            "record miss",
            "INSERT INTO misses (t_ns, lat, lon, recorded_ns, actor, note)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING seq",
            &args![
                m.t_ns,
                m.lat,
                m.lon,
                m.recorded_ns,
                &m.actor,
                m.note.as_deref()
            ],
            Row::int,
        )?
        .ok_or_else(|| StoreError::Conflict("record miss: no sequence number came back".into()))
    }

    /// Misses with `since_ns <= t < until_ns`, oldest first.
    pub fn misses(&self, since_ns: i64, until_ns: i64) -> Result<Vec<MissRow>, StoreError> {
        self.rows(
            "list misses",
            "SELECT seq, t_ns, lat, lon, recorded_ns, actor, note FROM misses
             WHERE t_ns >= ?1 AND t_ns < ?2 ORDER BY t_ns, seq",
            &args![since_ns, until_ns],
            |r| {
                Ok(MissRow {
                    seq: r.int()?,
                    t_ns: r.int()?,
                    lat: r.real()?,
                    lon: r.real()?,
                    recorded_ns: r.int()?,
                    actor: r.text()?,
                    note: r.opt_text()?,
                })
            },
        )
    }

    /// Saves calls in one transaction; a call id already stored is kept as it
    /// was (importing a file twice adds nothing). Returns how many were new.
    pub fn save_calls(&mut self, calls: &[CallRow]) -> Result<usize, StoreError> {
        self.transaction("save calls", || {
            let mut added = 0;
            for c in calls {
                added += self.execute(
                    "save call",
                    "INSERT INTO calls (id, t_ns, lat, lon, kind, source) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (id) DO NOTHING",
                    &args![&c.id, c.t_ns, c.lat, c.lon, &c.kind, &c.source],
                )? as usize;
            }
            Ok(added)
        })
    }

    /// Calls with `since_ns <= t < until_ns`, oldest first.
    pub fn calls(&self, since_ns: i64, until_ns: i64) -> Result<Vec<CallRow>, StoreError> {
        self.rows(
            "list calls",
            "SELECT id, t_ns, lat, lon, kind, source FROM calls
             WHERE t_ns >= ?1 AND t_ns < ?2 ORDER BY t_ns, id",
            &args![since_ns, until_ns],
            |r| {
                Ok(CallRow {
                    id: r.text()?,
                    t_ns: r.int()?,
                    lat: r.real()?,
                    lon: r.real()?,
                    kind: r.text()?,
                    source: r.text()?,
                })
            },
        )
    }

    /// The server's secret `name`, made from `fresh` the first time it is
    /// asked for and the same ever after.
    pub fn secret(&mut self, name: &str, fresh: &[u8], now_ns: i64) -> Result<Vec<u8>, StoreError> {
        self.execute(
            "save secret",
            "INSERT INTO secrets (name, value, created_ns) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO NOTHING",
            &args![name, fresh, now_ns],
        )?;
        self.row(
            "read secret",
            "SELECT value FROM secrets WHERE name = ?1",
            &args![name],
            Row::blob,
        )?
        .ok_or_else(|| StoreError::Conflict(format!("secret {name}: not kept")))
    }

    /// First alerts (not updates or cancels) published with
    /// `since_ns <= created < until_ns`: (incident, created_ns).
    pub fn first_alerts(
        &self,
        since_ns: i64,
        until_ns: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        self.rows(
            "list first alerts",
            "SELECT incident, created_ns FROM alerts
             WHERE kind = 'alert' AND created_ns >= ?1 AND created_ns < ?2 ORDER BY seq",
            &args![since_ns, until_ns],
            |r| Ok((r.text()?, r.int()?)),
        )
    }
}

fn outcome_row(r: &mut Row) -> Result<OutcomeRow, crate::DbError> {
    Ok(OutcomeRow {
        seq: r.int()?,
        incident: r.text()?,
        recorded_ns: r.int()?,
        actor: r.text()?,
        found: r.text()?,
        officer_minutes: r.opt_real()?,
        note: r.opt_text()?,
    })
}
