//! Importing alert history (`shotfix import alerts FILE`): a city's past
//! alerts, from the vendor or an open-data portal, become incidents beside
//! the ones shotfix locates, so maps, trends and measures cover the years
//! before it.
//!
//! A file's layout is recognised by its header (names compared without case,
//! spaces or punctuation):
//! - `dc`: Washington, DC's FOIA release (`Coverage Area, Incident ID, Date
//!   Time, Type, Longitude-100meter, Latitude-100meter`; positions rounded to
//!   0.001°, local times);
//! - `chicago`: the City of Chicago data portal's "ShotSpotter Alerts"
//!   (`Date, …, Unique ID, …, Incident Type Description, Rounds, Latitude,
//!   Longitude`; places moved by about a block);
//! - `generic`: any file with a type, a date/time, latitude and longitude
//!   column (and optionally rounds and an id) under common names;
//! - or an explicit mapping (`--columns type=…,time=…,lat=…,lon=…`).
//!
//! Every row becomes an incident or a [`BadRow`] with its line number: none
//! is dropped without saying so.

use std::collections::HashMap;

use chrono::TimeZone;
use model::UtcNanos;

use crate::doc::{IncidentDoc, SourceDoc};

/// How an imported incident's id starts (a located one's never does).
pub const ID_PREFIX: &str = "imp-";

/// What an incident is made from.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// The file's line (1 is the header).
    pub line: u64,
    pub id: Option<String>,
    pub t: UtcNanos,
    /// The type as the file gives it.
    pub kind: String,
    pub class: &'static str,
    pub rounds: usize,
    pub lat: f64,
    pub lon: f64,
}

/// A row that could not be imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    pub line: u64,
    pub why: String,
}

/// The columns a layout reads, by header index.
#[derive(Debug, Clone, PartialEq)]
pub struct Columns {
    pub layout: String,
    pub kind: usize,
    pub time: usize,
    pub lat: usize,
    pub lon: usize,
    pub rounds: Option<usize>,
    pub id: Option<usize>,
    /// Half the diagonal of the file's position rounding, metres (its places'
    /// error), when the layout says.
    pub precision_m: f64,
}

/// A header name without case, spaces or punctuation.
pub(crate) fn norm(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Where the first of `candidates` is among the header's `names` (both
/// compared with [`norm`]).
fn position(names: &[String], candidates: &[&str]) -> Option<usize> {
    candidates
        .iter()
        .find_map(|c| names.iter().position(|n| n == &norm(c)))
}

/// The column a mapping gives a required role.
fn required(roles: &HashMap<&str, usize>, role: &str) -> Result<usize, String> {
    roles
        .get(role)
        .copied()
        .ok_or_else(|| format!("--columns: {role}= is required"))
}

/// An explicit mapping (`role=column` pairs, each role one of `roles`): the
/// header index of each role's column (`names` are normalised with [`norm`]).
fn mapped<'r>(
    names: &[String],
    mapping: &str,
    roles: &[&'r str],
) -> Result<HashMap<&'r str, usize>, String> {
    let mut out = HashMap::new();
    for pair in mapping.split(',') {
        let (role, column) = pair
            .split_once('=')
            .ok_or_else(|| format!("--columns {pair:?}: ROLE=COLUMN"))?;
        let role = roles.iter().find(|r| **r == role.trim()).ok_or_else(|| {
            format!(
                "--columns: unknown role {:?} ({})",
                role.trim(),
                roles.join(", ")
            )
        })?;
        let i = position(names, &[column])
            .ok_or_else(|| format!("--columns: no column {column:?} in the header"))?;
        out.insert(*role, i);
    }
    Ok(out)
}

