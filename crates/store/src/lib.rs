//! Durable storage for the server: sensors, accepted reports and their pulses,
//! audio clips, incidents with every version, alerts, and the webhook outbox.
//!
//! Two backends behind one [`Db`], chosen by [`Db::open`]:
//! - SQLite, the embedded default: one file, write-ahead log, `synchronous=FULL`,
//!   so a transaction that returned is on disk and survives a `kill -9` of the
//!   server (and a power cut);
//! - PostgreSQL (`postgres://…`), for a database on another machine or shared
//!   with other tools; a commit that returned is durable under the server's
//!   default `synchronous_commit = on`.
//!
//! Both get their schema from the same migration text (`migrations.rs`, with a
//! mechanical rewrite for PostgreSQL) and run the same SQL text for every query
//! (`backend.rs`), so they store, refuse and order rows alike.
//!
//! The server talks to one [`Db`] from one writer thread and batches many
//! requests into one transaction (group commit); readers open their own
//! connections, which WAL (and PostgreSQL's MVCC) lets run beside the writer.
//!
//! Guarantees the schema enforces, not the callers (so they hold on both
//! backends, and on PostgreSQL across any number of connections and processes):
//! - a report id is accepted once (`reports` primary key), and a pulse once per
//!   sensor (`pulses` primary key), so a retried report changes nothing;
//! - an alert exists at most once per (incident, version) and an incident is
//!   alerted (`kind = 'alert'`) at most once (partial unique index);
//! - a webhook delivery exists at most once per (alert, target), and it is
//!   created in the same transaction as its alert, so no alert can miss one.
//!
//! The API is synchronous. The `postgres` client drives each connection with a
//! small runtime of its own, so a PostgreSQL-backed [`Db`] must be used from a
//! plain thread (or `spawn_blocking`), never from inside an async task. Alert
//! sequence numbers increase in commit order as long as one connection writes
//! alerts (the server's writer thread); on PostgreSQL a refused alert skips a
//! number.
//!
//! Times are integer nanoseconds since the Unix epoch (UTC), as in the core.

mod access;
mod backend;
mod history;
mod migrations;
mod outcomes;
mod retention;

use std::borrow::Cow;
use std::fmt;
use std::path::Path;

use backend::{args, Arg, Conn, Dialect, Row};
use rusqlite::Connection;

pub use access::{AuditEntry, AuditFilter, TokenRow, UserRow};
pub use backend::{redact, DbError};
pub use history::{entry_hash, sha256_hex, Change, HistoryEntry, Verification, GENESIS};
pub use migrations::MIGRATIONS;
pub use outcomes::{CallRow, MissRow, OutcomeRow};
pub use retention::{Deleted, RetentionCutoffs};

/// What can go wrong with storage. Messages are one line and name the
/// database (a path, or a URL without its password) and the operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {database}: {error}")]
    Open { database: String, error: DbError },
    #[error("database {database}: migration {version} ({name}): {error}")]
    Migrate {
        database: String,
        version: i64,
        name: &'static str,
        error: DbError,
    },
    #[error("database {database} is at schema version {found}, newer than this program's {known}")]
    TooNew {
        database: String,
        found: i64,
        known: i64,
    },
    /// A write that must not overwrite what another wrote first (an incident
    /// version reviewed twice at once); the caller re-reads and tries again.
    #[error("{0}")]
    Conflict(String),
    /// The thread that owned the connection has stopped (server shutting down).
    #[error("store writer stopped")]
    Stopped,
    #[error("database {database}: {operation}: {error}")]
    Sql {
        database: String,
        operation: &'static str,
        error: DbError,
    },
}

/// A registered sensor: its shared secret and surveyed position.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorRow {
    pub id: String,
    /// The per-sensor HMAC key, hex.
    pub key_hex: String,
    pub lat: f64,
    pub lon: f64,
    pub alt_m: f64,
}

/// A pulse's key: (sensor, pulse id).
pub type PulseKey = (String, String);

/// One pulse as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct PulseRow {
    pub sensor: String,
    pub id: String,
    pub t_ns: i64,
    pub snr_db: Option<f64>,
    pub peak_db_spl: Option<f64>,
    /// The report that carried it.
    pub report: String,
    pub received_ns: i64,
    /// Features and anything else the sensor sent, JSON (kept for the evidence).
    pub extra_json: Option<String>,
}

/// A request for a stretch of a sensor's buffered audio (an investigation).
#[derive(Debug, Clone, PartialEq)]
pub struct ClipRequestRow {
    pub id: String,
    pub sensor: String,
    pub from_ns: i64,
    pub seconds: f64,
    /// The caller who asked (`user:…` or `token:…`).
    pub requested_by: String,
    pub reason: Option<String>,
    pub created_ns: i64,
    pub answered_ns: Option<i64>,
    /// The sensor's reason for sending no audio.
    pub error: Option<String>,
}

