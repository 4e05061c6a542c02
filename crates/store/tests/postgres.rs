//! The store on PostgreSQL, held to the same behaviour as on SQLite: every
//! check below is one function taking a [`Fixture`] (a fresh, empty database
//! and its URL), run once on an SQLite file (`sqlite::…`) and once on a fresh
//! PostgreSQL database (`postgres::…`).
//!
//! PostgreSQL: `SHOTFIX_TEST_POSTGRES` names the server and a database to
//! connect to (default `postgres://postgres@127.0.0.1:5432/postgres`). Each test
//! creates its own database `shotfix_test_<pid>_<n>` there and drops it at the
//! end, so parallel tests, parallel runs and reruns never meet. The databases
//! use ICU's `en-US` collation, which orders text unlike SQLite, so a listing
//! whose order depended on the server's locale would fail here. An unreachable
//! server fails the tests: CI provides one (`.ci/run` starts it).
//!
//! Contents (both backends):
//! - migrations: apply once, re-opening is a no-op, concurrent first opens;
//! - sensors: upsert, listing in byte order, exact numbers;
//! - reports: group commit with duplicate reports and pulses, reopening;
//! - pulses: filters by sensor, time and limit, optional fields;
//! - clips: bytes kept exactly, the first clip of a pulse kept;
//! - incidents: versions, filters, an older version never overwrites;
//! - alerts: at most one first alert per incident, also between two writers
//!   racing on two connections; deliveries created with their alert;
//! - outbox: due deliveries, delivered, failed and retried, dead;
//! - open incidents with their pulses.
//!
//! PostgreSQL only: the column types the rewrite gives, a failed batch leaves
//! nothing behind, and open errors (bad URL, no server) are one-line errors.

#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use store::{
    AuditEntry, AuditFilter, Change, ClipRow, Db, IncidentFilter, IncidentRow, IncidentSave,
    OutboxCounts, PulseFilter, PulseRow, ReportOutcome, ReportRow, RetentionCutoffs, SensorRow,
    StoreError, MIGRATIONS,
};

// ---- fixtures ---------------------------------------------------------------

const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A fresh, empty database and the URL that opens it.
struct Fixture {
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Database { admin: String, name: String },
}

static NEXT_DATABASE: AtomicUsize = AtomicUsize::new(0);

fn admin_url() -> String {
    std::env::var("SHOTFIX_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_POSTGRES.to_string())
}

fn admin_client(admin: &str) -> ::postgres::Client {
    let mut config: ::postgres::Config = admin
        .parse()
        .unwrap_or_else(|e| panic!("SHOTFIX_TEST_POSTGRES={admin}: not a PostgreSQL URL: {e}"));
    config.connect_timeout(Duration::from_secs(10));
    config.connect(::postgres::NoTls).unwrap_or_else(|e| {
        panic!(
            "PostgreSQL at {admin} is unreachable ({}): the store's PostgreSQL tests need a \
             server. Start it (pg_ctlcluster --skip-systemctl-redirect <version> main start) \
             or point SHOTFIX_TEST_POSTGRES at one.",
            causes(&e)
        )
    })
}

/// An error with its causes, on one line.
fn causes(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s = format!("{s}: {c}");
        cause = c.source();
    }
    s
}

/// `url` with its database replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        // key=value form: a later key wins.
        return format!("{url} dbname={name}");
    };
    let (base, query) = url.split_at(url.find('?').unwrap_or(url.len()));
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    format!("{}/{name}{query}", &base[..authority_end])
}

impl Fixture {
    fn sqlite() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        Fixture {
            url: format!("sqlite:{}", dir.path().join("store.db").display()),
            cleanup: Cleanup::Dir(dir),
        }
    }

    fn postgres() -> Fixture {
        let admin = admin_url();
        let mut client = admin_client(&admin);
        let name = format!(
            "shotfix_test_{}_{}",
            std::process::id(),
            NEXT_DATABASE.fetch_add(1, Ordering::SeqCst)
        );
        // Left over by an earlier run that died with the same process id.
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .unwrap();
        let icu = client.batch_execute(&format!(
            "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' \
             LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'"
        ));
        if let Err(e) = icu {
            eprintln!("note: no ICU collation on this server ({e}); using its default");
            client
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .unwrap();
        }
        Fixture {
            url: with_database(&admin, &name),
            cleanup: Cleanup::Database { admin, name },
        }
    }

    fn open(&self) -> Db {
        Db::open(&self.url).unwrap_or_else(|e| panic!("{e}"))
    }

    fn is_postgres(&self) -> bool {
        matches!(self.cleanup, Cleanup::Database { .. })
    }

    /// Another fresh database on the same backend.
    fn another(&self) -> Fixture {
        if self.is_postgres() {
            Fixture::postgres()
        } else {
            Fixture::sqlite()
        }
    }

    /// Runs SQL straight on the database, behind the store's back (tampering).
    fn raw(&self, sql: &str) {
        match self.url.strip_prefix("sqlite:") {
            Some(path) => rusqlite::Connection::open(path)
                .unwrap()
                .execute_batch(sql)
                .unwrap(),
            None => ::postgres::Client::connect(&self.url, ::postgres::NoTls)
                .unwrap()
                .batch_execute(sql)
                .unwrap(),
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Cleanup::Database { admin, name } = &self.cleanup {
            let dropped =
                ::postgres::Client::connect(admin, ::postgres::NoTls).and_then(|mut c| {
                    c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                });
            if let Err(e) = dropped {
                eprintln!("warning: could not drop test database {name}: {e}");
            }
        }
    }
}

