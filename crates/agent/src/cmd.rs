//! The agent's command line, shared by `shotfix sensor` and the lean
//! `shotfix-sensor` binary: run the agent, check its configuration, or cut a
//! clip from its audio buffer.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::AgentConfig;
use crate::AgentError;

/// The options of `shotfix sensor` and `shotfix-sensor`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The agent's configuration (packaging/sensor.toml is an example).
    #[arg(long)]
    pub config: PathBuf,
    /// Check the configuration and exit.
    #[arg(long)]
    pub check: bool,
    /// Send what is queued and exit, without reading the input.
    #[arg(long)]
    pub drain: bool,
    /// Cut a clip from the rolling audio buffer instead: its start (RFC 3339)…
    #[arg(long, requires = "out")]
    pub clip_from: Option<String>,
    /// …its length in seconds…
    #[arg(long, default_value_t = 2.0)]
    pub clip_seconds: f64,
    /// …and the WAV file to write.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs the command line.
pub fn main(a: &Args) -> ExitCode {
    run(
        &a.config,
        a.check,
        a.drain,
        a.clip_from.as_deref().zip(a.out.as_deref()),
        a.clip_seconds,
    )
}

/// Runs the command; exit 2 for a configuration that cannot work (the
/// systemd unit does not restart on it), 1 for a failure at run time.
pub fn run(
    config: &Path,
    check: bool,
    drain: bool,
    clip: Option<(&str, &Path)>,
    clip_seconds: f64,
) -> ExitCode {
    let fail = |code: u8, message: String| {
        eprintln!("shotfix sensor: error: {message}");
        ExitCode::from(code)
    };
    let config = match AgentConfig::read(config) {
        Ok(c) => c,
        Err(e) => return fail(2, e.to_string()),
    };
    if check {
        println!("{}: configuration is valid", config.sensor);
        return ExitCode::SUCCESS;
    }
    if let Some((from, out)) = clip {
        return match cut(&config, from, clip_seconds, out) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(1, e),
        };
    }
    match crate::run(&config, crate::Options { drain_only: drain }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(AgentError::Config(e)) => fail(2, e),
        Err(AgentError::Runtime(e)) => fail(1, e),
    }
}

fn cut(config: &AgentConfig, from: &str, seconds: f64, out: &Path) -> Result<(), String> {
    if !(seconds.is_finite() && seconds > 0.0 && seconds <= 3600.0) {
        return Err("--clip-seconds: must be above 0 and at most 3600".into());
    }
    let from = model::UtcNanos::parse_rfc3339(from).map_err(|e| format!("--clip-from: {e}"))?;
    let dir = crate::Paths::new(&config.state_dir).audio;
    let Some((samples, rate)) = crate::buffer::cut(&dir, from, seconds)? else {
        return Err(format!(
            "the audio buffer {} holds nothing of that time (evicted, or never recorded)",
            dir.display()
        ));
    };
    std::fs::write(out, crate::clip::wav_bytes(&samples, rate))
        .map_err(|e| format!("{}: {e}", out.display()))?;
    println!("{}: {seconds} s at {rate} Hz", out.display());
    Ok(())
}
