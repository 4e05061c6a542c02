//! `shotfix import alerts FILE --config FILE`: a city's alert history into the
//! server's database as incidents (`server::import`); `shotfix import calls`:
//! 911 call records beside them; `shotfix measures`: the performance
//! measures of a period (`server::measures`).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

/// How many bad rows are listed before the rest are only counted.
const LISTED: usize = 50;

/// The server's configuration, the zone of the file's times, and its text.
fn open_file(
    file: &Path,
    config: &Path,
    timezone: Option<&str>,
) -> Result<(server::config::ServerConfig, chrono_tz::Tz, String)> {
    let config = crate::access_cmd::load(config)?;
    let zone = timezone.unwrap_or(&config.map.timezone);
    let tz: chrono_tz::Tz = zone
        .parse()
        .map_err(|_| anyhow!("--timezone {zone:?}: not an IANA time zone name"))?;
    let text = std::fs::read_to_string(file).with_context(|| format!("read {}", file.display()))?;
    Ok((config, tz, text))
}

/// Lists the bad rows (the first [`LISTED`]); an error unless `skip_bad` or
/// there are none.
fn report_bad(
    file: &Path,
    bad: &[server::import::BadRow],
    good: usize,
    skip_bad: bool,
) -> Result<()> {
    for b in bad.iter().take(LISTED) {
        eprintln!("{}:{}: {}", file.display(), b.line, b.why);
    }
    if bad.len() > LISTED {
        eprintln!(
            "{}: … and {} more bad rows",
            file.display(),
            bad.len() - LISTED
        );
    }
    if !bad.is_empty() && !skip_bad {
        bail!(
            "{}: {} of {} rows cannot be imported (listed above); nothing was imported (--skip-bad imports the other {})",
            file.display(),
            bad.len(),
            bad.len() + good,
            good
        );
    }
    Ok(())
}

/// What the summary line adds for skipped rows.
fn skipped(bad: usize) -> String {
    if bad == 0 {
        String::new()
    } else {
        format!(", {bad} bad rows skipped")
    }
}

fn file_name(file: &Path) -> String {
    file.file_name().map_or_else(
        || file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

pub fn calls(
    file: &Path,
    config: &Path,
    columns: Option<&str>,
    types: Option<&str>,
    timezone: Option<&str>,
    skip_bad: bool,
) -> Result<()> {
    let (config, tz, text) = open_file(file, config, timezone)?;
    let (good, bad) = server::import::read_calls(&text, columns, tz)
        .map_err(|e| anyhow!("{}: {e}", file.display()))?;
    report_bad(file, &bad, good.len(), skip_bad)?;
    let wanted: Vec<String> = types
        .map(|t| {
            t.split(',')
                .map(|w| w.trim().to_lowercase())
                .filter(|w| !w.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let name = file_name(file);
    let rows: Vec<store::CallRow> = good
        .iter()
        .filter(|c| {
            let kind = c.kind.to_lowercase();
            wanted.is_empty() || wanted.iter().any(|w| kind.contains(w.as_str()))
        })
        .map(|c| server::import::call_row(c, &name))
        .collect();
    let other_types = good.len() - rows.len();
    let mut db = config.database.open().map_err(|e| anyhow!(e))?;
    let new = db.save_calls(&rows)?;
    println!(
        "{}: {} rows: {} calls ({} new{}{}), times in {}",
        file.display(),
        good.len() + bad.len(),
        rows.len(),
        new,
        skipped(bad.len()),
        if other_types > 0 {
            format!(", {other_types} of other types left out")
        } else {
            String::new()
        },
        tz.name()
    );
    Ok(())
}

pub fn measures(config: &Path, from: &str, to: &str, csv: Option<&Path>, json: bool) -> Result<()> {
    let config = crate::access_cmd::load(config)?;
    let tz = config.map.tz();
    let (since, until) = server::measures::dates(from, to, tz).map_err(|e| anyhow!(e))?;
    let db = config.database.open().map_err(|e| anyhow!(e))?;
    let m = server::measures::compute(&db, &config.measures, since, until)?;
    let table = m.csv()?;
    match csv {
        Some(p) if p.as_os_str() == "-" => {
            use std::io::Write;
            std::io::stdout().write_all(&table)?;
            return Ok(());
        }
        Some(p) => std::fs::write(p, &table).with_context(|| format!("write {}", p.display()))?,
        None => {}
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&m)?);
        return Ok(());
    }
    println!("{from} to {to} ({}), {:.0} days", tz.name(), m.days);
    let text = String::from_utf8_lossy(&table);
    for line in text.lines().skip(1) {
        let mut f = line.splitn(3, ',');
        let (name, value, unit) = (
            f.next().unwrap_or(""),
            f.next().unwrap_or(""),
            f.next().unwrap_or(""),
        );
        let value = if value.is_empty() { "–" } else { value };
        println!("  {name:<34} {value:>12} {unit}");
    }
    Ok(())
}

pub fn alerts(
    file: &Path,
    config: &Path,
    columns: Option<&str>,
    timezone: Option<&str>,
    skip_bad: bool,
) -> Result<()> {
    let (config, tz, text) = open_file(file, config, timezone)?;
    let (cols, good, bad) =
        server::import::read(&text, columns, tz).map_err(|e| anyhow!("{}: {e}", file.display()))?;
    report_bad(file, &bad, good.len(), skip_bad)?;
    let name = file_name(file);
    let now = server::now_ns();
    let mut saves = Vec::with_capacity(good.len());
    let mut counts: BTreeMap<(&str, String), usize> = BTreeMap::new();
    for a in &good {
        let doc = server::import::incident(a, &name, &cols);
        *counts.entry((a.class, a.kind.clone())).or_default() += 1;
        saves.push(store::IncidentSave {
            incident: doc.row(a.t.0, a.t.0, now),
            pulses: Vec::new(),
            alert: None,
            alert_doc: String::new(),
            targets: Vec::new(),
            change: store::Change {
                actor: "cli".into(),
                action: "import".into(),
                reason: Some(format!("{name} line {} ({} layout)", a.line, cols.layout)),
            },
            strict: false,
        });
    }
    let mut db = config.database.open().map_err(|e| anyhow!(e))?;
    let new = db.save_incidents(&saves)?;
    println!(
        "{}: {} layout, {} rows: {} incidents ({} new{}), times in {}",
        file.display(),
        cols.layout,
        good.len() + bad.len(),
        good.len(),
        new,
        skipped(bad.len()),
        tz.name()
    );
    for ((class, kind), n) in counts {
        println!("  {n:>7}  {kind} ({class})");
    }
    Ok(())
}
