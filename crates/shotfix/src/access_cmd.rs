//! `shotfix verify`, `shotfix user add` and `shotfix token add`: the
//! administrator's commands that work on the database directly (the first
//! administrator, machine tokens for tools, checking the history offline).

use std::io::Read;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use server::access::{self, Role};
use server::config::ServerConfig;

fn load(config: &Path) -> Result<ServerConfig> {
    let text =
        std::fs::read_to_string(config).with_context(|| format!("read {}", config.display()))?;
    ServerConfig::from_toml(&text).map_err(|e| anyhow!("{}: {e}", config.display()))
}

fn database(config: &Path) -> Result<store::Db> {
    load(config)?.database.open().map_err(|e| anyhow!(e))
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
        let mut bytes = [0u8; 15];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
        (
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes),
            true,
        )
    };
    let row = access::new_user(name, role, &password).map_err(|e| anyhow!(e))?;
    let mut db = database(config)?;
    db.upsert_user(&row)?;
    db.append_audit(&[store::AuditEntry {
        seq: 0,
        t_ns: server::now_ns(),
        actor: "cli".into(),
        role: "administrator".into(),
        action: "user.create".into(),
        target: name.into(),
        detail: Some(role.as_str().into()),
    }])?;
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
    let expires = match expires_days {
        None => None,
        Some(d) if d.is_finite() && d > 0.0 && d <= 3_650.0 => {
            Some(server::now_ns() + (d * 86_400e9) as i64)
        }
        Some(_) => bail!("--expires-days: 0–3650"),
    };
    let (secret, row) = access::new_token(name, role, "cli", expires).map_err(|e| anyhow!(e))?;
    let mut db = database(config)?;
    db.insert_token(&row)?;
    db.append_audit(&[store::AuditEntry {
        seq: 0,
        t_ns: server::now_ns(),
        actor: "cli".into(),
        role: "administrator".into(),
        action: "token.create".into(),
        target: row.id.clone(),
        detail: Some(format!("{name} {}", role.as_str())),
    }])?;
    println!("{secret}");
    Ok(())
}
