//! `shotfix-sensor`: the sensor agent alone, for sensor computers. It is
//! `shotfix sensor` without the server, reports and evaluation built in: the
//! same options, a fraction of the size (docs/sensor.md).

use std::process::ExitCode;

use clap::Parser;

/// The shotfix sensor agent: detect pulses in live or recorded audio and report them to a server. Exit 2: the configuration is wrong.
#[derive(Debug, Parser)]
#[command(name = "shotfix-sensor", version)]
struct Cli {
    #[command(flatten)]
    args: agent::cmd::Args,
}

fn main() -> ExitCode {
    agent::cmd::main(&Cli::parse().args)
}