/// Runs each named check once per backend.
macro_rules! on_both_backends {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(#[test]
            fn $check() {
                super::$check(&super::Fixture::sqlite());
            })*
        }
        mod postgres {
            $(#[test]
            fn $check() {
                super::$check(&super::Fixture::postgres());
            })*
        }
    };
}

on_both_backends!(
    migrations_apply_once_and_reopening_changes_nothing,
    concurrent_first_opens_migrate_once,
    sensors_are_upserted_and_listed_in_byte_order,
    reports_are_stored_once_and_survive_reopening,
    pulses_filter_by_sensor_time_and_limit,
    clips_keep_their_bytes,
    incidents_keep_every_version_and_filter,
    an_incident_is_alerted_once_and_every_alert_has_its_deliveries,
    racing_writers_alert_an_incident_once,
    the_outbox_retries_until_delivered_or_dead,
    open_incidents_carry_their_pulses,
    the_history_chain_catches_edits_deletions_and_reorders,
    retention_deletes_what_expired_keeps_evidence_and_logs_it,
);

// ---- rows -------------------------------------------------------------------

fn pulse(report: &str, sensor: &str, id: &str, t_ns: i64) -> PulseRow {
    PulseRow {
        sensor: sensor.into(),
        id: id.into(),
        t_ns,
        snr_db: Some(20.0),
        peak_db_spl: None,
        report: report.into(),
        received_ns: 1,
        extra_json: None,
    }
}

fn report(id: &str, sensor: &str, pulses: &[(&str, i64)]) -> ReportRow {
    ReportRow {
        id: id.into(),
        sensor: sensor.into(),
        received_ns: 1,
        pulses: pulses
            .iter()
            .map(|&(p, t)| pulse(id, sensor, p, t))
            .collect(),
        clips: vec![],
    }
}

fn incident(id: &str, version: i64) -> IncidentRow {
    IncidentRow {
        id: id.into(),
        version,
        first_ns: 10,
        last_ns: 20,
        lat: 40.0,
        lon: -80.0,
        class: "unknown".into(),
        confidence: 0.0,
        rounds: 1,
        shooters: 1,
        automatic: false,
        updated_ns: 30,
        doc: format!("{{\"v\":{version}}}"),
    }
}

fn save(incident: IncidentRow, alert: Option<&str>, targets: &[&str]) -> IncidentSave {
    IncidentSave {
        alert_doc: format!(
            "{{\"alert\":\"{}\",\"v\":{}}}",
            incident.id, incident.version
        ),
        incident,
        pulses: vec![("S1".into(), "p1".into())],
        alert: alert.map(Into::into),
        targets: targets.iter().map(|&t| t.into()).collect(),
        change: Change::machine(),
        strict: false,
    }
}

// ---- checks -----------------------------------------------------------------

fn migrations_apply_once_and_reopening_changes_nothing(f: &Fixture) {
    let known = MIGRATIONS.last().unwrap().version;
    {
        let mut db = f.open();
        assert_eq!(db.schema_version().unwrap(), known);
        db.upsert_sensor(&SensorRow {
            id: "S1".into(),
            key_hex: "00".into(),
            lat: 1.0,
            lon: 2.0,
            alt_m: 3.0,
        })
        .unwrap();
    }
    // A migration applied again would fail on CREATE TABLE; the data stays.
    for _ in 0..2 {
        let db = f.open();
        assert_eq!(db.schema_version().unwrap(), known);
        assert_eq!(db.sensors().unwrap().len(), 1);
    }
}

fn concurrent_first_opens_migrate_once(f: &Fixture) {
    let n = 4;
    let barrier = Arc::new(Barrier::new(n));
    let known = MIGRATIONS.last().unwrap().version;
    let opens: Vec<_> = (0..n)
        .map(|_| {
            let (barrier, url) = (Arc::clone(&barrier), f.url.clone());
            thread::spawn(move || {
                barrier.wait();
                Db::open(&url).map(|db| db.schema_version())
            })
        })
        .collect();
    for open in opens {
        let version = open.join().unwrap().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(version.unwrap(), known);
    }
}

