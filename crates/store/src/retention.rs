//! Retention: deleting what the operator's policy says is kept no longer, for
//! real, and saying so in the audit log.
//!
//! Ages are counted from when the server stored the data (a pulse's
//! `received_ns`, an incident's latest version's `updated_ns`, an audit
//! record's time): records retention runs on the records' own clock, so data
//! replayed or backfilled from the past is kept as long as data heard today.
//!
//! One transaction per run deletes, by kind:
//! - incidents whose latest version is older than their cutoff, with their
//!   versions, alerts, webhook deliveries and pulse links; their history
//!   entries are *redacted* (document and reason removed, hashes kept, so the
//!   chain still verifies; see `history.rs`);
//! - pulses older than their cutoff that no kept incident uses, with their
//!   clips, and the report records left with no pulse;
//! - clips older than their cutoff that no kept incident uses (the pulse
//!   itself may be kept longer: it holds no audio);
//! - audit records older than their cutoff;
//!
//! and appends one `retention.delete` audit record per kind that lost rows, in
//! the same transaction. SQLite overwrites deleted content (`secure_delete`)
//! and the write-ahead log is then checkpointed and truncated, so what was
//! deleted is gone from the files on disk as well as from the tables.
//! Evidence of an incident (its pulses and clips) is kept as long as the
//! incident is.

use crate::backend::{args, Dialect, Row};
use crate::{AuditEntry, Db, StoreError};

/// Delete what is older than these (Unix ns); `None` keeps that kind forever.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionCutoffs {
    pub now_ns: i64,
    pub pulses_before_ns: Option<i64>,
    pub clips_before_ns: Option<i64>,
    pub incidents_before_ns: Option<i64>,
    pub audit_before_ns: Option<i64>,
}

/// Rows deleted (history entries: redacted) by one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deleted {
    pub incidents: Vec<String>,
    pub history_redacted: u64,
    pub alerts: u64,
    pub pulses: u64,
    pub clips: u64,
    pub reports: u64,
    pub audit: u64,
    /// Outcomes of deleted incidents, and misses and 911 calls older than
    /// the incidents' cutoff (they hold exact places and callers' places).
    pub outcomes: u64,
    pub misses: u64,
    pub calls: u64,
    /// SQLite: the write-ahead log, which still held deleted content, was
    /// emptied (false when readers kept it busy for a second; the next run
    /// tries again). PostgreSQL: always true (see docs/access.md on VACUUM).
    pub log_truncated: bool,
}

