//! Helpers shared by the server's integration tests (`server.rs`, `mqtt.rs`,
//! `postgres.rs`): the Pittsburgh data, the incident list as a server shows it,
//! and `locate`'s answer on the same test folder.

#![allow(dead_code, clippy::unwrap_used)] // each test file uses some of these

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use model::Geodetic;
use serde_json::Value;

/// The Pittsburgh live-fire tests beside the checkout.
pub fn pittsburgh() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/pittsburgh-dev")
}

/// Four sensors on the corners of a 1 km square around 40.44 N, 80.00 W.
pub fn square(dir: &Path) -> server::config::ServerConfig {
    let mut config = server::config::ServerConfig::new(dir.join("s.db"));
    for (i, (dlat, dlon)) in [(-1.0, -1.0), (-1.0, 1.0), (1.0, 1.0), (1.0, -1.0)]
        .iter()
        .enumerate()
    {
        config.sensors.push(server::config::SensorConfig {
            id: format!("S{}", i + 1),
            key: hex::encode([i as u8 + 1; 16]),
            // 500 m: 0.0045° of latitude, 0.0059° of longitude here.
            lat: 40.44 + dlat * 0.0045,
            lon: -80.0 + dlon * 0.0059,
            alt_m: 20.0,
        });
    }
    config
}

/// Pittsburgh, for anchoring the research layout's local frame.
pub const ORIGIN: Geodetic = Geodetic {
    lat_deg: 40.4406,
    lon_deg: -79.9959,
    alt_m: 250.0,
};

/// Administrator tokens of the servers the tests started, by base URL.
static TOKENS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// Gives the tests an administrator token for this server: every helper
/// here that GETs from its base URL sends it.
pub async fn authorize(running: &server::Running) -> String {
    // Token names are unique per database, and a test may restart a server
    // on the same one.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let token = running
        .issue_token(&format!("tests-{n}"), server::access::Role::Administrator)
        .await
        .unwrap();
    let base = format!("http://{}", running.addr);
    TOKENS.lock().unwrap().push((base, token.clone()));
    token
}

/// The token registered for the server `url` is on.
pub fn token_for(url: &str) -> Option<String> {
    TOKENS
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|(base, _)| url.starts_with(base.as_str()) && url[base.len()..].starts_with('/'))
        .map(|(_, t)| t.clone())
}

/// `GET url` with the server's test token, if it has one.
pub async fn get_as_tests(url: &str) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(url);
    if let Some(t) = token_for(url) {
        request = request.bearer_auth(t);
    }
    request.send().await.unwrap()
}

/// `GET url`, which must succeed.
async fn get_ok(url: &str) -> reqwest::Response {
    let response = get_as_tests(url).await;
    assert!(
        response.status().is_success(),
        "GET {url}: {}",
        response.status()
    );
    response
}

/// `GET url` as JSON; the request must succeed.
pub async fn get(url: String) -> Value {
    get_ok(&url).await.json().await.unwrap()
}

/// `GET url` as text; the request must succeed.
pub async fn get_text(url: String) -> String {
    get_ok(&url).await.text().await.unwrap()
}

/// `GET /v1/incidents`, every incident.
pub async fn incidents(base: &str) -> Value {
    get(format!("{base}/v1/incidents?limit=10000")).await
}

/// Waits until the incident list has not changed for `quiet` (at most a minute).
pub async fn settled(base: &str, quiet: Duration) -> Value {
    let mut last = incidents(base).await;
    let mut since = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(60);
    while since.elapsed() < quiet && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = incidents(base).await;
        if now != last {
            last = now;
            since = Instant::now();
        }
    }
    last
}

/// (x, y, t_utc) of every shot of an incident list, in time order.
pub fn shots_of(list: &Value) -> Vec<(f64, f64, String)> {
    let mut out: Vec<(f64, f64, String)> = list["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["shots"].as_array().unwrap().clone())
        .map(|s| {
            (
                s["x"].as_f64().unwrap(),
                s["y"].as_f64().unwrap(),
                s["t_utc"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.2.cmp(&b.2));
    out
}

/// `locate`'s shots for a test folder, in its own local frame, in time order.
pub fn locate_shots(test: &Path) -> Vec<(f64, f64, String)> {
    let input = formats::read_locate_input(test).unwrap();
    let set = locate::PulseSet::new(input.sensors, input.pulses).unwrap();
    let out = locate::locate(
        &set,
        &locate::Medium::from_weather(&input.weather),
        &locate::LocateConfig::default(),
    );
    let mut shots: Vec<(f64, f64, String)> = out
        .incidents
        .iter()
        .flat_map(|i| &i.shots)
        .map(|s| (s.position.x, s.position.y, s.t_emit.to_rfc3339()))
        .collect();
    shots.sort_by(|a, b| a.2.cmp(&b.2));
    shots
}

/// `/v1/health`'s counters.
pub async fn counters(base: &str) -> Value {
    get(format!("{base}/v1/health")).await["counters"].clone()
}

/// Webhook deliveries received: (`X-Shotfix-Delivery` id, body).
pub type Deliveries = Arc<Mutex<Vec<(String, Value)>>>;

/// A webhook receiver on a loopback port; returns its URL and what it got.
pub async fn receiver() -> (String, Deliveries) {
    use axum::http::HeaderMap;
    use axum::routing::post;
    let got: Deliveries = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: String| {
            let sink = sink.clone();
            async move {
                let id = headers["x-shotfix-delivery"].to_str().unwrap().to_string();
                sink.lock()
                    .unwrap()
                    .push((id, serde_json::from_str::<Value>(&body).unwrap()));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

/// Subscribes to the SSE alert feed now; the task returns the text received
/// until the feed is quiet for 3 s (or 20 s have passed).
pub async fn sse_text(base: &str) -> tokio::task::JoinHandle<String> {
    let sse = get_as_tests(&format!("{base}/v1/alerts/stream")).await;
    tokio::spawn(async move {
        let mut sse = sse;
        let mut text = String::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_secs(3), sse.chunk()).await {
                Ok(Ok(Some(c))) => text.push_str(&String::from_utf8_lossy(&c)),
                _ => break,
            }
        }
        text
    })
}

/// Sends a request as `token` (none: anonymous); the status and the body.
pub async fn call(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (reqwest::StatusCode, String) {
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    if let Some(b) = body {
        request = request.json(&b);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    // A live feed never ends: its status is enough.
    let streaming = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap_or("").starts_with("text/event-stream"));
    let text = if streaming {
        String::new()
    } else {
        response.text().await.unwrap()
    };
    (status, text)
}

/// GETs `url` as `token`; it must succeed; the body as JSON.
pub async fn get_json(url: &str, token: &str) -> Value {
    let (status, text) = call(reqwest::Method::GET, url, Some(token), None).await;
    assert!(status.is_success(), "GET {url}: {status} {text}");
    serde_json::from_str(&text).unwrap()
}
