//! `shotfix serve` on PostgreSQL, against a real server on a loopback port and
//! a real PostgreSQL. Contents:
//! - replayed Pittsburgh tests give the same incidents, shots, first alerts and
//!   stored pulses on PostgreSQL as on SQLite, and the same shots as `locate`;
//! - alerts reach an SSE subscriber and a webhook receiver; the REST API reads
//!   incidents (list, one, versions, CAP, GeoJSON), shots, pulses, sensors,
//!   alerts and health back, and the rows are in PostgreSQL itself;
//! - a restart on the same database keeps every pulse, writes no new version
//!   or alert, sends no webhook again, counts a replayed report as a duplicate,
//!   and `stop()` leaves no connection open (and the same on SQLite, as a
//!   control); a restart in the middle of a replay keeps both halves' pulses,
//!   alerts no incident twice and still gives `locate`'s shots;
//! - an unreachable PostgreSQL is a one-line start-up error naming the
//!   database without its password.
//!
//! PostgreSQL: `SHOTFIX_TEST_POSTGRES` names the server and a database to
//! connect to (default `postgres://postgres@127.0.0.1:5432/postgres`). Each
//! test creates its own database `shotfix_srv_<pid>_<n>` there and drops it at
//! the end. An unreachable server fails the tests.
//!
//! The tests are plain `#[test]`s that run their own async runtime: the
//! `postgres` client used to create, inspect and drop the databases blocks, and
//! may not run on a runtime thread (the same rule the server keeps).

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use server::config::{Database, ServerConfig, WebhookConfig};
use server::replay::{self, ReplayInput};

use common::{
    get, get_text, incidents, locate_shots, pittsburgh, receiver, settled, shots_of, sse_text,
    Deliveries, ORIGIN,
};

// ---- PostgreSQL databases ----------------------------------------------------

const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";

static NEXT_DATABASE: AtomicUsize = AtomicUsize::new(0);

/// A fresh, empty PostgreSQL database, dropped when this is.
struct PgDatabase {
    admin: String,
    name: String,
    url: String,
}

fn admin_url() -> String {
    std::env::var("SHOTFIX_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_POSTGRES.to_string())
}

fn admin_client(admin: &str) -> postgres::Client {
    let mut config: postgres::Config = admin
        .parse()
        .unwrap_or_else(|e| panic!("SHOTFIX_TEST_POSTGRES={admin}: not a PostgreSQL URL: {e}"));
    config.connect_timeout(Duration::from_secs(10));
    config.connect(postgres::NoTls).unwrap_or_else(|e| {
        panic!(
            "PostgreSQL at {admin} is unreachable ({e}): the server's PostgreSQL tests need \
             a server. Start it (pg_ctlcluster --skip-systemctl-redirect <version> main start) \
             or point SHOTFIX_TEST_POSTGRES at one."
        )
    })
}

/// `url` with its database name replaced by `name` (URL or key=value form).
fn with_database(url: &str, name: &str) -> String {
    let Some(authority) = url.find("://").map(|i| i + 3) else {
        return format!("{url} dbname={name}");
    };
    let query = url.find('?').unwrap_or(url.len());
    let path = url[authority..query]
        .find('/')
        .map_or(query, |i| authority + i);
    format!("{}/{name}{}", &url[..path], &url[query..])
}

impl PgDatabase {
    fn create() -> PgDatabase {
        let admin = admin_url();
        let name = format!(
            "shotfix_srv_{}_{}",
            std::process::id(),
            NEXT_DATABASE.fetch_add(1, Ordering::SeqCst)
        );
        let mut client = admin_client(&admin);
        // Left over by an earlier run that died with the same process id.
        // (Two statements: a batch of several would be one transaction, and
        // neither may run inside one.)
        for sql in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            client.batch_execute(&sql).unwrap();
        }
        PgDatabase {
            url: with_database(&admin, &name),
            admin,
            name,
        }
    }

    fn database(&self) -> Database {
        Database::parse(&self.url)
    }

    /// Connections open to this database (blocking). A backend leaves
    /// `pg_stat_activity` a moment after its client closed the connection, so
    /// this waits up to 5 s for the count to reach 0.
    fn connections(&self) -> i64 {
        let mut client = admin_client(&self.admin);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let n: i64 = client
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1",
                    &[&self.name],
                )
                .unwrap()
                .get(0);
            if n == 0 || Instant::now() > deadline {
                return n;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let dropped = postgres::Client::connect(&self.admin, postgres::NoTls).and_then(|mut c| {
            c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
        });
        if let Err(e) = dropped {
            eprintln!("warning: could not drop test database {}: {e}", self.name);
        }
    }
}

