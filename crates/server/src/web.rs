//! The dashboard (web/, docs/dashboard.md): the front end built by
//! `npm run build` into web/dist is embedded in the binary at compile time
//! and served at `/` and `/assets/…`, with the settings its map needs at
//! `/v1/map`.
//!
//! A binary built before the front end was leaves `/` with a page that says
//! how to build it; the API works either way.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use model::LocalFrame;
use rust_embed::Embed;
use serde_json::{json, Value};

use crate::config::MapConfig;
use crate::App;

#[derive(Embed)]
#[folder = "../../web/dist/"]
#[allow_missing = true]
struct Dist;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(index))
        .route("/assets/{*file}", get(asset))
        .route("/v1/map", get(map))
}

const NOT_BUILT: &str = "<!doctype html><meta charset=utf-8><title>shotfix</title>\
<h1>shotfix</h1><p>This binary was built without its dashboard. Build the front end, then the binary:</p>\
<pre>npm ci --prefix web &amp;&amp; npm run build --prefix web\ncargo build --release</pre>\
<p>The API works without it: <a href=\"/v1/openapi.json\">/v1/openapi.json</a>, \
<a href=\"/v1/health\">/v1/health</a>, the public view at \
<a href=\"/v1/public/incidents\">/v1/public/incidents</a>.</p>";

/// Whether the dashboard is in this binary.
pub fn built() -> bool {
    Dist::get("index.html").is_some()
}

async fn index() -> Response {
    match Dist::get("index.html") {
        Some(f) => (
            [(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"))],
            Html(f.data.into_owned()),
        )
            .into_response(),
        None => Html(NOT_BUILT).into_response(),
    }
}

async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some(f) = Dist::get(&file) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let etag = format!("\"{}\"", hex::encode(&f.metadata.sha256_hash()[..16]));
    let etag = HeaderValue::from_str(&etag).unwrap_or_else(|_| HeaderValue::from_static("\"\""));
    if headers.get(header::IF_NONE_MATCH) == Some(&etag) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    let mime = f.metadata.mimetype().to_string();
    let mime = HeaderValue::from_str(&mime)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    (
        [
            (header::CONTENT_TYPE, mime),
            // Fixed names: the browser revalidates, and the ETag (the file's
            // hash) answers most revalidations with a small body.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::ETAG, etag),
        ],
        f.data.into_owned(),
    )
        .into_response()
}

/// What every map needs: the tile layer (none when `map.tiles` is empty), the
/// vector overlay of streets and buildings, where to centre, and the city's
/// time zone. No sensor positions: the public view uses this too. Made once
/// at start (the overlay can be megabytes), with its ETag.
pub fn map_settings(
    m: &MapConfig,
    frame: &LocalFrame,
    overlay: Option<&Value>,
) -> (String, String) {
    let origin = frame.origin();
    let tiles = (!m.tiles.is_empty())
        .then(|| json!({"url": m.tiles, "attribution": m.attribution, "max_zoom": m.max_zoom}));
    let body = json!({
        "tiles": tiles,
        "overlay": overlay,
        "center": [round(origin.lat_deg, 2), round(origin.lon_deg, 2)],
        "zoom": 14,
        "timezone": m.timezone,
    })
    .to_string();
    let etag = format!("\"{}\"", &store::sha256_hex(body.as_bytes())[..32]);
    (body, etag)
}

async fn map(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let (body, etag) = &app.map_settings;
    let etag = HeaderValue::from_str(etag).unwrap_or_else(|_| HeaderValue::from_static("\"\""));
    if headers.get(header::IF_NONE_MATCH) == Some(&etag) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::ETAG, etag),
        ],
        body.clone(),
    )
        .into_response()
}

/// The public view must not learn the origin (a sensor's place by default):
/// two decimals of a degree are about a kilometre.
fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}