fn clip_request_row(r: &mut Row) -> Result<ClipRequestRow, DbError> {
    Ok(ClipRequestRow {
        id: r.text()?,
        sensor: r.text()?,
        from_ns: r.int()?,
        seconds: r.real()?,
        requested_by: r.text()?,
        reason: r.opt_text()?,
        created_ns: r.int()?,
        answered_ns: r.opt_int()?,
        error: r.opt_text()?,
    })
}

/// A short audio clip around a pulse, as a WAV file.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipRow {
    pub sensor: String,
    pub pulse: String,
    pub wav: Vec<u8>,
}

/// One authenticated report to store: its pulses and clips go in with it or not at all.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRow {
    pub id: String,
    pub sensor: String,
    pub received_ns: i64,
    pub pulses: Vec<PulseRow>,
    pub clips: Vec<ClipRow>,
}

/// What storing a report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportOutcome {
    /// New report; `pulses` new pulses (a pulse already stored under another
    /// report id is not stored twice).
    Accepted {
        pulses: usize,
        duplicate_pulses: usize,
    },
    /// The report id was already accepted; nothing changed.
    Duplicate,
}

/// The current state of an incident (its latest version).
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentRow {
    pub id: String,
    pub version: i64,
    pub first_ns: i64,
    pub last_ns: i64,
    pub lat: f64,
    pub lon: f64,
    pub class: String,
    pub confidence: f64,
    pub rounds: i64,
    pub shooters: i64,
    pub automatic: bool,
    pub updated_ns: i64,
    /// The full incident document (the API's JSON), for this version.
    pub doc: String,
}

/// One alert message: the first alert of an incident, an update, or a cancel.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    /// Monotonic sequence number: the SSE event id.
    pub seq: i64,
    pub incident: String,
    pub version: i64,
    pub kind: String,
    pub created_ns: i64,
    pub doc: String,
}

/// A webhook delivery waiting in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRow {
    pub id: i64,
    pub alert_seq: i64,
    pub target: String,
    pub attempts: i64,
    pub next_ns: i64,
    pub doc: String,
}

/// Counts of outbox rows by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxCounts {
    pub pending: i64,
    pub delivered: i64,
    pub dead: i64,
}

/// Filter for incident listings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IncidentFilter {
    pub since_ns: Option<i64>,
    pub until_ns: Option<i64>,
    /// (min lon, min lat, max lon, max lat).
    pub bbox: Option<[f64; 4]>,
    pub class: Option<String>,
    pub limit: usize,
}

/// Filter for pulse listings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PulseFilter {
    pub sensor: Option<String>,
    pub since_ns: Option<i64>,
    pub until_ns: Option<i64>,
    pub limit: usize,
}

/// An incident version to save, with what goes out because of it.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentSave {
    pub incident: IncidentRow,
    /// Pulses (sensor, id) the incident's shots use, for recovery after a restart.
    pub pulses: Vec<(String, String)>,
    /// `Some(kind)` to publish this version as an alert message.
    pub alert: Option<String>,
    /// The alert document (JSON), when `alert` is set.
    pub alert_doc: String,
    /// Webhook targets that get a delivery of the alert.
    pub targets: Vec<String>,
    /// Who made this version and why (the history entry).
    pub change: Change,
    /// Refuse ([`StoreError::Conflict`]) rather than skip a version already
    /// stored: for human changes, which must never be dropped silently.
    pub strict: bool,
}

/// A connection to the database (SQLite or PostgreSQL).
pub struct Db {
    conn: Conn,
    /// How messages name the database: the SQLite path, or the PostgreSQL
    /// connection string without its password.
    database: String,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.conn.dialect())
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

/// A PostgreSQL advisory lock key ("shotfix" in ASCII) that serialises schema
/// migrations between connections opening the same database at once.
const MIGRATION_LOCK: i64 = 0x0073_686f_7466_6978;