fn sensors_are_upserted_and_listed_in_byte_order(f: &Fixture) {
    let mut db = f.open();
    let sensor = |id: &str, lat: f64| SensorRow {
        id: id.into(),
        key_hex: format!("{id}-key"),
        lat,
        lon: -79.995_886_4,
        alt_m: 0.1 + 0.2,
    };
    for id in ["s0", "S1", "a", "S-2", "É"] {
        db.upsert_sensor(&sensor(id, 40.440_624_8)).unwrap();
    }
    let mut moved = sensor("S1", 40.5);
    moved.key_hex = "new".into();
    db.upsert_sensor(&moved).unwrap();
    let sensors = db.sensors().unwrap();
    let ids: Vec<&str> = sensors.iter().map(|s| s.id.as_str()).collect();
    // Byte order (SQLite's BINARY), not a locale's (en-US: a É S-2 s0 S1).
    assert_eq!(ids, ["S-2", "S1", "a", "s0", "É"]);
    assert_eq!(sensors[1], moved);
    assert_eq!(sensors[0], sensor("S-2", 40.440_624_8), "numbers exactly");
}

fn reports_are_stored_once_and_survive_reopening(f: &Fixture) {
    {
        let mut db = f.open();
        assert_eq!(db.latest_pulse_ns().unwrap(), None);
        let out = db
            .insert_reports(&[
                report("r1", "S1", &[("p1", 5), ("p2", 3)]),
                report("r1", "S1", &[("p1", 5)]),
                report("r2", "S1", &[("p2", 3), ("p3", 9)]),
            ])
            .unwrap();
        assert_eq!(
            out,
            [
                ReportOutcome::Accepted {
                    pulses: 2,
                    duplicate_pulses: 0
                },
                ReportOutcome::Duplicate,
                ReportOutcome::Accepted {
                    pulses: 1,
                    duplicate_pulses: 1
                },
            ]
        );
        // A retry in a later batch changes nothing.
        assert_eq!(
            db.insert_reports(&[report("r2", "S1", &[("p4", 1)])])
                .unwrap(),
            [ReportOutcome::Duplicate]
        );
        assert_eq!(db.insert_reports(&[]).unwrap(), []);
    }
    let db = f.open();
    assert_eq!(db.pulse_count().unwrap(), 3);
    let pulses = db.pulses(&PulseFilter::default()).unwrap();
    let ids: Vec<&str> = pulses.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["p2", "p1", "p3"], "time order");
    assert_eq!(pulses[0].report, "r1", "the first report that carried it");
    assert_eq!(db.latest_pulse_ns().unwrap(), Some(9));
}

