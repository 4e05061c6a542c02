//! `shotfix import alerts`: the real DC alert history (39,066 rows) becomes
//! 39,066 incidents, counted per type and per year against a count made here
//! by reading the file line by line; bad rows are named by line and block the
//! import unless `--skip-bad`.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::{Datelike, TimeZone};
use common::{ok, s};

fn dc_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/alerts/dc-2006-2013.csv")
}

fn shotfix(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shotfix"))
        .args(args)
        .output()
        .unwrap()
}

/// A server configuration on an SQLite file in `dir` (one sensor: the
/// database needs no sensors to import, the configuration needs one).
fn config(dir: &Path, timezone: &str) -> PathBuf {
    let path = dir.join("server.toml");
    std::fs::write(
        &path,
        format!(
            "database = {}\n\n[[sensors]]\nid = \"S1\"\nkey = \"00112233445566778899aabbccddeeff\"\nlat = 38.9\nlon = -77.0\nalt_m = 20\n\n[map]\ntimezone = \"{timezone}\"\n",
            toml::Value::String(s(&dir.join("s.db")).into())
        ),
    )
    .unwrap();
    path
}

/// (type, year) → rows, read without the importer: split on commas (the
/// file has no quoted fields) and take the year from `M/D/YY`.
fn counted_here() -> BTreeMap<(String, i32), usize> {
    let text = std::fs::read_to_string(dc_file()).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "Coverage Area,Incident ID,Date Time,Type,Longitude-100meter,Latitude-100meter"
    );
    let mut counts = BTreeMap::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 6, "{line}");
        let date = f[2].split(' ').next().unwrap();
        let yy: i32 = date.rsplit('/').next().unwrap().parse().unwrap();
        *counts.entry((f[3].to_string(), 2000 + yy)).or_default() += 1;
    }
    counts
}

#[test]
fn the_dc_history_imports_as_39066_incidents_counted_by_type_and_year() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "America/New_York");
    let out = ok(
        &shotfix(&["import", "alerts", s(&dc_file()), "--config", s(&cfg)]),
        "import",
    );
    assert!(
        out.contains("dc layout, 39066 rows: 39066 incidents (39066 new)"),
        "{out}"
    );

    let db = rusqlite::Connection::open(dir.path().join("s.db")).unwrap();
    let mut stmt = db
        .prepare("SELECT first_ns, rounds, class, doc FROM incidents")
        .unwrap();
    let ny = chrono_tz::America::New_York;
    let mut stored: BTreeMap<(String, i32), usize> = BTreeMap::new();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .unwrap();
    let mut n = 0;
    for row in rows {
        let (t, rounds, class, doc) = row.unwrap();
        let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
        let kind = doc["source"]["kind"].as_str().unwrap().to_string();
        assert_eq!(class, "gunfire");
        assert_eq!(
            rounds,
            if kind == "Single Gunshot" { 1 } else { 2 },
            "{kind}"
        );
        assert_eq!(doc["source"]["layout"], "dc");
        assert!(
            doc["shots"].as_array().unwrap().is_empty(),
            "no evidence is invented"
        );
        let year = ny.timestamp_nanos(t).year();
        *stored.entry((kind, year)).or_default() += 1;
        n += 1;
    }
    assert_eq!(n, 39_066);
    let here = counted_here();
    assert_eq!(stored, here);
    // The per-type totals and the years the file spans.
    let by_type = |t: &str| {
        here.iter()
            .filter(|((k, _), _)| k == t)
            .map(|(_, n)| n)
            .sum::<usize>()
    };
    assert_eq!(
        by_type("Single Gunshot") + by_type("Multiple Gunshots"),
        39_066
    );
    let years: Vec<i32> = here.keys().map(|(_, y)| *y).collect();
    assert_eq!(years.iter().min(), Some(&2006));
    assert_eq!(years.iter().max(), Some(&2013));

    // Importing it again adds nothing.
    let again = ok(
        &shotfix(&["import", "alerts", s(&dc_file()), "--config", s(&cfg)]),
        "import again",
    );
    assert!(again.contains("39066 incidents (0 new)"), "{again}");
}

