//! The dashboard in a real browser (web/test/dashboard.mjs, Debian's Chromium
//! driven by Playwright): `shotfix serve` with simulated scenes replayed to it
//! as live sensors (pulses with their clips, and heartbeats), then every page
//! loaded and checked, new alerts timed from the server's publication to the
//! page, screenshots taken at 1280×800 and on a phone.
//!
//! Needs Node.js, `npm ci` in web/ (playwright-core), the dashboard built
//! into the binary (`npm run build` in web/ before cargo builds), and
//! Chromium at /usr/bin/chromium (Debian's `chromium`) or `SHOTFIX_CHROMIUM`;
//! scripts/test.sh sees to all of them. `SHOTFIX_SCREENSHOTS=DIR` keeps the
//! screenshots there (docs/screenshots holds the README's).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, ok, s, Proc};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn shotfix(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_shotfix"))
        .args(args)
        .output()
        .unwrap()
}

/// The body of a GET with the bearer token, if it succeeded.
fn get(url: &str, token: &str) -> Option<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        reqwest::Client::new()
            .get(url)
            .bearer_auth(token)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .ok()?
            .error_for_status()
            .ok()?
            .text()
            .await
            .ok()
    })
}

#[test]
fn every_page_works_in_chromium_with_replayed_scenes() {
    let chromium = std::env::var("SHOTFIX_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let web = root().join("web");
    assert!(
        Path::new(&chromium).exists(),
        "no Chromium at {chromium}: install Debian's chromium (scripts/test.sh does) or set SHOTFIX_CHROMIUM"
    );
    assert!(
        web.join("node_modules/playwright-core").is_dir(),
        "run `npm ci` in web/ (scripts/test.sh does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // The two-shooter scene, heard on three days at different hours already,
    // and twice more while the live view is open.
    let scene = d.join("scene");
    ok(
        &shotfix(&[
            "simulate",
            s(&root().join("scenarios/two-shooters.toml")),
            "--out",
            s(&scene),
        ]),
        "simulate",
    );
    let stored = [
        "2026-06-01T02:00:00Z",
        "2026-06-10T21:30:00Z",
        "2026-06-24T14:15:00Z",
    ];
    // Ten minutes ago and now: recent enough for the review queue (its last
    // 7 days), far enough apart to be two incidents.
    let live = [
        model::UtcNanos(server::now_ns() - 600_000_000_000).to_rfc3339(),
        model::UtcNanos(server::now_ns()).to_rfc3339(),
    ];

    let config = d.join("server.toml");
    ok(
        &shotfix(&[
            "replay",
            s(&scene),
            "--write-config",
            s(&config),
            "--db",
            s(&d.join("s.db")),
        ]),
        "replay --write-config",
    );
    let port = free_port();
    let text = std::fs::read_to_string(&config).unwrap();
    let mut text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("listen = ") {
                format!("listen = \"127.0.0.1:{port}\"\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    // Offline: no tiles, the simulated city drawn from its own overlay.
    text.push_str(&format!(
        "\n[map]\ntiles = \"\"\noverlay = {}\ntimezone = \"America/New_York\"\n",
        toml_string(&scene.join("city.geojson"))
    ));
    // Areas of interest: a district around the whole city and a school with
    // a 10 km buffer, both centred on the first sensor; a school calendar.
    let first = |key: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key} = ")))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let (lat, lon) = (first("lat"), first("lon"));
    let district = d.join("district.geojson");
    std::fs::write(
        &district,
        serde_json::json!({"type": "Feature", "properties": {"name": "Citywide"}, "geometry": {
            "type": "Polygon", "coordinates": [[[lon - 0.1, lat - 0.1], [lon + 0.1, lat - 0.1],
            [lon + 0.1, lat + 0.1], [lon - 0.1, lat + 0.1], [lon - 0.1, lat - 0.1]]]}})
        .to_string(),
    )
    .unwrap();
    let school = d.join("school.geojson");
    std::fs::write(
        &school,
        serde_json::json!({"type": "Feature", "properties": {"name": "Central High"},
            "geometry": {"type": "Point", "coordinates": [lon, lat]}})
        .to_string(),
    )
    .unwrap();
    text.push_str(&format!(
        "\n[[areas.layers]]\nname = \"district\"\nfile = {}\n\n[[areas.layers]]\nname = \"schools\"\nfile = {}\nbuffer_m = 10000\n\n[areas.school_hours]\nstart = \"08:00\"\nend = \"15:00\"\n",
        toml_string(&district),
        toml_string(&school)
    ));
    std::fs::write(&config, text).unwrap();

    let mut passwords = serde_json::Map::new();
    for role in [
        "administrator",
        "reviewer",
        "dispatcher",
        "analyst",
        "public",
    ] {
        let name = if role == "administrator" {
            "admin"
        } else {
            role
        };
        let password = format!("browser-test-{name}-password");
        let mut child = Command::new(env!("CARGO_BIN_EXE_shotfix"))
            .args([
                "user",
                "add",
                name,
                "--role",
                role,
                "--config",
                s(&config),
                "--password-stdin",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(password.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        ok(&out, "user add");
        passwords.insert(name.into(), password.into());
    }
    let token = ok(
        &shotfix(&[
            "token",
            "add",
            "dashboard-test",
            "--role",
            "administrator",
            "--config",
            s(&config),
        ]),
        "token add",
    )
    .trim()
    .to_string();

    let _server = Proc(
        Command::new(env!("CARGO_BIN_EXE_shotfix"))
            .args(["serve", "--config", s(&config)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(&format!("{base}/v1/health"), &token).is_none() {
        assert!(Instant::now() < deadline, "the server did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
    let index = get(&format!("{base}/"), &token).unwrap();
    assert!(
        index.contains("/assets/app.js"),
        "this binary was built without the dashboard: run `npm ci && npm run build` in web/, then cargo"
    );

    let replay = |start_at: &str| -> Vec<String> {
        [
            env!("CARGO_BIN_EXE_shotfix"),
            "replay",
            s(&scene),
            "--server",
            &base,
            "--config",
            s(&config),
            "--speed",
            "0",
            "--clips",
            "--heartbeats",
            "--start-at",
            start_at,
        ]
        .iter()
        .map(|a| a.to_string())
        .collect()
    };
    for t in stored {
        let argv = replay(t);
        ok(
            &Command::new(&argv[0]).args(&argv[1..]).output().unwrap(),
            "replay",
        );
    }
    // Every stored scene has become an incident.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = get(&format!("{base}/v1/incidents"), &token).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&list).unwrap_or_default();
        let n = v["incidents"].as_array().map_or(0, |a| a.len());
        if n >= stored.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{n} incidents after replaying {} scenes",
            stored.len()
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    let screenshots = std::env::var("SHOTFIX_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| d.join("screenshots"));
    let settings = serde_json::json!({
        "base": base,
        "passwords": passwords,
        "triggers": live.iter().map(|t| replay(t)).collect::<Vec<_>>(),
        "screenshots": screenshots,
        "chromium": chromium,
    });
    let out = Command::new("node")
        .arg("test/dashboard.mjs")
        .current_dir(&web)
        .env("SHOTFIX_DASHBOARD", settings.to_string())
        .output()
        .expect("run node (Node.js is needed for the browser tests)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: serde_json::Value = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_default();
    println!("browser test summary: {summary}");
    assert!(
        out.status.success(),
        "browser test failed: {}\n{}",
        serde_json::to_string_pretty(&summary["problems"]).unwrap_or_default(),
        String::from_utf8_lossy(&out.stderr)
    );
    let latencies: Vec<f64> = summary["latency_ms"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_f64())
        .collect();
    assert_eq!(
        latencies.len(),
        live.len(),
        "one timed alert per live scene"
    );
    assert!(
        latencies.iter().all(|&l| (0.0..1000.0).contains(&l)),
        "{latencies:?}"
    );
    for png in [
        "live.png",
        "incident.png",
        "queue.png",
        "sensors.png",
        "analytics.png",
        "measures.png",
        "public.png",
        "phone-live.png",
    ] {
        let bytes = std::fs::read(screenshots.join(png)).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
            "{png}"
        );
    }
}

fn toml_string(p: &Path) -> String {
    toml::Value::String(p.to_str().unwrap().to_string()).to_string()
}
