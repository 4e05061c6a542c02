//! `shotfix serve`: sensor reports in, incidents and alerts out, nothing accepted
//! ever lost.
//!
//! The server is a pipeline, sources → transforms → sinks (after Vector):
//!
//! ```text
//! sources      HTTP POST /v1/reports, MQTT shotfix/v1/reports/+
//!                 │  one ingest::submit: signed, rate-limited, deduplicated
//!                 │  commit to the store first (group commit), then 202 / PUBACK
//! transforms   Associator (sliding event-time window; locate's association and solver)
//!                 │  shot changes
//!              IncidentBuilder (group, version, decide alert / update / cancel)
//!                 │  incident versions
//! sinks        store (incident version + alert + webhook outbox, one transaction)
//!                 ├─ SSE /v1/alerts/stream and WebSocket /v1/alerts/ws (resume by seq)
//!                 ├─ webhooks (signed, retried with backoff from the durable outbox)
//!                 └─ REST API, CAP 1.2 and GeoJSON views
//! ```
//!
//! One event through the graph: a sensor POSTs a report (or publishes it to the
//! broker, and [`mqtt`] takes the envelope apart); [`ingest`] checks the
//! signature, freshness and rate, and hands the report to the [`writer`] thread,
//! which commits it with whatever else queued up; only then is the sensor told
//! 202 (or the broker sent its PUBACK) and are the pulses passed to the pipeline
//! thread. The [`pipeline`] runs
//! association on its window, the builder turns changed shots into a new incident
//! version, the writer stores it with its alert and one outbox row per webhook in
//! one transaction, and the alert is broadcast to SSE and WebSocket clients while
//! the [`webhook`] worker delivers the outbox.
//!
//! Storage is SQLite (a file, the default) or PostgreSQL (`database =
//! "postgres://…"`), behind the same `store::Db`. Every connection lives on a
//! plain thread of its own, the [`writer`]'s and the [`reader`]'s, from open to
//! close, so no database call ever blocks an async runtime thread (PostgreSQL's
//! client would panic there); the async side only sends them work.
//!
//! Guarantees: a report is acknowledged only once on disk; an incident is alerted
//! at most once per id, even across restarts (a unique index); every alert has
//! its webhook deliveries queued in the same transaction, so none is lost to a
//! crash; after a restart the pipeline reloads its window from the store.
//!
//! Access (docs/access.md): every view but the public ones needs a person's
//! session or a bearer token, and its role must allow it ([`access`]); reads of
//! audio and exact places are written to the audit log before they are
//! served. People's reviews ([`review`]) are versions like the machine's, made
//! on the pipeline thread; every version goes into the hash-chained history
//! (`store::history`, `shotfix verify`). A [`retention`] job deletes what the
//! policy no longer keeps.

pub mod access;
pub mod address;
pub mod analytics;
pub mod api;
pub mod areas;
pub mod config;
pub mod doc;
pub mod evidence;
pub mod formats;
pub mod health;
pub mod hotspot;
pub mod import;
pub mod ingest;
pub mod measures;
pub mod mqtt;
pub mod outcomes;
pub mod pipeline;
pub mod public;
pub mod reader;
pub mod replay;
pub mod retention;
pub mod review;
pub mod web;
pub mod webhook;
pub use ::wire;
pub mod writer;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use locate::{LocateConfig, Medium};
use model::{LocalFrame, Pulse, PulseId, SensorId, UtcNanos};
use store::{Db, IncidentSave, SensorRow, StoreError};
use tokio::sync::{broadcast, Notify};

use crate::address::Addresses;
use crate::config::ServerConfig;
use crate::doc::{AlertDoc, IncidentDoc};
use crate::pipeline::{Associator, IncidentBuilder};
use crate::reader::Reader;
use crate::writer::Writer;

