//! Store tests on a real SQLite file: migrations, group commit, duplicates, the
//! one-alert-per-incident rule, the outbox, and durability across reopening.

#![allow(clippy::unwrap_used)]

use super::*;

fn report(id: &str, sensor: &str, pulses: &[(&str, i64)]) -> ReportRow {
    ReportRow {
        id: id.into(),
        sensor: sensor.into(),
        received_ns: 1,
        pulses: pulses
            .iter()
            .map(|&(p, t)| PulseRow {
                sensor: sensor.into(),
                id: p.into(),
                t_ns: t,
                snr_db: Some(20.0),
                peak_db_spl: None,
                report: id.into(),
                received_ns: 1,
                extra_json: None,
            })
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

#[test]
fn reports_are_stored_once_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let mut db = Db::open_sqlite(&path).unwrap();
        let out = db
            .insert_reports(&[
                report("r1", "S1", &[("p1", 5), ("p2", 3)]),
                report("r1", "S1", &[("p1", 5)]),
                report("r2", "S1", &[("p2", 3), ("p3", 9)]),
            ])
            .unwrap();
        assert_eq!(
            out,
            vec![
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
    }
    let db = Db::open_sqlite(&path).unwrap();
    assert_eq!(db.schema_version().unwrap(), MIGRATIONS.len() as i64);
    let pulses = db.pulses(&PulseFilter::default()).unwrap();
    let ids: Vec<&str> = pulses.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["p2", "p1", "p3"], "time order");
    assert_eq!(db.latest_pulse_ns().unwrap(), Some(9));
}

#[test]
fn an_incident_is_alerted_once_and_every_alert_has_its_deliveries() {
    let mut db = Db::open_in_memory().unwrap();
    let save = |version: i64, kind: &str| IncidentSave {
        incident: incident("I1", version),
        pulses: vec![("S1".into(), "p1".into())],
        alert: Some(kind.into()),
        alert_doc: "{}".into(),
        targets: vec!["http://a".into(), "http://b".into()],
        change: Change::machine(),
        strict: false,
    };
    let first = db.save_incident(&save(1, "alert")).unwrap();
    assert!(first.is_some());
    // The same version again (a restart redoing its work): no second alert.
    assert_eq!(db.save_incident(&save(1, "alert")).unwrap(), None);
    // A second first alert under a new version is refused too.
    assert_eq!(db.save_incident(&save(2, "alert")).unwrap(), None);
    assert!(db.save_incident(&save(3, "update")).unwrap().is_some());
    let alerts = db.alerts_after(0, 0).unwrap();
    assert_eq!(
        alerts.iter().map(|a| a.kind.as_str()).collect::<Vec<_>>(),
        ["alert", "update"]
    );
    assert_eq!(db.incident("I1").unwrap().unwrap().version, 3);
    assert_eq!(db.incident_versions("I1").unwrap().len(), 3);
    // Two alerts × two targets.
    let due = db.due_deliveries(i64::MAX, 0).unwrap();
    assert_eq!(due.len(), 4);
    db.delivered(due[0].id, 100).unwrap();
    db.delivery_failed(due[1].id, i64::MAX, true, "410 Gone")
        .unwrap();
    db.delivery_failed(due[2].id, 1_000, false, "timeout")
        .unwrap();
    assert_eq!(
        db.outbox_counts().unwrap(),
        OutboxCounts {
            pending: 2,
            delivered: 1,
            dead: 1
        }
    );
    assert_eq!(db.due_deliveries(999, 0).unwrap().len(), 1);
    assert_eq!(db.due_deliveries(1_000, 0).unwrap().len(), 2);
}

#[test]
fn an_older_version_never_overwrites_a_newer_one() {
    let mut db = Db::open_in_memory().unwrap();
    for v in [2, 1] {
        db.save_incident(&IncidentSave {
            incident: incident("I1", v),
            pulses: vec![],
            alert: None,
            alert_doc: String::new(),
            targets: vec![],
            change: Change::machine(),
            strict: false,
        })
        .unwrap();
    }
    assert_eq!(db.incident("I1").unwrap().unwrap().version, 2);
    let open = db.open_incidents(0).unwrap();
    assert_eq!(open.len(), 1);
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    drop(Db::open_sqlite(&path).unwrap());
    let conn = Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO schema_migrations (version, name, applied_ns) VALUES (99, 'future', 0)",
        [],
    )
    .unwrap();
    drop(conn);
    let err = Db::open_sqlite(&path).unwrap_err().to_string();
    assert!(err.contains("99"), "{err}");
}

#[test]
fn the_postgres_dialect_rewrites_only_what_differs() {
    for m in MIGRATIONS {
        let pg = m.postgres();
        assert!(
            !pg.contains("AUTOINCREMENT") && !pg.contains(" BLOB "),
            "{pg}"
        );
        assert_eq!(
            pg.matches("CREATE TABLE").count(),
            m.sqlite.matches("CREATE TABLE").count()
        );
    }
}
