//! Evidence bundles and the Investigative Lead Summary, end to end (issue 10).
//!
//! 1. `stored_incident_bundle_round_trips`: a real Pittsburgh live-fire test
//!    replayed to a server, then adjusted by a reviewer. `shotfix evidence
//!    export` twice gives the same bundle hash; the bundle copied to a clean
//!    folder and run through `shotfix locate` gives the server's shots
//!    identically; `evidence verify` passes; the HTML and PDF reports carry the
//!    hash, the history and the machine's result beside the person's.
//! 2. `altering_any_file_breaks_the_seal`: every file of a bundle changed by one
//!    byte, a file added, a file removed, the seal reordered: verify exits 1
//!    naming the file.
//! 3. `vendor_recordings_round_trip`: the real Chicago six-sensor incident
//!    (ShotSpotter smj0 WAVs) packed, copied to a clean folder and re-analysed:
//!    the same incidents as the analysis of record; its PDF report's page 1
//!    rendered by pdftoppm.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use server::config::ServerConfig;

mod common;
use common::{free_port, ok, pittsburgh_test, s, Proc};
use server::replay;

fn chicago() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/shotspotter-wav/ChicagoILDistrict7_312 2022-09-21 015200--Request 4072698")
}

/// Runs shotfix in `cwd` (a clean folder: nothing but the arguments is read).
fn shotfix_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shotfix"))
        .current_dir(cwd)
        .args(args)
        .output()
        .expect("run shotfix")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The bundle hash a command printed (`…: bundle SHA-256 <hex>`).
fn printed_hash(stdout: &str) -> String {
    stdout.trim().rsplit(' ').next().unwrap().to_string()
}