/// Recognises the layout from the header, or takes `mapping` (`role=column`
/// pairs, roles `type`, `time`, `lat`, `lon`, `rounds`, `id`).
pub fn columns(header: &[&str], mapping: Option<&str>) -> Result<Columns, String> {
    let names: Vec<String> = header.iter().map(|h| norm(h)).collect();
    let find = |candidates: &[&str]| position(&names, candidates);
    if let Some(mapping) = mapping {
        let roles = mapped(
            &names,
            mapping,
            &["type", "time", "lat", "lon", "rounds", "id"],
        )?;
        let need = |r: &str| required(&roles, r);
        return Ok(Columns {
            layout: "mapped".into(),
            kind: need("type")?,
            time: need("time")?,
            lat: need("lat")?,
            lon: need("lon")?,
            rounds: roles.get("rounds").copied(),
            id: roles.get("id").copied(),
            precision_m: 0.0,
        });
    }
    let has = |n: &str| find(&[n]);
    if let (Some(kind), Some(time), Some(lat), Some(lon), Some(id)) = (
        has("Type"),
        has("Date Time"),
        has("Latitude-100meter"),
        has("Longitude-100meter"),
        has("Incident ID"),
    ) {
        // 0.001° squares: half the diagonal at DC's latitude (111 m × 85 m).
        return Ok(Columns {
            layout: "dc".into(),
            kind,
            time,
            lat,
            lon,
            rounds: None,
            id: Some(id),
            precision_m: 70.0,
        });
    }
    if let (Some(kind), Some(time), Some(lat), Some(lon)) = (
        has("Incident Type Description"),
        has("Date"),
        has("Latitude"),
        has("Longitude"),
    ) {
        return Ok(Columns {
            layout: "chicago".into(),
            kind,
            time,
            lat,
            lon,
            rounds: has("Rounds"),
            id: has("Unique ID"),
            // "Moved by about a block" (the portal's notes): ~100 m.
            precision_m: 100.0,
        });
    }
    let kind = find(&[
        "type",
        "incident type",
        "alert type",
        "incident type description",
        "event type",
    ]);
    let time = find(&[
        "date time",
        "datetime",
        "date",
        "time",
        "timestamp",
        "date and time",
        "occurred",
    ]);
    let lat = find(&["latitude", "lat", "y"]);
    let lon = find(&["longitude", "lon", "lng", "long", "x"]);
    match (kind, time, lat, lon) {
        (Some(kind), Some(time), Some(lat), Some(lon)) => Ok(Columns {
            layout: "generic".into(),
            kind,
            time,
            lat,
            lon,
            rounds: find(&["rounds", "shots", "rounds fired", "number of rounds"]),
            id: find(&["id", "incident id", "unique id", "alert id"]),
            precision_m: 0.0,
        }),
        _ => Err(format!(
            "unknown layout: the header ({}) has no type, date/time, latitude and longitude columns; map them with --columns type=…,time=…,lat=…,lon=…",
            header.join(", ")
        )),
    }
}

/// The class and rounds a file's type means (`rounds` from its own column
/// when it has one). "Multiple gunshots" without a count is two rounds: the
/// fewest it can be.
fn class_of(kind: &str, rounds: Option<usize>) -> Option<(&'static str, usize)> {
    let k = kind.to_lowercase();
    let (class, least) = if k.contains("firecracker") && k.contains("gun") {
        ("probable_gunfire", 1)
    } else if k.contains("firework") || k.contains("firecracker") {
        ("fireworks", 1)
    } else if k.contains("multiple") && (k.contains("gun") || k.contains("shot")) {
        ("gunfire", 2)
    } else if k.contains("gun") || k.contains("shot") {
        ("gunfire", 1)
    } else {
        return None;
    };
    Some((class, rounds.filter(|&r| r > 0).unwrap_or(least)))
}

