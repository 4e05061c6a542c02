//! Access, review, history and retention over the real HTTP API, against a real
//! server on a loopback port with a real SQLite file. Contents:
//! - every role can do exactly what the access table says, with tokens and
//!   with a person's session; the public never gets audio, exact places or
//!   sensors; reads of audio and places are in the audit log;
//! - a review goes out as a new version to SSE, webhooks and CAP, and the
//!   history keeps the machine's version and the reviewer's, chained;
//! - retention on an injected clock deletes expired data from the database
//!   and from the file, logs it, and leaves a history that still verifies.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use server::access::Role;
use server::replay;

use common::{call, get_json, pittsburgh, receiver, settled, ORIGIN};

/// A started server with Pittsburgh FP1/test_001 replayed into it, one clip
/// stored, and a token per role.
struct Fixture {
    _dir: tempfile::TempDir,
    db_path: std::path::PathBuf,
    running: server::Running,
    base: String,
    tokens: Vec<(Role, String)>,
    incident: String,
    clip: String,
    hook: common::Deliveries,
}

const MARKER: &[u8] = b"A-VOICE-ON-THE-STREET";

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let input = replay::read(&pittsburgh().join("FP1/test_001"), Some(ORIGIN)).unwrap();
    let db_path = dir.path().join("s.db");
    let mut config = replay::server_config(&input, db_path.clone());
    let (hook_url, hook) = receiver().await;
    config.webhooks.push(server::config::WebhookConfig {
        url: hook_url,
        secret: "0123456789abcdef".into(),
    });
    let keys = replay::keys(&config);
    let running = server::start(config).await.unwrap();
    common::authorize(&running).await;
    let base = format!("http://{}", running.addr);
    replay::replay(&base, &keys, &input, 0.0).await.unwrap();
    let list = settled(&base, Duration::from_millis(1500)).await;
    let incident = list["incidents"][0]["id"].as_str().unwrap().to_string();
    // A clip for one of the incident's pulses, as a sensor would have sent it.
    let arrival = &list["incidents"][0]["shots"][0]["arrivals"][0];
    let (sensor, pulse) = arrival["pulse"].as_str().unwrap().split_once('/').unwrap();
    let (sensor, pulse) = (sensor.to_string(), pulse.to_string());
    let wav = [b"RIFF".as_slice(), MARKER].concat();
    let (s, p) = (sensor.clone(), pulse.clone());
    running
        .app
        .writer
        .run(move |db| {
            db.insert_reports(&[store::ReportRow {
                id: "clip-report".into(),
                sensor: s.clone(),
                received_ns: 1,
                pulses: vec![],
                clips: vec![store::ClipRow {
                    sensor: s,
                    pulse: p,
                    wav,
                }],
            }])
        })
        .await
        .unwrap();
    let mut tokens = Vec::new();
    for role in Role::ALL {
        tokens.push((
            role,
            running.issue_token(role.as_str(), role).await.unwrap(),
        ));
    }
    Fixture {
        _dir: dir,
        db_path,
        running,
        base,
        tokens,
        incident,
        clip: format!("{sensor}/{pulse}"),
        hook,
    }
}