/// Runs a test body on a runtime like the server's; blocking PostgreSQL work
/// stays outside it, before and after.
fn block_on<F: Future>(body: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(body)
}

/// Runs blocking work (the `postgres` client, `store::Db`) from a test body.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

// ---- the data and the server's API -------------------------------------------

/// Asserts two shot lists agree: same count, same times, within 1 m.
fn assert_same_shots(what: &str, got: &[(f64, f64, String)], want: &[(f64, f64, String)]) {
    assert_eq!(got.len(), want.len(), "{what}: {got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        let d = (g.0 - w.0).hypot(g.1 - w.1);
        assert!(d <= 1.0, "{what}: shot at {} differs by {d:.3} m", w.2);
    }
}

/// What the server has stored, as the API shows it, without wall-clock times.
#[derive(Debug, PartialEq)]
struct Stored {
    /// The incident list (the latest version of each).
    incidents: Value,
    /// Every incident's version numbers.
    versions: BTreeMap<String, Vec<i64>>,
    /// (seq, kind, incident, version) of every alert.
    alerts: Vec<(i64, String, String, i64)>,
    /// (sensor, id, t_utc, report) of every pulse.
    pulses: BTreeSet<(String, String, String, String)>,
}

async fn stored(base: &str) -> Stored {
    let incidents = incidents(base).await;
    let mut versions = BTreeMap::new();
    for i in incidents["incidents"].as_array().unwrap() {
        let id = i["id"].as_str().unwrap().to_string();
        let v = get(format!("{base}/v1/incidents/{id}/versions")).await;
        let numbers = v["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_i64().unwrap())
            .collect();
        versions.insert(id, numbers);
    }
    let alerts = get(format!("{base}/v1/alerts?limit=10000")).await["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["seq"].as_i64().unwrap(),
                a["kind"].as_str().unwrap().to_string(),
                a["incident"]["id"].as_str().unwrap().to_string(),
                a["incident"]["version"].as_i64().unwrap(),
            )
        })
        .collect();
    let pulses = get(format!("{base}/v1/pulses?limit=100000")).await["pulses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap().to_string();
            (s("sensor"), s("id"), s("t_utc"), s("report"))
        })
        .collect();
    Stored {
        incidents,
        versions,
        alerts,
        pulses,
    }
}

/// Asserts nothing stored differs, naming what does (the whole is too long to read).
fn assert_same_stored(what: &str, got: &Stored, want: &Stored) {
    assert_eq!(got.versions, want.versions, "{what}: incident versions");
    assert_eq!(got.alerts, want.alerts, "{what}: alerts");
    assert_eq!(
        got.pulses
            .symmetric_difference(&want.pulses)
            .collect::<Vec<_>>(),
        Vec::<&(String, String, String, String)>::new(),
        "{what}: pulses"
    );
    assert!(
        got.incidents == want.incidents,
        "{what}: incident documents differ"
    );
}

/// Incidents that got a first alert, and how many each.
fn first_alerts(s: &Stored) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (_, kind, incident, _) in &s.alerts {
        if kind == "alert" {
            *out.entry(incident.clone()).or_insert(0) += 1;
        }
    }
    out
}