/// What ingest did over one transport, for `/v1/health` and `/metrics`.
#[derive(Debug, Default)]
pub struct IngestCounters {
    pub reports_accepted: AtomicU64,
    pub pulses_accepted: AtomicU64,
    pub reports_duplicate: AtomicU64,
    pub rejected_unauthenticated: AtomicU64,
    pub rejected_forged: AtomicU64,
    pub rejected_replayed: AtomicU64,
    pub rejected_oversized: AtomicU64,
    pub rejected_malformed: AtomicU64,
    pub rejected_rate_limited: AtomicU64,
    pub store_errors: AtomicU64,
}

impl IngestCounters {
    fn values(&self) -> [(&'static str, u64); 10] {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        [
            ("reports_accepted", g(&self.reports_accepted)),
            ("pulses_accepted", g(&self.pulses_accepted)),
            ("reports_duplicate", g(&self.reports_duplicate)),
            (
                "rejected_unauthenticated",
                g(&self.rejected_unauthenticated),
            ),
            ("rejected_forged", g(&self.rejected_forged)),
            ("rejected_replayed", g(&self.rejected_replayed)),
            ("rejected_oversized", g(&self.rejected_oversized)),
            ("rejected_malformed", g(&self.rejected_malformed)),
            ("rejected_rate_limited", g(&self.rejected_rate_limited)),
            ("store_errors", g(&self.store_errors)),
        ]
    }
}

/// Counters for `/v1/health` and `/metrics`. The ingest names without a prefix
/// count every transport together; `mqtt_…` is the MQTT share.
#[derive(Debug, Default)]
pub struct Counters {
    pub http: IngestCounters,
    pub mqtt: IngestCounters,
    /// Subscriptions the broker confirmed (one per (re)connection).
    pub mqtt_subscriptions: AtomicU64,
    /// Lost or refused broker connections (each followed by a retry).
    pub mqtt_connection_errors: AtomicU64,
    /// Storage failures outside ingest (incident versions).
    pub store_errors: AtomicU64,
    pub alerts_published: AtomicU64,
    pub webhooks_delivered: AtomicU64,
    pub webhook_failures: AtomicU64,
}

impl Counters {
    /// The counters of one transport.
    pub fn ingest(&self, transport: ingest::Transport) -> &IngestCounters {
        match transport {
            ingest::Transport::Http => &self.http,
            ingest::Transport::Mqtt => &self.mqtt,
        }
    }

    pub fn snapshot(&self) -> Vec<(String, u64)> {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mqtt = self.mqtt.values();
        let mut out: Vec<(String, u64)> = self
            .http
            .values()
            .iter()
            .zip(&mqtt)
            .map(|(&(name, http), &(_, mqtt))| {
                let other = if name == "store_errors" {
                    g(&self.store_errors)
                } else {
                    0
                };
                (name.to_string(), http + mqtt + other)
            })
            .collect();
        for (name, v) in [
            ("alerts_published", g(&self.alerts_published)),
            ("webhooks_delivered", g(&self.webhooks_delivered)),
            ("webhook_failures", g(&self.webhook_failures)),
        ] {
            out.push((name.to_string(), v));
        }
        out.extend(mqtt.iter().map(|&(name, v)| (format!("mqtt_{name}"), v)));
        out.push(("mqtt_subscriptions".into(), g(&self.mqtt_subscriptions)));
        out.push((
            "mqtt_connection_errors".into(),
            g(&self.mqtt_connection_errors),
        ));
        out
    }
}

/// A registered sensor as ingest sees it.
#[derive(Debug)]
pub struct SensorEntry {
    pub row: SensorRow,
    pub key: Vec<u8>,
    /// Token bucket: (tokens, last refill).
    pub bucket: Mutex<(f64, Instant)>,
}