fn pulses_filter_by_sensor_time_and_limit(f: &Fixture) {
    let mut db = f.open();
    let mut r1 = report("r1", "S1", &[("a", 100), ("b", 200), ("c", 300)]);
    r1.pulses[1].snr_db = None;
    r1.pulses[1].peak_db_spl = Some(131.25);
    r1.pulses[1].extra_json = Some(r#"{"rise_ms":0.4}"#.into());
    r1.pulses[1].received_ns = i64::MAX;
    let r2 = report("r2", "S2", &[("a", 200), ("z", i64::MIN + 1)]);
    db.insert_reports(&[r1.clone(), r2]).unwrap();

    let all = db.pulses(&PulseFilter::default()).unwrap();
    let keys: Vec<(&str, &str)> = all
        .iter()
        .map(|p| (p.sensor.as_str(), p.id.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("S2", "z"),
            ("S1", "a"),
            ("S1", "b"),
            ("S2", "a"),
            ("S1", "c")
        ],
        "time, then sensor, then id"
    );
    assert_eq!(all[2], r1.pulses[1], "every field round-trips");

    let by = |sensor: Option<&str>, since: Option<i64>, until: Option<i64>, limit: usize| {
        db.pulses(&PulseFilter {
            sensor: sensor.map(Into::into),
            since_ns: since,
            until_ns: until,
            limit,
        })
        .unwrap()
        .into_iter()
        .map(|p| format!("{}/{}", p.sensor, p.id))
        .collect::<Vec<_>>()
    };
    assert_eq!(by(Some("S1"), None, None, 0), ["S1/a", "S1/b", "S1/c"]);
    assert_eq!(by(None, Some(200), Some(300), 0), ["S1/b", "S2/a", "S1/c"]);
    assert_eq!(by(None, Some(200), Some(200), 0), ["S1/b", "S2/a"]);
    assert_eq!(by(Some("S2"), Some(150), None, 0), ["S2/a"]);
    assert_eq!(by(None, None, None, 2), ["S2/z", "S1/a"]);
    assert_eq!(by(Some("S3"), None, None, 0), Vec::<String>::new());
}

fn clips_keep_their_bytes(f: &Fixture) {
    let mut db = f.open();
    let wav: Vec<u8> = (0..=255u8).chain([0, 0, 255]).collect();
    let mut r1 = report("r1", "S1", &[("p1", 1)]);
    r1.clips = vec![ClipRow {
        sensor: "S1".into(),
        pulse: "p1".into(),
        wav: wav.clone(),
    }];
    let mut r2 = report("r2", "S1", &[("p1", 1)]);
    r2.clips = vec![ClipRow {
        sensor: "S1".into(),
        pulse: "p1".into(),
        wav: b"RIFF other".to_vec(),
    }];
    db.insert_reports(&[r1, r2]).unwrap();
    assert_eq!(
        db.clip("S1", "p1").unwrap(),
        Some(wav),
        "the first clip kept"
    );
    assert_eq!(db.clip("S1", "p2").unwrap(), None);
    assert_eq!(db.clip("S2", "p1").unwrap(), None);
}

fn incidents_keep_every_version_and_filter(f: &Fixture) {
    let mut db = f.open();
    for v in [2, 1, 3, 3] {
        db.save_incident(&save(incident("I1", v), None, &[]))
            .unwrap();
    }
    // Version 1 arrived late and is kept as history, never as the current state.
    let current = db.incident("I1").unwrap().unwrap();
    assert_eq!(current, incident("I1", 3));
    let versions = db.incident_versions("I1").unwrap();
    assert_eq!(
        versions,
        [
            (1, 30, "{\"v\":1}".to_string()),
            (2, 30, "{\"v\":2}".to_string()),
            (3, 30, "{\"v\":3}".to_string())
        ]
    );
    assert_eq!(db.incident("I9").unwrap(), None);
    assert_eq!(db.incident_versions("I9").unwrap(), []);

    let mut other = incident("I2", 1);
    other.first_ns = 1_000;
    other.last_ns = 2_000;
    other.lat = -33.9;
    other.lon = 18.4;
    other.class = "firework".into();
    other.confidence = 0.875;
    other.automatic = true;
    other.rounds = 12;
    other.shooters = 2;
    db.save_incident(&save(other.clone(), None, &[])).unwrap();

    let ids = |f: IncidentFilter| {
        db.incidents(&f)
            .unwrap()
            .into_iter()
            .map(|i| i.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(IncidentFilter::default()), ["I2", "I1"], "newest first");
    assert_eq!(db.incidents(&IncidentFilter::default()).unwrap()[0], other);
    let since = |s| IncidentFilter {
        since_ns: Some(s),
        ..IncidentFilter::default()
    };
    assert_eq!(ids(since(20)), ["I2", "I1"], "an incident ending at since");
    assert_eq!(ids(since(21)), ["I2"]);
    assert_eq!(
        ids(IncidentFilter {
            until_ns: Some(999),
            ..IncidentFilter::default()
        }),
        ["I1"]
    );
    assert_eq!(
        ids(IncidentFilter {
            bbox: Some([-81.0, 39.0, -79.0, 41.0]),
            ..IncidentFilter::default()
        }),
        ["I1"]
    );
    assert_eq!(
        ids(IncidentFilter {
            class: Some("firework".into()),
            ..IncidentFilter::default()
        }),
        ["I2"]
    );
    assert_eq!(
        ids(IncidentFilter {
            limit: 1,
            ..IncidentFilter::default()
        }),
        ["I2"]
    );
}

fn an_incident_is_alerted_once_and_every_alert_has_its_deliveries(f: &Fixture) {
    let mut db = f.open();
    let targets = ["http://a", "http://b"];
    let first = db
        .save_incident(&save(incident("I1", 1), Some("alert"), &targets))
        .unwrap();
    assert!(first.is_some());
    // The same version again (a restart redoing its work): no second alert.
    assert_eq!(
        db.save_incident(&save(incident("I1", 1), Some("alert"), &targets))
            .unwrap(),
        None
    );
    // A second first alert under a new version is refused too.
    assert_eq!(
        db.save_incident(&save(incident("I1", 2), Some("alert"), &targets))
            .unwrap(),
        None
    );
    let update = db
        .save_incident(&save(incident("I1", 3), Some("update"), &targets))
        .unwrap();
    assert!(update > first);
    let alerts = db.alerts_after(0, 0).unwrap();
    assert_eq!(
        alerts
            .iter()
            .map(|a| (a.kind.as_str(), a.version))
            .collect::<Vec<_>>(),
        [("alert", 1), ("update", 3)]
    );
    assert_eq!(Some(alerts[0].seq), first);
    assert_eq!(alerts[0].doc, "{\"alert\":\"I1\",\"v\":1}");
    assert_eq!(alerts[0].created_ns, 30);
    assert_eq!(db.alerts_after(alerts[0].seq, 0).unwrap(), alerts[1..]);
    assert_eq!(db.alerts_after(0, 1).unwrap(), alerts[..1]);
    assert_eq!(db.incident("I1").unwrap().unwrap().version, 3);
    assert_eq!(db.incident_versions("I1").unwrap().len(), 3);
    // Two alerts × two targets, each carrying its alert's document.
    let due = db.due_deliveries(i64::MAX, 0).unwrap();
    assert_eq!(
        due.iter()
            .map(|d| (d.alert_seq, d.target.as_str(), d.doc.as_str()))
            .collect::<Vec<_>>(),
        [
            (alerts[0].seq, "http://a", alerts[0].doc.as_str()),
            (alerts[0].seq, "http://b", alerts[0].doc.as_str()),
            (alerts[1].seq, "http://a", alerts[1].doc.as_str()),
            (alerts[1].seq, "http://b", alerts[1].doc.as_str()),
        ]
    );
}

fn racing_writers_alert_an_incident_once(f: &Fixture) {
    let rounds = 25;
    let writers = 2;
    let barrier = Arc::new(Barrier::new(writers));
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let mut db = f.open();
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                (0..rounds)
                    .map(|n| {
                        // Different versions, so only "one first alert per
                        // incident" stands between the two.
                        let s = save(
                            incident(&format!("I{n}"), w as i64 + 1),
                            Some("alert"),
                            &["http://a"],
                        );
                        barrier.wait();
                        db.save_incident(&s).unwrap_or_else(|e| panic!("{e}"))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let results: Vec<Vec<Option<i64>>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for n in 0..rounds {
        let won = results.iter().filter(|r| r[n].is_some()).count();
        assert_eq!(won, 1, "incident I{n}: {won} first alerts");
    }
    let db = f.open();
    let alerts = db.alerts_after(0, 0).unwrap();
    assert_eq!(alerts.len(), rounds);
    assert!(alerts.iter().all(|a| a.kind == "alert"));
    // Every alert has its delivery, and only alerts that exist have one.
    assert_eq!(
        db.outbox_counts().unwrap(),
        OutboxCounts {
            pending: rounds as i64,
            delivered: 0,
            dead: 0
        }
    );
}

fn the_outbox_retries_until_delivered_or_dead(f: &Fixture) {
    let mut db = f.open();
    assert_eq!(db.outbox_counts().unwrap(), OutboxCounts::default());
    db.save_incident(&save(
        incident("I1", 1),
        Some("alert"),
        &["http://a", "http://b", "http://c"],
    ))
    .unwrap();
    let due = db.due_deliveries(30, 0).unwrap();
    assert_eq!(due.len(), 3);
    assert!(due.iter().all(|d| d.attempts == 0 && d.next_ns == 30));
    assert_eq!(
        db.due_deliveries(29, 0).unwrap(),
        [],
        "not due before the alert"
    );
    assert_eq!(db.due_deliveries(30, 2).unwrap(), due[..2]);

    db.delivered(due[0].id, 100).unwrap();
    db.delivery_failed(due[1].id, 1_000, false, "timeout")
        .unwrap();
    db.delivery_failed(due[2].id, 500, false, "503").unwrap();
    assert_eq!(
        db.outbox_counts().unwrap(),
        OutboxCounts {
            pending: 2,
            delivered: 1,
            dead: 0
        }
    );
    assert_eq!(db.due_deliveries(499, 0).unwrap(), []);
    // Retried in next_ns order, attempts counted.
    let retry = db.due_deliveries(i64::MAX, 0).unwrap();
    assert_eq!(
        retry
            .iter()
            .map(|d| (d.id, d.attempts, d.next_ns))
            .collect::<Vec<_>>(),
        [(due[2].id, 1, 500), (due[1].id, 1, 1_000)]
    );
    db.delivery_failed(due[2].id, i64::MAX, true, "410 Gone")
        .unwrap();
    db.delivered(due[1].id, 2_000).unwrap();
    assert_eq!(
        db.outbox_counts().unwrap(),
        OutboxCounts {
            pending: 0,
            delivered: 2,
            dead: 1
        }
    );
    assert_eq!(db.due_deliveries(i64::MAX, 0).unwrap(), []);
}

fn open_incidents_carry_their_pulses(f: &Fixture) {
    let mut db = f.open();
    let mut old = incident("old", 1);
    old.first_ns = 0;
    old.last_ns = 5;
    let mut s = save(old, None, &[]);
    s.pulses = vec![("S9".into(), "q".into())];
    db.save_incident(&s).unwrap();
    let mut s = save(incident("I1", 1), None, &[]);
    s.pulses = vec![
        ("S2".into(), "p1".into()),
        ("S1".into(), "p2".into()),
        ("S1".into(), "p1".into()),
    ];
    db.save_incident(&s).unwrap();
    // A pulse taken over by another incident moves with it.
    let mut s = save(incident("I2", 1), None, &[]);
    s.pulses = vec![("S2".into(), "p1".into())];
    db.save_incident(&s).unwrap();

    let open = db.open_incidents(10).unwrap();
    let summary: Vec<(String, Vec<(String, String)>)> =
        open.into_iter().map(|(i, p)| (i.id, p)).collect();
    let keys = |k: &[(&str, &str)]| -> Vec<(String, String)> {
        k.iter().map(|&(s, p)| (s.into(), p.into())).collect()
    };
    assert_eq!(
        summary,
        [
            ("I1".to_string(), keys(&[("S1", "p1"), ("S1", "p2")])),
            ("I2".to_string(), keys(&[("S2", "p1")])),
        ]
    );
    assert_eq!(db.open_incidents(0).unwrap().len(), 3);
    assert_eq!(db.open_incidents(21).unwrap(), []);
}

// ---- PostgreSQL only --------------------------------------------------------

#[test]
fn postgres_columns_have_the_types_the_client_maps() {
    let f = Fixture::postgres();
    drop(f.open());
    let Cleanup::Database { admin, name } = &f.cleanup else {
        unreachable!()
    };
    let mut client = admin_client(&with_database(admin, name));
    let columns = client
        .query(
            "SELECT table_name::text, column_name::text, data_type::text, collation_name::text
             FROM information_schema.columns WHERE table_schema = current_schema()
             ORDER BY table_name, column_name",
            &[],
        )
        .unwrap();
    assert!(columns.len() > 50, "{} columns", columns.len());
    for c in &columns {
        let (table, column, ty): (String, String, String) = (c.get(0), c.get(1), c.get(2));
        let collation: Option<String> = c.get(3);
        assert!(
            ["bigint", "double precision", "text", "bytea", "boolean"].contains(&ty.as_str()),
            "{table}.{column} is {ty}"
        );
        if ty == "text" {
            assert_eq!(collation.as_deref(), Some("C"), "{table}.{column}");
        }
    }
}

#[test]
fn postgres_a_failed_batch_leaves_nothing_behind() {
    let f = Fixture::postgres();
    assert!(f.is_postgres());
    let mut db = f.open();
    // PostgreSQL text cannot hold NUL: the second report fails after the first
    // was written in the same transaction.
    let bad = report("r2", "S1\0", &[("p9", 9)]);
    let err = db
        .insert_reports(&[report("r1", "S1", &[("p1", 1)]), bad])
        .unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(
            err,
            StoreError::Sql {
                operation: "store report",
                ..
            }
        ),
        "{message}"
    );
    assert!(!message.contains('\n'), "{message}");
    assert!(
        message.contains("shotfix_test_"),
        "names the database: {message}"
    );
    assert_eq!(db.pulse_count().unwrap(), 0, "the whole batch rolled back");
    // The connection is usable again, and r1 was never stored.
    assert_eq!(
        db.insert_reports(&[report("r1", "S1", &[("p1", 1)])])
            .unwrap(),
        [ReportOutcome::Accepted {
            pulses: 1,
            duplicate_pulses: 0
        }]
    );
}

#[test]
fn postgres_open_errors_are_one_line_errors() {
    // Nothing listens on port 1; the password must not reach the message.
    let err = Db::open("postgres://shot:s3cret@127.0.0.1:1/shotfix").unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, StoreError::Open { .. }), "{message}");
    assert!(
        message.starts_with("cannot open database postgres://shot:***@127.0.0.1:1/shotfix: "),
        "{message}"
    );
    assert!(
        !message.contains("s3cret") && !message.contains('\n'),
        "{message}"
    );

    for bad in [
        "postgres://postgres@127.0.0.1:notaport/x",
        "postgresql://postgres@127.0.0.1:5432/x?sslmode=bogus",
        "postgres://",
    ] {
        let err = Db::open(bad).unwrap_err().to_string();
        assert!(err.starts_with("cannot open database "), "{bad}: {err}");
        assert!(!err.contains('\n'), "{err}");
    }

    // A database that does not exist, on a server that does.
    let missing = with_database(&admin_url(), "shotfix_no_such_database");
    let err = Db::open(&missing).unwrap_err().to_string();
    assert!(err.contains("3D000"), "{err}");
}

#[test]
fn sqlite_urls_and_paths_open_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let p = path.display().to_string();
    Db::open(&p)
        .unwrap()
        .insert_reports(&[report("r1", "S1", &[("p1", 1)])])
        .unwrap();
    for url in [format!("sqlite:{p}"), format!("sqlite://{p}")] {
        assert_eq!(Db::open(&url).unwrap().pulse_count().unwrap(), 1, "{url}");
    }
    assert!(Db::open("sqlite:").is_err());
    assert!(Db::open("").is_err());
}

