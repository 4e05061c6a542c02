//! Evidence bundles: a scene folder (CONTRACT.md §5) that carries everything a
//! result was derived from, sealed by a `SHA256SUMS` file.
//!
//! `SHA256SUMS` is in the format of coreutils' `sha256sum` (`<hex>  <path>`, one
//! line per file, sorted by path), so the other side's expert can check a bundle
//! with `sha256sum -c SHA256SUMS` and no shotfix at all. The *bundle hash* is the
//! SHA-256 of `SHA256SUMS` itself: it names every file's content, so a report
//! that prints it is tied to exactly one bundle.
//!
//! Verification ([`read_bundle`]) fails when a listed file is missing or differs,
//! when a file is present that is not listed, or when `SHA256SUMS` is malformed.
//! Paths are relative, `/`-separated, and stay inside the bundle.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use model::{LocalFrame, Sensor, Weather};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::scene_write::WireOrigin;
use crate::FormatError;

/// The seal of a bundle.
pub const SUMS_FILE: &str = "SHA256SUMS";

/// What a bundle holds: relative path → bytes (`SHA256SUMS` not included).
pub type BundleFiles = BTreeMap<String, Vec<u8>>;

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The `SHA256SUMS` text for `files`.
pub fn sums(files: &BundleFiles) -> String {
    let mut out = String::new();
    for (path, bytes) in files {
        let _ = writeln!(out, "{}  {path}", sha256_hex(bytes));
    }
    out
}

/// The bundle hash of `files`: the SHA-256 of their `SHA256SUMS`.
pub fn bundle_hash(files: &BundleFiles) -> String {
    sha256_hex(sums(files).as_bytes())
}

/// Whether `path` is a plain relative path inside a bundle, in its one
/// canonical spelling: `/`-separated names, none empty, `.` or `..`, no
/// backslash or control character, and not the seal itself.
fn is_inside(path: &str) -> bool {
    path != SUMS_FILE
        && !path.is_empty()
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
        && !path.chars().any(|c| c == '\\' || c.is_control())
}

/// Where a bundle keeps the clip of `sensor`'s pulse `pulse`: readable names,
/// made unique by a short hash of the exact ids (two ids that read alike, or
/// differ only in case, never share a file).
pub fn clip_path(sensor: &str, pulse: &str) -> String {
    let tag = &sha256_hex(format!("{sensor}/{pulse}").as_bytes())[..12];
    format!("clips/{}/{}-{tag}.wav", safe_name(sensor), safe_name(pulse))
}

/// Writes `files` and their `SHA256SUMS` into `dir`, which must not exist or be
/// empty (a bundle is never written over other files). Returns the bundle hash.
pub fn write_bundle(dir: &Path, files: &BundleFiles) -> Result<String, FormatError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| FormatError::Io { path, source }
    };
    if let Ok(mut entries) = std::fs::read_dir(dir) {
        if entries.next().is_some() {
            return Err(FormatError::invalid(
                dir,
                "exists and is not empty: a bundle is written into a new folder",
            ));
        }
    }
    for path in files.keys() {
        if !is_inside(path) {
            return Err(FormatError::invalid(
                dir,
                format!("{path:?} is not a relative path inside the bundle"),
            ));
        }
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    for (path, bytes) in files {
        let full = dir.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&full, bytes).map_err(io(&full))?;
    }
    let seal = dir.join(SUMS_FILE);
    std::fs::write(&seal, sums(files)).map_err(io(&seal))?;
    Ok(bundle_hash(files))
}

/// Every file below `dir`, as bundle paths, sorted.
fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<(), FormatError> {
    for path in crate::list_dir(dir)? {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| FormatError::invalid(&path, "a file name that is not UTF-8"))?;
        let rel = if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}/{name}")
        };
        let meta = std::fs::symlink_metadata(&path).map_err(|source| FormatError::Io {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            walk(&path, &rel, out)?;
        } else if meta.is_file() {
            out.push(rel);
        } else {
            return Err(FormatError::invalid(
                &path,
                "not a plain file (a link or device has no place in a bundle)",
            ));
        }
    }
    Ok(())
}