/// Shared server state.
#[derive(Debug)]
pub struct App {
    pub config: ServerConfig,
    pub frame: LocalFrame,
    pub sensors: HashMap<String, SensorEntry>,
    pub writer: Writer,
    pub reader: Reader,
    pub counters: Counters,
    /// Accepted pulses to the pipeline thread; taken at [`Running::stop`] so
    /// the thread ends.
    pub pipeline: Mutex<Option<mpsc::Sender<PipelineMsg>>>,
    pub alerts: broadcast::Sender<AlertDoc>,
    pub addresses: Option<Addresses>,
    pub webhook_wake: Notify,
    /// Set when the server stops: live feeds (SSE, WebSocket) end, so a
    /// graceful shutdown does not wait on a dashboard left open.
    pub stopping: tokio::sync::watch::Sender<bool>,
    /// Renders incident reports (`GET /v1/incidents/{id}/report`); set by the
    /// `shotfix` binary, unset in a server embedded without it.
    pub reports: std::sync::OnceLock<evidence::ReportMaker>,
    /// The map settings `GET /v1/map` serves (with the overlay,
    /// `map.overlay`, read and checked at start), serialized once, and
    /// their ETag.
    pub map_settings: (String, String),
    /// The areas of interest (`areas.layers`), read and checked at start.
    pub areas: Vec<areas::Area>,
    /// The school calendar (`areas.school_hours`).
    pub school: Option<areas::SchoolCalendar>,
    /// The key community rows' places are moved with ([`public::mask`]):
    /// made once per database, kept in it.
    pub geomask_key: Vec<u8>,
}

impl App {
    /// Runs a read query on the read connection, off the async runtime (on
    /// the [`reader`] thread).
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Db) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, api::ApiError> {
        self.reader
            .read(f)
            .await
            .map_err(|e| api::ApiError::Internal(e.to_string()))?
            .map_err(|e| api::ApiError::Internal(e.to_string()))
    }
}

/// Work for the pipeline thread: accepted pulses, or a person's review (made
/// there so versions are numbered in one place).
#[derive(Debug)]
pub enum PipelineMsg {
    Pulses(Vec<Pulse>),
    Review(Box<review::ReviewJob>),
}

/// A running server.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    pipeline: std::thread::JoinHandle<()>,
    webhooks: tokio::task::JoinHandle<()>,
    retention: tokio::task::JoinHandle<()>,
    mqtt: Option<mqtt::MqttSource>,
}

impl Running {
    /// Stops accepting requests and waits for in-flight ones (MQTT first: its
    /// messages in flight are committed and acknowledged, later ones stay queued
    /// at the broker), lets the pipeline finish the pulses it was given, stops
    /// the webhook worker (a delivery cut short stays in the outbox and goes
    /// again, with the same id, after a restart), and closes the database
    /// connections. When it returns, this server writes nothing more, so another
    /// may start on the same database.
    pub async fn stop(self) {
        let Running {
            app,
            shutdown,
            task,
            pipeline,
            webhooks,
            retention,
            mqtt,
            ..
        } = self;
        retention.abort();
        let _ = retention.await;
        if let Some(mqtt) = mqtt {
            mqtt.stop().await;
        }
        app.stopping.send_replace(true);
        let _ = shutdown.send(());
        let _ = task.await;
        if let Ok(mut tx) = app.pipeline.lock() {
            tx.take();
        }
        let _ = tokio::task::spawn_blocking(move || pipeline.join()).await;
        webhooks.abort();
        let _ = webhooks.await;
        app.writer.close().await;
        app.reader.close().await;
    }

    /// A new bearer token for `role` (tests, the demo, tools that start a
    /// server in-process); the secret is returned once, the database keeps
    /// its hash.
    pub async fn issue_token(&self, name: &str, role: access::Role) -> Result<String, StoreError> {
        let (secret, row) =
            access::new_token(name, role, "server", None).map_err(StoreError::Conflict)?;
        self.app.writer.run(move |db| db.insert_token(&row)).await?;
        Ok(secret)
    }