// ---- history and retention ----------------------------------------------------

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// Two incidents, four versions, one of them a reviewer's.
fn chained(f: &Fixture) -> Db {
    let mut db = f.open();
    let t = now();
    for (id, version, change) in [
        ("I1", 1, Change::machine()),
        ("I2", 1, Change::machine()),
        (
            "I1",
            2,
            Change {
                actor: "user:rita".into(),
                action: "reclassify".into(),
                reason: Some("firecracker wrapper found at the scene".into()),
            },
        ),
        ("I2", 2, Change::machine()),
    ] {
        let mut row = incident(id, version);
        row.updated_ns = t + version;
        row.last_ns = t;
        row.doc = format!("{{\"id\":\"{id}\",\"v\":{version},\"class\":\"gunfire\"}}");
        let mut s = save(row, None, &[]);
        s.change = change;
        db.save_incident(&s).unwrap();
    }
    db
}

fn the_history_chain_catches_edits_deletions_and_reorders(f: &Fixture) {
    let db = chained(f);
    let ok = db.verify_history().unwrap();
    assert_eq!((ok.entries, ok.broken.as_deref()), (4, None));
    let history = db.incident_history("I1").unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].actor, "machine", "the machine result is kept");
    assert_eq!(
        history[1].reason.as_deref(),
        Some("firecracker wrapper found at the scene")
    );
    drop(db);

    // Each tampering on a fresh copy of the same history; verify names the entry.
    let cases: [(&str, &str); 8] = [
        (
            "UPDATE history SET doc = REPLACE(doc, 'gunfire', 'fireworks') WHERE seq = 3",
            "history entry 3",
        ),
        (
            "UPDATE history SET actor = 'machine' WHERE seq = 3",
            "history entry 3",
        ),
        (
            "UPDATE history SET reason = 'nothing found' WHERE seq = 3",
            "history entry 3",
        ),
        ("DELETE FROM history WHERE seq = 2", "history entry 3"),
        (
            "UPDATE history SET seq = -1 WHERE seq = 2; UPDATE history SET seq = 2 WHERE seq = 3;
             UPDATE history SET seq = 3 WHERE seq = -1",
            "history entry 2",
        ),
        ("DELETE FROM history WHERE seq = 4", "incident I2 version 2"),
        (
            "UPDATE incident_versions SET doc = '{}' WHERE incident = 'I1' AND version = 1",
            "incident I1 version 1",
        ),
        (
            "UPDATE incidents SET doc = '{}' WHERE id = 'I2'",
            "incident I2",
        ),
    ];
    for (sql, names) in cases {
        let fresh = f.another();
        drop(chained(&fresh));
        fresh.raw(sql);
        let v = fresh.open().verify_history().unwrap();
        let broken = v.broken.unwrap_or_else(|| panic!("not caught: {sql}"));
        assert!(broken.starts_with(names), "{sql}: {broken}");
    }
}

