//! The two connections behind [`crate::Db`]: SQLite (embedded) and PostgreSQL.
//!
//! Every query is written once, in the dialect both databases share (`?N`
//! placeholders, `ON CONFLICT … DO NOTHING`, `RETURNING`, `COUNT(*) FILTER`).
//! For PostgreSQL the placeholders are rewritten to `$N` once per connection,
//! when the statement is first prepared. Parameters go in as borrowed [`Arg`]s
//! (so an audio clip is not copied), rows come back as owned [`Value`]s read
//! through a [`Row`] cursor, so the queries in `lib.rs` never see which backend
//! runs them.
//!
//! The `postgres` client is strict about types (`i64` ↔ `BIGINT`, `f64` ↔
//! `DOUBLE PRECISION`, `&str` ↔ `TEXT`, bytes ↔ `BYTEA`); the schema's
//! PostgreSQL rewrite (`migrations.rs`) gives exactly those column types.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use postgres::types::{ToSql as PgToSql, Type};
use rusqlite::types::{ToSqlOutput, ValueRef};

/// What the underlying database (or the value conversion in between) reported.
/// Its message is always one line.
#[derive(Debug)]
#[non_exhaustive]
pub enum DbError {
    Sqlite(rusqlite::Error),
    Postgres(postgres::Error),
    /// A value of the wrong type or shape: a column, a connection string.
    Invalid(String),
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::Sqlite(e) => f.write_str(&one_line(&e.to_string())),
            DbError::Postgres(e) => f.write_str(&postgres_message(e)),
            DbError::Invalid(m) => f.write_str(m),
        }
    }
}

// The message already carries the cause (one line), so no `source`: a cause
// chain joined by the binary would otherwise repeat it.
impl std::error::Error for DbError {}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError::Sqlite(e)
    }
}

impl From<postgres::Error> for DbError {
    fn from(e: postgres::Error) -> Self {
        DbError::Postgres(e)
    }
}

/// A PostgreSQL error as one line: the server's message with its SQLSTATE,
/// detail and hint, or the client's error with its causes.
fn postgres_message(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
        if let Some(detail) = db.detail() {
            s.push_str(" (");
            s.push_str(detail);
            s.push(')');
        }
        if let Some(hint) = db.hint() {
            s.push_str("; hint: ");
            s.push_str(hint);
        }
        return one_line(&s);
    }
    let mut s = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    one_line(&s)
}

fn one_line(s: &str) -> String {
    s.trim().replace('\n', "; ")
}

/// A query parameter, borrowed from the caller's rows.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg<'a> {
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<&'a str>),
    Blob(Option<&'a [u8]>),
    Bool(bool),
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}
impl From<Option<i64>> for Arg<'_> {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}
impl From<f64> for Arg<'_> {
    fn from(v: f64) -> Self {
        Arg::Real(Some(v))
    }
}
impl From<Option<f64>> for Arg<'_> {
    fn from(v: Option<f64>) -> Self {
        Arg::Real(v)
    }
}
impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(Some(v))
    }
}
impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(Some(v))
    }
}
impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Arg::Text(v)
    }
}
impl<'a> From<&'a [u8]> for Arg<'a> {
    fn from(v: &'a [u8]) -> Self {
        Arg::Blob(Some(v))
    }
}
impl<'a> From<Option<&'a [u8]>> for Arg<'a> {
    fn from(v: Option<&'a [u8]>) -> Self {
        Arg::Blob(v)
    }
}
impl From<bool> for Arg<'_> {
    fn from(v: bool) -> Self {
        Arg::Bool(v)
    }
}

/// `args![a, b, …]`: query parameters from anything with an `Arg::from`.
macro_rules! args {
    ($($x:expr),* $(,)?) => {
        [$($crate::backend::Arg::from($x)),*]
    };
}
pub(crate) use args;

