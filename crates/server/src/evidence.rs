//! The evidence bundle of a stored incident (`shotfix evidence export`, and the
//! report behind `GET /v1/incidents/{id}/report`): a scene folder that `shotfix
//! locate` re-analyzes to the same shots, sealed by `SHA256SUMS`
//! ([`formats::evidence`]).
//!
//! What goes in, and why each is enough to re-derive the result:
//! - `scene.json`: every registered sensor, in the server's own local frame (its
//!   exact x, y, z beside latitude and longitude), and the configured weather.
//!   All sensors, not only those that heard the shots: the significance test
//!   weighs the silence of the sensors that did not.
//! - `pulses.jsonl`: every pulse stored from one longest travel time (plus the
//!   allowed lateness) before the first shot to as long after the last: what
//!   the pipeline's final association saw (ids as the pipeline names them,
//!   `sensor/pulse`, so arrivals match).
//! - `clips/<sensor>/<pulse>.wav`: the audio the sensors uploaded for the
//!   pulses the shots used.
//! - `versions/<n>.json`: every version's document, byte for byte as stored
//!   (the current one is the incident; each names the software that made it).
//! - `record.json`: the current version, and the incident's hash-chained
//!   history entries with every field their hashes cover, so each entry's hash
//!   and its document's SHA-256 can be recomputed from the bundle alone.
//! - `bundle.json`: the format, the kind and the incident.
//!
//! A bundle is a snapshot of what is stored when it is exported; it holds
//! nothing that depends on the moment of export, so exporting an incident
//! twice gives the same bundle hash while the stored data is unchanged (a
//! later review of it, a sensor re-registered, or retention deleting window
//! pulses would change it).

use formats::evidence::{
    clip_path, pulses_jsonl, scene_json, BundleFiles, BundlePulse, BundleScene,
};
use locate::LocateConfig;
use model::{Geodetic, LocalFrame, Sensor, SensorId, UtcNanos, Weather};
use serde::Serialize;
use store::{Db, PulseFilter, SensorRow};

use crate::config::ServerConfig;
use crate::doc::IncidentDoc;

/// The version of the bundle layout this server writes.
pub const BUNDLE_FORMAT: &str = "shotfix-evidence/1";

/// The server's local frame: the configured origin, else the first sensor by id.
pub fn server_frame(config: &ServerConfig, rows: &[SensorRow]) -> Option<LocalFrame> {
    let origin = match config.origin {
        Some(o) => Geodetic {
            lat_deg: o.lat,
            lon_deg: o.lon,
            alt_m: o.alt_m,
        },
        None => {
            let r = rows.first()?;
            Geodetic {
                lat_deg: r.lat,
                lon_deg: r.lon,
                alt_m: r.alt_m,
            }
        }
    };
    Some(LocalFrame::new(origin))
}

/// The weather the server locates with.
pub fn server_weather(config: &ServerConfig) -> Weather {
    Weather {
        temperature_c: config.weather.temperature_c,
        wind_speed_m_s: config.weather.wind_speed_m_s,
        wind_from_deg: config.weather.wind_from_deg,
    }
}

/// The sensors in the server's frame, by id.
pub fn server_sensors(rows: &[SensorRow], frame: &LocalFrame) -> Vec<Sensor> {
    rows.iter()
        .map(|r| Sensor {
            id: SensorId(r.id.clone()),
            position: frame.to_local(Geodetic {
                lat_deg: r.lat,
                lon_deg: r.lon,
                alt_m: r.alt_m,
            }),
        })
        .collect()
}

/// Why a bundle could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("no incident {0:?}")]
    NoIncident(String),
    #[error("incident {0}: its stored document cannot be read: {1}")]
    BadDocument(String, String),
    #[error("no sensors registered")]
    NoSensors,
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

#[derive(Serialize)]
struct BundleMeta<'a> {
    format: &'static str,
    kind: &'static str,
    incident: &'a str,
    /// Seconds of pulses kept before the first shot and after the last.
    pulse_window_s: f64,
}

/// `record.json`: which version is current, and the incident's history
/// entries with every field their hash covers (`store::history::entry_hash`),
/// so each entry's hash can be recomputed from the bundle alone.
#[derive(Serialize)]
struct Record<'a> {
    incident: &'a str,
    current_version: i64,
    history: Vec<HistoryRecord>,
}