#[test]
fn bad_rows_are_named_by_line_and_nothing_is_imported_without_skip_bad() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "America/Chicago");
    let file = dir.path().join("alerts.csv");
    std::fs::write(
        &file,
        "Date,Unique ID,Incident Type Description,Rounds,Latitude,Longitude\n\
         01/02/2024 11:38:00 PM,A1,SINGLE GUNSHOT,1,41.88,-87.63\n\
         01/02/2024 11:39:00 PM,A2,MULTIPLE GUNSHOTS,x,41.88,-87.63\n\
         01/02/2024 11:40:00 PM,A3,GUNSHOT OR FIRECRACKER,,41.88,-87.63\n\
         13/45/2024 11:41:00 PM,A4,SINGLE GUNSHOT,1,41.88,-87.63\n",
    )
    .unwrap();
    let refused = shotfix(&["import", "alerts", s(&file), "--config", s(&cfg)]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("alerts.csv:3: rounds \"x\""), "{err}");
    assert!(err.contains("alerts.csv:5: date/time"), "{err}");
    assert!(err.contains("2 of 4 rows cannot be imported"), "{err}");
    let count = |dir: &Path| -> i64 {
        let path = dir.join("s.db");
        if !path.exists() {
            return 0;
        }
        rusqlite::Connection::open(path)
            .unwrap()
            .query_row("SELECT COUNT(*) FROM incidents", [], |r| r.get(0))
            .unwrap_or(0)
    };
    assert_eq!(count(dir.path()), 0, "nothing imported");
    let out = ok(
        &shotfix(&[
            "import",
            "alerts",
            s(&file),
            "--config",
            s(&cfg),
            "--skip-bad",
        ]),
        "import --skip-bad",
    );
    assert!(
        out.contains("chicago layout, 4 rows: 2 incidents (2 new, 2 bad rows skipped)"),
        "{out}"
    );
    assert_eq!(count(dir.path()), 2);
    // A layout it does not know, and no mapping: one line, non-zero.
    let odd = dir.path().join("odd.csv");
    std::fs::write(&odd, "when,what\n2026-01-01T00:00:00Z,bang\n").unwrap();
    let out = shotfix(&["import", "alerts", s(&odd), "--config", s(&cfg)]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--columns") && err.trim().lines().count() == 1,
        "{err}"
    );
}

#[test]
fn calls_are_imported_matched_to_alerts_and_measured() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "America/New_York");
    ok(
        &shotfix(&["import", "alerts", s(&dc_file()), "--config", s(&cfg)]),
        "import alerts",
    );
    // Three real 2010 alerts get a 911 call each, at the same minute and
    // 100 m north; two calls are far from any alert; one row is bad.
    let text = std::fs::read_to_string(dc_file()).unwrap();
    let picked: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f[2].split(' ').next().unwrap().ends_with("/10"))
        .step_by(500)
        .take(3)
        .collect();
    assert_eq!(picked.len(), 3);
    let mut calls = String::from("Call Number,Call Type,Call Time,Latitude,Longitude\n");
    for (i, f) in picked.iter().enumerate() {
        let lat: f64 = f[5].parse().unwrap();
        calls += &format!("C{i},SHOTS FIRED,{},{:.4},{}\n", f[2], lat + 0.0009, f[4]);
    }
    calls += "C7,SHOTS FIRED,6/1/10 12:00,45.0,-70.0\nC8,SHOTS FIRED,6/2/10 12:00,45.0,-70.0\n";
    calls += "C9,SHOTS FIRED,yesterday,38.9,-77.0\n";
    calls += "C10,NOISE COMPLAINT,6/3/10 12:00,38.9,-77.0\n";
    let file = dir.path().join("calls.csv");
    std::fs::write(&file, calls).unwrap();
    let refused = shotfix(&["import", "calls", s(&file), "--config", s(&cfg)]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("calls.csv:7: date/time \"yesterday\""),
        "{err}"
    );
    let out = ok(
        &shotfix(&[
            "import",
            "calls",
            s(&file),
            "--config",
            s(&cfg),
            "--skip-bad",
            "--types",
            "shots,gun",
        ]),
        "import calls",
    );
    assert!(
        out.contains("7 rows: 5 calls (5 new, 1 bad rows skipped, 1 of other types left out)"),
        "{out}"
    );

    let out = ok(
        &shotfix(&[
            "measures",
            "--config",
            s(&cfg),
            "--from",
            "2010-01-01",
            "--to",
            "2010-12-31",
            "--csv",
            "-",
        ]),
        "measures",
    );
    let rows: BTreeMap<String, String> = out
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_string(), f[1].to_string())
        })
        .collect();
    let in_2010: usize = counted_here()
        .iter()
        .filter(|((_, y), _)| *y == 2010)
        .map(|(_, n)| n)
        .sum();
    assert_eq!(rows["imported_alerts"], in_2010.to_string());
    assert_eq!(rows["alerts_published"], "0");
    assert_eq!(rows["calls_911"], "5");
    assert_eq!(rows["calls_911_without_alert"], "2");
    let with_call: usize = rows["alerts_with_911_call"].parse().unwrap();
    assert!((3..=20).contains(&with_call), "{with_call}");
    assert_eq!(rows["field_unconfirmed"], in_2010.to_string());
    // The table for people, and a refused period.
    let table = ok(
        &shotfix(&[
            "measures",
            "--config",
            s(&cfg),
            "--from",
            "2010-01-01",
            "--to",
            "2010-12-31",
        ]),
        "measures table",
    );
    assert!(
        table.contains("imported_alerts") && table.contains("America/New_York"),
        "{table}"
    );
    let bad = shotfix(&[
        "measures",
        "--config",
        s(&cfg),
        "--from",
        "2010-12-31",
        "--to",
        "2010-01-01",
    ]);
    assert!(!bad.status.success());
}
