//! Who may do what: roles, people's logins and sessions, machine tokens, and
//! the audit log of every read of audio or of an incident's exact place.
//!
//! Every route but the public ones (`/`, `/v1/health`, `/v1/openapi.json`,
//! `/v1/public/…`, login) and sensor ingest (signed by the sensor's own key)
//! needs a [`Caller`]: a person's session cookie or a bearer token. What each
//! role may do is [`Role::may`], one table; docs/access.md gives the reasons.
//!
//! Passwords are kept as argon2id hashes (PHC strings, the crate's default
//! parameters: 19 MiB, 2 passes). Token and session secrets are 256-bit random
//! values; the database keeps only their SHA-256. Session cookies are
//! `HttpOnly; Secure; SameSite=Strict` (no script reads them, no other site
//! sends them).

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use model::UtcNanos;
use rand::RngCore;
use serde::Deserialize;
use serde_json::{json, Value};
use store::{AuditEntry, AuditFilter, TokenRow, UserRow};

use crate::api::{time_param, ApiError};
use crate::{now_ns, App};

/// The roles of PRODUCT.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Administrator,
    Dispatcher,
    Reviewer,
    Investigator,
    Analyst,
    /// A partner organisation (violence prevention, schools, researchers):
    /// the community data through a token, every read audited.
    Partner,
    Public,
}

/// What a request may need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perm {
    /// The live alert feeds (SSE, WebSocket, `/v1/alerts`).
    Live,
    /// Incidents with their exact places (lists, one incident, versions, CAP, GeoJSON).
    Incidents,
    /// The evidence behind them: shots, pulses, the change history.
    Evidence,
    /// Audio clips.
    Audio,
    /// Sensor positions.
    Sensors,
    /// Confirm, reclassify, dismiss, adjust, relocate; the review queue.
    Review,
    /// People, tokens, the audit log, metrics, retention.
    Administer,
    /// What officers found at an incident, and shootings the alerts missed.
    Outcomes,
    /// The community data: per-incident rows moved by the coarsening
    /// distance, area counts, all after the public delay; the measures.
    Community,
}

impl Perm {
    pub const ALL: [Perm; 9] = [
        Perm::Live,
        Perm::Incidents,
        Perm::Evidence,
        Perm::Audio,
        Perm::Sensors,
        Perm::Review,
        Perm::Administer,
        Perm::Outcomes,
        Perm::Community,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Perm::Live => "live",
            Perm::Incidents => "incidents",
            Perm::Evidence => "evidence",
            Perm::Audio => "audio",
            Perm::Sensors => "sensors",
            Perm::Review => "review",
            Perm::Administer => "administer",
            Perm::Outcomes => "outcomes",
            Perm::Community => "community",
        }
    }
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Administrator,
        Role::Dispatcher,
        Role::Reviewer,
        Role::Investigator,
        Role::Analyst,
        Role::Partner,
        Role::Public,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Administrator => "administrator",
            Role::Dispatcher => "dispatcher",
            Role::Reviewer => "reviewer",
            Role::Investigator => "investigator",
            Role::Analyst => "analyst",
            Role::Partner => "partner",
            Role::Public => "public",
        }
    }

    pub fn parse(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown role {s:?}: one of {}",
                    Role::ALL.map(Role::as_str).join(", ")
                )
            })
    }

    /// The access table (docs/access.md). Least privilege: dispatch gets the
    /// live alerts and places but no audio; analysts get incidents for maps
    /// and trends but neither live feeds, evidence, audio nor sensor places;
    /// the public role gets nothing beyond the public view.
    pub fn may(self, p: Perm) -> bool {
        use Perm::*;
        use Role::*;
        match self {
            Administrator => true,
            Dispatcher => matches!(p, Live | Incidents | Sensors | Outcomes),
            Reviewer => matches!(
                p,
                Live | Incidents | Evidence | Audio | Sensors | Review | Outcomes
            ),
            Investigator => matches!(p, Live | Incidents | Evidence | Audio | Sensors | Outcomes),
            Analyst => matches!(p, Incidents | Community),
            Partner => matches!(p, Community),
            Public => false,
        }
    }
}

/// The person or machine behind a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// `user:NAME` or `token:NAME` (token names are unique).
    pub actor: String,
    pub role: Role,
    /// What the request presented (SHA-256 of the secret), to check again
    /// while a live feed stays open; `None` for callers made in-process.
    pub credential: Option<Credential>,
}