impl Fixture {
    fn token(&self, role: Role) -> &str {
        &self.tokens.iter().find(|(r, _)| *r == role).unwrap().1
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_may_do_exactly_what_it_should() {
    let f = fixture().await;
    let (base, id, clip) = (&f.base, &f.incident, &f.clip);
    use Role::*;
    // Incidents with exact places: neither partners nor the public.
    let all_but_public = [Administrator, Dispatcher, Reviewer, Investigator, Analyst];
    let live = [Administrator, Dispatcher, Reviewer, Investigator];
    let evidence = [Administrator, Reviewer, Investigator];
    let review = [Administrator, Reviewer];
    let admin = [Administrator];
    let outcomes = [Administrator, Dispatcher, Reviewer, Investigator];
    let community = [Administrator, Analyst, Partner];
    let measures = [
        Administrator,
        Dispatcher,
        Reviewer,
        Investigator,
        Analyst,
        Partner,
    ];
    // (method, path, body, the roles that may)
    let table: Vec<(Method, String, Option<Value>, &[Role])> = vec![
        (Method::GET, "/v1/incidents".into(), None, &all_but_public),
        (
            Method::GET,
            "/v1/incidents.geojson".into(),
            None,
            &all_but_public,
        ),
        (
            Method::GET,
            format!("/v1/incidents/{id}"),
            None,
            &all_but_public,
        ),
        (
            Method::GET,
            format!("/v1/incidents/{id}/versions"),
            None,
            &all_but_public,
        ),
        (
            Method::GET,
            format!("/v1/incidents/{id}/cap"),
            None,
            &all_but_public,
        ),
        (
            Method::GET,
            format!("/v1/incidents/{id}/geojson"),
            None,
            &all_but_public,
        ),
        (Method::GET, "/v1/analytics".into(), None, &all_but_public),
        (
            Method::GET,
            "/v1/analytics/hotspots".into(),
            None,
            &all_but_public,
        ),
        (
            Method::GET,
            "/v1/analytics/areas".into(),
            None,
            &all_but_public,
        ),
        (
            Method::POST,
            format!("/v1/incidents/{id}/outcome"),
            Some(json!({"found": ["casings"], "officer_minutes": 20})),
            &outcomes,
        ),
        (
            Method::GET,
            format!("/v1/incidents/{id}/outcomes"),
            None,
            &all_but_public,
        ),
        (
            Method::POST,
            "/v1/misses".into(),
            Some(json!({"time_utc": "2026-11-21T12:00:00Z", "lat": 40.44, "lon": -80.0})),
            &outcomes,
        ),
        (Method::GET, "/v1/misses".into(), None, &all_but_public),
        (Method::GET, "/v1/measures".into(), None, &measures),
        (Method::GET, "/v1/measures.csv".into(), None, &measures),
        (
            Method::GET,
            "/v1/community/incidents.csv".into(),
            None,
            &community,
        ),
        (Method::GET, "/v1/community/areas".into(), None, &community),
        (Method::GET, "/v1/coverage".into(), None, &live),
        (
            Method::GET,
            format!("/v1/incidents/{id}/clips"),
            None,
            &evidence,
        ),
        (Method::GET, "/v1/alerts".into(), None, &live),
        (Method::GET, "/v1/alerts/stream".into(), None, &live),
        (Method::GET, "/v1/sensors".into(), None, &live),
        (Method::GET, "/v1/shots".into(), None, &evidence),
        (Method::GET, "/v1/pulses".into(), None, &evidence),
        (
            Method::GET,
            format!("/v1/pulses/{clip}/clip"),
            None,
            &evidence,
        ),
        (
            Method::POST,
            format!(
                "/v1/sensors/{}/clip-requests",
                clip.split('/').next().unwrap()
            ),
            Some(json!({"from_utc": "2026-11-21T12:00:00Z", "seconds": 2.0, "reason": "case 1"})),
            &evidence,
        ),
        (
            Method::GET,
            format!("/v1/incidents/{id}/history"),
            None,
            &evidence,
        ),
        (Method::GET, "/v1/review/queue".into(), None, &review),
        (
            Method::POST,
            format!("/v1/incidents/{id}/review"),
            Some(json!({"action": "confirm", "reason": "heard three shots on the clip"})),
            &review,
        ),
        (Method::GET, "/v1/users".into(), None, &admin),
        (Method::GET, "/v1/tokens".into(), None, &admin),
        (Method::GET, "/v1/audit".into(), None, &admin),
        (Method::GET, "/metrics".into(), None, &admin),
        (
            Method::POST,
            "/v1/tokens".into(),
            Some(json!({"name": "outreach-group", "role": "partner"})),
            &admin,
        ),
    ];
    for (method, path, body, allowed) in &table {
        let url = format!("{base}{path}");
        let (status, _) = call(method.clone(), &url, None, body.clone()).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "anonymous {method} {path}"
        );
        for role in Role::ALL {
            let (status, text) =
                call(method.clone(), &url, Some(f.token(role)), body.clone()).await;
            if allowed.contains(&role) {
                assert!(
                    status.is_success(),
                    "{} {method} {path}: {status} {text}",
                    role.as_str()
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{} {method} {path}: {text}",
                    role.as_str()
                );
                assert!(!text.contains("\"lat\""), "a refusal carries no data");
            }
        }
    }
    // Roles without the evidence see no sensors or ranges in incident
    // documents (with the shots' places they would give sensor places away).
    let arrivals = |text: &str| {
        let doc: Value = serde_json::from_str(text).unwrap();
        doc["shots"][0]["arrivals"].as_array().unwrap().len()
    };
    let url = format!("{base}/v1/incidents/{id}");
    let (_, as_analyst) = call(Method::GET, &url, Some(f.token(Analyst)), None).await;
    let (_, as_investigator) = call(Method::GET, &url, Some(f.token(Investigator)), None).await;
    assert_eq!(arrivals(&as_analyst), 0);
    assert!(arrivals(&as_investigator) >= 4);
    let (_, versions) = call(
        Method::GET,
        &format!("{url}/versions"),
        Some(f.token(Analyst)),
        None,
    )
    .await;
    assert!(
        !versions.contains("range_m"),
        "no ranges in versions for analysts"
    );

    // What is open to anyone: the page, health, the API description, the public view.
    for path in [
        "/",
        "/v1/health",
        "/v1/openapi.json",
        "/v1/public/incidents",
        "/v1/public/cells",
        "/v1/map",
        "/v1/session?probe=true",
    ] {
        let (status, _) = call(Method::GET, &format!("{base}{path}"), None, None).await;
        assert!(status.is_success(), "anonymous {path}: {status}");
    }
    // The map settings name no sensor, and the probe names nobody.
    let (_, map) = call(Method::GET, &format!("{base}/v1/map"), None, None).await;
    let map: Value = serde_json::from_str(&map).unwrap();
    let sensors = get_json(&format!("{base}/v1/sensors"), f.token(Administrator)).await;
    let sensors = sensors["sensors"].as_array().unwrap();
    assert!(!sensors.is_empty());
    for sensor in sensors {
        let id = sensor["id"].as_str().unwrap();
        assert!(!map.to_string().contains(&format!("\"{id}\"")), "{map}");
        for coordinate in ["lat", "lon"] {
            let exact = sensor[coordinate].as_f64().unwrap().to_string();
            assert!(
                !map.to_string().contains(&exact),
                "{coordinate} {exact} in {map}"
            );
        }
    }
    for v in map["center"].as_array().unwrap() {
        let v = v.as_f64().unwrap();
        assert!(
            (v * 100.0 - (v * 100.0).round()).abs() < 1e-9,
            "centre to 0.01°: {v}"
        );
    }
    let (_, probe) = call(
        Method::GET,
        &format!("{base}/v1/session?probe=true"),
        None,
        None,
    )
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&probe).unwrap()["actor"],
        Value::Null
    );
    let (status, _) = call(Method::GET, &format!("{base}/v1/session"), None, None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "without the probe, 401 as before"
    );

    // The public view: blocks with counts, never a place, a sensor or audio.
    let (_, public) = call(
        Method::GET,
        &format!("{base}/v1/public/incidents"),
        None,
        None,
    )
    .await;
    let public: Value = serde_json::from_str(&public).unwrap();
    let blocks = public["features"].as_array().unwrap();
    let counted: u64 = blocks
        .iter()
        .map(|b| b["properties"]["gunfire_incidents"].as_u64().unwrap())
        .sum();
    let listed = get_json(&format!("{base}/v1/incidents"), f.token(Administrator)).await;
    let gunfire: Vec<&Value> = listed["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| matches!(i["class"].as_str(), Some("gunfire" | "probable_gunfire")))
        .collect();
    assert!(!gunfire.is_empty(), "Pittsburgh's rounds are gunfire");
    assert_eq!(
        counted,
        gunfire.len() as u64,
        "the 2019 incidents are past the delay"
    );
    let text = public.to_string();
    for i in &gunfire {
        let exact = format!("{}", i["lat"].as_f64().unwrap());
        assert!(
            !text.contains(&exact),
            "exact latitude {exact} in the public view"
        );
    }
    for word in ["shots", "sensor", "arrivals", "wav", "clip"] {
        assert!(!text.contains(word), "{word} in the public view");
    }
    // A block is as coarse as configured: 250 m by default.
    let ring = blocks[0]["geometry"]["coordinates"][0].as_array().unwrap();
    let lat = |k: usize| ring[k][1].as_f64().unwrap();
    assert!(((lat(2) - lat(0)) * 111_000.0 - 250.0).abs() < 5.0);

    // Audio reads and place reads are in the audit log, by whom and of what.
    let log = get_json(
        &format!("{base}/v1/audit?action=read."),
        f.token(Administrator),
    )
    .await;
    let entries = log["audit"].as_array().unwrap();
    let has = |actor: &str, action: &str, target: &str| {
        entries.iter().any(|e| {
            e["actor"] == actor
                && e["action"] == action
                && e["target"].as_str().unwrap().contains(target)
        })
    };
    assert!(has("token:investigator", "read.audio", clip));
    assert!(has("token:reviewer", "read.audio", clip));
    assert!(
        !has("token:dispatcher", "read.audio", clip),
        "a refused read is not a read"
    );
    assert!(has("token:analyst", "read.incident", id));
    assert!(entries.iter().any(|e| e["actor"] == "token:analyst"
        && e["action"] == "read.incidents"
        && e["detail"].as_str().unwrap().contains(id.as_str())));
    // Exported as CSV too.
    let (status, csv) = call(
        Method::GET,
        &format!("{base}/v1/audit?format=csv&actor=token:investigator"),
        Some(f.token(Administrator)),
        None,
    )
    .await;
    assert!(status.is_success());
    assert!(csv.starts_with("seq,t_utc,actor,role,action,target,detail"));
    assert!(csv.contains("read.audio"));

    // People: a session cookie works like a token, until logout; a wrong
    // password, a disabled account and a revoked token do not.
    let admin_token = f.token(Administrator).to_string();
    let (status, _) = call(
        Method::POST,
        &format!("{base}/v1/users"),
        Some(&admin_token),
        Some(json!({"name": "rita", "role": "reviewer", "password": "correct horse battery"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = call(
        Method::POST,
        &format!("{base}/v1/users"),
        Some(&admin_token),
        Some(json!({"name": "sam", "role": "dispatcher", "password": "short"})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a short password is refused"
    );
    let client = reqwest::Client::new();
    let wrong = client
        .post(format!("{base}/v1/session"))
        .json(&json!({"name": "rita", "password": "wrong horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let login = client
        .post(format!("{base}/v1/session"))
        .json(&json!({"name": "rita", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert!(login.status().is_success());
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_string();
    for flag in ["HttpOnly", "Secure", "SameSite=Strict"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    let session = cookie.split(';').next().unwrap().to_string();
    let as_rita = |path: &str| {
        client
            .get(format!("{base}{path}"))
            .header("cookie", session.clone())
            .send()
    };
    assert!(as_rita("/v1/review/queue")
        .await
        .unwrap()
        .status()
        .is_success());
    assert_eq!(
        as_rita("/v1/users").await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let who: Value = as_rita("/v1/session").await.unwrap().json().await.unwrap();
    assert_eq!(
        (who["actor"].as_str(), who["role"].as_str()),
        (Some("user:rita"), Some("reviewer"))
    );
    // Disabling the account ends the session.
    let (status, _) = call(
        Method::PUT,
        &format!("{base}/v1/users/rita"),
        Some(&admin_token),
        Some(json!({"disabled": true})),
    )
    .await;
    assert!(status.is_success());
    assert_eq!(
        as_rita("/v1/review/queue").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    // A revoked token is refused.
    let tokens = get_json(&format!("{base}/v1/tokens"), &admin_token).await;
    let analyst = tokens["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "analyst")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        !tokens.to_string().contains(f.token(Analyst)),
        "secrets are never listed"
    );
    // An open feed ends when its token is revoked.
    let (status, made) = call(
        Method::POST,
        &format!("{base}/v1/tokens"),
        Some(&admin_token),
        Some(json!({"name": "cad", "role": "dispatcher"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let made: Value = serde_json::from_str(&made).unwrap();
    let (status, _) = call(
        Method::POST,
        &format!("{base}/v1/tokens"),
        Some(&admin_token),
        Some(json!({"name": "cad", "role": "analyst"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "token names are unique");
    let mut feed = client
        .get(format!("{base}/v1/alerts/stream?after=0"))
        .bearer_auth(made["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert!(feed.status().is_success());
    let (status, _) = call(
        Method::DELETE,
        &format!("{base}/v1/tokens/{}", made["id"].as_str().unwrap()),
        Some(&admin_token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        while let Ok(Some(_)) = feed.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the feed of a revoked token ended");
    let (status, _) = call(
        Method::DELETE,
        &format!("{base}/v1/tokens/{analyst}"),
        Some(&admin_token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(
        Method::GET,
        &format!("{base}/v1/incidents"),
        Some(f.token(Analyst)),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    f.running.stop().await;
}

/// POSTs a review of incident `id` as `token`: the status and the body.
async fn review(base: &str, id: &str, token: &str, body: Value) -> (StatusCode, String) {
    let url = format!("{base}/v1/incidents/{id}/review");
    call(Method::POST, &url, Some(token), Some(body)).await
}

/// Reads an SSE stream as `token` into a shared string until dropped.
async fn sse(url: String, token: String) -> std::sync::Arc<std::sync::Mutex<String>> {
    let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut response = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let sink = text.clone();
    tokio::spawn(async move {
        while let Ok(Some(chunk)) = response.chunk().await {
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&chunk));
        }
    });
    text
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_reaches_sse_webhooks_and_cap_as_a_new_version_and_history_keeps_both() {
    let f = fixture().await;
    let (base, id) = (&f.base, &f.incident);
    let dispatcher = f.token(Role::Dispatcher).to_string();
    let reviewer = f.token(Role::Reviewer).to_string();
    let feed = sse(
        format!("{base}/v1/alerts/stream?after=0"),
        dispatcher.clone(),
    )
    .await;
    // The machine's alert went out first, without waiting for anyone.
    wait_for("the machine alert on SSE", || {
        feed.lock().unwrap().contains("event: alert")
    })
    .await;
    wait_for("the machine alert at the webhook", || {
        !f.hook.lock().unwrap().is_empty()
    })
    .await;
    let machine = get_json(&format!("{base}/v1/incidents/{id}"), &dispatcher).await;
    let v = machine["version"].as_i64().unwrap();
    assert!(machine.get("review").is_none());

    // A reviewer reclassifies it, with a reason.
    let reason = "the clip is a string of firecrackers; wrappers found at the scene";
    let (status, text) = review(
        base,
        id,
        &reviewer,
        json!({"action": "reclassify", "class": "fireworks", "reason": reason}),
    )
    .await;
    assert!(status.is_success(), "{status} {text}");
    let reviewed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(reviewed["version"].as_i64(), Some(v + 1));
    assert_eq!(reviewed["class"], "fireworks");
    assert_eq!(reviewed["review"]["status"], "reclassified");
    assert_eq!(reviewed["review"]["by"], "token:reviewer");
    assert_eq!(
        reviewed["review"]["machine"]["class"], machine["class"],
        "the machine's call beside it"
    );

    // SSE and the webhook get it as an update of the new version (the
    // machine may have sent updates before: more rounds as they came in).
    let events = |text: &str| -> Vec<(String, Value)> {
        text.split("\n\n")
            .filter_map(|e| {
                let kind = e.lines().find_map(|l| l.strip_prefix("event: "))?;
                let data = e.lines().find_map(|l| l.strip_prefix("data: "))?;
                Some((kind.to_string(), serde_json::from_str(data).ok()?))
            })
            .collect()
    };
    let reviewed_version = |d: &Value| d["incident"]["version"].as_i64() == Some(v + 1);
    wait_for("the update on SSE", || {
        events(&feed.lock().unwrap())
            .iter()
            .any(|(_, d)| reviewed_version(d))
    })
    .await;
    let (kind, data) = events(&feed.lock().unwrap())
        .into_iter()
        .find(|(_, d)| reviewed_version(d))
        .unwrap();
    assert_eq!(kind, "update");
    assert_eq!(data["incident"]["class"], "fireworks");
    wait_for("the update at the webhook", || {
        f.hook
            .lock()
            .unwrap()
            .iter()
            .any(|(_, d)| reviewed_version(d))
    })
    .await;
    let hooked = f
        .hook
        .lock()
        .unwrap()
        .iter()
        .find(|(_, d)| reviewed_version(d))
        .unwrap()
        .1
        .clone();
    assert_eq!(hooked["kind"], "update");
    assert_eq!(hooked["incident"]["review"]["reason"], reason);

    // CAP: an Update referencing the first alert, with the new version and class.
    let (_, cap) = call(
        Method::GET,
        &format!("{base}/v1/incidents/{id}/cap"),
        Some(&dispatcher),
        None,
    )
    .await;
    assert!(cap.contains("<msgType>Update</msgType>"), "{cap}");
    assert!(cap.contains(&format!("shotfix-{id}-v{}", v + 1)), "{cap}");
    assert!(cap.contains("<references>"), "{cap}");

    // A dismissal cancels it.
    let (status, _) = review(base, id, &reviewer, json!({"action": "dismiss", "class": "fireworks", "reason": "confirmed fireworks by patrol"})).await;
    assert!(status.is_success());
    wait_for("the cancel on SSE", || {
        feed.lock().unwrap().contains("event: cancel")
    })
    .await;
    let (_, cap) = call(
        Method::GET,
        &format!("{base}/v1/incidents/{id}/cap"),
        Some(&dispatcher),
        None,
    )
    .await;
    assert!(cap.contains("<msgType>Cancel</msgType>"), "{cap}");

    // A review needs a reason, and a valid action.
    for bad in [
        json!({"action": "confirm", "reason": "  "}),
        json!({"action": "reclassify", "reason": "x"}),
        json!({"action": "relocate", "reason": "x", "lat": 95.0, "lon": 0.0}),
        json!({"action": "erase", "reason": "x"}),
        json!({"action": "adjust", "reason": "x", "class": "gunfire"}),
    ] {
        let (status, _) = review(base, id, &reviewer, bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }

    // The history: every version, the machine's first, each person's with
    // author and reason, chained by hashes.
    let history = get_json(
        &format!("{base}/v1/incidents/{id}/history"),
        f.token(Role::Investigator),
    )
    .await;
    let entries = history["history"].as_array().unwrap();
    let versions: Vec<i64> = entries
        .iter()
        .map(|e| e["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, (1..=v + 2).collect::<Vec<_>>());
    assert_eq!(entries[0]["actor"], "machine");
    assert_eq!(
        entries[0]["incident"]["class"], machine["class"],
        "the machine result is kept"
    );
    let human = &entries[v as usize];
    assert_eq!(
        (human["actor"].as_str(), human["action"].as_str()),
        (Some("token:reviewer"), Some("reclassify"))
    );
    assert_eq!(human["reason"], reason);
    assert_eq!(entries[v as usize + 1]["action"], "dismiss");
    let chain = f
        .running
        .app
        .reader
        .read(|db| db.verify_history())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(chain.broken, None);
    assert_eq!(chain.entries, v + 2);
    f.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_on_an_injected_clock_deletes_for_real_and_logs_it() {
    let f = fixture().await;
    let (base, id) = (&f.base, &f.incident);
    let admin = f.token(Role::Administrator).to_string();
    let count = |db: &store::Db| db.pulse_count();
    let before = f.running.app.reader.read(count).await.unwrap().unwrap();
    assert!(before > 0);

    let doc = get_json(&format!("{base}/v1/incidents/{id}"), &admin).await;
    let place = format!("\"lat\":{}", doc["lat"]);

    // The clock is injected: in 1996 nothing of the live-fire test has
    // expired; four years from now, under the defaults (30 days for pulses
    // and clips, 3 years for incidents and audit records), everything has.
    let now = server::now_ns();
    let year = 365 * 86_400_000_000_000;
    let d = server::retention::enforce(&f.running.app, now - 30 * year)
        .await
        .unwrap();
    assert_eq!((d.incidents.len(), d.pulses, d.clips), (0, 0, 0));
    let d = server::retention::enforce(&f.running.app, now + 4 * year)
        .await
        .unwrap();
    assert_eq!(d.incidents, std::slice::from_ref(id));
    assert!(d.pulses as i64 == before && d.clips == 1, "{d:?}");

    // Gone from the API and the database...
    let (status, _) = call(
        Method::GET,
        &format!("{base}/v1/incidents/{id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(
        Method::GET,
        &format!("{base}/v1/pulses/{}/clip", f.clip),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(f.running.app.reader.read(count).await.unwrap().unwrap(), 0);
    // ...the deletion is logged...
    let log = get_json(&format!("{base}/v1/audit?action=retention."), &admin).await;
    let kinds: Vec<&str> = log["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["target"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["incidents", "clips", "pulses", "reports", "audit"]);
    // ...the history is redacted, not broken...
    let chain = f
        .running
        .app
        .reader
        .read(|db| db.verify_history())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(chain.broken, None);
    assert_eq!(chain.redacted, chain.entries);
    f.running.stop().await;
    // ...and the bytes are gone from the files on disk.
    for file in [f.db_path.clone(), f.db_path.with_extension("db-wal")] {
        if let Ok(bytes) = std::fs::read(&file) {
            assert!(
                !bytes.windows(MARKER.len()).any(|w| w == MARKER),
                "{} still holds the deleted clip",
                file.display()
            );
            let exact = place.as_bytes();
            assert!(
                !bytes.windows(exact.len()).any(|w| w == exact),
                "{} still holds the incident's place {place}",
                file.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_the_pipeline_has_closed_is_reviewed_from_its_stored_version() {
    // FP1 test_001, then test_002 82 s later: the first incident is closed in
    // the pipeline (no shot can join it after twice the incident gap).
    let dir = tempfile::tempdir().unwrap();
    let first = replay::read(&pittsburgh().join("FP1/test_001"), Some(ORIGIN)).unwrap();
    let second = replay::read(&pittsburgh().join("FP1/test_002"), Some(ORIGIN)).unwrap();
    let mut both = first.clone();
    for s in &second.sensors {
        if !both.sensors.iter().any(|(id, _)| *id == s.0) {
            both.sensors.push(s.clone());
        }
    }
    let config = replay::server_config(&both, dir.path().join("s.db"));
    let keys = replay::keys(&config);
    let running = server::start(config).await.unwrap();
    let base = format!("http://{}", running.addr);
    replay::replay(&base, &keys, &first, 0.0).await.unwrap();
    let reviewer = running.issue_token("rev", Role::Reviewer).await.unwrap();
    let admin = running
        .issue_token("adm", Role::Administrator)
        .await
        .unwrap();
    let list_url = format!("{base}/v1/incidents?limit=100");
    let listed = |text: String| -> Vec<Value> {
        serde_json::from_str::<Value>(&text).unwrap()["incidents"]
            .as_array()
            .unwrap()
            .clone()
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, text) = call(Method::GET, &list_url, Some(&admin), None).await;
    let before = listed(text);
    assert_eq!(before.len(), 1);
    let id = before[0]["id"].as_str().unwrap().to_string();
    replay::replay(&base, &keys, &second, 0.0).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, text) = call(Method::GET, &list_url, Some(&admin), None).await;
    assert_eq!(listed(text).len(), 2, "the second test is its own incident");
    let stored = get_json(&format!("{base}/v1/incidents/{id}"), &admin).await;
    let v = stored["version"].as_i64().unwrap();

    let (status, text) = review(
        &base,
        &id,
        &reviewer,
        json!({"action": "adjust", "rounds": 4, "reason": "four casings recovered"}),
    )
    .await;
    assert!(status.is_success(), "{status} {text}");
    let reviewed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(reviewed["version"].as_i64(), Some(v + 1));
    assert_eq!(reviewed["rounds"], 4);
    assert_eq!(reviewed["review"]["machine"]["rounds"], stored["rounds"]);
    assert_eq!(
        reviewed["shots"], stored["shots"],
        "the evidence is unchanged"
    );
    // A second review builds on the first: the rounds stay adjusted.
    let (status, text) = review(&base, &id, &reviewer, json!({"action": "relocate", "lat": 40.45, "lon": -80.01, "reason": "witness: shots from the alley"})).await;
    assert!(status.is_success(), "{status} {text}");
    let again: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (again["version"].as_i64(), again["rounds"].as_i64()),
        (Some(v + 2), Some(4))
    );
    assert_eq!(
        (again["lat"].as_f64(), again["lon"].as_f64()),
        (Some(40.45), Some(-80.01))
    );
    assert_eq!(again["review"]["machine"]["lat"], stored["lat"]);
    let alerts = get_json(&format!("{base}/v1/alerts"), &admin).await;
    let last = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|a| a["incident"]["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        (last["kind"].as_str(), last["incident"]["version"].as_i64()),
        (Some("update"), Some(v + 2))
    );
    let chain = running
        .app
        .reader
        .read(|db| db.verify_history())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(chain.broken, None);
    running.stop().await;
}