impl Arg<'_> {
    fn postgres(&self) -> &(dyn PgToSql + Sync) {
        match self {
            Arg::Int(v) => v,
            Arg::Real(v) => v,
            Arg::Text(v) => v,
            Arg::Blob(v) => v,
            Arg::Bool(v) => v,
        }
    }
}

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        match self {
            Arg::Int(v) => rusqlite::ToSql::to_sql(v),
            Arg::Real(v) => rusqlite::ToSql::to_sql(v),
            Arg::Text(v) => rusqlite::ToSql::to_sql(v),
            Arg::Blob(v) => rusqlite::ToSql::to_sql(v),
            Arg::Bool(v) => rusqlite::ToSql::to_sql(v),
        }
    }
}

/// One column of a result row, owned. Booleans read as `Int` 0/1 (SQLite has
/// no boolean type).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Int(_) => "an integer",
            Value::Real(_) => "a real",
            Value::Text(_) => "text",
            Value::Blob(_) => "a blob",
        }
    }
}

/// A result row read column by column, in the order of the SELECT list.
#[derive(Debug)]
pub(crate) struct Row {
    values: std::vec::IntoIter<Value>,
    column: usize,
}

impl Row {
    fn new(values: Vec<Value>) -> Row {
        Row {
            values: values.into_iter(),
            column: 0,
        }
    }

    fn next(&mut self) -> Result<Value, DbError> {
        self.column += 1;
        self.values
            .next()
            .ok_or_else(|| DbError::Invalid(format!("result has no column {}", self.column)))
    }

    fn wrong(&self, expected: &str, found: &Value) -> DbError {
        DbError::Invalid(format!(
            "column {}: expected {expected}, found {}",
            self.column,
            found.kind()
        ))
    }

    pub(crate) fn opt_int(&mut self) -> Result<Option<i64>, DbError> {
        match self.next()? {
            Value::Null => Ok(None),
            Value::Int(v) => Ok(Some(v)),
            other => Err(self.wrong("an integer", &other)),
        }
    }

    pub(crate) fn int(&mut self) -> Result<i64, DbError> {
        self.opt_int()?
            .ok_or_else(|| self.wrong("an integer", &Value::Null))
    }

    pub(crate) fn bool(&mut self) -> Result<bool, DbError> {
        Ok(self.int()? != 0)
    }

    /// A real; an integer is accepted too (SQLite may hand back a whole number
    /// as one, as rusqlite's own `f64` conversion allows).
    pub(crate) fn opt_real(&mut self) -> Result<Option<f64>, DbError> {
        match self.next()? {
            Value::Null => Ok(None),
            Value::Real(v) => Ok(Some(v)),
            #[allow(clippy::cast_precision_loss)]
            Value::Int(v) => Ok(Some(v as f64)),
            other => Err(self.wrong("a real", &other)),
        }
    }

    pub(crate) fn real(&mut self) -> Result<f64, DbError> {
        self.opt_real()?
            .ok_or_else(|| self.wrong("a real", &Value::Null))
    }

    pub(crate) fn opt_text(&mut self) -> Result<Option<String>, DbError> {
        match self.next()? {
            Value::Null => Ok(None),
            Value::Text(v) => Ok(Some(v)),
            other => Err(self.wrong("text", &other)),
        }
    }

    pub(crate) fn text(&mut self) -> Result<String, DbError> {
        self.opt_text()?
            .ok_or_else(|| self.wrong("text", &Value::Null))
    }

    pub(crate) fn blob(&mut self) -> Result<Vec<u8>, DbError> {
        match self.next()? {
            Value::Blob(v) => Ok(v),
            other => Err(self.wrong("a blob", &other)),
        }
    }
}

/// Which SQL dialect a connection speaks (for the migration texts only; every
/// query is shared).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// An open connection.
pub(crate) enum Conn {
    Sqlite(rusqlite::Connection),
    /// `RefCell` because the client needs `&mut` for every query while the
    /// store's read methods take `&self`; a `Db` is used from one thread at a
    /// time (it is `Send`, not `Sync`, like `rusqlite::Connection`).
    Postgres(Box<RefCell<Pg>>),
}