/// The kind of credential and the SHA-256 of its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Token(String),
    Session(String),
}

/// Whether `credential` still gives `role`: not revoked, expired, ended,
/// disabled or given another role since.
pub async fn still_valid(app: &App, credential: &Credential, role: Role) -> bool {
    let now = now_ns();
    let role = role.as_str();
    match credential.clone() {
        Credential::Token(hash) => app
            .read(move |db| db.valid_token(&hash, now))
            .await
            .is_ok_and(|t| t.is_some_and(|t| t.role == role)),
        Credential::Session(hash) => app
            .read(move |db| db.session_user(&hash, now))
            .await
            .is_ok_and(|u| u.is_some_and(|u| u.role == role)),
    }
}

/// Removes what only the evidence roles may see from an incident document:
/// which sensors heard each shot and their ranges (with the shot positions,
/// three incidents would place a sensor).
pub fn redact(caller: &Caller, doc: &mut crate::doc::IncidentDoc) {
    if !caller.role.may(Perm::Evidence) {
        for s in &mut doc.shots {
            s.arrivals.clear();
            s.sensors.clear();
        }
    }
}

/// [`redact`] on an incident document as JSON.
pub fn redact_value(caller: &Caller, doc: &mut Value) {
    if !caller.role.may(Perm::Evidence) {
        if let Some(shots) = doc.get_mut("shots").and_then(Value::as_array_mut) {
            for s in shots {
                if let Some(m) = s.as_object_mut() {
                    m.insert("arrivals".into(), json!([]));
                    m.insert("sensors".into(), json!([]));
                }
            }
        }
    }
}

impl Caller {
    /// An audit record of this caller doing `action` to `target`, now.
    pub fn audit_entry(&self, action: &str, target: &str, detail: Option<String>) -> AuditEntry {
        AuditEntry {
            seq: 0,
            t_ns: now_ns(),
            actor: self.actor.clone(),
            role: self.role.as_str().into(),
            action: action.into(),
            target: target.into(),
            detail,
        }
    }

    /// `Forbidden` unless the caller's role may do `p`.
    pub fn require(&self, p: Perm) -> Result<(), ApiError> {
        if self.role.may(p) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "the {} role may not do this",
                self.role.as_str()
            )))
        }
    }
}

/// The session cookie's name. `__Host-`: browsers take it only when set
/// `Secure`, for `Path=/` and without a `Domain`, so a sibling subdomain
/// cannot plant one.
pub const SESSION_COOKIE: &str = "__Host-shotfix_session";

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v)
}

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Caller, ApiError> {
        let now = now_ns();
        if let Some(token) = bearer(&parts.headers) {
            let hash = store::sha256_hex(token.as_bytes());
            let row = app.read(move |db| db.valid_token(&hash, now)).await?;
            let row = row.ok_or_else(|| {
                ApiError::Unauthorized("unknown, revoked or expired token".into())
            })?;
            let role = Role::parse(&row.role).map_err(ApiError::Internal)?;
            return Ok(Caller {
                actor: format!("token:{}", row.name),
                role,
                credential: Some(Credential::Token(row.secret_sha256)),
            });
        }
        if let Some(secret) = session_cookie(&parts.headers) {
            let hash = store::sha256_hex(secret.as_bytes());
            let key = hash.clone();
            let user = app.read(move |db| db.session_user(&key, now)).await?;
            let user =
                user.ok_or_else(|| ApiError::Unauthorized("session ended: log in again".into()))?;
            let role = Role::parse(&user.role).map_err(ApiError::Internal)?;
            return Ok(Caller {
                actor: format!("user:{}", user.name),
                role,
                credential: Some(Credential::Session(hash)),
            });
        }
        Err(ApiError::Unauthorized(
            "log in (POST /v1/session) or send a bearer token".into(),
        ))
    }
}

/// Writes an audit record and waits until it is stored: a read that cannot
/// be recorded is not served.
pub async fn audit(
    app: &App,
    caller: &Caller,
    action: &str,
    target: &str,
    detail: Option<String>,
) -> Result<(), ApiError> {
    app.writer
        .audit(caller.audit_entry(action, target, detail))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))
}

