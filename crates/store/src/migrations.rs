//! Numbered schema migrations. A database records the versions it has applied
//! in `schema_migrations`; opening it applies the missing ones in order, each in
//! its own transaction. Migrations are only ever appended, never edited.
//!
//! Each migration is written once, in SQLite's dialect using only types both
//! databases know; [`Migration::postgres`] rewrites the spellings that differ,
//! so the tables, keys and constraints are the same on SQLite and PostgreSQL:
//!
//! - `INTEGER PRIMARY KEY AUTOINCREMENT` → an identity column (never reused);
//! - `INTEGER` → `BIGINT`: SQLite's integers are 64-bit, PostgreSQL's `INTEGER`
//!   is 32-bit, and the store reads and writes every integer as `i64`;
//! - `BLOB` → `BYTEA`;
//! - `TEXT` → `TEXT COLLATE "C"`: SQLite compares text byte by byte, PostgreSQL
//!   by the database's locale; "C" makes every `ORDER BY` on text (sensor and
//!   pulse ids) come out the same on both, whatever locale the server has.

/// One schema migration.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sqlite: &'static str,
}

impl Migration {
    /// The same migration in PostgreSQL's dialect.
    pub fn postgres(&self) -> String {
        postgres_dialect(self.sqlite)
    }
}

/// The table of applied migrations, created before any migration runs.
pub(crate) const SCHEMA_MIGRATIONS: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ns INTEGER NOT NULL)";

/// Rewrites SQLite-dialect DDL for PostgreSQL (see the module comment).
pub(crate) fn postgres_dialect(sqlite: &str) -> String {
    let sql = sqlite.replace(
        "INTEGER PRIMARY KEY AUTOINCREMENT",
        "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    );
    replace_words(
        &sql,
        &[
            ("INTEGER", "BIGINT"),
            ("BLOB", "BYTEA"),
            ("TEXT", "TEXT COLLATE \"C\""),
        ],
    )
}

/// Replaces whole upper-case words (type names), leaving quoted strings and
/// identifiers (`'alert'`, `"C"`) alone.
fn replace_words(sql: &str, words: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(sql.len() + 256);
    let mut rest = sql;
    while let Some(c) = rest.chars().next() {
        let len = if c == '\'' || c == '"' {
            rest[1..].find(c).map_or(rest.len(), |end| end + 2)
        } else if c.is_ascii_alphanumeric() || c == '_' {
            rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len())
        } else {
            c.len_utf8()
        };
        let token = &rest[..len];
        match words.iter().find(|(from, _)| *from == token) {
            Some((_, to)) => out.push_str(to),
            None => out.push_str(token),
        }
        rest = &rest[len..];
    }
    out
}

/// Every migration, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "sensors, reports, pulses, clips, incidents, alerts, outbox",
        sqlite: r#"
