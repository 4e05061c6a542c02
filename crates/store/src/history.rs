//! The incident history: every version of every incident, machine or human,
//! appended to one hash chain and never updated in place.
//!
//! Entry `n` stores the SHA-256 of its content and of entry `n − 1`'s hash
//! ([`entry_hash`]), so editing, deleting or reordering stored entries breaks
//! the chain at the first entry touched, and [`Db::verify_history`] names it.
//! The versions table, the incidents' current state and the chain are written
//! in one transaction, and verification checks them against each other too: a
//! version with no chain entry (the tail cut off) or a document that differs
//! from its entry is caught as well.
//!
//! Retention may *redact* an entry (its document and reason are removed when
//! the incident expires) but never removes it: the entry keeps the SHA-256 of
//! what it held, so the chain still verifies and says which entries were
//! redacted and when they were written.

use sha2::{Digest, Sha256};

use crate::backend::{args, Row};
use crate::{Db, StoreError};

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who changed an incident and why, stored with the version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `machine`, or `user:NAME` / `token:NAME` for a person or a machine client.
    pub actor: String,
    /// `locate` (machine), or the review action (`confirm`, `reclassify`, …).
    pub action: String,
    /// The reviewer's written reason (none for the machine).
    pub reason: Option<String>,
}

impl Change {
    /// A version the pipeline wrote.
    pub fn machine() -> Change {
        Change {
            actor: "machine".into(),
            action: "locate".into(),
            reason: None,
        }
    }
}

/// One history entry as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub seq: i64,
    pub incident: String,
    pub version: i64,
    pub created_ns: i64,
    pub actor: String,
    pub action: String,
    /// `None` once redacted by retention (or when there was none).
    pub reason: Option<String>,
    pub reason_sha256: String,
    /// The incident document of this version; `None` once redacted.
    pub doc: Option<String>,
    pub doc_sha256: String,
    pub prev_hash: String,
    pub hash: String,
}

/// What [`Db::verify_history`] found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Verification {
    /// Entries checked.
    pub entries: i64,
    /// Entries whose document retention has removed (their hashes still chain).
    pub redacted: i64,
    /// The hash of the last entry: publish it to anchor the chain.
    pub head: String,
    /// The first problem, naming the entry; `None` when the history is intact.
    pub broken: Option<String>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// An entry's hash: SHA-256 over the previous hash and every field, one per
/// line, the free texts by their own SHA-256 (so redaction keeps the hash).
pub fn entry_hash(e: &HistoryEntry) -> String {
    let text = format!(
        "shotfix-history-v1\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n",
        e.prev_hash,
        e.seq,
        e.incident,
        e.version,
        e.created_ns,
        e.actor,
        e.action,
        e.reason_sha256,
        e.doc_sha256
    );
    sha256_hex(text.as_bytes())
}

const HISTORY_COLUMNS: &str = "seq, incident, version, created_ns, actor, action, reason, reason_sha256, doc, doc_sha256, prev_hash, hash";

fn history_row(r: &mut Row) -> Result<HistoryEntry, crate::DbError> {
    Ok(HistoryEntry {
        seq: r.int()?,
        incident: r.text()?,
        version: r.int()?,
        created_ns: r.int()?,
        actor: r.text()?,
        action: r.text()?,
        reason: r.opt_text()?,
        reason_sha256: r.text()?,
        doc: r.opt_text()?,
        doc_sha256: r.text()?,
        prev_hash: r.text()?,
        hash: r.text()?,
    })
}

/// Entries read per query while verifying.
const VERIFY_PAGE: usize = 5_000;

impl Db {
    /// Appends one entry to the chain; call inside the transaction that stores
    /// the version. The sequence number is the last one plus one and is the
    /// primary key, so two writers racing for the same place cannot both
    /// commit: the chain never forks.
    pub(crate) fn append_history(
        &self,
        incident: &str,
        version: i64,
        created_ns: i64,
        change: &Change,
        doc: &str,
    ) -> Result<(), StoreError> {
        let last = self.row(
            "read history head",
            "SELECT seq, hash FROM history ORDER BY seq DESC LIMIT 1",
            &[],
            |r| Ok((r.int()?, r.text()?)),
        )?;
        let (seq, prev_hash) = last.map_or((1, GENESIS.to_string()), |(s, h)| (s + 1, h));
        let mut e = HistoryEntry {
            seq,
            incident: incident.to_string(),
            version,
            created_ns,
            actor: change.actor.clone(),
            action: change.action.clone(),
            reason: change.reason.clone(),
            reason_sha256: sha256_hex(change.reason.as_deref().unwrap_or("").as_bytes()),
            doc: Some(doc.to_string()),
            doc_sha256: sha256_hex(doc.as_bytes()),
            prev_hash,
            hash: String::new(),
        };
        e.hash = entry_hash(&e);
        self.execute(
            "append history",
            &format!(
                "INSERT INTO history ({HISTORY_COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
            ),
            &args![
                e.seq,
                &e.incident,
                e.version,
                e.created_ns,
                &e.actor,
                &e.action,
                e.reason.as_deref(),
                &e.reason_sha256,
                e.doc.as_deref(),
                &e.doc_sha256,
                &e.prev_hash,
                &e.hash
            ],
        )?;
        Ok(())
    }