impl Db {
    /// Enforces the cutoffs once (see the module comment).
    pub fn enforce_retention(&mut self, c: &RetentionCutoffs) -> Result<Deleted, StoreError> {
        let mut d = Deleted::default();
        // A deleted pulse takes its clip with it.
        let clips_before = match (c.clips_before_ns, c.pulses_before_ns) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.transaction("commit retention", || {
            if let Some(before) = c.incidents_before_ns {
                d.incidents = self.rows(
                    "find expired incidents",
                    "SELECT id FROM incidents WHERE updated_ns < ?1 ORDER BY id",
                    &args![before],
                    Row::text,
                )?;
                for id in &d.incidents {
                    self.execute(
                        "delete deliveries",
                        "DELETE FROM outbox WHERE alert_seq IN (SELECT seq FROM alerts WHERE incident = ?1)",
                        &args![id],
                    )?;
                    d.alerts += self.execute(
                        "delete alerts",
                        "DELETE FROM alerts WHERE incident = ?1",
                        &args![id],
                    )?;
                    self.execute(
                        "delete versions",
                        "DELETE FROM incident_versions WHERE incident = ?1",
                        &args![id],
                    )?;
                    self.execute(
                        "delete incident pulses",
                        "DELETE FROM incident_pulses WHERE incident = ?1",
                        &args![id],
                    )?;
                    self.execute("delete incident", "DELETE FROM incidents WHERE id = ?1", &args![id])?;
                    d.outcomes += self.execute(
                        "delete outcomes",
                        "DELETE FROM outcomes WHERE incident = ?1",
                        &args![id],
                    )?;
                    d.history_redacted += self.execute(
                        "redact history",
                        "UPDATE history SET doc = NULL, reason = NULL WHERE incident = ?1 AND doc IS NOT NULL",
                        &args![id],
                    )?;
                }
                d.misses = self.execute(
                    "delete misses",
                    "DELETE FROM misses WHERE t_ns < ?1",
                    &args![before],
                )?;
                d.calls = self.execute(
                    "delete calls",
                    "DELETE FROM calls WHERE t_ns < ?1",
                    &args![before],
                )?;
            }
            let unused = "NOT EXISTS (SELECT 1 FROM incident_pulses ip
                              WHERE ip.sensor = p.sensor AND ip.pulse = p.id)";
            if let Some(before) = clips_before {
                d.clips = self.execute(
                    "delete clips",
                    &format!(
                        "DELETE FROM clips WHERE EXISTS (SELECT 1 FROM pulses p
                           WHERE p.sensor = clips.sensor AND p.id = clips.pulse AND p.received_ns < ?1 AND {unused})"
                    ),
                    &args![before],
                )?;
            }
            if let Some(before) = c.pulses_before_ns {
                d.pulses = self.execute(
                    "delete pulses",
                    "DELETE FROM pulses WHERE received_ns < ?1 AND NOT EXISTS (SELECT 1 FROM incident_pulses ip
                       WHERE ip.sensor = pulses.sensor AND ip.pulse = pulses.id)",
                    &args![before],
                )?;
                d.reports = self.execute(
                    "delete reports",
                    "DELETE FROM reports WHERE received_ns < ?1
                       AND NOT EXISTS (SELECT 1 FROM pulses WHERE pulses.report = reports.id)",
                    &args![before],
                )?;
            }
            // Sessions past their end are of no use to anyone.
            self.execute(
                "delete ended sessions",
                "DELETE FROM sessions WHERE expires_ns < ?1",
                &args![c.now_ns],
            )?;
            if let Some(before) = c.audit_before_ns {
                d.audit = self.execute(
                    "delete audit",
                    "DELETE FROM audit WHERE t_ns < ?1",
                    &args![before],
                )?;
            }
            let record = |kind: &str, count: u64, before: Option<i64>, detail: String| AuditEntry {
                seq: 0,
                t_ns: c.now_ns,
                actor: "retention".into(),
                role: "system".into(),
                action: "retention.delete".into(),
                target: kind.into(),
                detail: Some(format!(
                    "{count} deleted, older than {} ns{detail}",
                    before.unwrap_or(0)
                )),
            };
            let mut log = Vec::new();
            if !d.incidents.is_empty() {
                log.push(record(
                    "incidents",
                    d.incidents.len() as u64,
                    c.incidents_before_ns,
                    format!(
                        "; {} alerts; {} history entries redacted; ids: {}",
                        d.alerts,
                        d.history_redacted,
                        d.incidents.join(",")
                    ),
                ));
            }
            for (kind, count, before) in [
                ("clips", d.clips, clips_before),
                ("pulses", d.pulses, c.pulses_before_ns),
                ("reports", d.reports, c.pulses_before_ns),
                ("audit", d.audit, c.audit_before_ns),
                ("outcomes", d.outcomes, c.incidents_before_ns),
                ("misses", d.misses, c.incidents_before_ns),
                ("calls", d.calls, c.incidents_before_ns),
            ] {
                if count > 0 {
                    log.push(record(kind, count, before, String::new()));
                }
            }
            for e in &log {
                self.execute(
                    "log deletion",
                    "INSERT INTO audit (t_ns, actor, role, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    &args![e.t_ns, &e.actor, &e.role, &e.action, &e.target, e.detail.as_deref()],
                )?;
            }
            Ok(())
        })?;
        if self.conn.dialect() == Dialect::Sqlite {
            // Move the committed pages into the main file (where secure_delete
            // zeroed the old content) and empty the log that still held it. A
            // reader in the middle of a query keeps its snapshot's frames: the
            // checkpoint says "busy" and is tried again for up to a second.
            for _ in 0..50 {
                let busy = self
                    .row(
                        "checkpoint after retention",
                        "PRAGMA wal_checkpoint(TRUNCATE)",
                        &[],
                        Row::int,
                    )?
                    .unwrap_or(0);
                d.log_truncated = busy == 0;
                if d.log_truncated {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        } else {
            d.log_truncated = true;
        }
        Ok(d)
    }
}
