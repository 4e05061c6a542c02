//! `shotfix-sensor`: the sensor agent alone, for sensor computers. It is
//! `shotfix sensor` without the server, reports and evaluation built in: the
//! same options, a fraction of the size (docs/sensor.md).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// The shotfix sensor agent: detect pulses in live or recorded audio and report them to a server. Exit 2: the configuration is wrong.
#[derive(Debug, Parser)]
#[command(name = "shotfix-sensor", version)]
struct Args {
    /// The agent's configuration (packaging/sensor.toml is an example).
    #[arg(long)]
    config: PathBuf,
    /// Check the configuration and exit.
    #[arg(long)]
    check: bool,
    /// Send what is queued and exit, without reading the input.
    #[arg(long)]
    drain: bool,
    /// Cut a clip from the rolling audio buffer instead: its start (RFC 3339)…
    #[arg(long, requires = "out")]
    clip_from: Option<String>,
    /// …its length in seconds…
    #[arg(long, default_value_t = 2.0)]
    clip_seconds: f64,
    /// …and the WAV file to write.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> ExitCode {
    let a = Args::parse();
    agent::cmd::run(
        &a.config,
        a.check,
        a.drain,
        a.clip_from.as_deref().zip(a.out.as_deref()),
        a.clip_seconds,
    )
}