/// Alert sequence numbers delivered, each once however often it was sent.
fn delivered_seqs(got: &Deliveries) -> BTreeSet<i64> {
    got.lock()
        .unwrap()
        .iter()
        .map(|(_, body)| body["seq"].as_i64().unwrap())
        .collect()
}

/// Waits until the receiver has every alert in `seqs`.
async fn await_deliveries(got: &Deliveries, seqs: &BTreeSet<i64>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seqs.is_subset(&delivered_seqs(got)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        &delivered_seqs(got),
        seqs,
        "every alert delivered, and nothing else"
    );
}

/// Starts a server, replays `input` into it, waits for the incidents to
/// settle; returns the running server and its base URL.
async fn serve_and_replay(
    config: ServerConfig,
    input: &ReplayInput,
) -> (server::Running, String, Stored) {
    let keys = replay::keys(&config);
    let running = server::start(config).await.unwrap();
    common::authorize(&running).await;
    let base = format!("http://{}", running.addr);
    replay::replay(&base, &keys, input, 0.0).await.unwrap();
    settled(&base, Duration::from_millis(1500)).await;
    let s = stored(&base).await;
    (running, base, s)
}

// ---- tests -------------------------------------------------------------------

#[test]
fn replay_on_postgres_gives_the_same_results_as_on_sqlite_and_locate() {
    let root = pittsburgh();
    let mut tests: Vec<PathBuf> = Vec::new();
    for fp in ["FP1", "FP2", "FP3", "FP4"] {
        let mut list: Vec<PathBuf> = std::fs::read_dir(root.join(fp))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        list.sort();
        // Every test in the slow tier; the first two of each position by default.
        if std::env::var_os("SHOTFIX_SLOW").is_none() {
            list.truncate(2);
        }
        tests.extend(list);
    }
    let mut compared = 0;
    for test in &tests {
        let pg = PgDatabase::create();
        let dir = tempfile::tempdir().unwrap();
        let input = replay::read(test, Some(ORIGIN)).unwrap();
        let (on_sqlite, on_postgres) = block_on(async {
            let mut results = Vec::new();
            for database in [Database::from(dir.path().join("s.db")), pg.database()] {
                let config = replay::server_config(&input, database);
                let (running, _, s) = serve_and_replay(config, &input).await;
                running.stop().await;
                results.push(s);
            }
            let on_postgres = results.pop().unwrap();
            (results.pop().unwrap(), on_postgres)
        });
        let what = test.display().to_string();
        // The same pulses stored, and every one the replay sent.
        assert_eq!(on_postgres.pulses, on_sqlite.pulses, "{what}");
        let sent: BTreeSet<(String, String)> = input
            .pulses
            .iter()
            .map(|p| (p.sensor.0.clone(), p.id.0.replace('/', "_")))
            .collect();
        let kept: BTreeSet<(String, String)> = on_postgres
            .pulses
            .iter()
            .map(|p| (p.0.clone(), p.1.clone()))
            .collect();
        assert_eq!(kept, sent, "{what}: every pulse stored");
        // The same incidents (ids derive from the pulses used) and shots.
        let ids = |s: &Stored| s.versions.keys().cloned().collect::<Vec<_>>();
        assert_eq!(ids(&on_postgres), ids(&on_sqlite), "{what}");
        let shots = shots_of(&on_postgres.incidents);
        assert_same_shots(&what, &shots, &shots_of(&on_sqlite.incidents));
        assert_same_shots(&what, &shots, &locate_shots(test));
        // Each incident alerted once, on both.
        assert_eq!(
            first_alerts(&on_postgres),
            first_alerts(&on_sqlite),
            "{what}"
        );
        assert!(
            first_alerts(&on_postgres).values().all(|&n| n == 1),
            "{what}"
        );
        compared += shots.len();
    }
    eprintln!("{compared} shots over {} tests", tests.len());
    assert!(compared >= 12, "only {compared} shots compared");
}