    /// Serves until the task ends (Ctrl-C handling is the caller's).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// Starts the server: opens the database, registers the configured sensors,
/// restores the pipeline from the store, starts the workers, listens, and
/// subscribes to the MQTT broker if one is configured (in the background: an
/// unreachable broker is retried and does not stop HTTP).
/// Largest map overlay, bytes: every dashboard page load fetches it.
const MAX_OVERLAY_BYTES: u64 = 16 << 20;

/// Reads a GeoJSON overlay: a FeatureCollection, a Feature or a geometry.
fn load_overlay(path: &std::path::Path) -> Result<serde_json::Value, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("{shown}: {e}"))?;
    if meta.len() > MAX_OVERLAY_BYTES {
        return Err(format!(
            "{shown}: {} bytes, more than the {MAX_OVERLAY_BYTES} a page can load",
            meta.len()
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{shown}: not JSON: {e}"))?;
    const TYPES: [&str; 9] = [
        "FeatureCollection",
        "Feature",
        "Point",
        "MultiPoint",
        "LineString",
        "MultiLineString",
        "Polygon",
        "MultiPolygon",
        "GeometryCollection",
    ];
    match value.get("type").and_then(|t| t.as_str()) {
        Some(t) if TYPES.contains(&t) => {}
        _ => {
            return Err(format!(
                "{shown}: not GeoJSON (no FeatureCollection, Feature or geometry type)"
            ))
        }
    }
    check_coordinates(&value).map_err(|e| format!("{shown}: {e}"))?;
    Ok(value)
}

/// Every `coordinates` array in a GeoJSON value holds positions of finite
/// numbers, longitude −180–180 and latitude −90–90 (a map library given
/// anything else fails to draw every page).
fn check_coordinates(v: &serde_json::Value) -> Result<(), String> {
    fn positions(v: &serde_json::Value) -> Result<(), String> {
        let Some(items) = v.as_array() else {
            return Err(format!("coordinates: {v} is not an array"));
        };
        if items.first().is_some_and(|x| x.is_number()) {
            let n: Vec<f64> = items.iter().filter_map(|x| x.as_f64()).collect();
            return match n.as_slice() {
                [lon, lat, ..]
                    if n.len() == items.len()
                        && (-180.0..=180.0).contains(lon)
                        && (-90.0..=90.0).contains(lat) =>
                {
                    Ok(())
                }
                _ => Err(format!(
                    "position {v} is not a longitude, latitude in range"
                )),
            };
        }
        items.iter().try_for_each(positions)
    }
    match v {
        serde_json::Value::Object(map) => map.iter().try_for_each(|(k, x)| {
            if k == "coordinates" {
                positions(x)
            } else {
                check_coordinates(x)
            }
        }),
        serde_json::Value::Array(items) => items.iter().try_for_each(check_coordinates),
        _ => Ok(()),
    }
}

pub async fn start(config: ServerConfig) -> anyhow::Result<Running> {
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    let writer = Writer::start(&config.database).await?;
    for s in &config.sensors {
        writer
            .sensor(SensorRow {
                id: s.id.clone(),
                key_hex: s.key.clone(),
                lat: s.lat,
                lon: s.lon,
                alt_m: s.alt_m,
            })
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
    }
    let geomask_key = {
        let mut fresh = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut fresh);
        writer
            .run(move |db| db.secret("geomask", &fresh, now_ns()))
            .await?
    };
    let reader = Reader::start(&config.database).await?;
    let rows = reader.read(|db| db.sensors()).await??;
    anyhow::ensure!(
        !rows.is_empty(),
        "no sensors registered: list them in the configuration's [[sensors]]"
    );
    // `rows` is not empty: checked above.
    let frame = evidence::server_frame(&config, &rows)
        .ok_or_else(|| anyhow::anyhow!("no sensors registered"))?;
    let sensors: HashMap<String, SensorEntry> = rows
        .iter()
        .map(|r| {
            let key = hex::decode(&r.key_hex).unwrap_or_default();
            let entry = SensorEntry {
                row: r.clone(),
                key,
                bucket: Mutex::new((config.limits.burst, Instant::now())),
            };
            (r.id.clone(), entry)
        })
        .collect();
    let model_sensors = evidence::server_sensors(&rows, &frame);
    let addresses = match &config.addresses {
        Some(path) => Some(Addresses::load(path).map_err(|e| anyhow::anyhow!("addresses: {e}"))?),
        None => None,
    };
    let overlay = match &config.map.overlay {
        Some(path) => Some(load_overlay(path).map_err(|e| anyhow::anyhow!("map.overlay: {e}"))?),
        None => None,
    };
    let map_settings = web::map_settings(&config.map, &frame, overlay.as_ref());
    let areas = areas::load(&config.areas.layers).map_err(|e| anyhow::anyhow!(e))?;
    let school = config
        .areas
        .school_hours
        .as_ref()
        .map(areas::SchoolCalendar::new)
        .transpose()
        .map_err(|e| anyhow::anyhow!(e))?;
    let weather = evidence::server_weather(&config);
    let medium = Medium::from_weather(&weather);
    let locate_config = LocateConfig::default();
    let mut associator = Associator::new(model_sensors, medium, locate_config.clone());
    // The shipped classifier is checked by the test suite; were it unreadable
    // the server still locates and alerts, every incident `unknown`.
    let classifier = match classify::Classifier::shipped() {
        Ok(c) => Some(std::sync::Arc::new(c)),
        Err(e) => {
            eprintln!("shotfix serve: no classifier, incidents stay unknown: {e}");
            None
        }
    };
    let mut builder = IncidentBuilder::new(locate_config, classifier);
    builder.hold_for_review_below(config.review.hold_below_p);
    let (associator, builder) = reader
        .read(move |db| {
            restore(db, &mut associator, &mut builder)?;
            anyhow::Ok((associator, builder))
        })
        .await??;

    let (pipeline_tx, pipeline_rx) = mpsc::channel();
    let (alerts, _) = broadcast::channel(4096);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let app = Arc::new(App {
        config,
        frame,
        sensors,
        writer,
        reader,
        counters: Counters::default(),
        pipeline: Mutex::new(Some(pipeline_tx)),
        alerts,
        addresses,
        webhook_wake: Notify::new(),
        stopping: tokio::sync::watch::Sender::new(false),
        reports: std::sync::OnceLock::new(),
        map_settings,
        areas,
        school,
        geomask_key,
    });
    let pipeline = {
        let app = Arc::clone(&app);
        std::thread::Builder::new()
            .name("pipeline".into())
            .spawn(move || run_pipeline(app, pipeline_rx, associator, builder))?
    };
    let webhooks = tokio::spawn(webhook::run(Arc::clone(&app)));
    let retention = tokio::spawn(retention::run(Arc::clone(&app)));
    let mqtt = match app.config.mqtt.clone() {
        Some(m) => Some(
            mqtt::MqttSource::start(Arc::clone(&app), m)
                .map_err(|e| anyhow::anyhow!("configuration: {e}"))?,
        ),
        None => None,
    };
    let router = api::router(Arc::clone(&app));
    let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = shutdown_rx.await;
            })
            .await;
        if let Err(e) = served {
            eprintln!("shotfix serve: {e}");
        }
    });
    Ok(Running {
        addr,
        app,
        shutdown: shutdown_tx,
        task,
        pipeline,
        webhooks,
        retention,
        mqtt,
    })
}