/// A time as files write it; one without a zone is local time in `tz`.
fn parse_time(text: &str, tz: chrono_tz::Tz) -> Option<UtcNanos> {
    let t = text.trim();
    if let Ok(u) = UtcNanos::parse_rfc3339(t) {
        return Some(u);
    }
    const FORMATS: [&str; 8] = [
        "%m/%d/%y %H:%M",
        "%m/%d/%Y %H:%M",
        "%m/%d/%Y %H:%M:%S",
        "%m/%d/%Y %I:%M:%S %p",
        "%m/%d/%Y %I:%M %p",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
    ];
    let local = FORMATS
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(t, f).ok())?;
    // A local time a clock change repeats is taken at its first occurrence.
    // One the spring change skips (02:00–03:00) was written by a clock still
    // on the old offset, so it is read with that offset: an hour earlier,
    // which exists, plus the hour (DC's file has two alerts at 2:18 on
    // 11 March 2007).
    let t = match tz.from_local_datetime(&local).earliest() {
        Some(t) => t.timestamp_nanos_opt()?,
        None => {
            let before = tz
                .from_local_datetime(&(local - chrono::Duration::hours(1)))
                .earliest()?;
            before.timestamp_nanos_opt()? + 3_600_000_000_000
        }
    };
    Some(UtcNanos(t))
}

/// Reads every row: incidents to be, and the rows that cannot be.
pub fn read(
    text: &str,
    mapping: Option<&str>,
    tz: chrono_tz::Tz,
) -> Result<(Columns, Vec<Imported>, Vec<BadRow>), String> {
    let (cols, good, bad) = read_rows(
        text,
        |names| columns(names, mapping),
        |record, cols| row(record, cols, tz),
    )?;
    let good = good
        .into_iter()
        .map(|(line, r)| Imported { line, ..r })
        .collect();
    Ok((cols, good, bad))
}

/// A file's columns, the rows taken (with their line), the bad rows.
type Rows<C, T> = (C, Vec<(u64, T)>, Vec<BadRow>);

/// Reads a CSV file's header into columns with `columns`, and every row
/// with `row`: (line, value) for the rows it takes, a [`BadRow`] for the
/// others.
fn read_rows<C, T>(
    text: &str,
    columns: impl FnOnce(&[&str]) -> Result<C, String>,
    row: impl Fn(&csv::StringRecord, &C) -> Result<T, String>,
) -> Result<Rows<C, T>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| format!("header: {e}"))?
        .iter()
        .map(str::to_string)
        .collect();
    let names: Vec<&str> = header.iter().map(String::as_str).collect();
    let cols = columns(&names)?;
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                bad.push(BadRow {
                    line,
                    why: format!("not CSV: {e}"),
                });
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(|f| f.trim().is_empty()) {
            bad.push(BadRow {
                line,
                why: "empty row".into(),
            });
            continue;
        }
        match row(&record, &cols) {
            Ok(r) => good.push((line, r)),
            Err(why) => bad.push(BadRow { line, why }),
        }
    }
    Ok((cols, good, bad))
}

/// A field of a row, trimmed.
fn field<'r>(record: &'r csv::StringRecord, i: usize, name: &str) -> Result<&'r str, String> {
    record
        .get(i)
        .map(str::trim)
        .ok_or_else(|| format!("no {name} (the row has {} fields)", record.len()))
}

/// A row's place: two numbers that are a latitude and a longitude, and not
/// 0, 0 (a missing place written as zeros).
fn place(record: &csv::StringRecord, lat: usize, lon: usize) -> Result<(f64, f64), String> {
    let number = |i: usize, name: &str| -> Result<f64, String> {
        let v = field(record, i, name)?;
        v.parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| format!("{name} {v:?} is not a number"))
    };
    let (lat, lon) = (number(lat, "latitude")?, number(lon, "longitude")?);
    if !(-90.0..=90.0).contains(&lat)
        || !(-180.0..=180.0).contains(&lon)
        || (lat == 0.0 && lon == 0.0)
    {
        return Err(format!("position {lat}, {lon} is not a place"));
    }
    Ok((lat, lon))
}

/// A row's time, local in `tz` unless it says otherwise.
fn time(record: &csv::StringRecord, i: usize, tz: chrono_tz::Tz) -> Result<UtcNanos, String> {
    let time = field(record, i, "date/time")?;
    parse_time(time, tz).ok_or_else(|| {
        format!(
            "date/time {time:?} is not a time this importer reads (or does not exist in {})",
            tz.name()
        )
    })
}

