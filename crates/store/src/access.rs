//! People, machine tokens, sessions and the audit log.
//!
//! The store keeps only what cannot be replayed: password hashes (argon2 PHC
//! strings, made by the server), and the SHA-256 of token and session
//! secrets (high-entropy random values, so a fast hash is enough and a stolen
//! database yields no usable credential). Roles are stored as text; the
//! server decides what each may do.

use crate::backend::{args, Row};
use crate::{limit, Db, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub name: String,
    pub role: String,
    pub password_hash: String,
    pub created_ns: i64,
    pub disabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// The public part of the token (shown in lists and the audit log).
    pub id: String,
    pub secret_sha256: String,
    pub name: String,
    pub role: String,
    pub created_ns: i64,
    pub created_by: String,
    pub expires_ns: Option<i64>,
    pub revoked_ns: Option<i64>,
}

/// One audit record: who did what to which thing, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// 0 until stored.
    pub seq: i64,
    pub t_ns: i64,
    /// `user:NAME`, `token:NAME` or `retention`.
    pub actor: String,
    pub role: String,
    /// `read.audio`, `read.incident`, `review.reclassify`, `retention.delete`, …
    pub action: String,
    /// What was read or changed: an incident id, a pulse, a query.
    pub target: String,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub since_ns: Option<i64>,
    pub until_ns: Option<i64>,
    pub actor: Option<String>,
    /// Actions starting with this (`read.` for every read).
    pub action_prefix: Option<String>,
    pub limit: usize,
}

const USER_COLUMNS: &str = "name, role, password_hash, created_ns, disabled";
const TOKEN_COLUMNS: &str =
    "id, secret_sha256, name, role, created_ns, created_by, expires_ns, revoked_ns";

fn user_row(r: &mut Row) -> Result<UserRow, crate::DbError> {
    Ok(UserRow {
        name: r.text()?,
        role: r.text()?,
        password_hash: r.text()?,
        created_ns: r.int()?,
        disabled: r.bool()?,
    })
}

fn token_row(r: &mut Row) -> Result<TokenRow, crate::DbError> {
    Ok(TokenRow {
        id: r.text()?,
        secret_sha256: r.text()?,
        name: r.text()?,
        role: r.text()?,
        created_ns: r.int()?,
        created_by: r.text()?,
        expires_ns: r.opt_int()?,
        revoked_ns: r.opt_int()?,
    })
}

impl Db {
    /// Creates a user, or replaces the role, password and enabled state of one
    /// that exists (`created_ns` is kept). Open sessions of a user whose
    /// password or role changes are ended.
    pub fn upsert_user(&mut self, u: &UserRow) -> Result<(), StoreError> {
        self.transaction("commit user", || {
            self.execute(
                "end sessions",
                "DELETE FROM sessions WHERE user_name = ?1",
                &args![&u.name],
            )?;
            self.execute(
                "save user",
                &format!(
                    "INSERT INTO users ({USER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (name) DO UPDATE SET role = excluded.role,
                        password_hash = excluded.password_hash, disabled = excluded.disabled"
                ),
                &args![&u.name, &u.role, &u.password_hash, u.created_ns, u.disabled],
            )?;
            Ok(())
        })
    }

    pub fn user(&self, name: &str) -> Result<Option<UserRow>, StoreError> {
        self.row(
            "read user",
            &format!("SELECT {USER_COLUMNS} FROM users WHERE name = ?1"),
            &args![name],
            user_row,
        )
    }

    pub fn users(&self) -> Result<Vec<UserRow>, StoreError> {
        self.rows(
            "list users",
            &format!("SELECT {USER_COLUMNS} FROM users ORDER BY name"),
            &[],
            user_row,
        )
    }

    pub fn insert_token(&mut self, t: &TokenRow) -> Result<(), StoreError> {
        self.execute(
            "save token",
            &format!(
                "INSERT INTO tokens ({TOKEN_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
            ),
            &args![
                &t.id,
                &t.secret_sha256,
                &t.name,
                &t.role,
                t.created_ns,
                &t.created_by,
                t.expires_ns,
                t.revoked_ns
            ],
        )
        .map(drop)
    }