impl Db {
    /// Opens a database by URL and brings its schema up to date:
    /// `postgres://…` or `postgresql://…` is a PostgreSQL server (see
    /// [`Db::open_postgres`]); anything else is an SQLite file path, with an
    /// optional `sqlite:` or `sqlite://` prefix (`sqlite:///var/lib/shotfix.db`).
    pub fn open(url: &str) -> Result<Db, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Db::open_postgres(url);
        }
        let path = match url.strip_prefix("sqlite:") {
            Some(rest) => rest.strip_prefix("//").unwrap_or(rest),
            None => url,
        };
        if path.is_empty() {
            return Err(StoreError::Open {
                database: format!("{url:?}"),
                error: DbError::Invalid("no path: give an SQLite file or a postgres:// URL".into()),
            });
        }
        Db::open_sqlite(Path::new(path))
    }

    /// Connects to PostgreSQL and brings the schema up to date. `config` is a
    /// URL (`postgres://user:password@host:5432/dbname?connect_timeout=5`) or
    /// `key=value` pairs (`host=… user=… dbname=…`), as libpq takes them; no
    /// TLS (use a local or tunnelled connection). Without a `connect_timeout`,
    /// an unresponsive server is given up after 10 s.
    pub fn open_postgres(config: &str) -> Result<Db, StoreError> {
        Db::open_existing_postgres(config)?.migrated()
    }

    /// Opens (creating if needed) an SQLite database and brings its schema up to date.
    pub fn open_sqlite(path: &Path) -> Result<Db, StoreError> {
        Db::sqlite_file(path, rusqlite::OpenFlags::SQLITE_OPEN_CREATE)?.migrated()
    }

    /// Opens an existing SQLite file as it is: nothing is created and no
    /// migration applied (for checks such as `shotfix verify`).
    pub fn open_existing_sqlite(path: &Path) -> Result<Db, StoreError> {
        Db::sqlite_file(path, rusqlite::OpenFlags::empty())
    }

    /// Connects to an existing PostgreSQL database as it is (no migration).
    pub fn open_existing_postgres(config: &str) -> Result<Db, StoreError> {
        let database = backend::redact(config);
        let conn = Conn::postgres(config).map_err(|error| StoreError::Open {
            database: database.clone(),
            error,
        })?;
        Ok(Db { conn, database })
    }

    /// An SQLite file, read-write, with `create` (or no) extra open flag.
    fn sqlite_file(path: &Path, create: rusqlite::OpenFlags) -> Result<Db, StoreError> {
        use rusqlite::OpenFlags;
        let database = path.display().to_string();
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | create;
        let conn = Connection::open_with_flags(path, flags)
            .map_err(DbError::from)
            .and_then(Conn::sqlite)
            .map_err(|error| StoreError::Open {
                database: database.clone(),
                error,
            })?;
        Ok(Db { conn, database })
    }

    /// A private in-memory SQLite database (tests, `locate`-style one-off runs).
    pub fn open_in_memory() -> Result<Db, StoreError> {
        let database = ":memory:".to_string();
        let conn = Connection::open_in_memory()
            .map_err(DbError::from)
            .and_then(Conn::sqlite)
            .map_err(|error| StoreError::Open {
                database: database.clone(),
                error,
            })?;
        Db { conn, database }.migrated()
    }

    /// This database with its schema brought up to date.
    fn migrated(self) -> Result<Db, StoreError> {
        self.migrate()?;
        Ok(self)
    }

    /// The schema version now in the database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .row(
                "read schema version",
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                &[],
                Row::int,
            )?
            .unwrap_or(0))
    }

    /// Applies the missing migrations, each in its own transaction. The
    /// transaction holds the write lock (SQLite) or an advisory lock
    /// (PostgreSQL) from reading the version to recording the new one, so
    /// connections opening a new database at once apply each migration once.
    fn migrate(&self) -> Result<(), StoreError> {
        let known = MIGRATIONS.last().map_or(0, |m| m.version);
        let dialect = self.conn.dialect();
        let text = |sqlite: &'static str| match dialect {
            Dialect::Sqlite => Cow::Borrowed(sqlite),
            Dialect::Postgres => Cow::Owned(migrations::postgres_dialect(sqlite)),
        };
        loop {
            let applied = self.transaction("commit migration", || {
                if dialect == Dialect::Postgres {
                    self.execute(
                        "lock for migration",
                        "SELECT pg_advisory_xact_lock(?1)",
                        &args![MIGRATION_LOCK],
                    )?;
                }
                self.conn
                    .batch(&text(migrations::SCHEMA_MIGRATIONS))
                    .map_err(self.fail("create schema_migrations"))?;
                let found = self.schema_version()?;
                if found > known {
                    return Err(StoreError::TooNew {
                        database: self.database.clone(),
                        found,
                        known,
                    });
                }
                let Some(m) = MIGRATIONS.iter().find(|m| m.version > found) else {
                    return Ok(false);
                };
                let fail = |error| StoreError::Migrate {
                    database: self.database.clone(),
                    version: m.version,
                    name: m.name,
                    error,
                };
                self.conn.batch(&text(m.sqlite)).map_err(fail)?;
                self.conn
                    .execute(
                        "INSERT INTO schema_migrations (version, name, applied_ns) VALUES (?1, ?2, ?3)",
                        &args![m.version, m.name, now_ns()],
                    )
                    .map_err(fail)?;
                Ok(true)
            })?;
            if !applied {
                return Ok(());
            }
        }
    }

    // ---- sensors -------------------------------------------------------------

    /// Adds or updates a sensor.
    pub fn upsert_sensor(&mut self, s: &SensorRow) -> Result<(), StoreError> {
        self.execute(
            "save sensor",
            "INSERT INTO sensors (id, key_hex, lat, lon, alt_m, registered_ns)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (id) DO UPDATE SET key_hex = excluded.key_hex,
                lat = excluded.lat, lon = excluded.lon, alt_m = excluded.alt_m",
            &args![&s.id, &s.key_hex, s.lat, s.lon, s.alt_m, now_ns()],
        )
        .map(drop)
    }

    pub fn sensors(&self) -> Result<Vec<SensorRow>, StoreError> {
        self.rows(
            "list sensors",
            "SELECT id, key_hex, lat, lon, alt_m FROM sensors ORDER BY id",
            &[],
            |r| {
                Ok(SensorRow {
                    id: r.text()?,
                    key_hex: r.text()?,
                    lat: r.real()?,
                    lon: r.real()?,
                    alt_m: r.real()?,
                })
            },
        )
    }

    // ---- clip requests ------------------------------------------------------

    /// Records a request for a stretch of a sensor's buffered audio.
    pub fn insert_clip_request(&mut self, r: &ClipRequestRow) -> Result<(), StoreError> {
        self.execute(
            "save clip request",
            "INSERT INTO clip_requests (id, sensor, from_ns, seconds, requested_by, reason, created_ns)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            &args![
                &r.id,
                &r.sensor,
                r.from_ns,
                r.seconds,
                &r.requested_by,
                r.reason.as_deref(),
                r.created_ns
            ],
        )
        .map(drop)
    }

    /// One request, without its audio.
    pub fn clip_request(&self, id: &str) -> Result<Option<ClipRequestRow>, StoreError> {
        self.row(
            "read clip request",
            "SELECT id, sensor, from_ns, seconds, requested_by, reason, created_ns, answered_ns, error
             FROM clip_requests WHERE id = ?1",
            &args![id],
            clip_request_row,
        )
    }

    /// A sensor's unanswered requests made since `since_ns`, oldest first.
    pub fn pending_clip_requests(
        &self,
        sensor: &str,
        since_ns: i64,
        limit: usize,
    ) -> Result<Vec<ClipRequestRow>, StoreError> {
        self.rows(
            "list clip requests",
            "SELECT id, sensor, from_ns, seconds, requested_by, reason, created_ns, answered_ns, error
             FROM clip_requests WHERE sensor = ?1 AND answered_ns IS NULL AND created_ns >= ?2
             ORDER BY created_ns, id LIMIT ?3",
            &args![sensor, since_ns, limit as i64],
            clip_request_row,
        )
    }

    /// Seconds of audio asked of a sensor by requests made since `since_ns`.
    pub fn requested_seconds_since(&self, sensor: &str, since_ns: i64) -> Result<f64, StoreError> {
        Ok(self
            .row(
                "sum clip requests",
                "SELECT COALESCE(SUM(seconds), 0.0) FROM clip_requests WHERE sensor = ?1 AND created_ns >= ?2",
                &args![sensor, since_ns],
                Row::real,
            )?
            .unwrap_or(0.0))
    }

    /// Answers a pending request of `sensor` with audio or the reason there is
    /// none; false when there is no such pending request.
    pub fn answer_clip_request(
        &mut self,
        id: &str,
        sensor: &str,
        wav: Option<&[u8]>,
        error: Option<&str>,
        now_ns: i64,
    ) -> Result<bool, StoreError> {
        let n = self.execute(
            "answer clip request",
            "UPDATE clip_requests SET answered_ns = ?1, wav = ?2, error = ?3
             WHERE id = ?4 AND sensor = ?5 AND answered_ns IS NULL",
            &args![now_ns, wav, error, id, sensor],
        )?;
        Ok(n > 0)
    }

    /// The audio a sensor sent for a request, once answered.
    pub fn clip_request_wav(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.row(
            "read requested clip",
            "SELECT wav FROM clip_requests WHERE id = ?1 AND wav IS NOT NULL",
            &args![id],
            Row::blob,
        )
    }

    // ---- heartbeats ----------------------------------------------------------

    /// Keeps a sensor's latest heartbeat (its JSON document, as received).
    pub fn save_heartbeat(
        &mut self,
        sensor: &str,
        received_ns: i64,
        doc: &str,
    ) -> Result<(), StoreError> {
        self.execute(
            "save heartbeat",
            "INSERT INTO heartbeats (sensor, received_ns, doc) VALUES (?1, ?2, ?3)
             ON CONFLICT (sensor) DO UPDATE SET received_ns = excluded.received_ns, doc = excluded.doc",
            &args![sensor, received_ns, doc],
        )
        .map(drop)
    }

    /// Every sensor's latest heartbeat: (sensor, received_ns, document).
    pub fn heartbeats(&self) -> Result<Vec<(String, i64, String)>, StoreError> {
        self.rows(
            "list heartbeats",
            "SELECT sensor, received_ns, doc FROM heartbeats ORDER BY sensor",
            &[],
            |r| Ok((r.text()?, r.int()?, r.text()?)),
        )
    }

    // ---- reports and pulses ----------------------------------------------------

    /// Stores many reports in one transaction (group commit). Each gets its own
    /// outcome; either all are on disk when this returns `Ok`, or none.
    pub fn insert_reports(
        &mut self,
        reports: &[ReportRow],
    ) -> Result<Vec<ReportOutcome>, StoreError> {
        self.transaction("commit reports", || {
            let mut out = Vec::with_capacity(reports.len());
            for r in reports {
                let new = self.execute(
                    "store report",
                    "INSERT INTO reports (id, sensor, received_ns, pulses) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (id) DO NOTHING",
                    &args![&r.id, &r.sensor, r.received_ns, r.pulses.len() as i64],
                )?;
                if new == 0 {
                    out.push(ReportOutcome::Duplicate);
                    continue;
                }
                let mut stored = 0;
                for p in &r.pulses {
                    let new = self.execute(
                        "store pulse",
                        "INSERT INTO pulses (sensor, id, t_ns, snr_db, peak_db_spl, report, received_ns, extra)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (sensor, id) DO NOTHING",
                        &args![
                            &p.sensor,
                            &p.id,
                            p.t_ns,
                            p.snr_db,
                            p.peak_db_spl,
                            &p.report,
                            p.received_ns,
                            p.extra_json.as_deref()
                        ],
                    )?;
                    stored += usize::from(new > 0);
                }
                for c in &r.clips {
                    self.execute(
                        "store clip",
                        "INSERT INTO clips (sensor, pulse, wav) VALUES (?1, ?2, ?3)
                         ON CONFLICT (sensor, pulse) DO NOTHING",
                        &args![&c.sensor, &c.pulse, c.wav.as_slice()],
                    )?;
                }
                out.push(ReportOutcome::Accepted {
                    pulses: stored,
                    duplicate_pulses: r.pulses.len() - stored,
                });
            }
            Ok(out)
        })
    }

    /// Pulses by filter, in time order (then sensor, id).
    pub fn pulses(&self, f: &PulseFilter) -> Result<Vec<PulseRow>, StoreError> {
        self.rows(
            "list pulses",
            "SELECT sensor, id, t_ns, snr_db, peak_db_spl, report, received_ns, extra FROM pulses
             WHERE (CAST(?1 AS TEXT) IS NULL OR sensor = ?1) AND t_ns >= ?2 AND t_ns <= ?3
             ORDER BY t_ns, sensor, id LIMIT ?4",
            &args![
                f.sensor.as_deref(),
                f.since_ns.unwrap_or(i64::MIN),
                f.until_ns.unwrap_or(i64::MAX),
                limit(f.limit)
            ],
            pulse_row,
        )
    }

    /// How many pulses are stored (health, tests).
    pub fn pulse_count(&self) -> Result<i64, StoreError> {
        Ok(self
            .row("count pulses", "SELECT COUNT(*) FROM pulses", &[], Row::int)?
            .unwrap_or(0))
    }

    /// The latest pulse time stored, if any (where recovery resumes).
    pub fn latest_pulse_ns(&self) -> Result<Option<i64>, StoreError> {
        Ok(self
            .row(
                "latest pulse",
                "SELECT MAX(t_ns) FROM pulses",
                &[],
                Row::opt_int,
            )?
            .flatten())
    }

    /// The stored clip of a pulse, if the sensor sent one.
    pub fn clip(&self, sensor: &str, pulse: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.row(
            "read clip",
            "SELECT wav FROM clips WHERE sensor = ?1 AND pulse = ?2",
            &args![sensor, pulse],
            Row::blob,
        )
    }

    /// Whether a pulse's clip is stored, without reading it.
    pub fn has_clip(&self, sensor: &str, pulse: &str) -> Result<bool, StoreError> {
        Ok(self
            .row(
                "look up clip",
                "SELECT COUNT(*) FROM clips WHERE sensor = ?1 AND pulse = ?2",
                &args![sensor, pulse],
                Row::int,
            )?
            .unwrap_or(0)
            > 0)
    }

    // ---- incidents, alerts, outbox ------------------------------------------------

    /// Saves a new version of an incident, and with it (same transaction) its
    /// alert message and webhook deliveries. Returns the alert's sequence number,
    /// or `None` when no alert was asked for or this (incident, version), or a
    /// second first alert of the incident, already exists.
    pub fn save_incident(&mut self, save: &IncidentSave) -> Result<Option<i64>, StoreError> {
        self.transaction("commit incident", || self.save_incident_in(save))
    }

    /// Saves many incident versions in one transaction (an import): all of
    /// them or none. Returns how many were new or newer than what was stored.
    pub fn save_incidents(&mut self, saves: &[IncidentSave]) -> Result<usize, StoreError> {
        self.transaction("commit incidents", || {
            let before = self.incident_count()?;
            for save in saves {
                self.save_incident_in(save)?;
            }
            Ok(self.incident_count()?.saturating_sub(before))
        })
    }

    fn incident_count(&self) -> Result<usize, StoreError> {
        Ok(self
            .row(
                "count incidents",
                "SELECT COUNT(*) FROM incidents",
                &[],
                Row::int,
            )?
            .unwrap_or(0) as usize)
    }

    /// [`Db::save_incident`]'s work, inside the caller's transaction.
    fn save_incident_in(&self, save: &IncidentSave) -> Result<Option<i64>, StoreError> {
        let i = &save.incident;
        {
            self.execute(
                "save incident",
                "INSERT INTO incidents (id, version, first_ns, last_ns, lat, lon, class, confidence,
                    rounds, shooters, automatic, updated_ns, doc)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                 ON CONFLICT (id) DO UPDATE SET version = excluded.version, first_ns = excluded.first_ns,
                    last_ns = excluded.last_ns, lat = excluded.lat, lon = excluded.lon,
                    class = excluded.class, confidence = excluded.confidence, rounds = excluded.rounds,
                    shooters = excluded.shooters, automatic = excluded.automatic,
                    updated_ns = excluded.updated_ns, doc = excluded.doc
                 WHERE excluded.version > incidents.version",
                &args![
                    &i.id,
                    i.version,
                    i.first_ns,
                    i.last_ns,
                    i.lat,
                    i.lon,
                    &i.class,
                    i.confidence,
                    i.rounds,
                    i.shooters,
                    i.automatic,
                    i.updated_ns,
                    &i.doc
                ],
            )?;
            let new = self.execute(
                "save incident version",
                "INSERT INTO incident_versions (incident, version, created_ns, doc) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (incident, version) DO NOTHING",
                &args![&i.id, i.version, i.updated_ns, &i.doc],
            )?;
            if new > 0 {
                self.append_history(&i.id, i.version, i.updated_ns, &save.change, &i.doc)?;
            } else if save.strict {
                return Err(StoreError::Conflict(format!(
                    "incident {} version {} was written by someone else first",
                    i.id, i.version
                )));
            }
            for (sensor, pulse) in &save.pulses {
                self.execute(
                    "save incident pulses",
                    "INSERT INTO incident_pulses (sensor, pulse, incident) VALUES (?1, ?2, ?3)
                     ON CONFLICT (sensor, pulse) DO UPDATE SET incident = excluded.incident",
                    &args![sensor, pulse, &i.id],
                )?;
            }
            let Some(kind) = &save.alert else {
                return Ok(None);
            };
            // No row back when the (incident, version) or the incident's first
            // alert already exists (either unique index).
            let seq = self.row(
                "save alert",
                "INSERT INTO alerts (incident, version, kind, created_ns, doc) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT DO NOTHING RETURNING seq",
                &args![&i.id, i.version, kind, i.updated_ns, &save.alert_doc],
                Row::int,
            )?;
            if let Some(seq) = seq {
                for t in &save.targets {
                    self.execute(
                        "queue webhook",
                        "INSERT INTO outbox (alert_seq, target, attempts, next_ns) VALUES (?1, ?2, 0, ?3)
                         ON CONFLICT (alert_seq, target) DO NOTHING",
                        &args![seq, t, i.updated_ns],
                    )?;
                }
            }
            Ok(seq)
        }
    }

    /// Incidents by filter, newest first.
    pub fn incidents(&self, f: &IncidentFilter) -> Result<Vec<IncidentRow>, StoreError> {
        let [x0, y0, x1, y1] = f.bbox.unwrap_or([-180.0, -90.0, 180.0, 90.0]);
        self.rows(
            "list incidents",
            &format!(
                "SELECT {INCIDENT_COLUMNS} FROM incidents
                 WHERE last_ns >= ?1 AND first_ns <= ?2 AND lon >= ?3 AND lon <= ?4
                   AND lat >= ?5 AND lat <= ?6 AND (CAST(?7 AS TEXT) IS NULL OR class = ?7)
                 ORDER BY first_ns DESC, id LIMIT ?8"
            ),
            &args![
                f.since_ns.unwrap_or(i64::MIN),
                f.until_ns.unwrap_or(i64::MAX),
                x0,
                x1,
                y0,
                y1,
                f.class.as_deref(),
                limit(f.limit)
            ],
            incident_row,
        )
    }

    pub fn incident(&self, id: &str) -> Result<Option<IncidentRow>, StoreError> {
        self.row(
            "read incident",
            &format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = ?1"),
            &args![id],
            incident_row,
        )
    }

    /// Every version of an incident, oldest first: (version, created_ns, doc).
    pub fn incident_versions(&self, id: &str) -> Result<Vec<(i64, i64, String)>, StoreError> {
        self.rows(
            "list incident versions",
            "SELECT version, created_ns, doc FROM incident_versions WHERE incident = ?1 ORDER BY version",
            &args![id],
            |r| Ok((r.int()?, r.int()?, r.text()?)),
        )
    }

    /// Incidents whose last shot is at or after `since_ns`, with the pulses their
    /// shots use: what the incident builder needs to resume after a restart.
    pub fn open_incidents(
        &self,
        since_ns: i64,
    ) -> Result<Vec<(IncidentRow, Vec<PulseKey>)>, StoreError> {
        let incidents = self.incidents(&IncidentFilter {
            since_ns: Some(since_ns),
            limit: usize::MAX,
            ..IncidentFilter::default()
        })?;
        let mut out = Vec::with_capacity(incidents.len());
        for i in incidents {
            let pulses = self.rows(
                "list incident pulses",
                "SELECT sensor, pulse FROM incident_pulses WHERE incident = ?1 ORDER BY sensor, pulse",
                &args![&i.id],
                |r| Ok((r.text()?, r.text()?)),
            )?;
            out.push((i, pulses));
        }
        Ok(out)
    }

    /// Whether the incident's first alert went out.
    pub fn alerted(&self, incident: &str) -> Result<bool, StoreError> {
        Ok(self
            .row(
                "read first alert",
                "SELECT COUNT(*) FROM alerts WHERE incident = ?1 AND kind = 'alert'",
                &args![incident],
                Row::int,
            )?
            .unwrap_or(0)
            > 0)
    }

    /// Alerts with a sequence number above `after`, oldest first.
    pub fn alerts_after(&self, after: i64, max: usize) -> Result<Vec<AlertRow>, StoreError> {
        self.rows(
            "list alerts",
            "SELECT seq, incident, version, kind, created_ns, doc FROM alerts
             WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            &args![after, limit(max)],
            |r| {
                Ok(AlertRow {
                    seq: r.int()?,
                    incident: r.text()?,
                    version: r.int()?,
                    kind: r.text()?,
                    created_ns: r.int()?,
                    doc: r.text()?,
                })
            },
        )
    }

    /// Deliveries due at `now_ns`, oldest first.
    pub fn due_deliveries(&self, now_ns: i64, max: usize) -> Result<Vec<DeliveryRow>, StoreError> {
        self.rows(
            "list due deliveries",
            "SELECT o.id, o.alert_seq, o.target, o.attempts, o.next_ns, a.doc
             FROM outbox o JOIN alerts a ON a.seq = o.alert_seq
             WHERE o.delivered_ns IS NULL AND o.dead = 0 AND o.next_ns <= ?1
             ORDER BY o.next_ns, o.id LIMIT ?2",
            &args![now_ns, limit(max)],
            |r| {
                Ok(DeliveryRow {
                    id: r.int()?,
                    alert_seq: r.int()?,
                    target: r.text()?,
                    attempts: r.int()?,
                    next_ns: r.int()?,
                    doc: r.text()?,
                })
            },
        )
    }

    /// Records a successful delivery.
    pub fn delivered(&mut self, id: i64, now_ns: i64) -> Result<(), StoreError> {
        self.execute(
            "mark delivered",
            "UPDATE outbox SET delivered_ns = ?2, attempts = attempts + 1, last_error = NULL WHERE id = ?1",
            &args![id, now_ns],
        )
        .map(drop)
    }

    /// Records a failed attempt: retry at `next_ns`, or give up (`dead`).
    pub fn delivery_failed(
        &mut self,
        id: i64,
        next_ns: i64,
        dead: bool,
        error: &str,
    ) -> Result<(), StoreError> {
        self.execute(
            "mark delivery failed",
            "UPDATE outbox SET attempts = attempts + 1, next_ns = ?2, dead = ?3, last_error = ?4 WHERE id = ?1",
            &args![id, next_ns, i64::from(dead), error],
        )
        .map(drop)
    }

    pub fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        let counts = self.row(
            "count outbox",
            "SELECT COUNT(*) FILTER (WHERE delivered_ns IS NULL AND dead = 0),
                    COUNT(*) FILTER (WHERE delivered_ns IS NOT NULL),
                    COUNT(*) FILTER (WHERE dead <> 0) FROM outbox",
            &[],
            |r| {
                Ok(OutboxCounts {
                    pending: r.int()?,
                    delivered: r.int()?,
                    dead: r.int()?,
                })
            },
        )?;
        Ok(counts.unwrap_or_default())
    }

    // ---- plumbing ------------------------------------------------------------------

    fn fail(&self, operation: &'static str) -> impl FnOnce(DbError) -> StoreError + '_ {
        move |error| StoreError::Sql {
            database: self.database.clone(),
            operation,
            error,
        }
    }

    /// Runs one statement; the number of rows it changed.
    fn execute(
        &self,
        operation: &'static str,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<u64, StoreError> {
        self.conn.execute(sql, args).map_err(self.fail(operation))
    }

    /// Runs one query and reads every row with `read`.
    fn rows<T>(
        &self,
        operation: &'static str,
        sql: &str,
        args: &[Arg<'_>],
        mut read: impl FnMut(&mut Row) -> Result<T, DbError>,
    ) -> Result<Vec<T>, StoreError> {
        self.conn
            .query(sql, args)
            .and_then(|rows| rows.into_iter().map(|mut r| read(&mut r)).collect())
            .map_err(self.fail(operation))
    }

    /// Runs one query and reads its first row, if any.
    fn row<T>(
        &self,
        operation: &'static str,
        sql: &str,
        args: &[Arg<'_>],
        read: impl FnMut(&mut Row) -> Result<T, DbError>,
    ) -> Result<Option<T>, StoreError> {
        Ok(self.rows(operation, sql, args, read)?.into_iter().next())
    }

    /// Runs `body` in one transaction: committed if it returns `Ok`, rolled
    /// back if it returns `Err` or panics.
    fn transaction<T>(
        &self,
        commit: &'static str,
        body: impl FnOnce() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.conn.begin().map_err(self.fail("begin"))?;
        let mut rollback = Rollback(Some(&self.conn));
        let out = body()?;
        // A failed COMMIT leaves SQLite's transaction open (PostgreSQL ends
        // it); `rollback` ends it either way.
        self.conn.batch("COMMIT").map_err(self.fail(commit))?;
        rollback.0 = None;
        Ok(out)
    }
}

/// Rolls back the open transaction when dropped armed.
struct Rollback<'a>(Option<&'a Conn>);

impl Drop for Rollback<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.0 {
            // Nothing more to do if this fails: the connection is broken, and
            // the database discards the unfinished transaction itself.
            let _ = conn.batch("ROLLBACK");
        }
    }
}

