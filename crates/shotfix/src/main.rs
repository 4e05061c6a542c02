//! The `shotfix` command line.
//!
//! Exit status: 0 on success; 1 when the input cannot be used (missing or
//! malformed files, too few sensors), with one line on stderr; 2 for a command
//! line that does not parse. Nothing partial is ever written to stdout.

mod analyze_cmd;
mod eval;
mod eval_sim;
mod locate_cmd;
mod output;
mod simulate_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "shotfix",
    version,
    about = "Open, auditable acoustic gunshot detection and location"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Find and locate shots from measured pulse arrival times (a research-layout test folder or a scene folder).
    Locate {
        path: PathBuf,
        /// Print one JSON document (CONTRACT.md §4) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Detect pulses in every sensor's audio, then locate (a research-layout test folder, a folder of ShotSpotter smj0 WAVs, or a scene folder with audio).
    Analyze {
        path: PathBuf,
        /// Print one JSON document (CONTRACT.md §4) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print each sensor's detected pulses (time, level, SNR, rank, features) for inspection.
    Pulses {
        path: PathBuf,
        /// Print JSON (with every feature, including the log-mel patch) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Simulate a scenario (TOML) and write a scene folder with audio, pulses and truth.json.
    Simulate {
        scenario: PathBuf,
        /// The scene folder to write (new, empty, or an earlier scene).
        #[arg(long)]
        out: PathBuf,
    },
    /// Score shotfix against data with known answers.
    #[command(subcommand)]
    Eval(EvalCommand),
}

#[derive(Debug, Subcommand)]
enum EvalCommand {
    /// Locate every live-fire test under DIR (FPn/test_NNN folders) from raw pulses and score against the surveys.
    Pittsburgh {
        #[arg(default_value = "../shared/data/pittsburgh-dev")]
        dir: PathBuf,
        /// Also print every shot of every test.
        #[arg(long)]
        verbose: bool,
        /// Print the results as JSON instead of tables.
        #[arg(long)]
        json: bool,
        /// Work from the audio alone: score pulse timing against ShotSpotter's
        /// reported pulses, then analyze every test end to end.
        #[arg(long)]
        audio: bool,
    },
    /// Compare simulated received levels against distance with the real Pittsburgh pulses.
    Calibration {
        #[arg(default_value = "../shared/data/pittsburgh-dev")]
        pittsburgh: PathBuf,
        #[arg(long, default_value = "scenarios/calibration/pittsburgh.toml")]
        scenario: PathBuf,
        /// Also write every (distance, level) point as CSV, for plotting.
        #[arg(long)]
        csv: Option<PathBuf>,
    },
    /// Simulate every scenario (*.toml) under DIR, locate and analyze each, and score against the truth.
    Scenarios {
        #[arg(default_value = "scenarios")]
        dir: PathBuf,
        /// Print the results as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Locate { path, json } => locate_cmd::run(&path, json),
        Command::Analyze { path, json } => analyze_cmd::run_analyze(&path, json),
        Command::Pulses { path, json } => analyze_cmd::run_pulses(&path, json),
        Command::Eval(EvalCommand::Pittsburgh {
            dir,
            verbose,
            json,
            audio,
        }) => eval::pittsburgh(&dir, verbose, json, audio),
        Command::Simulate { scenario, out } => simulate_cmd::run(&scenario, &out),
        Command::Eval(EvalCommand::Scenarios { dir, json }) => eval_sim::run(&dir, json),
        Command::Eval(EvalCommand::Calibration {
            pittsburgh,
            scenario,
            csv,
        }) => eval_sim::calibration(&pittsburgh, &scenario, csv.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the cause chain joined.
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("shotfix: error: {}", chain.join(": "));
            ExitCode::from(1)
        }
    }
}