    /// The token with this secret hash, if it exists, is not revoked and has
    /// not expired at `now_ns`.
    pub fn valid_token(
        &self,
        secret_sha256: &str,
        now_ns: i64,
    ) -> Result<Option<TokenRow>, StoreError> {
        self.row(
            "read token",
            &format!(
                "SELECT {TOKEN_COLUMNS} FROM tokens WHERE secret_sha256 = ?1
                 AND revoked_ns IS NULL AND (expires_ns IS NULL OR expires_ns > ?2)"
            ),
            &args![secret_sha256, now_ns],
            token_row,
        )
    }

    pub fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        self.rows(
            "list tokens",
            &format!("SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY created_ns, id"),
            &[],
            token_row,
        )
    }

    /// Revokes a token; whether one was revoked now.
    pub fn revoke_token(&mut self, id: &str, now_ns: i64) -> Result<bool, StoreError> {
        Ok(self.execute(
            "revoke token",
            "UPDATE tokens SET revoked_ns = ?2 WHERE id = ?1 AND revoked_ns IS NULL",
            &args![id, now_ns],
        )? > 0)
    }

    pub fn insert_session(
        &mut self,
        secret_sha256: &str,
        user: &str,
        created_ns: i64,
        expires_ns: i64,
    ) -> Result<(), StoreError> {
        self.execute(
            "save session",
            "INSERT INTO sessions (secret_sha256, user_name, created_ns, expires_ns) VALUES (?1, ?2, ?3, ?4)",
            &args![secret_sha256, user, created_ns, expires_ns],
        )
        .map(drop)
    }

    /// The user of a live session (not expired at `now_ns`, user not disabled).
    pub fn session_user(
        &self,
        secret_sha256: &str,
        now_ns: i64,
    ) -> Result<Option<UserRow>, StoreError> {
        self.row(
            "read session",
            &format!(
                "SELECT {} FROM sessions s JOIN users u ON u.name = s.user_name
                 WHERE s.secret_sha256 = ?1 AND s.expires_ns > ?2 AND NOT u.disabled",
                USER_COLUMNS
                    .split(", ")
                    .map(|c| format!("u.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            &args![secret_sha256, now_ns],
            user_row,
        )
    }

    pub fn end_session(&mut self, secret_sha256: &str) -> Result<(), StoreError> {
        self.execute(
            "end session",
            "DELETE FROM sessions WHERE secret_sha256 = ?1",
            &args![secret_sha256],
        )
        .map(drop)
    }

    /// Appends audit records in one transaction.
    pub fn append_audit(&mut self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        self.transaction("commit audit", || {
            for e in entries {
                self.execute(
                    "append audit",
                    "INSERT INTO audit (t_ns, actor, role, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    &args![e.t_ns, &e.actor, &e.role, &e.action, &e.target, e.detail.as_deref()],
                )?;
            }
            Ok(())
        })
    }

    /// Audit records by filter, oldest first.
    pub fn audit(&self, f: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        self.rows(
            "read audit log",
            "SELECT seq, t_ns, actor, role, action, target, detail FROM audit
             WHERE t_ns >= ?1 AND t_ns <= ?2 AND (CAST(?3 AS TEXT) IS NULL OR actor = ?3)
               AND (CAST(?4 AS TEXT) IS NULL OR substr(action, 1, length(?4)) = ?4)
             ORDER BY seq LIMIT ?5",
            &args![
                f.since_ns.unwrap_or(i64::MIN),
                f.until_ns.unwrap_or(i64::MAX),
                f.actor.as_deref(),
                f.action_prefix.as_deref(),
                limit(f.limit)
            ],
            |r| {
                Ok(AuditEntry {
                    seq: r.int()?,
                    t_ns: r.int()?,
                    actor: r.text()?,
                    role: r.text()?,
                    action: r.text()?,
                    target: r.text()?,
                    detail: r.opt_text()?,
                })
            },
        )
    }
}