#[derive(Serialize)]
struct HistoryRecord {
    seq: i64,
    incident: String,
    version: i64,
    created_ns: i64,
    at_utc: String,
    actor: String,
    action: String,
    /// `None` when there was none or retention removed it (its SHA-256 stays).
    reason: Option<String>,
    reason_sha256: String,
    /// Whether retention removed this version's document (its SHA-256 stays).
    redacted: bool,
    doc_sha256: String,
    prev_hash: String,
    hash: String,
}

/// How long pulses are kept either side of an incident's shots, seconds: the
/// longest travel time within the locate engine's range at the slowest sound
/// (-40 °C), plus the pipeline's allowed lateness.
pub fn pulse_window_s(config: &LocateConfig) -> f64 {
    config.max_range_m / 306.0 + crate::pipeline::LATENESS_S
}

fn json(value: &impl Serialize) -> Vec<u8> {
    // Plain data: serialising cannot fail.
    (serde_json::to_string_pretty(value).unwrap_or_default() + "\n").into_bytes()
}

/// The bundle of incident `id`, as stored in `db`, under `config`.
pub fn incident_bundle(
    db: &Db,
    config: &ServerConfig,
    id: &str,
) -> Result<BundleFiles, BundleError> {
    let row = db
        .incident(id)?
        .ok_or_else(|| BundleError::NoIncident(id.to_owned()))?;
    let doc: IncidentDoc = serde_json::from_str(&row.doc)
        .map_err(|e| BundleError::BadDocument(id.to_owned(), e.to_string()))?;
    let rows = db.sensors()?;
    let frame = server_frame(config, &rows).ok_or(BundleError::NoSensors)?;
    let sensors = server_sensors(&rows, &frame);
    let weather = server_weather(config);
    let locate_config = LocateConfig::default();
    let window_s = pulse_window_s(&locate_config);

    let times: Vec<UtcNanos> = doc
        .shots
        .iter()
        .filter_map(|s| UtcNanos::parse_rfc3339(&s.t_utc).ok())
        .collect();
    let (first, last) = match (times.iter().min(), times.iter().max()) {
        (Some(a), Some(b)) => (*a, *b),
        _ => (UtcNanos(row.first_ns), UtcNanos(row.last_ns)),
    };
    let pulses = db.pulses(&PulseFilter {
        sensor: None,
        since_ns: Some(first.offset_by_seconds(-window_s).0),
        until_ns: Some(last.offset_by_seconds(window_s).0),
        limit: usize::MAX,
    })?;
    let ids: Vec<String> = pulses
        .iter()
        .map(|p| crate::pipeline_pulse_id(&p.sensor, &p.id).0)
        .collect();
    let lines: Vec<BundlePulse> = pulses
        .iter()
        .zip(&ids)
        .map(|(p, id)| BundlePulse {
            id,
            sensor: &p.sensor,
            t_utc: UtcNanos(p.t_ns).to_rfc3339(),
            snr_db: p.snr_db,
            peak_db_spl: p.peak_db_spl,
        })
        .collect();

    let mut files = BundleFiles::new();
    files.insert(
        "scene.json".into(),
        scene_json(&BundleScene {
            name: &format!("incident {id}"),
            frame: Some(frame),
            wgs84: true,
            weather: &weather,
            sensors: &sensors,
            audio: &[],
            pulses: true,
        }),
    );
    files.insert("pulses.jsonl".into(), pulses_jsonl(&lines));

    // The clips of the pulses the shots used.
    for shot in &doc.shots {
        for a in &shot.arrivals {
            let raw = a
                .pulse
                .strip_prefix(&format!("{}/", a.sensor))
                .unwrap_or(&a.pulse);
            if let Some(wav) = db.clip(&a.sensor, raw)? {
                files.insert(clip_path(&a.sensor, raw), wav);
            }
        }
    }

    // Every version's document, exactly as stored and hashed.
    let entries = db.incident_history(id)?;
    let mut stored: std::collections::BTreeMap<i64, String> = db
        .incident_versions(id)?
        .into_iter()
        .map(|(version, _, doc)| (version, doc))
        .collect();
    for e in &entries {
        if let Some(doc) = &e.doc {
            stored.insert(e.version, doc.clone());
        }
    }
    for (version, doc) in &stored {
        files.insert(format!("versions/{version}.json"), doc.clone().into_bytes());
    }
    let history = entries
        .into_iter()
        .map(|e| HistoryRecord {
            seq: e.seq,
            incident: e.incident,
            version: e.version,
            created_ns: e.created_ns,
            at_utc: UtcNanos(e.created_ns).to_rfc3339(),
            actor: e.actor,
            action: e.action,
            reason: e.reason,
            reason_sha256: e.reason_sha256,
            redacted: e.doc.is_none(),
            doc_sha256: e.doc_sha256,
            prev_hash: e.prev_hash,
            hash: e.hash,
        })
        .collect();
    files.insert(
        "record.json".into(),
        json(&Record {
            incident: id,
            current_version: row.version,
            history,
        }),
    );
    files.insert(
        "bundle.json".into(),
        json(&BundleMeta {
            format: BUNDLE_FORMAT,
            kind: "server-incident",
            incident: id,
            pulse_window_s: window_s,
        }),
    );
    Ok(files)
}