/// GET a URL and return the body (for the demo's and tools' small requests).
pub async fn http_get(url: &str) -> Result<String, String> {
    let r = reqwest::get(url).await.map_err(|e| e.to_string())?;
    r.text().await.map_err(|e| e.to_string())
}

/// Pulse ids inside the pipeline: unique across sensors.
pub fn pipeline_pulse_id(sensor: &str, id: &str) -> PulseId {
    PulseId(format!("{sensor}/{id}"))
}

/// Reloads the pipeline's window and the open incidents after a restart.
fn restore(
    db: &Db,
    associator: &mut Associator,
    builder: &mut IncidentBuilder,
) -> anyhow::Result<()> {
    let Some(latest) = db.latest_pulse_ns()? else {
        return Ok(());
    };
    let config = LocateConfig::default();
    // Incidents that could still change, and the pulses of their whole span.
    let open_since = latest - ((2.0 * config.incident_gap_s) * 1e9) as i64;
    let open = db.open_incidents(open_since)?;
    let alerted: std::collections::HashSet<String> = db
        .alerts_after(0, 0)?
        .into_iter()
        .filter(|a| a.kind == pipeline::ALERT)
        .map(|a| a.incident)
        .collect();
    let window_s = associator.horizon_s();
    let mut from = latest - (window_s * 1e9) as i64;
    for (row, pulses) in open {
        from = from.min(row.first_ns - (window_s * 1e9) as i64);
        let doc: Option<IncidentDoc> = serde_json::from_str(&row.doc).ok();
        let signature = doc.as_ref().map(|d| d.signature()).unwrap_or_default();
        let review = doc.and_then(|d| d.review);
        builder.restore(
            row.id.clone(),
            row.version,
            alerted.contains(&row.id),
            signature,
            UtcNanos(row.last_ns),
            pulses
                .iter()
                .map(|(s, p)| pipeline_pulse_id(s, p))
                .collect(),
            review,
        );
    }
    let pulses = db.pulses(&store::PulseFilter {
        since_ns: Some(from),
        ..store::PulseFilter::default()
    })?;
    associator.push(
        pulses
            .into_iter()
            .filter(|p| !ingest::excluded_by_clock(p.extra_json.as_deref()))
            .map(|p| Pulse {
                id: pipeline_pulse_id(&p.sensor, &p.id),
                sensor: SensorId(p.sensor),
                t: UtcNanos(p.t_ns),
                snr_db: p.snr_db,
                level_db_spl: p.peak_db_spl,
            }),
    );
    Ok(())
}

