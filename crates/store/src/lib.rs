//! Durable storage for the server: sensors, accepted reports and their pulses,
//! audio clips, incidents with every version, alerts, and the webhook outbox.
//!
//! SQLite is the embedded default: one file, write-ahead log, `synchronous=FULL`,
//! so a transaction that returned is on disk and survives a `kill -9` of the
//! server (and a power cut). The server talks to one [`Db`] from one writer
//! thread and batches many requests into one transaction (group commit); readers
//! open their own connections, which WAL lets run beside the writer.
//!
//! Guarantees the schema enforces, not the callers:
//! - a report id is accepted once (`reports` primary key), and a pulse once per
//!   sensor (`pulses` primary key), so a retried report changes nothing;
//! - an alert exists at most once per (incident, version) and an incident is
//!   alerted (`kind = 'alert'`) at most once (partial unique index);
//! - a webhook delivery exists at most once per (alert, target), and it is
//!   created in the same transaction as its alert, so no alert can miss one.
//!
//! Times are integer nanoseconds since the Unix epoch (UTC), as in the core.

mod migrations;

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

pub use migrations::MIGRATIONS;

/// What can go wrong with storage. Messages name the database and the operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("database migration {version} ({name}): {source}")]
    Migrate {
        version: i64,
        name: &'static str,
        source: rusqlite::Error,
    },
    #[error("database is at schema version {found}, newer than this program's {known}")]
    TooNew { found: i64, known: i64 },
    #[error("database {operation}: {source}")]
    Sql {
        operation: &'static str,
        source: rusqlite::Error,
    },
}

fn sql(operation: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sql { operation, source }
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
}

/// A connection to the database.
#[derive(Debug)]
pub struct Db {
    conn: Connection,
}