/// Reads and verifies the bundle in `dir`: every file `SHA256SUMS` lists is
/// present with that hash, and no other file is. Returns the files and the
/// bundle hash; the first problem is the error, naming the file.
pub fn read_bundle(dir: &Path) -> Result<(BundleFiles, String), FormatError> {
    crate::require_folder(dir)?;
    let seal = dir.join(SUMS_FILE);
    let text = crate::read_to_string(&seal).map_err(|e| match e {
        FormatError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            FormatError::invalid(dir, "not an evidence bundle: no SHA256SUMS")
        }
        other => other,
    })?;
    let mut listed: BTreeMap<String, String> = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let bad = |m: &str| FormatError::invalid(&seal, format!("line {}: {m}", n + 1));
        let (hash, path) = line
            .split_once("  ")
            .ok_or_else(|| bad("expected `<sha256>  <path>`"))?;
        if hash.len() != 64
            || !hash
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad("not a lowercase hex SHA-256"));
        }
        if !is_inside(path) {
            return Err(bad("not a relative path inside the bundle"));
        }
        if listed.insert(path.to_owned(), hash.to_owned()).is_some() {
            return Err(bad("lists a file a second time"));
        }
    }
    let mut present = Vec::new();
    walk(dir, "", &mut present)?;
    for path in &present {
        if path != SUMS_FILE && !listed.contains_key(path) {
            return Err(FormatError::invalid(
                &dir.join(path),
                "not listed in SHA256SUMS: the bundle has been added to",
            ));
        }
    }
    let mut files = BundleFiles::new();
    for (path, hash) in &listed {
        let full = dir.join(path);
        let bytes = std::fs::read(&full).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => {
                FormatError::invalid(&full, "listed in SHA256SUMS but missing")
            }
            _ => FormatError::Io {
                path: full.clone(),
                source,
            },
        })?;
        if sha256_hex(&bytes) != *hash {
            return Err(FormatError::invalid(
                &full,
                "content differs from its SHA-256 in SHA256SUMS: the file was altered",
            ));
        }
        files.insert(path.clone(), bytes);
    }
    // A reordered or reformatted SHA256SUMS lists the same hashes but is not the
    // seal this bundle was issued with.
    if sums(&files) != text {
        return Err(FormatError::invalid(
            &seal,
            "not in canonical form (sorted `<sha256>  <path>` lines): it was rewritten",
        ));
    }
    let hash = bundle_hash(&files);
    Ok((files, hash))
}

/// A bundle's `scene.json`: the scene folder's own format, anchored at
/// `frame`'s origin (when there is one), each sensor with its exact local `x`,
/// `y`, `z` (what the result was computed from; readers take those first)
/// beside its latitude and longitude for people.
#[derive(Debug, Clone, Copy)]
pub struct BundleScene<'a> {
    pub name: &'a str,
    pub frame: Option<LocalFrame>,
    /// The `wgs84` frame (results in latitude and longitude), else `local`.
    pub wgs84: bool,
    pub weather: &'a Weather,
    pub sensors: &'a [Sensor],
    pub audio: &'a [BundleAudio],
    /// Whether the bundle has a `pulses.jsonl`.
    pub pulses: bool,
}

/// One recording in a bundle's `scene.json`.
#[derive(Debug, Clone, Serialize)]
pub struct BundleAudio {
    pub sensor: String,
    pub file: String,
    pub start_utc: String,
    pub sample_rate_hz: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_scale_db_spl: Option<f64>,
}

#[derive(Serialize)]
struct WireBundleScene<'a> {
    name: &'a str,
    frame: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    origin: Option<WireOrigin>,
    weather: &'a Weather,
    sensors: Vec<WireBundleSensor<'a>>,
    audio: &'a [BundleAudio],
    #[serde(skip_serializing_if = "Option::is_none")]
    pulses: Option<&'static str>,
}

#[derive(Serialize)]
struct WireBundleSensor<'a> {
    id: &'a str,
    x: f64,
    y: f64,
    z: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    lat: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lon: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alt_m: Option<f64>,
}