fn retention_deletes_what_expired_keeps_evidence_and_logs_it(f: &Fixture) {
    let mut db = chained(f);
    const MARKER: &[u8] = b"VOICE-OF-A-PASSER-BY";
    let clip = |pulse: &str| ClipRow {
        sensor: "S1".into(),
        pulse: pulse.into(),
        wav: [b"RIFF".as_slice(), MARKER, pulse.as_bytes()].concat(),
    };
    // p1 is I1's evidence (see `save`); p2 and p3 belong to no incident.
    let mut r = report("r1", "S1", &[("p1", 100), ("p2", 100), ("p3", 900)]);
    r.clips = vec![clip("p1"), clip("p2"), clip("p3")];
    // Ages count from when the server stored them.
    for p in &mut r.pulses {
        p.received_ns = p.t_ns;
    }
    db.insert_reports(&[r]).unwrap();
    db.append_audit(&[AuditEntry {
        seq: 0,
        t_ns: 50,
        actor: "user:ann".into(),
        role: "investigator".into(),
        action: "read.audio".into(),
        target: "S1/p2".into(),
        detail: None,
    }])
    .unwrap();

    // Clips and pulses stored before t = 500 expire; incidents and audit are kept.
    let keep_incidents = RetentionCutoffs {
        now_ns: 1_000,
        pulses_before_ns: Some(500),
        clips_before_ns: Some(500),
        incidents_before_ns: None,
        audit_before_ns: None,
    };
    let d = db.enforce_retention(&keep_incidents).unwrap();
    assert_eq!((d.pulses, d.clips, d.incidents.len()), (1, 1, 0));
    assert!(d.log_truncated);
    assert_eq!(db.clip("S1", "p2").unwrap(), None, "expired clip gone");
    assert!(
        db.clip("S1", "p1").unwrap().is_some(),
        "an incident's evidence stays"
    );
    assert!(db.clip("S1", "p3").unwrap().is_some(), "not yet expired");
    assert_eq!(db.pulse_count().unwrap(), 2);

    // What officers found, a miss and a 911 call: they go with the incidents
    // (the miss and the call by their own time); a later miss stays.
    let outcome = |found: &str| store::OutcomeRow {
        seq: 0,
        incident: "I1".into(),
        recorded_ns: 70,
        actor: "token:cad".into(),
        found: found.into(),
        officer_minutes: Some(20.0),
        note: None,
    };
    assert_eq!(db.add_outcome(&outcome("no_evidence")).unwrap(), 1);
    assert_eq!(db.add_outcome(&outcome("casings")).unwrap(), 2);
    let latest = db.latest_outcomes().unwrap();
    assert_eq!((latest.len(), latest[0].found.as_str()), (1, "casings"));
    let miss = |t_ns: i64| store::MissRow {
        seq: 0,
        t_ns,
        lat: 40.44,
        lon: -80.0,
        recorded_ns: 70,
        actor: "token:cad".into(),
        note: Some("victim at the hospital".into()),
    };
    assert_eq!(db.add_miss(&miss(now())).unwrap(), 1);
    assert_eq!(db.add_miss(&miss(now() + 1_000_000_000_000)).unwrap(), 2);
    let call = store::CallRow {
        id: "c1".into(),
        t_ns: now(),
        lat: 40.44,
        lon: -80.0,
        kind: "SHOTS FIRED".into(),
        source: "calls.csv:2".into(),
    };
    assert_eq!(
        db.save_calls(&[call.clone(), call]).unwrap(),
        1,
        "a call once"
    );

    // Now the incidents expire too, and the audit record of t = 50.
    let all = RetentionCutoffs {
        now_ns: now() + 1_000_000,
        incidents_before_ns: Some(now() + 1_000),
        audit_before_ns: Some(60),
        ..keep_incidents
    };
    let d = db.enforce_retention(&all).unwrap();
    assert_eq!(d.incidents, ["I1", "I2"]);
    assert_eq!(
        (d.history_redacted, d.pulses, d.clips, d.audit),
        (4, 1, 1, 1)
    );
    assert_eq!((d.outcomes, d.misses, d.calls), (2, 1, 1));
    assert!(db.outcomes_of("I1").unwrap().is_empty());
    assert_eq!(
        db.misses(0, i64::MAX).unwrap().len(),
        1,
        "the later miss stays"
    );
    assert!(db.calls(0, i64::MAX).unwrap().is_empty());
    assert!(db.incident("I1").unwrap().is_none());
    assert!(db.incident_versions("I1").unwrap().is_empty());
    assert_eq!(
        db.clip("S1", "p1").unwrap(),
        None,
        "evidence goes with its incident"
    );
    let history = db.incident_history("I1").unwrap();
    assert!(history
        .iter()
        .all(|e| e.doc.is_none() && e.reason.is_none()));
    let v = db.verify_history().unwrap();
    assert_eq!(
        (v.broken, v.entries, v.redacted),
        (None, 4, 4),
        "redaction keeps the chain"
    );

    // Every deletion is logged.
    let log = db
        .audit(&AuditFilter {
            action_prefix: Some("retention.".into()),
            ..AuditFilter::default()
        })
        .unwrap();
    let kinds: Vec<&str> = log.iter().map(|e| e.target.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "clips",
            "pulses",
            "incidents",
            "clips",
            "pulses",
            "audit",
            "outcomes",
            "misses",
            "calls"
        ]
    );
    assert!(log[2].detail.as_deref().unwrap().contains("ids: I1,I2"));

    // And the bytes are gone from the files, not only from the tables.
    if let Some(path) = f.url.strip_prefix("sqlite:") {
        drop(db);
        for file in [path.to_string(), format!("{path}-wal")] {
            if let Ok(bytes) = std::fs::read(&file) {
                let found = bytes.windows(MARKER.len()).filter(|w| *w == MARKER).count();
                assert_eq!(found, 1, "{file}: only p3's clip may remain");
            }
        }
    }
}