/// The shots of a result's incidents as (t_utc, x, y, z, err95_m, sorted sensors).
fn shots(incidents: &Value) -> Vec<(String, f64, f64, f64, f64, Vec<String>)> {
    let mut out: Vec<_> = incidents
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["shots"].as_array().unwrap().clone())
        .map(|s| {
            let mut sensors: Vec<String> = s["sensors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect();
            sensors.sort();
            (
                s["t_utc"].as_str().unwrap().to_string(),
                s["x"].as_f64().unwrap(),
                s["y"].as_f64().unwrap(),
                s["z"].as_f64().unwrap(),
                s["err95_m"].as_f64().unwrap(),
                sensors,
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A server's SQLite database holding FP1 test_001 as replayed live to
/// `shotfix serve`, with a reviewer's adjustment, and the server's report of
/// it over HTTP. Returns (config path, incident id, (HTML, bundle hash header)).
async fn stored_incident(dir: &Path) -> (PathBuf, String, (String, String)) {
    let test = pittsburgh_test("FP1", 1);
    let config_path = dir.join("server.toml");
    let db = dir.join("s.db");
    ok(
        &shotfix_in(
            dir,
            &[
                "replay",
                s(&test),
                "--write-config",
                s(&config_path),
                "--db",
                s(&db),
                "--origin",
                "40.4406,-79.9959,250",
            ],
        ),
        "replay --write-config",
    );
    let port = free_port();
    let text = std::fs::read_to_string(&config_path).unwrap();
    let text = text
        .lines()
        .map(|l| {
            if l.starts_with("listen = ") {
                format!("listen = \"127.0.0.1:{port}\"")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&config_path, text).unwrap();
    let config = ServerConfig::from_toml(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    let keys = replay::keys(&config);
    let token = ok(
        &shotfix_in(
            dir,
            &[
                "token",
                "add",
                "evidence-test",
                "--role",
                "reviewer",
                "--config",
                s(&config_path),
            ],
        ),
        "token add",
    )
    .trim()
    .to_string();
    let _server = Proc(
        Command::new(env!("CARGO_BIN_EXE_shotfix"))
            .args(["serve", "--config", s(&config_path)])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{base}/v1/health")).await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "server did not come up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let origin = model::Geodetic {
        lat_deg: 40.4406,
        lon_deg: -79.9959,
        alt_m: 250.0,
    };
    let input = replay::read(&test, Some(origin)).unwrap();
    replay::replay(&base, &keys, &input, 0.0).await.unwrap();
    // Event time moves on while idle: the shots become final.
    tokio::time::sleep(Duration::from_secs(14)).await;
    let client = reqwest::Client::new();
    let list: Value = client
        .get(format!("{base}/v1/incidents"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let incidents = list["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{list:#}");
    let id = incidents[0]["id"].as_str().unwrap().to_string();
    let reviewed = client
        .post(format!("{base}/v1/incidents/{id}/review"))
        .bearer_auth(&token)
        .json(&serde_json::json!({
            "action": "adjust",
            "rounds": 4,
            "reason": "a fourth round is audible on the 911 call \"#2\""
        }))
        .send()
        .await
        .unwrap();
    assert!(reviewed.status().is_success(), "{}", reviewed.status());
    // The report from the server, as the dashboard links to it.
    let response = client
        .get(format!("{base}/v1/incidents/{id}/report?format=html"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let header = response
        .headers()
        .get("x-shotfix-bundle-sha256")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let html = response.text().await.unwrap();
    let bad = client
        .get(format!("{base}/v1/incidents/{id}/report?format=docx"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let missing = client
        .get(format!("{base}/v1/incidents/nope/report"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let anonymous = client
        .get(format!("{base}/v1/incidents/{id}/report"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    (config_path, id, (html, header))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_incident_bundle_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let (config, id, (served_html, served_hash)) = stored_incident(dir.path()).await;
    let b1 = dir.path().join("b1");
    let b2 = dir.path().join("b2");
    let h1 = printed_hash(&ok(
        &shotfix_in(
            dir.path(),
            &[
                "evidence",
                "export",
                &id,
                "--config",
                s(&config),
                "--out",
                s(&b1),
            ],
        ),
        "export",
    ));
    let h2 = printed_hash(&ok(
        &shotfix_in(
            dir.path(),
            &[
                "evidence",
                "export",
                &id,
                "--config",
                s(&config),
                "--out",
                s(&b2),
            ],
        ),
        "export again",
    ));
    assert_eq!(h1.len(), 64);
    assert_eq!(h1, h2, "the same stored incident gives the same bundle");
    assert_eq!(
        served_hash, h1,
        "the server's report is made from the same bundle"
    );
    assert!(served_html.contains(&h1) && served_html.contains("3 of 3 recorded shots identical"));

    // Re-analysis on another machine: a clean folder holding only the bundle.
    let elsewhere = tempfile::tempdir().unwrap();
    let copy = elsewhere.path().join("bundle");
    copy_dir(&b1, &copy);
    let record: Value =
        serde_json::from_slice(&std::fs::read(copy.join("record.json")).unwrap()).unwrap();
    let located: Value = serde_json::from_str(&ok(
        &shotfix_in(elsewhere.path(), &["locate", "bundle", "--json"]),
        "locate the bundle",
    ))
    .unwrap();
    let current = record["current_version"].as_i64().unwrap();
    let incident: Value = serde_json::from_slice(
        &std::fs::read(copy.join(format!("versions/{current}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(
        incident["rounds"], 4,
        "the current version is the reviewer's"
    );
    assert_eq!(incident["review"]["machine"]["rounds"], 3);
    let recorded = shots(&Value::Array(vec![incident.clone()]));
    assert_eq!(recorded.len(), 3, "FP1 test_001 has three rounds");
    assert_eq!(
        shots(&located["incidents"]),
        recorded,
        "locate on the bundle re-derives the server's shots exactly"
    );
    let verified = ok(
        &shotfix_in(elsewhere.path(), &["evidence", "verify", "bundle"]),
        "verify",
    );
    assert!(verified.contains(&h1), "{verified}");
    assert!(
        verified.contains(
            "3 of 3 recorded shots identical, 3 within 1 µs and 1 mm, 3 with the same class, 0 difference(s)"
        ),
        "{verified}"
    );
    // The history came along, and every entry's hash recomputes from the bundle.
    let history = record["history"].as_array().unwrap();
    assert!(history.iter().any(|e| e["action"] == "adjust"));
    assert!(
        verified.contains(&format!(
            "history: {} entries recomputed, 0 problem(s)",
            history.len()
        )),
        "{verified}"
    );

    // Re-sealing does not launder a changed history: a reviewer's reason
    // edited and the seal rewritten still fails, naming the entry.
    let forged = elsewhere.path().join("forged");
    copy_dir(&copy, &forged);
    let text = std::fs::read_to_string(forged.join("record.json")).unwrap();
    std::fs::write(
        forged.join("record.json"),
        text.replace("a fourth round is audible", "no round is audible"),
    )
    .unwrap();
    let mut files = formats::evidence::BundleFiles::new();
    for line in std::fs::read_to_string(forged.join("SHA256SUMS"))
        .unwrap()
        .lines()
    {
        let path = &line[66..];
        files.insert(path.to_string(), std::fs::read(forged.join(path)).unwrap());
    }
    std::fs::write(forged.join("SHA256SUMS"), formats::evidence::sums(&files)).unwrap();
    let out = shotfix_in(elsewhere.path(), &["evidence", "verify", "forged"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("the reason differs from its SHA-256"),
        "{stdout}"
    );

    // The reports are made from the same bundle and say so.
    let html = ok(
        &shotfix_in(
            dir.path(),
            &["report", "incident", &id, "--config", s(&config), "--html"],
        ),
        "report --html",
    );
    assert!(html.contains(&h1), "the report names its bundle");
    assert!(html.contains("Investigative Lead Summary"));
    assert!(html.contains("3 of 3 recorded shots identical"));
    assert!(
        html.contains("a fourth round is audible on the 911 call &quot;#2&quot;"),
        "the reviewer's reason, escaped"
    );
    // The machine's result beside the person's: 3 rounds against 4.
    assert!(
        html.contains("<tr><th>Rounds</th><td>3</td><td>4</td></tr>"),
        "{html}"
    );
    assert!(html.contains("id=\"history\""));
    let pdf_path = dir.path().join("report.pdf");
    ok(
        &shotfix_in(
            dir.path(),
            &[
                "report",
                "incident",
                &id,
                "--config",
                s(&config),
                "--pdf",
                "--out",
                s(&pdf_path),
            ],
        ),
        "report --pdf",
    );
    let text = Command::new("pdftotext")
        .arg(&pdf_path)
        .arg("-")
        .output()
        .expect("pdftotext (Debian: poppler-utils)");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(&h1[..32]), "{text}");
    assert!(text.contains("Change history"), "{text}");

    // Bad input: one line, exit 1.
    for args in [
        vec![
            "evidence",
            "export",
            "no-such-incident",
            "--config",
            s(&config),
            "--out",
        ],
        vec!["evidence", "verify", s(dir.path())],
        vec!["evidence", "export", &id, "--config", s(&config), "--out"],
    ] {
        let mut args: Vec<&str> = args;
        let target = dir.path().join("b1"); // exists and is not empty
        if args.last() == Some(&"--out") {
            args.push(s(&target));
        }
        let out = shotfix_in(dir.path(), &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
}

/// A bundle to tamper with: the vendor recordings packed (no server needed).
fn packed(dir: &Path) -> PathBuf {
    let out = dir.join("bundle");
    ok(
        &shotfix_in(dir, &["evidence", "pack", s(&chicago()), "--out", s(&out)]),
        "pack",
    );
    out
}

#[test]
fn altering_any_file_breaks_the_seal() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = packed(dir.path());
    ok(
        &shotfix_in(dir.path(), &["evidence", "verify", s(&bundle)]),
        "verify the untouched bundle",
    );
    let sums = std::fs::read_to_string(bundle.join("SHA256SUMS")).unwrap();
    let files: Vec<String> = sums.lines().map(|l| l[66..].to_string()).collect();
    assert!(files.len() >= 9, "{sums}"); // six recordings, scene, results, bundle.json
    let fails = |dir: &Path, what: &str, names: &str| {
        let out = shotfix_in(dir, &["evidence", "verify", "copy"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{what}: {err}");
        assert!(err.contains(names), "{what}: {err}");
    };
    for file in files
        .iter()
        .chain(std::iter::once(&"SHA256SUMS".to_string()))
    {
        let work = tempfile::tempdir().unwrap();
        let copy = work.path().join("copy");
        copy_dir(&bundle, &copy);
        let path = copy.join(file);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        std::fs::write(&path, bytes).unwrap();
        fails(work.path(), &format!("one byte of {file}"), file);
    }
    // A file added, a file removed, the seal's lines reordered.
    let work = tempfile::tempdir().unwrap();
    let copy = work.path().join("copy");
    copy_dir(&bundle, &copy);
    std::fs::write(copy.join("audio/extra.wav"), b"RIFF").unwrap();
    fails(work.path(), "a file added", "audio/extra.wav");
    std::fs::remove_file(copy.join("audio/extra.wav")).unwrap();
    std::fs::remove_file(copy.join("results.json")).unwrap();
    fails(work.path(), "a file removed", "results.json");
    let work = tempfile::tempdir().unwrap();
    let copy = work.path().join("copy");
    copy_dir(&bundle, &copy);
    let mut lines: Vec<&str> = sums.lines().collect();
    lines.reverse();
    std::fs::write(copy.join("SHA256SUMS"), lines.join("\n") + "\n").unwrap();
    fails(work.path(), "the seal reordered", "SHA256SUMS");
}

#[test]
fn vendor_recordings_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = packed(dir.path());
    let again = dir.path().join("again");
    let h1 = {
        let sums = std::fs::read(bundle.join("SHA256SUMS")).unwrap();
        formats::evidence::sha256_hex(&sums)
    };
    let h2 = printed_hash(&ok(
        &shotfix_in(
            dir.path(),
            &["evidence", "pack", s(&chicago()), "--out", s(&again)],
        ),
        "pack again",
    ));
    assert_eq!(h1, h2, "packing is deterministic");

    let elsewhere = tempfile::tempdir().unwrap();
    copy_dir(&bundle, &elsewhere.path().join("bundle"));
    let recorded: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("results.json")).unwrap()).unwrap();
    let direct: Value = serde_json::from_str(&ok(
        &shotfix_in(dir.path(), &["analyze", s(&chicago()), "--json"]),
        "analyze the folder",
    ))
    .unwrap();
    let rederived: Value = serde_json::from_str(&ok(
        &shotfix_in(elsewhere.path(), &["analyze", "bundle", "--json"]),
        "analyze the bundle",
    ))
    .unwrap();
    assert!(!recorded["incidents"].as_array().unwrap().is_empty());
    assert_eq!(recorded["incidents"], direct["incidents"]);
    assert_eq!(
        rederived["incidents"], recorded["incidents"],
        "analyze on the bundle gives the analysis of record, incident for incident"
    );
    assert_eq!(rederived["frame"], "wgs84");

    // The report of the folder, as PDF, page 1 as PNG.
    let pdf = dir.path().join("chicago.pdf");
    ok(
        &shotfix_in(
            dir.path(),
            &["report", "folder", s(&chicago()), "--pdf", "--out", s(&pdf)],
        ),
        "report folder --pdf",
    );
    let png = dir.path().join("page1");
    let out = Command::new("pdftoppm")
        .args(["-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile"])
        .arg(&pdf)
        .arg(&png)
        .output()
        .expect("pdftoppm (Debian: poppler-utils)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(png.with_extension("png")).unwrap();
    assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000);
    let text = Command::new("pdftotext")
        .arg(&pdf)
        .arg("-")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(&h1[..32]), "the PDF names the bundle: {text}");
    let html = ok(
        &shotfix_in(dir.path(), &["report", "folder", s(&chicago()), "--html"]),
        "report folder --html",
    );
    assert!(html.contains(&h1));
    // Six sensors heard it; each has a waveform.
    assert_eq!(
        html.matches("<div class=\"fig\"><svg").count(),
        2 + 6,
        "map, sequence, six waveforms"
    );
}