/// The columns of a 911 call file.
#[derive(Debug, Clone, PartialEq)]
pub struct CallColumns {
    pub time: usize,
    pub lat: usize,
    pub lon: usize,
    pub kind: Option<usize>,
    pub id: Option<usize>,
}

/// A 911 call as read.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedCall {
    pub line: u64,
    pub id: Option<String>,
    pub t: UtcNanos,
    pub kind: String,
    pub lat: f64,
    pub lon: f64,
}

/// Finds a call file's columns by common names (computer-aided dispatch
/// exports and open-data "calls for service" files), or takes `mapping`
/// (roles `time`, `lat`, `lon`, `type`, `id`).
pub fn call_columns(header: &[&str], mapping: Option<&str>) -> Result<CallColumns, String> {
    let names: Vec<String> = header.iter().map(|h| norm(h)).collect();
    let find = |candidates: &[&str]| position(&names, candidates);
    if let Some(mapping) = mapping {
        let roles = mapped(&names, mapping, &["time", "lat", "lon", "type", "id"])?;
        let need = |r: &str| required(&roles, r);
        return Ok(CallColumns {
            time: need("time")?,
            lat: need("lat")?,
            lon: need("lon")?,
            kind: roles.get("type").copied(),
            id: roles.get("id").copied(),
        });
    }
    let time = find(&[
        "call time",
        "call timestamp",
        "call_timestamp",
        "received",
        "time received",
        "call received",
        "date time",
        "datetime",
        "timestamp",
        "time",
        "date",
        "time create",
        "created",
    ]);
    let lat = find(&["latitude", "lat", "y"]);
    let lon = find(&["longitude", "lon", "lng", "long", "x"]);
    match (time, lat, lon) {
        (Some(time), Some(lat), Some(lon)) => Ok(CallColumns {
            time,
            lat,
            lon,
            kind: find(&[
                "call type",
                "type",
                "nature",
                "call description",
                "calldescription",
                "description",
                "type text",
                "incident type",
            ]),
            id: find(&[
                "call id",
                "call number",
                "incident id",
                "incident number",
                "event number",
                "id",
            ]),
        }),
        _ => Err(format!(
            "unknown layout: the header ({}) has no date/time, latitude and longitude columns; map them with --columns time=…,lat=…,lon=…",
            header.join(", ")
        )),
    }
}

/// Reads a 911 call file: the calls, and the rows that are not.
pub fn read_calls(
    text: &str,
    mapping: Option<&str>,
    tz: chrono_tz::Tz,
) -> Result<(Vec<ImportedCall>, Vec<BadRow>), String> {
    let (_, good, bad) = read_rows(
        text,
        |names| call_columns(names, mapping),
        |record, c: &CallColumns| {
            let t = time(record, c.time, tz)?;
            let (lat, lon) = place(record, c.lat, c.lon)?;
            let text_of = |i: Option<usize>| {
                i.and_then(|i| record.get(i))
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
            };
            Ok(ImportedCall {
                line: 0,
                id: text_of(c.id),
                t,
                kind: text_of(c.kind).unwrap_or_default(),
                lat,
                lon,
            })
        },
    )?;
    let calls = good
        .into_iter()
        .map(|(line, c)| ImportedCall { line, ..c })
        .collect();
    Ok((calls, bad))
}

/// The stored call a read one becomes: its id from the file's own id, or,
/// without one, from the file, line, time and place (importing the same file
/// again adds nothing).
pub fn call_row(c: &ImportedCall, file: &str) -> store::CallRow {
    // The file's id with the call's time: a call centre's id is unique, but
    // a column taken for one may be a per-file row number.
    let key = match &c.id {
        Some(id) => format!("id|{id}|{}", c.t.0),
        None => format!("{file}|{}|{}|{}|{}", c.line, c.t.0, c.lat, c.lon),
    };
    store::CallRow {
        id: format!("call-{}", crate::pipeline::short_hash(&key)),
        t_ns: c.t.0,
        lat: c.lat,
        lon: c.lon,
        kind: c.kind.clone(),
        source: format!("{file}:{}", c.line),
    }
}

