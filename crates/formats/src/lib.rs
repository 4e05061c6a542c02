//! Readers for the folders `shotfix locate` and `shotfix analyze` accept
//! (CONTRACT.md §2, §3, §5), and for the WAV files in them.
//!
//! This crate is the boundary where outside input becomes domain types: every
//! reader returns a typed error naming the file and the rule broken, and never
//! panics, whatever the bytes. Wire types (`serde` structs mirroring the files)
//! stay private here; callers get [`LocateInput`] and [`AnalyzeInput`].
//!
//! Architecture Invariant: the research-layout readers open only
//! `*.allpulses.json` and `*.weather.json` (locate), or `*.audio.*.wav`,
//! `*.audio.*.json` and `*.weather.json` (analyze). They never open the answer
//! files (`*.survey.json`, `*.nlos-tuples.json`); only evaluation code may read
//! those.

pub mod audio;
pub mod evidence;
pub mod research;
pub mod scene;
pub mod scene_write;
pub mod smj0;

pub use audio::{
    parse_wav_bytes, read_analyze_input, read_wav, wav_bytes, AnalyzeInput, AudioClip, Wav,
    WavEncoding,
};
pub use scene_write::{read_truth, write_scene, AudioOut, BuildingOut, SceneOut};
pub use smj0::{parse_smj0, Smj0};

use std::path::{Path, PathBuf};

use model::{LocalFrame, Pulse, Sensor, Weather};

/// The coordinate frame of an input, and so of its output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Frame {
    /// Local x east, y north, z up, metres; optionally anchored on the earth.
    Local { anchor: Option<LocalFrame> },
    /// Inputs were WGS84; positions were converted into this local frame.
    Wgs84 { frame: LocalFrame },
}

/// Everything `locate` needs from a folder.
#[derive(Debug, Clone)]
pub struct LocateInput {
    pub frame: Frame,
    pub sensors: Vec<Sensor>,
    pub pulses: Vec<Pulse>,
    pub weather: Weather,
}

/// An input folder or file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: malformed JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{path}: not a research-layout test folder (no *.allpulses.json) nor a scene folder (no scene.json)")]
    UnknownLayout { path: PathBuf },
    #[error("{path}: no audio to analyze: not a scene folder (no scene.json), nor a research-layout test folder (no *.audio.*.wav), nor a folder of ShotSpotter recordings (no .wav file with an smj0 chunk)")]
    UnknownAudioLayout { path: PathBuf },
}

impl FormatError {
    pub(crate) fn invalid(path: &Path, message: impl Into<String>) -> FormatError {
        FormatError::Invalid {
            path: path.to_owned(),
            message: message.into(),
        }
    }
}

pub(crate) fn read_to_string(path: &Path) -> Result<String, FormatError> {
    std::fs::read_to_string(path).map_err(|source| FormatError::Io {
        path: path.to_owned(),
        source,
    })
}

/// The entries of `dir`, sorted, so every reader visits files in the same order
/// on every machine.
pub(crate) fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, FormatError> {
    let io = |source| FormatError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut paths = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io)?;
    paths.sort();
    Ok(paths)
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<T, FormatError> {
    serde_json::from_str(text).map_err(|source| FormatError::Json {
        path: path.to_owned(),
        source,
    })
}

/// An input PATH must be a folder that exists.
pub(crate) fn require_folder(path: &Path) -> Result<(), FormatError> {
    let meta = std::fs::metadata(path).map_err(|source| FormatError::Io {
        path: path.to_owned(),
        source,
    })?;
    if meta.is_dir() {
        Ok(())
    } else {
        Err(FormatError::invalid(path, "expected a folder"))
    }
}

/// Reads either kind of folder `shotfix locate` accepts.
pub fn read_locate_input(path: &Path) -> Result<LocateInput, FormatError> {
    require_folder(path)?;
    if path.join("scene.json").is_file() {
        return scene::read_scene(path);
    }
    if research::find_one(path, ".allpulses.json")?.is_some() {
        return research::read_test_folder(path);
    }
    Err(FormatError::UnknownLayout {
        path: path.to_owned(),
    })
}