// ---- credentials ------------------------------------------------------------------

/// Shortest password accepted: NIST SP 800-63B asks at least 8; 12 because
/// these accounts see where shootings happened and hear the city.
pub const MIN_PASSWORD_CHARS: usize = 12;

pub fn hash_password(password: &str) -> Result<String, String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "password too short: at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hash password: {e}"))
}

fn password_matches(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// A password made for someone (the first administrator, the demo's): 120
/// random bits, as 30 hex digits.
pub fn generated_password() -> String {
    random_hex(15)
}

/// Longest token lifetime, days.
pub const MAX_TOKEN_DAYS: f64 = 3_650.0;

/// A new machine token: the secret to hand over once, and the row to store.
/// It stops working after `expires_days` (none: when revoked).
pub fn new_token(
    name: &str,
    role: Role,
    created_by: &str,
    expires_days: Option<f64>,
) -> Result<(String, TokenRow), String> {
    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        return Err("token name: 1–64 printable characters".into());
    }
    let expires_ns = match expires_days {
        Some(d) if d.is_finite() && d > 0.0 && d <= MAX_TOKEN_DAYS => {
            Some(now_ns() + (d * 86_400e9) as i64)
        }
        Some(_) => return Err(format!("expires_days: 0–{MAX_TOKEN_DAYS}")),
        None => None,
    };
    let id = random_hex(8);
    let secret = format!("sfx_{id}_{}", random_hex(32));
    let row = TokenRow {
        id,
        secret_sha256: store::sha256_hex(secret.as_bytes()),
        name: name.into(),
        role: role.as_str().into(),
        created_ns: now_ns(),
        created_by: created_by.into(),
        expires_ns,
        revoked_ns: None,
    };
    Ok((secret, row))
}

/// A user row for `name` with a fresh password hash.
pub fn new_user(name: &str, role: Role, password: &str) -> Result<UserRow, String> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'))
    {
        return Err(format!(
            "user name {name:?}: 1–64 letters, digits and . - _ @"
        ));
    }
    Ok(UserRow {
        name: name.into(),
        role: role.as_str().into(),
        password_hash: hash_password(password)?,
        created_ns: now_ns(),
        disabled: false,
    })
}

// ---- routes -------------------------------------------------------------------------

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/session", post(login).get(whoami).delete(logout))
        .route("/v1/users", get(users).post(create_user))
        .route("/v1/users/{name}", put(update_user))
        .route("/v1/tokens", get(tokens).post(create_token))
        .route("/v1/tokens/{id}", axum::routing::delete(revoke_token))
        .route("/v1/audit", get(audit_log))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    name: String,
    password: String,
}

/// A well-formed hash of no password, verified against when the user does not
/// exist, so a wrong name takes as long as a wrong password.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("no-such-user-password").unwrap_or_default())
}

/// Password checks at once: argon2 takes 19 MiB and tens of milliseconds
/// each, so a flood of logins is answered 503 rather than exhausting memory.
const CONCURRENT_LOGINS: usize = 4;

static LOGINS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(CONCURRENT_LOGINS);