impl Db {
    /// Opens (creating if needed) an SQLite database and brings its schema up to date.
    pub fn open_sqlite(path: &Path) -> Result<Db, StoreError> {
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.display().to_string(),
            source,
        })?;
        Db::init(conn, &path.display().to_string())
    }

    /// A private in-memory database (tests, `locate`-style one-off runs).
    pub fn open_in_memory() -> Result<Db, StoreError> {
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Open {
            path: ":memory:".into(),
            source,
        })?;
        Db::init(conn, ":memory:")
    }

    fn init(conn: Connection, path: &str) -> Result<Db, StoreError> {
        let open = |source| StoreError::Open {
            path: path.to_string(),
            source,
        };
        // WAL: readers never block the writer. FULL: a commit is on disk when it
        // returns. busy_timeout: a reader's checkpoint never fails a write.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(open)?;
        let mut db = Db { conn };
        db.migrate()?;
        Ok(db)
    }

    /// The schema version now in the database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                [],
                |r| r.get(0),
            )
            .map_err(sql("read schema version"))
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        self.conn
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ns INTEGER NOT NULL)",
            )
            .map_err(sql("create schema_migrations"))?;
        let found = self.schema_version()?;
        let known = MIGRATIONS.last().map_or(0, |m| m.version);
        if found > known {
            return Err(StoreError::TooNew { found, known });
        }
        for m in MIGRATIONS.iter().filter(|m| m.version > found) {
            let fail = |source| StoreError::Migrate {
                version: m.version,
                name: m.name,
                source,
            };
            let tx = self.conn.transaction().map_err(fail)?;
            tx.execute_batch(m.sqlite).map_err(fail)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_ns) VALUES (?1, ?2, ?3)",
                params![m.version, m.name, now_ns()],
            )
            .map_err(fail)?;
            tx.commit().map_err(fail)?;
        }
        Ok(())
    }

    // ---- sensors -------------------------------------------------------------

    /// Adds or updates a sensor.
    pub fn upsert_sensor(&mut self, s: &SensorRow) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO sensors (id, key_hex, lat, lon, alt_m, registered_ns)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (id) DO UPDATE SET key_hex = excluded.key_hex,
                    lat = excluded.lat, lon = excluded.lon, alt_m = excluded.alt_m",
                params![s.id, s.key_hex, s.lat, s.lon, s.alt_m, now_ns()],
            )
            .map(drop)
            .map_err(sql("save sensor"))
    }

    pub fn sensors(&self) -> Result<Vec<SensorRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, key_hex, lat, lon, alt_m FROM sensors ORDER BY id")
            .map_err(sql("list sensors"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(SensorRow {
                    id: r.get(0)?,
                    key_hex: r.get(1)?,
                    lat: r.get(2)?,
                    lon: r.get(3)?,
                    alt_m: r.get(4)?,
                })
            })
            .map_err(sql("list sensors"))?;
        rows.collect::<Result<_, _>>().map_err(sql("list sensors"))
    }

    // ---- reports and pulses ----------------------------------------------------

    /// Stores many reports in one transaction (group commit). Each gets its own
    /// outcome; either all are on disk when this returns `Ok`, or none.
    pub fn insert_reports(
        &mut self,
        reports: &[ReportRow],
    ) -> Result<Vec<ReportOutcome>, StoreError> {
        let tx = self.conn.transaction().map_err(sql("begin"))?;
        let mut out = Vec::with_capacity(reports.len());
        {
            let mut report_stmt = tx
                .prepare_cached(
                    "INSERT INTO reports (id, sensor, received_ns, pulses) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (id) DO NOTHING",
                )
                .map_err(sql("store report"))?;
            let mut pulse_stmt = tx
                .prepare_cached(
                    "INSERT INTO pulses (sensor, id, t_ns, snr_db, peak_db_spl, report, received_ns, extra)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (sensor, id) DO NOTHING",
                )
                .map_err(sql("store pulse"))?;
            let mut clip_stmt = tx
                .prepare_cached(
                    "INSERT INTO clips (sensor, pulse, wav) VALUES (?1, ?2, ?3)
                     ON CONFLICT (sensor, pulse) DO NOTHING",
                )
                .map_err(sql("store clip"))?;
            for r in reports {
                let new = report_stmt
                    .execute(params![
                        r.id,
                        r.sensor,
                        r.received_ns,
                        r.pulses.len() as i64
                    ])
                    .map_err(sql("store report"))?;
                if new == 0 {
                    out.push(ReportOutcome::Duplicate);
                    continue;
                }
                let mut stored = 0;
                for p in &r.pulses {
                    stored += pulse_stmt
                        .execute(params![
                            p.sensor,
                            p.id,
                            p.t_ns,
                            p.snr_db,
                            p.peak_db_spl,
                            p.report,
                            p.received_ns,
                            p.extra_json
                        ])
                        .map_err(sql("store pulse"))?;
                }
                for c in &r.clips {
                    clip_stmt
                        .execute(params![c.sensor, c.pulse, c.wav])
                        .map_err(sql("store clip"))?;
                }
                out.push(ReportOutcome::Accepted {
                    pulses: stored,
                    duplicate_pulses: r.pulses.len() - stored,
                });
            }
        }
        tx.commit().map_err(sql("commit reports"))?;
        Ok(out)
    }

    /// Pulses by filter, in time order (then sensor, id).
    pub fn pulses(&self, f: &PulseFilter) -> Result<Vec<PulseRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT sensor, id, t_ns, snr_db, peak_db_spl, report, received_ns, extra FROM pulses
                 WHERE (?1 IS NULL OR sensor = ?1) AND t_ns >= ?2 AND t_ns <= ?3
                 ORDER BY t_ns, sensor, id LIMIT ?4",
            )
            .map_err(sql("list pulses"))?;
        let rows = stmt
            .query_map(
                params![
                    f.sensor,
                    f.since_ns.unwrap_or(i64::MIN),
                    f.until_ns.unwrap_or(i64::MAX),
                    limit(f.limit)
                ],
                pulse_row,
            )
            .map_err(sql("list pulses"))?;
        rows.collect::<Result<_, _>>().map_err(sql("list pulses"))
    }

    /// How many pulses are stored (health, tests).
    pub fn pulse_count(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM pulses", [], |r| r.get(0))
            .map_err(sql("count pulses"))
    }

    /// The latest pulse time stored, if any (where recovery resumes).
    pub fn latest_pulse_ns(&self) -> Result<Option<i64>, StoreError> {
        self.conn
            .query_row("SELECT MAX(t_ns) FROM pulses", [], |r| r.get(0))
            .map_err(sql("latest pulse"))
    }

    /// The stored clip of a pulse, if the sensor sent one.
    pub fn clip(&self, sensor: &str, pulse: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn
            .query_row(
                "SELECT wav FROM clips WHERE sensor = ?1 AND pulse = ?2",
                params![sensor, pulse],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql("read clip"))
    }

    // ---- incidents, alerts, outbox ------------------------------------------------

    /// Saves a new version of an incident, and with it (same transaction) its
    /// alert message and webhook deliveries. Returns the alert's sequence number,
    /// or `None` when no alert was asked for or this (incident, version), or a
    /// second first alert of the incident, already exists.
    pub fn save_incident(&mut self, save: &IncidentSave) -> Result<Option<i64>, StoreError> {
        let i = &save.incident;
        let tx = self.conn.transaction().map_err(sql("begin"))?;
        tx.execute(
            "INSERT INTO incidents (id, version, first_ns, last_ns, lat, lon, class, confidence,
                rounds, shooters, automatic, updated_ns, doc)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
             ON CONFLICT (id) DO UPDATE SET version = excluded.version, first_ns = excluded.first_ns,
                last_ns = excluded.last_ns, lat = excluded.lat, lon = excluded.lon,
                class = excluded.class, confidence = excluded.confidence, rounds = excluded.rounds,
                shooters = excluded.shooters, automatic = excluded.automatic,
                updated_ns = excluded.updated_ns, doc = excluded.doc
             WHERE excluded.version > incidents.version",
            params![
                i.id,
                i.version,
                i.first_ns,
                i.last_ns,
                i.lat,
                i.lon,
                i.class,
                i.confidence,
                i.rounds,
                i.shooters,
                i.automatic,
                i.updated_ns,
                i.doc
            ],
        )
        .map_err(sql("save incident"))?;
        tx.execute(
            "INSERT INTO incident_versions (incident, version, created_ns, doc) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (incident, version) DO NOTHING",
            params![i.id, i.version, i.updated_ns, i.doc],
        )
        .map_err(sql("save incident version"))?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO incident_pulses (sensor, pulse, incident) VALUES (?1, ?2, ?3)
                     ON CONFLICT (sensor, pulse) DO UPDATE SET incident = excluded.incident",
                )
                .map_err(sql("save incident pulses"))?;
            for (sensor, pulse) in &save.pulses {
                stmt.execute(params![sensor, pulse, i.id])
                    .map_err(sql("save incident pulses"))?;
            }
        }
        let mut seq = None;
        if let Some(kind) = &save.alert {
            let inserted = tx
                .execute(
                    "INSERT INTO alerts (incident, version, kind, created_ns, doc) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT DO NOTHING",
                    params![i.id, i.version, kind, i.updated_ns, save.alert_doc],
                )
                .map_err(sql("save alert"))?;
            if inserted == 1 {
                let s = tx.last_insert_rowid();
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT INTO outbox (alert_seq, target, attempts, next_ns) VALUES (?1, ?2, 0, ?3)
                         ON CONFLICT (alert_seq, target) DO NOTHING",
                    )
                    .map_err(sql("queue webhook"))?;
                for t in &save.targets {
                    stmt.execute(params![s, t, i.updated_ns])
                        .map_err(sql("queue webhook"))?;
                }
                seq = Some(s);
            }
        }
        tx.commit().map_err(sql("commit incident"))?;
        Ok(seq)
    }

    /// Incidents by filter, newest first.
    pub fn incidents(&self, f: &IncidentFilter) -> Result<Vec<IncidentRow>, StoreError> {
        let [x0, y0, x1, y1] = f.bbox.unwrap_or([-180.0, -90.0, 180.0, 90.0]);
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {INCIDENT_COLUMNS} FROM incidents
                 WHERE last_ns >= ?1 AND first_ns <= ?2 AND lon >= ?3 AND lon <= ?4
                   AND lat >= ?5 AND lat <= ?6 AND (?7 IS NULL OR class = ?7)
                 ORDER BY first_ns DESC, id LIMIT ?8"
            ))
            .map_err(sql("list incidents"))?;
        let rows = stmt
            .query_map(
                params![
                    f.since_ns.unwrap_or(i64::MIN),
                    f.until_ns.unwrap_or(i64::MAX),
                    x0,
                    x1,
                    y0,
                    y1,
                    f.class,
                    limit(f.limit)
                ],
                incident_row,
            )
            .map_err(sql("list incidents"))?;
        rows.collect::<Result<_, _>>()
            .map_err(sql("list incidents"))
    }

    pub fn incident(&self, id: &str) -> Result<Option<IncidentRow>, StoreError> {
        self.conn
            .query_row(
                &format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = ?1"),
                params![id],
                incident_row,
            )
            .optional()
            .map_err(sql("read incident"))
    }

    /// Every version of an incident, oldest first: (version, created_ns, doc).
    pub fn incident_versions(&self, id: &str) -> Result<Vec<(i64, i64, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT version, created_ns, doc FROM incident_versions WHERE incident = ?1 ORDER BY version",
            )
            .map_err(sql("list incident versions"))?;
        let rows = stmt
            .query_map(params![id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(sql("list incident versions"))?;
        rows.collect::<Result<_, _>>()
            .map_err(sql("list incident versions"))
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
        let mut stmt = self
            .conn
            .prepare_cached("SELECT sensor, pulse FROM incident_pulses WHERE incident = ?1 ORDER BY sensor, pulse")
            .map_err(sql("list incident pulses"))?;
        let mut out = Vec::with_capacity(incidents.len());
        for i in incidents {
            let pulses = stmt
                .query_map(params![i.id], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(sql("list incident pulses"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql("list incident pulses"))?;
            out.push((i, pulses));
        }
        Ok(out)
    }

    /// Alerts with a sequence number above `after`, oldest first.
    pub fn alerts_after(&self, after: i64, max: usize) -> Result<Vec<AlertRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT seq, incident, version, kind, created_ns, doc FROM alerts
                 WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )
            .map_err(sql("list alerts"))?;
        let rows = stmt
            .query_map(params![after, limit(max)], |r| {
                Ok(AlertRow {
                    seq: r.get(0)?,
                    incident: r.get(1)?,
                    version: r.get(2)?,
                    kind: r.get(3)?,
                    created_ns: r.get(4)?,
                    doc: r.get(5)?,
                })
            })
            .map_err(sql("list alerts"))?;
        rows.collect::<Result<_, _>>().map_err(sql("list alerts"))
    }

    /// Deliveries due at `now_ns`, oldest first.
    pub fn due_deliveries(&self, now_ns: i64, max: usize) -> Result<Vec<DeliveryRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT o.id, o.alert_seq, o.target, o.attempts, o.next_ns, a.doc
                 FROM outbox o JOIN alerts a ON a.seq = o.alert_seq
                 WHERE o.delivered_ns IS NULL AND o.dead = 0 AND o.next_ns <= ?1
                 ORDER BY o.next_ns, o.id LIMIT ?2",
            )
            .map_err(sql("list due deliveries"))?;
        let rows = stmt
            .query_map(params![now_ns, limit(max)], |r| {
                Ok(DeliveryRow {
                    id: r.get(0)?,
                    alert_seq: r.get(1)?,
                    target: r.get(2)?,
                    attempts: r.get(3)?,
                    next_ns: r.get(4)?,
                    doc: r.get(5)?,
                })
            })
            .map_err(sql("list due deliveries"))?;
        rows.collect::<Result<_, _>>()
            .map_err(sql("list due deliveries"))
    }

    /// Records a successful delivery.
    pub fn delivered(&mut self, id: i64, now_ns: i64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE outbox SET delivered_ns = ?2, attempts = attempts + 1, last_error = NULL WHERE id = ?1",
                params![id, now_ns],
            )
            .map(drop)
            .map_err(sql("mark delivered"))
    }

    /// Records a failed attempt: retry at `next_ns`, or give up (`dead`).
    pub fn delivery_failed(
        &mut self,
        id: i64,
        next_ns: i64,
        dead: bool,
        error: &str,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE outbox SET attempts = attempts + 1, next_ns = ?2, dead = ?3, last_error = ?4 WHERE id = ?1",
                params![id, next_ns, dead, error],
            )
            .map(drop)
            .map_err(sql("mark delivery failed"))
    }

    pub fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        self.conn
            .query_row(
                "SELECT COALESCE(SUM(CASE WHEN delivered_ns IS NULL AND dead = 0 THEN 1 ELSE 0 END), 0),
                        COALESCE(SUM(CASE WHEN delivered_ns IS NOT NULL THEN 1 ELSE 0 END), 0),
                        COALESCE(SUM(dead), 0) FROM outbox",
                [],
                |r| {
                    Ok(OutboxCounts {
                        pending: r.get(0)?,
                        delivered: r.get(1)?,
                        dead: r.get(2)?,
                    })
                },
            )
            .map_err(sql("count outbox"))
    }
}

const INCIDENT_COLUMNS: &str = "id, version, first_ns, last_ns, lat, lon, class, confidence, rounds, shooters, automatic, updated_ns, doc";

fn incident_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<IncidentRow> {
    Ok(IncidentRow {
        id: r.get(0)?,
        version: r.get(1)?,
        first_ns: r.get(2)?,
        last_ns: r.get(3)?,
        lat: r.get(4)?,
        lon: r.get(5)?,
        class: r.get(6)?,
        confidence: r.get(7)?,
        rounds: r.get(8)?,
        shooters: r.get(9)?,
        automatic: r.get(10)?,
        updated_ns: r.get(11)?,
        doc: r.get(12)?,
    })
}

fn pulse_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PulseRow> {
    Ok(PulseRow {
        sensor: r.get(0)?,
        id: r.get(1)?,
        t_ns: r.get(2)?,
        snr_db: r.get(3)?,
        peak_db_spl: r.get(4)?,
        report: r.get(5)?,
        received_ns: r.get(6)?,
        extra_json: r.get(7)?,
    })
}

/// SQLite's LIMIT is a signed 64-bit integer; 0 means "no limit" here.
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
