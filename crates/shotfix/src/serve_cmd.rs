//! `shotfix serve`, `shotfix replay` and `shotfix demo`.

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use model::Geodetic;
use server::config::{Database, ServerConfig};
use server::replay;

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")
}

fn load_config(path: &Path) -> Result<ServerConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    ServerConfig::from_toml(&text).map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// `shotfix serve --config FILE`: runs until Ctrl-C.
pub fn serve(config: &Path) -> Result<()> {
    let config = load_config(config)?;
    runtime()?.block_on(async {
        let running = server::start(config).await?;
        crate::report_cmd::attach(&running);
        eprintln!("shotfix serve: listening on http://{}", running.addr);
        tokio::signal::ctrl_c().await.context("wait for Ctrl-C")?;
        running.stop().await;
        Ok(())
    })
}

/// Parses `LAT,LON[,ALT]`.
pub fn parse_origin(text: &str) -> Result<Geodetic> {
    let v: Vec<f64> = text
        .split(',')
        .map(|p| p.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| anyhow!("origin {text:?}: expected LAT,LON or LAT,LON,ALT_M"))?;
    let g = match v.as_slice() {
        [lat, lon] => Geodetic {
            lat_deg: *lat,
            lon_deg: *lon,
            alt_m: 0.0,
        },
        [lat, lon, alt] => Geodetic {
            lat_deg: *lat,
            lon_deg: *lon,
            alt_m: *alt,
        },
        _ => {
            return Err(anyhow!(
                "origin {text:?}: expected LAT,LON or LAT,LON,ALT_M"
            ))
        }
    };
    if !g.is_valid() {
        return Err(anyhow!(
            "origin {text:?}: not a valid latitude and longitude"
        ));
    }
    Ok(g)
}

/// `shotfix replay PATH --server URL --config FILE [--origin] [--speed]` (or
/// `--mqtt URL [--mqtt-topic FILTER]` instead of `--server`), or
/// `--write-config FILE [--db FILE|URL]` to make a server configuration for
/// PATH's sensors.
/// How `shotfix replay` plays a folder.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayOptions {
    /// LAT,LON[,ALT_M] anchoring a local frame.
    pub origin: Option<String>,
    pub speed: f64,
    /// Each pulse with its clip, cut from the folder's recordings.
    pub clips: bool,
    /// One heartbeat per sensor before the pulses.
    pub heartbeats: bool,
    /// Move the first pulse to this time (RFC 3339 or `now`), renaming the
    /// pulses so the folder can be played to one server more than once.
    pub start_at: Option<String>,
}

pub fn replay(
    path: &Path,
    target: Option<replay::Target>,
    config: Option<&Path>,
    write_config: Option<&Path>,
    db: Option<&OsStr>,
    options: &ReplayOptions,
) -> Result<()> {
    let speed = options.speed;
    let origin = options.origin.as_deref().map(parse_origin).transpose()?;
    let mut input = replay::read(path, origin).map_err(|e| anyhow!(e))?;
    if (options.clips || options.heartbeats) && write_config.is_none() {
        match replay::attach_clips(path, &mut input) {
            Ok(n) if options.clips => {
                eprintln!(
                    "shotfix replay: {n} of {} pulses with clips",
                    input.pulses.len()
                )
            }
            Ok(_) => input.clips.clear(),
            Err(e) if options.clips => return Err(anyhow!("--clips: {e}")),
            // Heartbeats without a recording: no noise floor.
            Err(_) => {}
        }
    }
    if let Some(out) = write_config {
        let database = db.map_or_else(|| Database::from(Path::new("shotfix.db")), Database::parse);
        let config = replay::server_config(&input, database);
        std::fs::write(out, config_toml(&config))
            .with_context(|| format!("write {}", out.display()))?;
        eprintln!(
            "shotfix replay: wrote {} ({} sensors)",
            out.display(),
            config.sensors.len()
        );
        return Ok(());
    }
    let Some(target) = target else {
        return Err(anyhow!("replay needs --server URL (or --mqtt URL) and --config FILE (the server's, for the sensor keys), or --write-config FILE"));
    };
    let Some(config) = config else {
        return Err(anyhow!("replay needs --server URL (or --mqtt URL) and --config FILE (the server's, for the sensor keys), or --write-config FILE"));
    };
    if !(speed >= 0.0 && speed.is_finite()) {
        return Err(anyhow!(
            "--speed {speed}: must be ≥ 0 (0 = as fast as possible)"
        ));
    }
    if let Some(at) = &options.start_at {
        let t = if at == "now" {
            model::UtcNanos(server::now_ns())
        } else {
            model::UtcNanos::parse_rfc3339(at)
                .map_err(|e| anyhow!("--start-at {at}: {e} (RFC 3339, or now)"))?
        };
        replay::shift_to(&mut input, t);
    }
    let keys = replay::keys(&load_config(config)?);
    let stats = runtime()?
        .block_on(async {
            if let (true, replay::Target::Http(url)) = (options.heartbeats, &target) {
                let n = replay::send_heartbeats(url, &keys, &input).await?;
                eprintln!("shotfix replay: {n} heartbeats sent");
            }
            replay::replay_to(&target, &keys, &input, speed).await
        })
        .map_err(|e| anyhow!(e))?;
    let to = match &target {
        replay::Target::Http(url) => url.clone(),
        replay::Target::Mqtt { url, topic } => format!("{url} ({topic})"),
    };
    eprintln!(
        "shotfix replay: {} pulses in {} reports sent to {to} ({} retries)",
        stats.pulses, stats.reports, stats.retries
    );
    Ok(())
}