    /// An incident's history, oldest first.
    pub fn incident_history(&self, incident: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        self.rows(
            "read incident history",
            &format!("SELECT {HISTORY_COLUMNS} FROM history WHERE incident = ?1 ORDER BY seq"),
            &args![incident],
            history_row,
        )
    }

    /// Checks the whole chain, then the versions and incidents against it.
    pub fn verify_history(&self) -> Result<Verification, StoreError> {
        let mut out = Verification {
            head: GENESIS.to_string(),
            ..Verification::default()
        };
        let mut expected_seq = 1;
        loop {
            let page = self.rows(
                "read history",
                &format!(
                    "SELECT {HISTORY_COLUMNS} FROM history WHERE seq >= ?1 ORDER BY seq LIMIT ?2"
                ),
                &args![expected_seq, VERIFY_PAGE as i64],
                history_row,
            )?;
            let Some(last) = page.last() else { break };
            let next = last.seq + 1;
            for e in &page {
                if let Some(problem) = check_entry(e, expected_seq, &out.head) {
                    out.broken = Some(problem);
                    return Ok(out);
                }
                out.entries += 1;
                out.redacted += i64::from(e.doc.is_none());
                out.head = e.hash.clone();
                expected_seq = e.seq + 1;
            }
            expected_seq = expected_seq.max(next);
        }
        // Every version stored since the chain began has its entry, with the
        // same document; every incident's current state is its last entry's.
        // Versions stored before the chain began (a database from schema 1)
        // have no entries. The chain's own first entry says when it began
        // (its time is under its hash); with no entry at all, the migration
        // that created it does.
        let first_entry = self.row(
            "read history start",
            "SELECT created_ns FROM history WHERE seq = 1",
            &[],
            Row::int,
        )?;
        let chained_since = match first_entry {
            Some(t) => t,
            None => self
                .row(
                    "read history start",
                    "SELECT applied_ns FROM schema_migrations WHERE version = 2",
                    &[],
                    Row::int,
                )?
                .unwrap_or(i64::MIN),
        };
        let versions = self.rows(
            "read versions",
            "SELECT v.incident, v.version, v.doc, h.seq, h.doc_sha256 FROM incident_versions v
             LEFT JOIN history h ON h.incident = v.incident AND h.version = v.version
             WHERE v.created_ns >= ?1 ORDER BY v.incident, v.version",
            &args![chained_since],
            |r| Ok((r.text()?, r.int()?, r.text()?, r.opt_int()?, r.opt_text()?)),
        )?;
        for (incident, version, doc, seq, doc_sha256) in versions {
            match (seq, doc_sha256) {
                (Some(seq), Some(sha)) if sha != sha256_hex(doc.as_bytes()) => {
                    out.broken = Some(format!(
                        "incident {incident} version {version}: stored version differs from history entry {seq}"
                    ));
                    return Ok(out);
                }
                (Some(_), _) => {}
                (None, _) => {
                    out.broken = Some(format!(
                        "incident {incident} version {version}: no history entry (entries removed from the end of the chain?)"
                    ));
                    return Ok(out);
                }
            }
        }
        let current = self.rows(
            "read incidents",
            "SELECT i.id, i.version, i.doc, h.doc_sha256 FROM incidents i
             LEFT JOIN history h ON h.incident = i.id AND h.version = i.version
             WHERE i.updated_ns >= ?1 ORDER BY i.id",
            &args![chained_since],
            |r| Ok((r.text()?, r.int()?, r.text()?, r.opt_text()?)),
        )?;
        for (id, version, doc, sha) in current {
            if sha.as_deref() != Some(sha256_hex(doc.as_bytes()).as_str()) {
                out.broken = Some(format!(
                    "incident {id}: current state (version {version}) differs from its history entry"
                ));
                return Ok(out);
            }
        }
        Ok(out)
    }
}

/// What is wrong with entry `e`, expected at `seq` after an entry hashed `prev`.
fn check_entry(e: &HistoryEntry, seq: i64, prev: &str) -> Option<String> {
    let at = format!(
        "history entry {} (incident {} version {})",
        e.seq, e.incident, e.version
    );
    if e.seq != seq {
        return Some(format!(
            "{at}: follows entry {} — entries {seq}..{} are missing",
            seq - 1,
            e.seq - 1
        ));
    }
    if e.prev_hash != prev {
        return Some(format!(
            "{at}: does not follow the entry before it (its previous-hash differs: removed, inserted or reordered entries)"
        ));
    }
    if let Some(doc) = &e.doc {
        if sha256_hex(doc.as_bytes()) != e.doc_sha256 {
            return Some(format!("{at}: document edited (its SHA-256 differs)"));
        }
    }
    if let Some(reason) = &e.reason {
        if sha256_hex(reason.as_bytes()) != e.reason_sha256 {
            return Some(format!("{at}: reason edited (its SHA-256 differs)"));
        }
    }
    if entry_hash(e) != e.hash {
        return Some(format!("{at}: content edited (its hash differs)"));
    }
    None
}