const INCIDENT_COLUMNS: &str = "id, version, first_ns, last_ns, lat, lon, class, confidence, rounds, shooters, automatic, updated_ns, doc";

fn incident_row(r: &mut Row) -> Result<IncidentRow, DbError> {
    Ok(IncidentRow {
        id: r.text()?,
        version: r.int()?,
        first_ns: r.int()?,
        last_ns: r.int()?,
        lat: r.real()?,
        lon: r.real()?,
        class: r.text()?,
        confidence: r.real()?,
        rounds: r.int()?,
        shooters: r.int()?,
        automatic: r.bool()?,
        updated_ns: r.int()?,
        doc: r.text()?,
    })
}

fn pulse_row(r: &mut Row) -> Result<PulseRow, DbError> {
    Ok(PulseRow {
        sensor: r.text()?,
        id: r.text()?,
        t_ns: r.int()?,
        snr_db: r.opt_real()?,
        peak_db_spl: r.opt_real()?,
        report: r.text()?,
        received_ns: r.int()?,
        extra_json: r.opt_text()?,
    })
}

/// LIMIT takes a signed 64-bit integer on both backends; 0 means "no limit" here.
fn limit(n: usize) -> i64 {
    if n == 0 {
        i64::MAX
    } else {
        i64::try_from(n).unwrap_or(i64::MAX)
    }
}

/// Wall-clock time for bookkeeping columns only (never for event times).
fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests;