pub(crate) struct Pg {
    client: postgres::Client,
    /// Prepared statements by their shared-dialect text: each is rewritten
    /// and prepared once per connection.
    statements: HashMap<String, postgres::Statement>,
}

impl Pg {
    fn prepared(&mut self, sql: &str) -> Result<postgres::Statement, postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(&numbered_placeholders(sql))?;
        self.statements.insert(sql.to_owned(), s.clone());
        Ok(s)
    }
}

/// How long to wait for a PostgreSQL server that does not answer, unless the
/// connection string says otherwise (`connect_timeout`).
const POSTGRES_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an SQLite connection waits for another one's lock: longer than
/// any one group commit or migration takes, short enough that a stuck peer is
/// reported instead of hanging start-up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

impl Conn {
    /// Sets up an SQLite connection: write-ahead log (readers never block the
    /// writer), `synchronous=FULL` (a commit is on disk when it returns),
    /// foreign keys, `secure_delete`, and a busy timeout (a reader's checkpoint or a second
    /// process's migration never fails a write; set first, so that switching
    /// to WAL waits too).
    pub(crate) fn sqlite(conn: rusqlite::Connection) -> Result<Conn, DbError> {
        conn.busy_timeout(SQLITE_BUSY_TIMEOUT)?;
        // Switching a new file to WAL takes an exclusive lock, and SQLite
        // answers "locked" at once, without its busy handler, while another
        // connection is opening or switching the same file (several processes
        // or threads starting on one database). So the switch is retried for
        // as long as the busy timeout allows.
        let started = std::time::Instant::now();
        loop {
            match conn.pragma_update(None, "journal_mode", "WAL") {
                Ok(()) => break,
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if matches!(
                        e.code,
                        rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                    ) && started.elapsed() < SQLITE_BUSY_TIMEOUT =>
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(e.into()),
            }
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Deleted content is overwritten with zeros, not left in free pages:
        // retention's deletions are then gone from the file, not only from
        // the tables (with a WAL checkpoint, from the log too).
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Conn::Sqlite(conn))
    }

    /// Connects to PostgreSQL (`postgres://…` URL or `key=value` string), without TLS.
    pub(crate) fn postgres(config: &str) -> Result<Conn, DbError> {
        let mut config: postgres::Config = config.parse()?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(POSTGRES_CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("shotfix");
        }
        let client = config.connect(postgres::NoTls)?;
        Ok(Conn::Postgres(Box::new(RefCell::new(Pg {
            client,
            statements: HashMap::new(),
        }))))
    }

    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Conn::Sqlite(_) => Dialect::Sqlite,
            Conn::Postgres(_) => Dialect::Postgres,
        }
    }

    fn pg(cell: &RefCell<Pg>) -> Result<std::cell::RefMut<'_, Pg>, DbError> {
        cell.try_borrow_mut()
            .map_err(|_| DbError::Invalid("connection is already in use".into()))
    }

    /// Runs SQL text without parameters (migrations, transaction control).
    pub(crate) fn batch(&self, sql: &str) -> Result<(), DbError> {
        match self {
            Conn::Sqlite(c) => c.execute_batch(sql)?,
            Conn::Postgres(pg) => Conn::pg(pg)?.client.batch_execute(sql)?,
        }
        Ok(())
    }

    /// Starts a transaction. SQLite takes the write lock at once (`IMMEDIATE`):
    /// every transaction here writes, and a deferred one could fail to upgrade
    /// its read lock when another connection wrote first.
    pub(crate) fn begin(&self) -> Result<(), DbError> {
        self.batch(match self {
            Conn::Sqlite(_) => "BEGIN IMMEDIATE",
            Conn::Postgres(_) => "BEGIN",
        })
    }

    /// Runs one statement; returns the number of rows it changed.
    pub(crate) fn execute(&self, sql: &str, args: &[Arg<'_>]) -> Result<u64, DbError> {
        match self {
            Conn::Sqlite(c) => {
                let n = c
                    .prepare_cached(sql)?
                    .execute(rusqlite::params_from_iter(args))?;
                Ok(n as u64)
            }
            Conn::Postgres(pg) => {
                let mut pg = Conn::pg(pg)?;
                let stmt = pg.prepared(sql)?;
                let params: Vec<_> = args.iter().map(Arg::postgres).collect();
                Ok(pg.client.execute(&stmt, &params)?)
            }
        }
    }

    /// Runs one query; returns every row.
    pub(crate) fn query(&self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<Row>, DbError> {
        match self {
            Conn::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let columns = stmt.column_count();
                let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    let values = (0..columns)
                        .map(|i| sqlite_value(row.get_ref(i)?))
                        .collect::<Result<_, DbError>>()?;
                    out.push(Row::new(values));
                }
                Ok(out)
            }
            Conn::Postgres(pg) => {
                let mut pg = Conn::pg(pg)?;
                let stmt = pg.prepared(sql)?;
                let params: Vec<_> = args.iter().map(Arg::postgres).collect();
                pg.client
                    .query(&stmt, &params)?
                    .iter()
                    .map(|row| {
                        (0..row.len())
                            .map(|i| postgres_value(row, i))
                            .collect::<Result<_, DbError>>()
                            .map(Row::new)
                    })
                    .collect()
            }
        }
    }
}