/// Where `shotfix replay` sends: `--server URL` or `--mqtt URL` (clap keeps
/// the two apart); `None` without either.
pub fn replay_target(
    server: Option<String>,
    mqtt: Option<String>,
    topic: String,
) -> Option<replay::Target> {
    match (server, mqtt) {
        (Some(url), None) => Some(replay::Target::Http(url)),
        (None, Some(url)) => Some(replay::Target::Mqtt { url, topic }),
        _ => None,
    }
}

/// A server configuration as TOML text.
pub fn config_toml(c: &ServerConfig) -> String {
    // The database as the file takes it back (a URL unchanged), quoted and
    // escaped as a TOML string (a Windows path's backslashes, a URL's quotes).
    let database = toml::Value::String(c.database.setting().into_owned());
    let mut s = format!("listen = \"{}\"\ndatabase = {database}\n", c.listen);
    if let Some(o) = c.origin {
        s.push_str(&format!(
            "origin = {{ lat = {}, lon = {}, alt_m = {} }}\n",
            o.lat, o.lon, o.alt_m
        ));
    }
    let w = &c.weather;
    let weather: Vec<String> = [
        ("temperature_c", w.temperature_c),
        ("wind_speed_m_s", w.wind_speed_m_s),
        ("wind_from_deg", w.wind_from_deg),
    ]
    .iter()
    .filter_map(|(k, v)| v.map(|v| format!("{k} = {v}")))
    .collect();
    if !weather.is_empty() {
        s.push_str(&format!("weather = {{ {} }}\n", weather.join(", ")));
    }
    for w in &c.webhooks {
        s.push_str(&format!(
            "\n[[webhooks]]\nurl = \"{}\"\nsecret = \"{}\"\n",
            w.url, w.secret
        ));
    }
    if let Some(m) = &c.mqtt {
        s.push_str(&format!(
            "\n[mqtt]\nurl = \"{}\"\ntopic = \"{}\"\nclient_id = \"{}\"\n",
            m.url, m.topic, m.client_id
        ));
    }
    if c.map != server::config::MapConfig::default() {
        let m = &c.map;
        let text = |v: &str| toml::Value::String(v.to_string());
        s.push_str(&format!(
            "\n[map]\ntiles = {}\nattribution = {}\nmax_zoom = {}\ntimezone = {}\n",
            text(&m.tiles),
            text(&m.attribution),
            m.max_zoom,
            text(&m.timezone)
        ));
        if let Some(o) = &m.overlay {
            s.push_str(&format!("overlay = {}\n", text(&o.to_string_lossy())));
        }
    }
    for x in &c.sensors {
        s.push_str(&format!(
            "\n[[sensors]]\nid = \"{}\"\nkey = \"{}\"\nlat = {}\nlon = {}\nalt_m = {}\n",
            x.id, x.key, x.lat, x.lon, x.alt_m
        ));
    }
    s
}

/// `shotfix demo`: the server (on a temporary SQLite file unless `--db` names
/// a file or a `postgres://` URL), and a simulated city of sensors
/// playing a scenario through the real signed ingest path in real time, again
/// and again (each pass moved to the present), until Ctrl-C.
/// The demo's map settings.
#[derive(Debug, Clone)]
pub struct DemoMap {
    pub tiles: String,
    pub timezone: String,
}