async fn login(State(app): State<Arc<App>>, Json(l): Json<Login>) -> Result<Response, ApiError> {
    if l.name.is_empty() || l.name.chars().count() > 64 || l.password.len() > 1_024 {
        return Err(ApiError::Unauthorized("wrong name or password".into()));
    }
    let Ok(_permit) = LOGINS.try_acquire() else {
        return Err(ApiError::Internal(
            "too many logins at once; try again".into(),
        ));
    };
    let name = l.name.clone();
    let user = app.read(move |db| db.user(&name)).await?;
    let hash = user
        .as_ref()
        .filter(|u| !u.disabled)
        .map_or_else(|| dummy_hash().to_string(), |u| u.password_hash.clone());
    let password = l.password;
    let ok = tokio::task::spawn_blocking(move || password_matches(&hash, &password))
        .await
        .unwrap_or(false);
    let user = match user {
        Some(u) if ok && !u.disabled => u,
        _ => {
            let who = Caller {
                actor: format!("user:{}", l.name),
                role: Role::Public,
                credential: None,
            };
            audit(&app, &who, "login.failed", "session", None).await?;
            return Err(ApiError::Unauthorized("wrong name or password".into()));
        }
    };
    let role = Role::parse(&user.role).map_err(ApiError::Internal)?;
    let secret = random_hex(32);
    let now = now_ns();
    let hours = app.config.access.session_hours;
    let expires = now + (hours * 3.6e12) as i64;
    let (hash, name) = (store::sha256_hex(secret.as_bytes()), user.name.clone());
    app.writer
        .run(move |db| db.insert_session(&hash, &name, now, expires))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let caller = Caller {
        actor: format!("user:{}", user.name),
        role,
        credential: None,
    };
    audit(&app, &caller, "login", "session", None).await?;
    let cookie = format!(
        "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={}",
        (hours * 3600.0) as i64
    );
    Ok((
        [(header::SET_COOKIE, cookie)],
        Json(json!({"name": user.name, "role": role.as_str(), "expires_utc": UtcNanos(expires).to_rfc3339()})),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WhoQuery {
    /// Answer 200 with a null actor instead of 401 when nobody is logged in
    /// (a page asking whether to show its login form).
    #[serde(default)]
    probe: bool,
}

async fn whoami(
    caller: Result<Caller, ApiError>,
    Query(q): Query<WhoQuery>,
) -> Result<Json<Value>, ApiError> {
    let caller = match caller {
        Ok(c) => c,
        Err(ApiError::Unauthorized(_)) if q.probe => {
            return Ok(Json(json!({"actor": null, "role": null, "may": []})))
        }
        Err(e) => return Err(e),
    };
    Ok(Json(json!({
        "actor": caller.actor,
        "role": caller.role.as_str(),
        // What the role may do (the dashboard shows only what it can open).
        "may": Perm::ALL.iter().filter(|p| caller.role.may(**p)).map(|p| p.as_str()).collect::<Vec<_>>(),
    })))
}

async fn logout(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(secret) = session_cookie(&headers) {
        let hash = store::sha256_hex(secret.as_bytes());
        app.writer
            .run(move |db| db.end_session(&hash))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
    }
    let cookie = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0");
    Ok(([(header::SET_COOKIE, cookie)], StatusCode::NO_CONTENT).into_response())
}

fn user_json(u: &UserRow) -> Value {
    json!({
        "name": u.name, "role": u.role, "disabled": u.disabled,
        "created_utc": UtcNanos(u.created_ns).to_rfc3339(),
    })
}

async fn users(State(app): State<Arc<App>>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(Perm::Administer)?;
    let list = app.read(|db| db.users()).await?;
    Ok(Json(
        json!({"users": list.iter().map(user_json).collect::<Vec<_>>()}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    name: String,
    role: String,
    password: String,
}

async fn create_user(
    State(app): State<Arc<App>>,
    caller: Caller,
    Json(u): Json<NewUser>,
) -> Result<Response, ApiError> {
    caller.require(Perm::Administer)?;
    let role = Role::parse(&u.role).map_err(ApiError::BadRequest)?;
    let name = u.name.clone();
    if app.read(move |db| db.user(&name)).await?.is_some() {
        return Err(ApiError::Conflict(format!("user {} exists", u.name)));
    }
    let row = tokio::task::spawn_blocking(move || new_user(&u.name, role, &u.password))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(ApiError::BadRequest)?;
    let body = user_json(&row);
    let name = row.name.clone();
    app.writer
        .run(move |db| db.upsert_user(&row))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    audit(
        &app,
        &caller,
        "user.create",
        &name,
        Some(role.as_str().into()),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserChange {
    role: Option<String>,
    password: Option<String>,
    disabled: Option<bool>,
}

async fn update_user(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
    Json(c): Json<UserChange>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Perm::Administer)?;
    let key = name.clone();
    let mut row = app
        .read(move |db| db.user(&key))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("user {name}")))?;
    if let Some(r) = &c.role {
        row.role = Role::parse(r)
            .map_err(ApiError::BadRequest)?
            .as_str()
            .into();
    }
    if let Some(d) = c.disabled {
        row.disabled = d;
    }
    if let Some(p) = c.password {
        row.password_hash = tokio::task::spawn_blocking(move || hash_password(&p))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(ApiError::BadRequest)?;
    }
    let body = user_json(&row);
    app.writer
        .run(move |db| db.upsert_user(&row))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    audit(&app, &caller, "user.update", &name, Some(body.to_string())).await?;
    Ok(Json(body))
}

fn token_json(t: &TokenRow) -> Value {
    json!({
        "id": t.id, "name": t.name, "role": t.role, "created_by": t.created_by,
        "created_utc": UtcNanos(t.created_ns).to_rfc3339(),
        "expires_utc": t.expires_ns.map(|e| UtcNanos(e).to_rfc3339()),
        "revoked_utc": t.revoked_ns.map(|e| UtcNanos(e).to_rfc3339()),
    })
}

async fn tokens(State(app): State<Arc<App>>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(Perm::Administer)?;
    let list = app.read(|db| db.tokens()).await?;
    Ok(Json(
        json!({"tokens": list.iter().map(token_json).collect::<Vec<_>>()}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
    role: String,
    /// Days until it stops working; none: until revoked.
    expires_days: Option<f64>,
}

async fn create_token(
    State(app): State<Arc<App>>,
    caller: Caller,
    Json(t): Json<NewToken>,
) -> Result<Response, ApiError> {
    caller.require(Perm::Administer)?;
    let role = Role::parse(&t.role).map_err(ApiError::BadRequest)?;
    let (secret, row) =
        new_token(&t.name, role, &caller.actor, t.expires_days).map_err(ApiError::BadRequest)?;
    let name = t.name.clone();
    let taken = app
        .read(move |db| Ok(db.tokens()?.iter().any(|t| t.name == name)))
        .await?;
    if taken {
        return Err(ApiError::Conflict(format!(
            "a token named {} exists",
            t.name
        )));
    }
    let mut body = token_json(&row);
    body["token"] = json!(secret);
    let id = row.id.clone();
    app.writer
        .run(move |db| db.insert_token(&row))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    audit(
        &app,
        &caller,
        "token.create",
        &id,
        Some(format!("{} {}", t.name, role.as_str())),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn revoke_token(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Perm::Administer)?;
    let key = id.clone();
    let revoked = app
        .writer
        .run(move |db| db.revoke_token(&key, now_ns()))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    if !revoked {
        return Err(ApiError::NotFound(format!("active token {id}")));
    }
    audit(&app, &caller, "token.revoke", &id, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    since: Option<String>,
    until: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    limit: Option<usize>,
    /// `json` (default) or `csv` (export).
    format: Option<String>,
}

async fn audit_log(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> Result<Response, ApiError> {
    caller.require(Perm::Administer)?;
    let filter = AuditFilter {
        since_ns: time_param("since", &q.since)?,
        until_ns: time_param("until", &q.until)?,
        actor: q.actor.clone(),
        action_prefix: q.action.clone(),
        limit: q.limit.unwrap_or(10_000).min(1_000_000),
    };
    let rows = app.read(move |db| db.audit(&filter)).await?;
    // The export is itself a read of who read what: recorded too.
    audit(
        &app,
        &caller,
        "read.audit",
        "audit",
        Some(format!("{} records", rows.len())),
    )
    .await?;
    match q.format.as_deref().unwrap_or("json") {
        "json" => Ok(Json(json!({"audit": rows.iter().map(|e| json!({
            "seq": e.seq, "t_utc": UtcNanos(e.t_ns).to_rfc3339(), "actor": e.actor, "role": e.role,
            "action": e.action, "target": e.target, "detail": e.detail,
        })).collect::<Vec<_>>()}))
        .into_response()),
        "csv" => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let header = [
                "seq", "t_utc", "actor", "role", "action", "target", "detail",
            ];
            w.write_record(header)
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            // A cell a spreadsheet would run as a formula is quoted (names
            // in failed logins come from anyone).
            let cell = |v: &str| {
                if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                    format!("'{v}")
                } else {
                    v.to_string()
                }
            };
            for e in &rows {
                w.write_record([
                    e.seq.to_string(),
                    UtcNanos(e.t_ns).to_rfc3339(),
                    cell(&e.actor),
                    e.role.clone(),
                    e.action.clone(),
                    cell(&e.target),
                    cell(e.detail.as_deref().unwrap_or_default()),
                ])
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            }
            let bytes = w
                .into_inner()
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            Ok(([(header::CONTENT_TYPE, "text/csv")], bytes).into_response())
        }
        other => Err(ApiError::BadRequest(format!(
            "format {other:?}: json or csv"
        ))),
    }
}