#[test]
fn alerts_reach_sse_and_webhooks_and_the_api_reads_postgres_back() {
    let pg = PgDatabase::create();
    let url = pg.url.clone();
    block_on(async {
        let input = replay::read(&pittsburgh().join("FP1/test_001"), Some(ORIGIN)).unwrap();
        let mut config = replay::server_config(&input, pg.database());
        let (hook, delivered) = receiver().await;
        config.webhooks.push(WebhookConfig {
            url: hook,
            secret: "0123456789abcdef".into(),
        });
        let sensors = config.sensors.clone();
        let keys = replay::keys(&config);
        let running = server::start(config).await.unwrap();
        common::authorize(&running).await;
        let base = format!("http://{}", running.addr);
        // An SSE subscriber from the start.
        let sse_task = sse_text(&base).await;
        let stats = replay::replay(&base, &keys, &input, 0.0).await.unwrap();
        let list = settled(&base, Duration::from_millis(1500)).await;
        let s = stored(&base).await;

        // Alerts: one first alert per incident; each on SSE and at the webhook.
        assert!(!s.alerts.is_empty());
        assert!(first_alerts(&s).values().all(|&n| n == 1));
        let seqs: BTreeSet<i64> = s.alerts.iter().map(|a| a.0).collect();
        await_deliveries(&delivered, &seqs).await;
        let sse_text = sse_task.await.unwrap();
        for seq in &seqs {
            assert!(
                sse_text.contains(&format!("id: {seq}\n")),
                "SSE carried alert {seq}"
            );
        }
        // The webhook body is the stored alert.
        for (_, body) in delivered.lock().unwrap().iter() {
            let seq = body["seq"].as_i64().unwrap();
            let a = s.alerts.iter().find(|a| a.0 == seq).unwrap();
            assert_eq!(body["kind"], a.1.as_str());
            assert_eq!(body["incident"]["id"], a.2.as_str());
            assert_eq!(body["incident"]["version"], a.3);
        }

        // Incidents: the list, each one, its versions, CAP and GeoJSON.
        let listed = list["incidents"].as_array().unwrap();
        assert!(!listed.is_empty());
        for i in listed {
            let id = i["id"].as_str().unwrap();
            assert_eq!(&get(format!("{base}/v1/incidents/{id}")).await, i);
            assert_eq!(
                s.versions[id].last().copied(),
                i["version"].as_i64(),
                "{id}: the latest version is listed"
            );
            let cap = get_text(format!("{base}/v1/incidents/{id}/cap")).await;
            assert!(cap.contains("<alert") && cap.contains(id), "{cap}");
            let gj: geojson::GeoJson = get_text(format!("{base}/v1/incidents/{id}/geojson"))
                .await
                .parse()
                .unwrap();
            assert!(matches!(gj, geojson::GeoJson::Feature(_)), "{gj}");
        }
        let gj: geojson::GeoJson = get_text(format!("{base}/v1/incidents.geojson"))
            .await
            .parse()
            .unwrap();
        let geojson::GeoJson::FeatureCollection(fc) = gj else {
            panic!("not a FeatureCollection")
        };
        assert_eq!(fc.features.len(), listed.len());
        let shots = get(format!("{base}/v1/shots?limit=10000")).await;
        assert_eq!(
            shots["shots"].as_array().unwrap().len(),
            shots_of(&list).len()
        );
        let missing = common::get_as_tests(&format!("{base}/v1/incidents/no-such-incident")).await;
        assert_eq!(missing.status().as_u16(), 404);

        // Pulses: all of them, and filtered by sensor.
        assert_eq!(s.pulses.len(), stats.pulses);
        let one = &sensors[0].id;
        let theirs = get(format!("{base}/v1/pulses?sensor={one}&limit=100000")).await;
        let theirs = theirs["pulses"].as_array().unwrap();
        assert_eq!(
            theirs.len(),
            s.pulses.iter().filter(|p| &p.0 == one).count()
        );
        assert!(theirs.iter().all(|p| p["sensor"] == one.as_str()));

        // Sensors, as configured.
        let listed_sensors = get(format!("{base}/v1/sensors")).await;
        let ids: Vec<&str> = listed_sensors["sensors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        let mut want: Vec<&str> = sensors.iter().map(|s| s.id.as_str()).collect();
        want.sort();
        assert_eq!(ids, want);

        // Health: the store's counts.
        let deadline = Instant::now() + Duration::from_secs(10);
        let health = loop {
            let h = get(format!("{base}/v1/health")).await;
            if h["outbox"]["delivered"] == seqs.len() || Instant::now() > deadline {
                break h;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(health["pulses_stored"], stats.pulses);
        assert_eq!(health["outbox"]["delivered"], seqs.len());
        assert_eq!(health["outbox"]["pending"], 0);
        assert_eq!(health["counters"]["store_errors"], 0);
        running.stop().await;

        // And all of it is in PostgreSQL itself.
        let (pulses, incidents, alerts) = blocking(move || {
            let db = store::Db::open(&url).unwrap();
            let incidents = db
                .incidents(&store::IncidentFilter {
                    limit: 10_000,
                    ..store::IncidentFilter::default()
                })
                .unwrap();
            (
                db.pulse_count().unwrap(),
                incidents.len(),
                db.alerts_after(0, 0).unwrap().len(),
            )
        })
        .await;
        assert_eq!(pulses as usize, stats.pulses);
        assert_eq!(incidents, listed.len());
        assert_eq!(alerts, s.alerts.len());
    });
}

/// Replays a test, restarts the server on the same database, and checks that
/// the restart and a full replay of the same reports change nothing stored and
/// send nothing again; `connections` counts the database's open connections
/// (after each stop they must be closed).
fn a_restart_changes_nothing(database: Database, connections: impl Fn() -> i64) {
    let input = replay::read(&pittsburgh().join("FP1/test_002"), Some(ORIGIN)).unwrap();
    let mut config = replay::server_config(&input, database);
    let (before, delivered) = block_on(async {
        let (hook, delivered) = receiver().await;
        config.webhooks.push(WebhookConfig {
            url: hook,
            secret: "0123456789abcdef".into(),
        });
        let (running, _, before) = serve_and_replay(config.clone(), &input).await;
        assert!(!before.alerts.is_empty());
        let seqs = before.alerts.iter().map(|a| a.0).collect();
        await_deliveries(&delivered, &seqs).await;
        running.stop().await;
        (before, delivered)
    });
    assert_eq!(connections(), 0, "stop() closed every connection");

    block_on(async {
        // The first receiver went with its runtime; the second run gets a new
        // one, which must hear nothing: every alert was delivered (a delivery
        // still pending for the old URL would be given up, counted as dead).
        let (hook, again) = receiver().await;
        config.webhooks[0].url = hook;
        let keys = replay::keys(&config);
        let running = server::start(config.clone()).await.unwrap();
        common::authorize(&running).await;
        let base = format!("http://{}", running.addr);
        // The restored pipeline runs on its window and finds the same shots.
        tokio::time::sleep(Duration::from_secs(2)).await;
        settled(&base, Duration::from_millis(1500)).await;
        assert_same_stored("after a restart", &stored(&base).await, &before);
        // The sensors retry every report: all duplicates, nothing stored twice.
        let stats = replay::replay(&base, &keys, &input, 0.0).await.unwrap();
        settled(&base, Duration::from_millis(1500)).await;
        let health = get(format!("{base}/v1/health")).await;
        assert_eq!(health["counters"]["reports_duplicate"], stats.reports);
        assert_eq!(health["counters"]["reports_accepted"], 0);
        assert_eq!(health["pulses_stored"], before.pulses.len());
        assert_eq!(health["outbox"]["dead"], 0);
        assert_same_stored("after the replay again", &stored(&base).await, &before);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(again.lock().unwrap().is_empty(), "no alert sent twice");
        running.stop().await;
    });
    assert_eq!(connections(), 0, "stop() closed every connection");
    // Across both runs, one delivery per alert.
    let ids: BTreeSet<String> = delivered
        .lock()
        .unwrap()
        .iter()
        .map(|d| d.0.clone())
        .collect();
    assert_eq!(ids.len(), before.alerts.len());
}

#[test]
fn a_restart_on_the_same_postgres_database_keeps_every_pulse_and_duplicates_no_alert() {
    let pg = PgDatabase::create();
    a_restart_changes_nothing(pg.database(), || pg.connections());
}

/// The same on SQLite, where a restart behaves alike (connections: none to count).
#[test]
fn a_restart_on_the_same_sqlite_file_keeps_every_pulse_and_duplicates_no_alert() {
    let dir = tempfile::tempdir().unwrap();
    a_restart_changes_nothing(Database::from(dir.path().join("s.db")), || 0);
}

#[test]
fn a_restart_in_the_middle_of_a_replay_alerts_no_incident_twice() {
    let pg = PgDatabase::create();
    let test = pittsburgh().join("FP2/test_019");
    let input = replay::read(&test, Some(ORIGIN)).unwrap();
    // Cut halfway through the test's time span.
    let (t0, t1) = (input.pulses[0].t, input.pulses[input.pulses.len() - 1].t);
    let cut = model::UtcNanos(t0.0 + (t1.0 - t0.0) / 2);
    let (first, second): (Vec<_>, Vec<_>) = input.pulses.iter().cloned().partition(|p| p.t < cut);
    assert!(!first.is_empty() && !second.is_empty());
    let config = replay::server_config(&input, pg.database());
    let part = |pulses: Vec<model::Pulse>| ReplayInput {
        pulses,
        ..input.clone()
    };
    let (one, two) = block_on(async {
        let (running, _, one) = serve_and_replay(config.clone(), &part(first)).await;
        running.stop().await;
        let (running, _, two) = serve_and_replay(config.clone(), &part(second)).await;
        running.stop().await;
        (one, two)
    });
    assert_eq!(pg.connections(), 0, "stop() closed every connection");
    assert!(!one.alerts.is_empty(), "the first half alerts an incident");
    // Every pulse of both halves kept.
    let sent: BTreeSet<(String, String)> = input
        .pulses
        .iter()
        .map(|p| (p.sensor.0.clone(), p.id.0.replace('/', "_")))
        .collect();
    let kept: BTreeSet<(String, String)> = two
        .pulses
        .iter()
        .map(|p| (p.0.clone(), p.1.clone()))
        .collect();
    assert_eq!(kept, sent);
    assert!(one.pulses.is_subset(&two.pulses));
    // The first run's alerts are kept as they were, and no incident is alerted twice.
    assert_eq!(two.alerts[..one.alerts.len()], one.alerts[..]);
    assert!(
        first_alerts(&two).values().all(|&n| n == 1),
        "{:?}",
        two.alerts
    );
    // And the shots are locate's, as without the restart.
    assert_same_shots(
        &test.display().to_string(),
        &shots_of(&two.incidents),
        &locate_shots(&test),
    );
}

#[test]
fn an_unreachable_postgres_is_a_one_line_start_up_error() {
    let url = "postgres://shotfix:s3cret@127.0.0.1:1/shotfix?connect_timeout=2";
    let config = ServerConfig::from_toml(&format!(
        "database = {url:?}\n[[sensors]]\nid = \"S1\"\nkey = \"00112233445566778899aabbccddeeff\"\n\
         lat = 40.0\nlon = -80.0\nalt_m = 1.0\n"
    ))
    .unwrap();
    assert_eq!(config.database, Database::Postgres(url.into()));
    let err = block_on(server::start(config)).unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.contains("cannot open database postgres://shotfix:***@127.0.0.1:1/shotfix"),
        "{message}"
    );
    assert!(!message.contains("s3cret"), "{message}");
    assert!(!message.contains('\n'), "{message}");
}