CREATE TABLE sensors (
    id TEXT PRIMARY KEY,
    key_hex TEXT NOT NULL,
    lat DOUBLE PRECISION NOT NULL,
    lon DOUBLE PRECISION NOT NULL,
    alt_m DOUBLE PRECISION NOT NULL,
    registered_ns BIGINT NOT NULL
);
CREATE TABLE reports (
    id TEXT PRIMARY KEY,
    sensor TEXT NOT NULL,
    received_ns BIGINT NOT NULL,
    pulses BIGINT NOT NULL
);
CREATE TABLE pulses (
    sensor TEXT NOT NULL,
    id TEXT NOT NULL,
    t_ns BIGINT NOT NULL,
    snr_db DOUBLE PRECISION,
    peak_db_spl DOUBLE PRECISION,
    report TEXT NOT NULL,
    received_ns BIGINT NOT NULL,
    extra TEXT,
    PRIMARY KEY (sensor, id)
);
CREATE INDEX pulses_by_time ON pulses (t_ns);
CREATE TABLE clips (
    sensor TEXT NOT NULL,
    pulse TEXT NOT NULL,
    wav BLOB NOT NULL,
    PRIMARY KEY (sensor, pulse)
);
CREATE TABLE incidents (
    id TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    first_ns BIGINT NOT NULL,
    last_ns BIGINT NOT NULL,
    lat DOUBLE PRECISION NOT NULL,
    lon DOUBLE PRECISION NOT NULL,
    class TEXT NOT NULL,
    confidence DOUBLE PRECISION NOT NULL,
    rounds BIGINT NOT NULL,
    shooters BIGINT NOT NULL,
    automatic BOOLEAN NOT NULL,
    updated_ns BIGINT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX incidents_by_time ON incidents (first_ns);
CREATE TABLE incident_versions (
    incident TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_ns BIGINT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (incident, version)
);
CREATE TABLE incident_pulses (
    sensor TEXT NOT NULL,
    pulse TEXT NOT NULL,
    incident TEXT NOT NULL,
    PRIMARY KEY (sensor, pulse)
);
CREATE INDEX incident_pulses_by_incident ON incident_pulses (incident);
CREATE TABLE alerts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    incident TEXT NOT NULL,
    version BIGINT NOT NULL,
    kind TEXT NOT NULL,
    created_ns BIGINT NOT NULL,
    doc TEXT NOT NULL,
    UNIQUE (incident, version)
);
CREATE UNIQUE INDEX one_first_alert_per_incident ON alerts (incident) WHERE kind = 'alert';
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_seq BIGINT NOT NULL REFERENCES alerts (seq),
    target TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_ns BIGINT NOT NULL,
    delivered_ns BIGINT,
    dead INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    UNIQUE (alert_seq, target)
);
CREATE INDEX outbox_due ON outbox (next_ns) WHERE delivered_ns IS NULL;
"#,
    },
    Migration {
        version: 2,
        name: "users, tokens, sessions, hash-chained incident history, audit log",
        sqlite: r#"
CREATE TABLE users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_ns BIGINT NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    created_ns BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    expires_ns BIGINT,
    revoked_ns BIGINT
);
CREATE TABLE sessions (
    secret_sha256 TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users (name),
    created_ns BIGINT NOT NULL,
    expires_ns BIGINT NOT NULL
);
CREATE TABLE history (
    seq BIGINT PRIMARY KEY,
    incident TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_ns BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    reason TEXT,
    reason_sha256 TEXT NOT NULL,
    doc TEXT,
    doc_sha256 TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX history_by_incident ON history (incident, version);
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    t_ns BIGINT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX audit_by_time ON audit (t_ns);
CREATE INDEX pulses_by_received ON pulses (received_ns);
CREATE INDEX incidents_by_update ON incidents (updated_ns);
"#,
    },
    Migration {
        version: 3,
        name: "sensor heartbeats",
        sqlite: r#"
CREATE TABLE heartbeats (
    sensor TEXT PRIMARY KEY,
    received_ns INTEGER NOT NULL,
    doc TEXT NOT NULL
);
"#,
    },
    Migration {
        version: 4,
        name: "clip requests to sensors",
        sqlite: r#"
CREATE TABLE clip_requests (
    id TEXT PRIMARY KEY,
    sensor TEXT NOT NULL,
    from_ns INTEGER NOT NULL,
    seconds DOUBLE PRECISION NOT NULL,
    requested_by TEXT NOT NULL,
    reason TEXT,
    created_ns INTEGER NOT NULL,
    answered_ns INTEGER,
    error TEXT,
    wav BLOB
);
CREATE INDEX clip_requests_pending ON clip_requests (sensor, answered_ns);
"#,
    },
    Migration {
        version: 5,
        name: "outcomes, misses reported by police, 911 calls, server secrets",
        sqlite: r#"
CREATE TABLE outcomes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    incident TEXT NOT NULL,
    recorded_ns INTEGER NOT NULL,
    actor TEXT NOT NULL,
    found TEXT NOT NULL,
    officer_minutes DOUBLE PRECISION,
    note TEXT
);
CREATE INDEX outcomes_by_incident ON outcomes (incident, seq);
CREATE TABLE misses (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    t_ns INTEGER NOT NULL,
    lat DOUBLE PRECISION NOT NULL,
    lon DOUBLE PRECISION NOT NULL,
    recorded_ns INTEGER NOT NULL,
    actor TEXT NOT NULL,
    note TEXT
);
CREATE INDEX misses_by_time ON misses (t_ns);
CREATE TABLE calls (
    id TEXT PRIMARY KEY,
    t_ns INTEGER NOT NULL,
    lat DOUBLE PRECISION NOT NULL,
    lon DOUBLE PRECISION NOT NULL,
    kind TEXT NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX calls_by_time ON calls (t_ns);
CREATE TABLE secrets (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    created_ns INTEGER NOT NULL
);
"#,
    },
];
