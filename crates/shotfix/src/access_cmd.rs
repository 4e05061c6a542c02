//! `shotfix verify`, `shotfix user add` and `shotfix token add`: the
//! administrator's commands that work on the database directly (the first
//! administrator, machine tokens for tools, checking the history offline).

use std::io::Read;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use server::access::{self, Role};
use server::config::ServerConfig;

pub(crate) fn load(config: &Path) -> Result<ServerConfig> {
    let text =
        std::fs::read_to_string(config).with_context(|| format!("read {}", config.display()))?;
    ServerConfig::from_toml(&text).map_err(|e| anyhow!("{}: {e}", config.display()))
}

fn database(config: &Path) -> Result<store::Db> {
    load(config)?.database.open().map_err(|e| anyhow!(e))
}

/// The audit record of an administrator's command-line change.
fn cli_audit(action: &str, target: &str, detail: String) -> store::AuditEntry {
    access::Caller {
        actor: "cli".into(),
        role: Role::Administrator,
        credential: None,
    }
    .audit_entry(action, target, Some(detail))
}

/// Checks the hash-chained incident history; exit 0 only when it is intact.
/// The database is read as it is: a missing file, or one from before the
/// history existed (schema 1), is an error, not an empty, intact history.
pub fn verify(config: &Path, json: bool) -> Result<bool> {
    let db = load(config)?
        .database
        .open_existing()
        .map_err(|e| anyhow!(e))?;
    let schema = db.schema_version()?;
    if schema < 2 {
        bail!("the database is at schema version {schema}: it has no history to verify (the server adds it at start)");
    }
    let v = db.verify_history()?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "entries": v.entries, "redacted": v.redacted, "head": v.head,
                "intact": v.broken.is_none(), "broken": v.broken,
            })
        );
    } else {
        match &v.broken {
            None => println!(
                "history intact: {} entries ({} redacted by retention), head {}",
                v.entries, v.redacted, v.head
            ),
            Some(problem) => println!("history BROKEN after {} good entries: {problem}", v.entries),
        }
    }
    Ok(v.broken.is_none())
}

/// Creates or replaces a person's account. The password comes from standard
/// input with `--password-stdin`; otherwise one is made and printed once.
pub fn add_user(config: &Path, name: &str, role: &str, password_stdin: bool) -> Result<()> {
    let role = Role::parse(role).map_err(|e| anyhow!(e))?;
    let (password, made) = if password_stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("read the password from standard input")?;
        (text.trim_end_matches(['\r', '\n']).to_string(), false)
    } else {
        (access::generated_password(), true)
    };
    let row = access::new_user(name, role, &password).map_err(|e| anyhow!(e))?;
    let mut db = database(config)?;
    db.upsert_user(&row)?;
    db.append_audit(&[cli_audit("user.create", name, role.as_str().into())])?;
    if made {
        println!("user {name} ({}) password: {password}", role.as_str());
    } else {
        println!("user {name} ({})", role.as_str());
    }
    Ok(())
}

/// Makes a bearer token and prints it (shown once; the database keeps its hash).
pub fn add_token(config: &Path, name: &str, role: &str, expires_days: Option<f64>) -> Result<()> {
    let role = Role::parse(role).map_err(|e| anyhow!(e))?;
    let (secret, row) =
        access::new_token(name, role, "cli", expires_days).map_err(|e| anyhow!(e))?;
    let mut db = database(config)?;
    if db.tokens()?.iter().any(|t| t.name == name) {
        bail!("a token named {name} exists (names are unique; revoke it or pick another)");
    }
    db.insert_token(&row)?;
    db.append_audit(&[cli_audit(
        "token.create",
        &row.id,
        format!("{name} {}", role.as_str()),
    )])?;
    println!("{secret}");
    Ok(())
}