fn sqlite_value(v: ValueRef<'_>) -> Result<Value, DbError> {
    Ok(match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(t) => Value::Text(
            String::from_utf8(t.to_vec())
                .map_err(|_| DbError::Invalid("text column is not UTF-8".into()))?,
        ),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    })
}

fn postgres_value(row: &postgres::Row, i: usize) -> Result<Value, DbError> {
    let ty = row.columns()[i].type_();
    let v = if *ty == Type::INT8 {
        row.try_get::<_, Option<i64>>(i)?.map(Value::Int)
    } else if *ty == Type::INT4 {
        row.try_get::<_, Option<i32>>(i)?
            .map(|v| Value::Int(v.into()))
    } else if *ty == Type::INT2 {
        row.try_get::<_, Option<i16>>(i)?
            .map(|v| Value::Int(v.into()))
    } else if *ty == Type::BOOL {
        row.try_get::<_, Option<bool>>(i)?
            .map(|v| Value::Int(v.into()))
    } else if *ty == Type::FLOAT8 {
        row.try_get::<_, Option<f64>>(i)?.map(Value::Real)
    } else if *ty == Type::FLOAT4 {
        row.try_get::<_, Option<f32>>(i)?
            .map(|v| Value::Real(v.into()))
    } else if *ty == Type::TEXT || *ty == Type::VARCHAR || *ty == Type::NAME || *ty == Type::BPCHAR
    {
        row.try_get::<_, Option<String>>(i)?.map(Value::Text)
    } else if *ty == Type::BYTEA {
        row.try_get::<_, Option<Vec<u8>>>(i)?.map(Value::Blob)
    } else {
        return Err(DbError::Invalid(format!(
            "column {} ({}) has type {ty}, which the store does not read",
            i + 1,
            row.columns()[i].name()
        )));
    };
    Ok(v.unwrap_or(Value::Null))
}