pub fn demo(
    scenario_path: &Path,
    db: Option<OsString>,
    listen: &str,
    once: bool,
    map: DemoMap,
) -> Result<()> {
    let dir = tempfile::tempdir().context("make a temporary folder")?;
    let db = db.map_or_else(
        || Database::from(dir.path().join("demo.db")),
        Database::parse,
    );
    // With audio: each replayed pulse carries its clip, so the dashboard's
    // incident page has waveforms, spectrograms and sound.
    let scenario = crate::simulate_cmd::load_scenario(scenario_path)?;
    let scene =
        sim::simulate(&scenario).map_err(|e| anyhow!("{}: {e}", scenario_path.display()))?;
    let scene_dir = dir.path().join("scene");
    crate::simulate_cmd::write(&scene, &scene_dir)?;
    let mut input = replay::read(&scene_dir, None).map_err(|e| anyhow!(e))?;
    // A scenario without audio (the load scenarios) plays without clips.
    if let Err(e) = replay::attach_clips(&scene_dir, &mut input) {
        eprintln!("shotfix demo: no clips or noise floors: {e}");
    }
    crate::simulate_cmd::write_city(&scenario, &scene, &scene_dir)?;
    let overlay = scene_dir.join(crate::simulate_cmd::CITY_FILE);
    let mut config = replay::server_config(&input, db.clone());
    config.map.overlay = Some(overlay);
    config.map.tiles = map.tiles;
    config.map.timezone = map.timezone;
    config.listen = listen
        .parse()
        .with_context(|| format!("--listen {listen}"))?;
    let keys = replay::keys(&config);
    runtime()?.block_on(async {
        let running = server::start(config).await?;
        crate::report_cmd::attach(&running);
        let url = format!("http://{}", running.addr);
        // A demo administrator with a fresh password (nothing is public but
        // the public view, so the dashboard needs a login).
        let password = server::access::generated_password();
        let admin = server::access::new_user("admin", server::access::Role::Administrator, &password)
            .map_err(|e| anyhow!(e))?;
        running.app.writer.run(move |db| db.upsert_user(&admin)).await?;
        println!("shotfix demo: dashboard at {url}/  (log in as admin, password {password}; API: {url}/v1/openapi.json)");
        if !server::web::built() {
            eprintln!("shotfix demo: this binary has no dashboard: run `bash scripts/web.sh`, then build again (or use `bash scripts/demo.sh`)");
        }
        println!(
            "shotfix demo: {} sensors, scenario {}, database {}; Ctrl-C to stop",
            input.sensors.len(),
            scenario_path.display(),
            db
        );
        loop {
            let mut pass = input.clone();
            // Move the scene to now, so the feed looks live.
            replay::shift_to(&mut pass, model::UtcNanos(server::now_ns()));
            // The simulated sensors' health, once a pass (a minute or two).
            if let Err(e) = replay::send_heartbeats(&url, &keys, &pass).await {
                eprintln!("shotfix demo: heartbeats: {e}");
            }
            println!("shotfix demo: playing {} pulses", pass.pulses.len());
            let stats = tokio::select! {
                s = replay::replay(&url, &keys, &pass, 1.0) => s.map_err(|e| anyhow!(e))?,
                _ = tokio::signal::ctrl_c() => { running.stop().await; return Ok(()); }
            };
            println!("shotfix demo: sent {} pulses in {} reports", stats.pulses, stats.reports);
            if once {
                tokio::time::sleep(Duration::from_secs(3)).await;
                let health = reqwest_get(&format!("{url}/v1/health")).await?;
                println!("shotfix demo: {health}");
                running.stop().await;
                return Ok(());
            }
        }
    })
}

async fn reqwest_get(url: &str) -> Result<serde_json::Value> {
    let text = server::http_get(url).await.map_err(|e| anyhow!(e))?;
    serde_json::from_str(&text).context("parse the server's answer")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_configuration_reads_back_with_its_database_unchanged() {
        for database in [
            Database::parse("postgres://shotfix:s3cr\"t@db.example:5432/shotfix"),
            Database::parse("postgresql://shotfix@127.0.0.1/shotfix?connect_timeout=5"),
            Database::parse(r"C:\shotfix\shotfix.db"),
            Database::parse("shotfix.db"),
        ] {
            let mut config = ServerConfig::new(database.clone());
            config.sensors.push(server::config::SensorConfig {
                id: "S1".into(),
                key: "00112233445566778899aabbccddeeff".into(),
                lat: 40.0,
                lon: -80.0,
                alt_m: 1.0,
            });
            let text = config_toml(&config);
            let back = ServerConfig::from_toml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(back.database, database, "{text}");
        }
    }
}