// ---- the report route ----------------------------------------------------------

/// The report's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Html,
    Pdf,
}

/// Makes the report of a bundle (its files). The `shotfix` binary sets it
/// ([`App::reports`](crate::App)): re-deriving a result runs the same
/// commands `shotfix locate` and `analyze` do, which live in the binary.
#[derive(Clone)]
pub struct ReportMaker(pub std::sync::Arc<RenderFn>);

/// See [`ReportMaker`].
pub type RenderFn = dyn Fn(BundleFiles, ReportFormat) -> Result<Vec<u8>, String> + Send + Sync;

impl std::fmt::Debug for ReportMaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReportMaker")
    }
}

/// Reports made at once (each uses one core while it runs).
static REPORTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// `html` (default) or `pdf`.
    format: Option<String>,
}

/// `GET /v1/incidents/{id}/report?format=html|pdf`: the Investigative Lead
/// Summary of a stored incident, made from its evidence bundle (the bundle
/// hash is also in the `X-Shotfix-Bundle-Sha256` header). It shows the
/// evidence, audio and sensor positions, so it needs all three permissions.
async fn report(
    axum::extract::State(app): axum::extract::State<std::sync::Arc<crate::App>>,
    caller: crate::access::Caller,
    axum::extract::Path(id): axum::extract::Path<String>,
    axum::extract::Query(q): axum::extract::Query<ReportQuery>,
) -> Result<axum::response::Response, crate::api::ApiError> {
    use crate::access::Perm;
    use crate::api::ApiError;
    use axum::http::header;
    use axum::response::IntoResponse;

    for p in [Perm::Evidence, Perm::Audio, Perm::Sensors] {
        caller.require(p)?;
    }
    let format = match q.format.as_deref() {
        None | Some("html") => ReportFormat::Html,
        Some("pdf") => ReportFormat::Pdf,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "format {other:?}: html or pdf"
            )))
        }
    };
    let Some(maker) = app.reports.get().cloned() else {
        return Err(ApiError::Internal(
            "this server was started without a report renderer".into(),
        ));
    };
    let (key, config) = (id.clone(), app.config.clone());
    let files = app
        .read(move |db| Ok(incident_bundle(db, &config, &key)))
        .await?
        .map_err(|e| match e {
            BundleError::NoIncident(_) => ApiError::NotFound(format!("incident {id}")),
            other => ApiError::Internal(other.to_string()),
        })?;
    let hash = formats::evidence::bundle_hash(&files);
    let clips = files.keys().filter(|k| k.starts_with("clips/")).count();
    // The record names the bundle, so a disclosed report traces to it.
    crate::access::audit(
        &app,
        &caller,
        "read.report",
        &id,
        Some(format!(
            "{} of bundle {hash} ({clips} audio clips)",
            match format {
                ReportFormat::Html => "html",
                ReportFormat::Pdf => "pdf",
            }
        )),
    )
    .await?;
    // Re-deriving and typesetting take a fraction of a second of CPU each:
    // off the async runtime, and one at a time, so requests for reports
    // never starve the pipeline.
    let _turn = REPORTS
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let bytes = tokio::task::spawn_blocking(move || (maker.0)(files, format))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(ApiError::Internal)?;
    let (content_type, ext) = match format {
        ReportFormat::Html => ("text/html; charset=utf-8", "html"),
        ReportFormat::Pdf => ("application/pdf", "pdf"),
    };
    let disposition = format!(
        "inline; filename=\"incident-{}.{ext}\"",
        formats::evidence::safe_name(&id)
    );
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
            (
                header::HeaderName::from_static("x-shotfix-bundle-sha256"),
                hash,
            ),
        ],
        bytes,
    )
        .into_response())
}

pub fn routes() -> axum::Router<std::sync::Arc<crate::App>> {
    axum::Router::new().route("/v1/incidents/{id}/report", axum::routing::get(report))
}