/// Rewrites SQLite's `?` and `?NNN` placeholders to PostgreSQL's `$N`, outside
/// quoted strings, identifiers and line comments. A bare `?` is numbered as
/// SQLite numbers it: one more than the largest number so far.
pub(crate) fn numbered_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut largest: u32 = 0;
    while let Some(c) = chars.next() {
        out.push(c);
        match c {
            '\'' | '"' => {
                // Copy through the closing quote ('' inside a string closes and
                // reopens, which comes out the same).
                for q in chars.by_ref() {
                    out.push(q);
                    if q == c {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                for q in chars.by_ref() {
                    out.push(q);
                    if q == '\n' {
                        break;
                    }
                }
            }
            '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.next_if(char::is_ascii_digit) {
                    digits.push(d);
                }
                let n = if digits.is_empty() {
                    largest + 1
                } else {
                    match digits.parse::<u32>() {
                        Ok(n) => n,
                        Err(_) => {
                            // Not a placeholder PostgreSQL could take; leave it
                            // for the server to reject.
                            out.push_str(&digits);
                            continue;
                        }
                    }
                };
                largest = largest.max(n);
                out.pop();
                out.push('$');
                out.push_str(&n.to_string());
            }
            _ => {}
        }
    }
    out
}

/// The connection string with its password replaced by `***`, to name the
/// database in messages: `postgres://user:***@host/db`, and `password=***` in a
/// URL's query or the `key=value` form.
pub fn redact(config: &str) -> String {
    let mut s = config.to_owned();
    if let Some(scheme_end) = s.find("://") {
        let rest = scheme_end + 3;
        let authority_end = s[rest..].find(['/', '?']).map_or(s.len(), |i| rest + i);
        if let Some(at) = s[rest..authority_end].rfind('@').map(|i| rest + i) {
            if let Some(colon) = s[rest..at].find(':').map(|i| rest + i) {
                s.replace_range(colon + 1..at, "***");
            }
        }
    }
    // `password=…` (a URL query parameter or a key=value pair, maybe quoted).
    let mut from = 0;
    while let Some(i) = s[from..].find("password").map(|i| from + i) {
        from = i + "password".len();
        let is_key = matches!(s[..i].chars().next_back(), None | Some(' ' | '?' | '&'));
        let after = s[from..].trim_start();
        if !is_key || !after.starts_with('=') {
            continue;
        }
        let value_start = s.len() - after[1..].trim_start().len();
        let value = &s[value_start..];
        let value_len = if let Some(quoted) = value.strip_prefix('\'') {
            // Up to the closing quote; backslash escapes a quote.
            let mut escaped = false;
            quoted
                .char_indices()
                .find(|&(_, c)| {
                    let end = c == '\'' && !escaped;
                    escaped = c == '\\' && !escaped;
                    end
                })
                .map_or(value.len(), |(j, _)| j + 2)
        } else {
            value.find([' ', '&']).unwrap_or(value.len())
        };
        s.replace_range(value_start..value_start + value_len, "***");
        from = value_start + 3;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_as_sqlite_numbers_them() {
        assert_eq!(
            numbered_placeholders("a = ?1 OR ?1 IS NULL LIMIT ?2"),
            "a = $1 OR $1 IS NULL LIMIT $2"
        );
        assert_eq!(numbered_placeholders("(?, ?, ?)"), "($1, $2, $3)");
        assert_eq!(numbered_placeholders("?3, ?"), "$3, $4");
        assert_eq!(
            numbered_placeholders("x = '?' AND \"a?\" = ?1 -- why?\n AND y = ?2"),
            "x = '?' AND \"a?\" = $1 -- why?\n AND y = $2"
        );
        assert_eq!(numbered_placeholders("'it''s ?' || ?"), "'it''s ?' || $1");
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgres://shot:s3cr@t@db.example:5432/shotfix?sslmode=disable"),
            "postgres://shot:***@db.example:5432/shotfix?sslmode=disable"
        );
        assert_eq!(
            redact("postgresql://shot@db/shotfix"),
            "postgresql://shot@db/shotfix"
        );
        assert_eq!(
            redact("postgres://db/shotfix?user=shot&password=s3cret"),
            "postgres://db/shotfix?user=shot&password=***"
        );
        assert_eq!(
            redact("host=db user=shot password=s3cret dbname=shotfix"),
            "host=db user=shot password=*** dbname=shotfix"
        );
        assert_eq!(
            redact("host=db password = 'a \\' b' dbname=shotfix"),
            "host=db password = *** dbname=shotfix"
        );
    }
}