/// The pipeline thread: association and incident building on every batch of
/// accepted pulses; event time moves on with the wall clock when nothing arrives.
fn run_pipeline(
    app: Arc<App>,
    rx: mpsc::Receiver<PipelineMsg>,
    mut associator: Associator,
    mut builder: IncidentBuilder,
) {
    let tick = Duration::from_millis(50);
    let hold_timeout = Duration::from_secs_f64(app.config.review.hold_timeout_s);
    let mut last = Instant::now();
    loop {
        match rx.recv_timeout(tick) {
            Ok(first) => {
                let mut next = Some(first);
                while let Some(msg) = next.take() {
                    match msg {
                        PipelineMsg::Pulses(batch) => {
                            associator.push(batch);
                            last = Instant::now();
                        }
                        PipelineMsg::Review(job) => review_on_pipeline(&app, &mut builder, *job),
                    }
                    next = rx.try_recv().ok();
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let idle = last.elapsed();
                if idle >= Duration::from_millis(500) {
                    associator.advance(idle.as_secs_f64());
                    last = Instant::now();
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        let changes = associator.run();
        for version in builder.apply(changes) {
            let _ = publish(&app, &version);
        }
        for version in builder.release_held(hold_timeout) {
            let _ = publish(&app, &version);
        }
        if let Some(now) = associator.newest() {
            for version in builder.close_before(now) {
                let _ = publish(&app, &version);
            }
        }
    }
}

/// Wall-clock time, Unix nanoseconds (bookkeeping only, never event time).
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// A person's review, on the pipeline thread: an open incident's next version
/// comes from the builder (which keeps the review for later versions); a
/// closed one's from its stored document.
fn review_on_pipeline(app: &App, builder: &mut IncidentBuilder, job: review::ReviewJob) {
    // The builder changes only if the store takes the change.
    let before = builder.snapshot(&job.id);
    let result = match builder.review(&job.id, &job.review, job.change.clone()) {
        Some(version) => {
            let saved = publish(app, &version);
            if saved.is_err() {
                if let Some(inc) = before {
                    builder.put_back(inc);
                }
            }
            saved
        }
        None => {
            let mut doc = job.stored;
            let merged = review::merge(doc.review.as_ref(), &job.review);
            doc.version += 1;
            doc.software = doc::software();
            doc.apply_review(&merged);
            let alert = review::alert_kind(job.alerted, &merged.status, &doc.class);
            let time = |t: &str| UtcNanos::parse_rfc3339(t).map_or(0, |t| t.0);
            let (first, last) = (time(&doc.first_utc), time(&doc.last_utc));
            let pulses = doc
                .shots
                .iter()
                .flat_map(|s| &s.arrivals)
                .filter_map(|a| a.pulse.split_once('/'))
                .map(|(s, p)| (s.to_string(), p.to_string()))
                .collect();
            let version = doc.version;
            let saved = save_and_send(app, doc, first, last, pulses, alert, job.change, true);
            if saved.is_ok() {
                // Open here but with no shots at the moment (withdrawn, or
                // not yet found again after a restart): keep its numbering
                // and the decision in step.
                builder.adopt_review(&job.id, version, merged);
            }
            saved
        }
    };
    let _ = job.reply.send(result.map_err(|e| match e {
        StoreError::Conflict(m) => api::ApiError::Conflict(m),
        e => api::ApiError::Internal(e.to_string()),
    }));
}

/// Stores an incident version with its alert and deliveries, then broadcasts.
fn publish(app: &App, version: &pipeline::IncidentVersion) -> Result<IncidentDoc, StoreError> {
    let mut doc = IncidentDoc::build(version, &app.frame, app.addresses.as_ref());
    if let Some(r) = &version.review {
        doc.apply_review(r);
    }
    let first = version.shots.iter().map(|s| s.t_emit.0).min().unwrap_or(0);
    let last = version.shots.iter().map(|s| s.t_emit.0).max().unwrap_or(0);
    let pulses = version
        .shots
        .iter()
        .flat_map(|s| &s.arrivals)
        .filter_map(|a| {
            let (sensor, id) = a.pulse.0.split_once('/')?;
            Some((sensor.to_string(), id.to_string()))
        })
        .collect();
    let strict = version.change.actor != "machine";
    save_and_send(
        app,
        doc,
        first,
        last,
        pulses,
        version.alert,
        version.change.clone(),
        strict,
    )
}

/// Stores a version (incident, version, history entry, alert, deliveries: one
/// transaction) and, if it is an alert message, broadcasts it.
#[allow(clippy::too_many_arguments)]
fn save_and_send(
    app: &App,
    doc: IncidentDoc,
    first: i64,
    last: i64,
    pulses: Vec<(String, String)>,
    kind: Option<&str>,
    change: store::Change,
    strict: bool,
) -> Result<IncidentDoc, StoreError> {
    // The version's time: the stored alert's `created_ns`, and the
    // `published_utc` every feed gives it (live or read back).
    let made_ns = now_ns();
    let alert = kind.map(|kind| AlertDoc {
        seq: 0,
        kind: kind.to_string(),
        incident: doc.clone(),
        published_utc: None,
    });
    let save = IncidentSave {
        incident: doc.row(first, last, made_ns),
        pulses,
        alert: kind.map(str::to_string),
        alert_doc: alert
            .as_ref()
            .map(|a| serde_json::to_string(a).unwrap_or_default())
            .unwrap_or_default(),
        targets: app.config.webhooks.iter().map(|w| w.url.clone()).collect(),
        change,
        strict,
    };
    match app.writer.incident_blocking(save) {
        Ok(Some(seq)) => {
            if let Some(mut a) = alert {
                a.seq = seq;
                a.published_utc = Some(UtcNanos(made_ns).to_rfc3339());
                app.counters
                    .alerts_published
                    .fetch_add(1, Ordering::Relaxed);
                let _ = app.alerts.send(a);
                app.webhook_wake.notify_one();
            }
            Ok(doc)
        }
        Ok(None) => Ok(doc),
        Err(e) => {
            if !matches!(e, StoreError::Conflict(_)) {
                app.counters.store_errors.fetch_add(1, Ordering::Relaxed);
                eprintln!("shotfix serve: storing incident {}: {e}", doc.id);
            }
            Err(e)
        }
    }
}