/// The bytes of a bundle's `scene.json`.
pub fn scene_json(scene: &BundleScene) -> Vec<u8> {
    let sensors = scene
        .sensors
        .iter()
        .map(|s| {
            let geo = scene.frame.map(|f| f.to_geodetic(s.position));
            WireBundleSensor {
                id: &s.id.0,
                x: s.position.x,
                y: s.position.y,
                z: s.position.z,
                lat: geo.map(|g| g.lat_deg),
                lon: geo.map(|g| g.lon_deg),
                alt_m: geo.map(|g| g.alt_m),
            }
        })
        .collect();
    let wire = WireBundleScene {
        name: scene.name,
        frame: if scene.wgs84 && scene.frame.is_some() {
            "wgs84"
        } else {
            "local"
        },
        origin: scene.frame.map(|f| {
            let o = f.origin();
            WireOrigin {
                lat: o.lat_deg,
                lon: o.lon_deg,
                alt_m: o.alt_m,
            }
        }),
        weather: scene.weather,
        sensors,
        audio: scene.audio,
        pulses: scene.pulses.then_some("pulses.jsonl"),
    };
    // Serialising plain numbers and strings cannot fail.
    let text = serde_json::to_string_pretty(&wire).unwrap_or_default();
    (text + "\n").into_bytes()
}

/// One line of a bundle's `pulses.jsonl`.
#[derive(Debug, Clone, Serialize)]
pub struct BundlePulse<'a> {
    pub id: &'a str,
    pub sensor: &'a str,
    pub t_utc: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snr_db: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_db_spl: Option<f64>,
}

/// The bytes of a bundle's `pulses.jsonl`.
pub fn pulses_jsonl(pulses: &[BundlePulse]) -> Vec<u8> {
    let mut out = String::new();
    for p in pulses {
        out += &serde_json::to_string(p).unwrap_or_default();
        out.push('\n');
    }
    out.into_bytes()
}

/// A file name for `id` with anything but letters, digits, `-`, `_` and `.`
/// replaced, so an id can never reach outside its folder.
pub fn safe_name(id: &str) -> String {
    let safe: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let trimmed = safe.trim_start_matches('.');
    if trimmed.is_empty() {
        "_".into()
    } else {
        trimmed.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BundleFiles {
        let mut files = BundleFiles::new();
        files.insert("scene.json".into(), b"{}\n".to_vec());
        files.insert("audio/S01.wav".into(), vec![1, 2, 3]);
        files.insert("pulses.jsonl".into(), b"".to_vec());
        files
    }

    #[test]
    fn sums_are_sha256sum_format_sorted_by_path() {
        let text = sums(&sample());
        let paths: Vec<&str> = text.lines().map(|l| &l[66..]).collect();
        assert_eq!(paths, ["audio/S01.wav", "pulses.jsonl", "scene.json"]);
        // sha256 of the empty string.
        assert!(text.contains(
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  pulses.jsonl"
        ));
    }

    #[test]
    fn a_written_bundle_reads_back_with_the_same_hash() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("b");
        let hash = write_bundle(&out, &sample()).unwrap();
        let (files, again) = read_bundle(&out).unwrap();
        assert_eq!(files, sample());
        assert_eq!(hash, again);
        assert_eq!(
            hash,
            sha256_hex(&std::fs::read(out.join(SUMS_FILE)).unwrap())
        );
        // Never written over other files.
        assert!(write_bundle(&out, &sample()).is_err());
    }

    #[test]
    fn paths_outside_the_bundle_are_refused() {
        for bad in [
            "../x",
            "/etc/passwd",
            "",
            "a/../../b",
            "SHA256SUMS",
            "a\\b",
            "a/./b",
            "a//b",
            "a/",
            "./a",
            "a\nb",
        ] {
            assert!(!is_inside(bad), "{bad}");
        }
        let dir = tempfile::tempdir().unwrap();
        let mut files = sample();
        files.insert("../escape".into(), vec![]);
        assert!(write_bundle(&dir.path().join("b"), &files).is_err());
        assert!(!dir.path().join("escape").exists());
    }

    #[test]
    fn clip_names_never_collide() {
        let a = clip_path("S1", "a/b");
        let b = clip_path("S1", "a_b");
        assert_ne!(a, b);
        assert_ne!(
            clip_path("S1", "p").to_lowercase(),
            clip_path("s1", "p").to_lowercase()
        );
        assert!(is_inside(&a), "{a}");
        assert!(a.starts_with("clips/S1/a_b-"));
    }
}