fn row(record: &csv::StringRecord, c: &Columns, tz: chrono_tz::Tz) -> Result<Imported, String> {
    let kind = field(record, c.kind, "type")?;
    field(record, c.time, "date/time")?;
    let (lat, lon) = place(record, c.lat, c.lon)?;
    let rounds = match c.rounds {
        Some(i) => {
            let v = field(record, i, "rounds")?;
            if v.is_empty() {
                None
            } else {
                Some(
                    v.parse::<usize>()
                        .map_err(|_| format!("rounds {v:?} is not a whole number"))?,
                )
            }
        }
        None => None,
    };
    let (class, rounds) = class_of(kind, rounds).ok_or_else(|| {
        format!("type {kind:?} is not gunfire, fireworks or a gunshot-or-firecracker")
    })?;
    let t = time(record, c.time, tz)?;
    let id =
        c.id.and_then(|i| record.get(i))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
    Ok(Imported {
        line: 0,
        id,
        t,
        kind: kind.to_string(),
        class,
        rounds,
        lat,
        lon,
    })
}

/// The incident an imported alert becomes. Its id depends on the file's
/// layout and the alert's own id (or, without one, its line, time and
/// place), so importing the same file again changes nothing.
pub fn incident(a: &Imported, file: &str, cols: &Columns) -> IncidentDoc {
    let key = match &a.id {
        Some(id) => format!("{}|{id}", cols.layout),
        None => format!(
            "{}|{file}|{}|{}|{}|{}",
            cols.layout, a.line, a.t.0, a.lat, a.lon
        ),
    };
    IncidentDoc {
        id: format!("{ID_PREFIX}{}", crate::pipeline::short_hash(&key)),
        version: 1,
        class: a.class.to_string(),
        // The publisher's decision, not a probability shotfix estimated.
        confidence: 1.0,
        rounds: a.rounds,
        shooters: 1,
        automatic: false,
        first_utc: a.t.to_rfc3339(),
        last_utc: a.t.to_rfc3339(),
        lat: a.lat,
        lon: a.lon,
        err95_m: cols.precision_m,
        address: None,
        address_distance_m: None,
        shots: Vec::new(),
        software: format!("{} import", crate::doc::software()),
        review: None,
        source: Some(SourceDoc {
            file: file.to_string(),
            layout: cols.layout.clone(),
            line: a.line,
            id: a.id.clone(),
            kind: a.kind.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dc_layout_is_recognised_and_read_in_local_time() {
        let text =
            "Coverage Area,Incident ID,Date Time,Type,Longitude-100meter,Latitude-100meter\n\
            WashingtonDC7D,53-3,1/27/06 3:35,Single Gunshot,-77.001,38.861\n\
            WashingtonDC7D,53-348,7/4/06 18:31,Multiple Gunshots,-76.997,38.827\n";
        let (cols, good, bad) = read(text, None, chrono_tz::America::New_York).unwrap();
        assert_eq!(cols.layout, "dc");
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(
            good[0].t,
            UtcNanos::parse_rfc3339("2006-01-27T08:35:00Z").unwrap()
        ); // EST
        assert_eq!(
            good[1].t,
            UtcNanos::parse_rfc3339("2006-07-04T22:31:00Z").unwrap()
        ); // EDT
        assert_eq!((good[0].class, good[0].rounds), ("gunfire", 1));
        assert_eq!((good[1].class, good[1].rounds), ("gunfire", 2));
        assert_eq!((good[0].line, good[1].line), (2, 3));
        assert_eq!(good[1].id.as_deref(), Some("53-348"));
    }

    #[test]
    fn a_local_time_in_the_spring_gap_is_read_on_the_old_offset() {
        let ny = chrono_tz::America::New_York;
        // 2:18 on 11 March 2007 did not exist in New York: 2:18 EST.
        assert_eq!(
            parse_time("3/11/07 2:18", ny),
            UtcNanos::parse_rfc3339("2007-03-11T07:18:00Z").ok()
        );
        // 1:30 on 4 November 2007 happened twice: the first (EDT).
        assert_eq!(
            parse_time("11/4/07 1:30", ny),
            UtcNanos::parse_rfc3339("2007-11-04T05:30:00Z").ok()
        );
        assert_eq!(parse_time("31/4/07 1:30", ny), None);
    }

    #[test]
    fn bad_rows_are_named_by_line_and_the_rest_still_read() {
        let text = "Date,Unique ID,Incident Type Description,Rounds,Latitude,Longitude\n\
            01/02/2024 11:38:00 PM,A1,GUNSHOT OR FIRECRACKER,,41.88,-87.63\n\
            01/02/2024 11:39:00 PM,A2,MULTIPLE GUNSHOTS,5,41.88,-87.63\n\
            not a date,A3,SINGLE GUNSHOT,1,41.88,-87.63\n\
            01/02/2024 11:40:00 PM,A4,DOG BARK,1,41.88,-87.63\n\
            01/02/2024 11:41:00 PM,A5,SINGLE GUNSHOT,1,,-87.63\n\
            01/02/2024 11:42:00 PM,A6,SINGLE GUNSHOT,two,41.88,-87.63\n\
            01/02/2024 11:43:00 PM,A7\n";
        let (cols, good, bad) = read(text, None, chrono_tz::America::Chicago).unwrap();
        assert_eq!(cols.layout, "chicago");
        assert_eq!(good.len(), 2);
        assert_eq!((good[0].class, good[0].rounds), ("probable_gunfire", 1));
        assert_eq!((good[1].class, good[1].rounds), ("gunfire", 5));
        assert_eq!(
            good[0].t,
            UtcNanos::parse_rfc3339("2024-01-03T05:38:00Z").unwrap()
        );
        let lines: Vec<u64> = bad.iter().map(|b| b.line).collect();
        assert_eq!(lines, [4, 5, 6, 7, 8], "{bad:?}");
        assert!(bad[0].why.contains("not a date"), "{bad:?}");
        assert!(bad[1].why.contains("DOG BARK"), "{bad:?}");
        assert!(bad[4].why.contains("no type"), "{bad:?}");
    }

    #[test]
    fn an_unknown_layout_needs_a_mapping() {
        let text = "when,what,n,s,e\n2026-07-04T23:10:00Z,shots fired,3,40.44,-79.99\n";
        let e = read(text, None, chrono_tz::UTC).unwrap_err();
        assert!(e.contains("--columns"), "{e}");
        let (cols, good, bad) = read(
            text,
            Some("type=what,time=when,lat=s,lon=e,rounds=n"),
            chrono_tz::UTC,
        )
        .unwrap();
        assert_eq!(cols.layout, "mapped");
        assert!(bad.is_empty());
        assert_eq!((good[0].class, good[0].rounds), ("gunfire", 3));
        for wrong in [
            "type=what",
            "kind=what,time=when,lat=s,lon=e",
            "type=nope,time=when,lat=s,lon=e",
        ] {
            assert!(read(text, Some(wrong), chrono_tz::UTC).is_err(), "{wrong}");
        }
    }

    #[test]
    fn the_same_alert_gets_the_same_incident_id() {
        let text =
            "Coverage Area,Incident ID,Date Time,Type,Longitude-100meter,Latitude-100meter\n\
            WashingtonDC7D,53-3,1/27/06 3:35,Single Gunshot,-77.001,38.861\n";
        let (cols, good, _) = read(text, None, chrono_tz::America::New_York).unwrap();
        let a = incident(&good[0], "dc.csv", &cols);
        let b = incident(&good[0], "copy-of-dc.csv", &cols);
        assert_eq!(a.id, b.id);
        assert_eq!(a.source.as_ref().unwrap().kind, "Single Gunshot");
        assert_eq!(a.err95_m, 70.0);
    }
}
