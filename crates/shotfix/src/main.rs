//! The `shotfix` command line.
//!
//! Exit status: 0 on success; 1 when the input cannot be used (missing or
//! malformed files, too few sensors), with one line on stderr; 2 for a command
//! line that does not parse. Nothing partial is ever written to stdout.

mod access_cmd;
mod analyze_cmd;
mod classify_cmd;
mod eval;
mod eval_ingest;
mod eval_latency;
mod eval_pipeline;
mod eval_sim;
mod evidence_cmd;
mod import_cmd;
mod locate_cmd;
mod output;
mod report_cmd;
mod sensor_cmd;
mod serve_cmd;
mod simulate_cmd;

use std::ffi::OsString;
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
enum UserCommand {
    /// Create a user, or replace the role and password of one (ends their sessions).
    Add {
        name: String,
        /// administrator, dispatcher, reviewer, investigator, analyst or public.
        #[arg(long)]
        role: String,
        #[arg(long)]
        config: PathBuf,
        /// Read the password from standard input (else one is made and printed).
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ImportCommand {
    /// A city's alert history (CSV) as incidents: the DC and Chicago
    /// layouts are recognised by their header, other files by common column
    /// names or --columns. Bad rows are listed by line; with any, nothing is
    /// imported unless --skip-bad.
    Alerts {
        file: PathBuf,
        #[arg(long)]
        config: PathBuf,
        /// Which column is which: type=COL,time=COL,lat=COL,lon=COL[,rounds=COL][,id=COL].
        #[arg(long)]
        columns: Option<String>,
        /// The zone of times written without one (default: the server's map.timezone).
        #[arg(long)]
        timezone: Option<String>,
        /// Import the good rows even when some are bad (the bad are still listed).
        #[arg(long)]
        skip_bad: bool,
    },
    /// 911 call records (CSV) for matching against alerts: the time,
    /// latitude and longitude columns (and a type and an id if there are) are
    /// found by common names or --columns. Bad rows are listed by line; with
    /// any, nothing is imported unless --skip-bad.
    Calls {
        file: PathBuf,
        #[arg(long)]
        config: PathBuf,
        /// Which column is which: time=COL,lat=COL,lon=COL[,type=COL][,id=COL].
        #[arg(long)]
        columns: Option<String>,
        /// Keep only calls whose type contains one of these (comma-separated,
        /// any case), e.g. "SHOTS,GUN": for a file of every call for service.
        #[arg(long)]
        types: Option<String>,
        /// The zone of times written without one (default: the server's map.timezone).
        #[arg(long)]
        timezone: Option<String>,
        /// Import the good rows even when some are bad (the bad are still listed).
        #[arg(long)]
        skip_bad: bool,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Make a token and print it (shown once).
    Add {
        name: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        config: PathBuf,
        /// Days until it stops working (default: until revoked).
        #[arg(long, allow_negative_numbers = true)]
        expires_days: Option<f64>,
    },
}

#[derive(Debug, Subcommand)]
enum EvidenceCommand {
    /// Write a stored incident's evidence bundle: pulses, all sensors, weather, clips, documents and history, sealed by SHA256SUMS.
    Export {
        /// The incident id.
        id: String,
        /// Server configuration (its database is read).
        #[arg(long)]
        config: PathBuf,
        /// The bundle folder to write (new or empty).
        #[arg(long)]
        out: PathBuf,
    },
    /// Write the evidence bundle of a folder `analyze` reads (ShotSpotter smj0 WAVs, a research-layout test, a scene): its recordings byte for byte and the analysis of record.
    Pack {
        path: PathBuf,
        /// The bundle folder to write (new or empty).
        #[arg(long)]
        out: PathBuf,
    },
    /// Check a bundle's seal (every file against SHA256SUMS, nothing added), then re-derive its result and compare shot by shot (exit 1 on any difference).
    Verify {
        dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

/// The report's format.
#[derive(Debug, Clone, Copy, clap::Args)]
#[group(required = true, multiple = false)]
struct ReportFormat {
    #[arg(long)]
    html: bool,
    #[arg(long)]
    pdf: bool,
}

impl ReportFormat {
    fn format(self) -> report_cmd::Format {
        if self.pdf {
            report_cmd::Format::Pdf
        } else {
            report_cmd::Format::Html
        }
    }
}

#[derive(Debug, Subcommand)]
enum ReportCommand {
    /// The report of a stored incident (made from its evidence bundle).
    Incident {
        id: String,
        #[command(flatten)]
        format: ReportFormat,
        /// Server configuration (its database is read).
        #[arg(long)]
        config: PathBuf,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The report of an evidence bundle (its seal is checked and its result re-derived first).
    Bundle {
        dir: PathBuf,
        #[command(flatten)]
        format: ReportFormat,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Independent re-analysis: the report of a folder of recordings (ShotSpotter smj0 WAVs, a research-layout test, a scene), packed into a bundle first.
    Folder {
        path: PathBuf,
        #[command(flatten)]
        format: ReportFormat,
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Find and locate shots from measured pulse arrival times (a research-layout test folder or a scene folder).
    Locate {
        path: PathBuf,
        /// Print one JSON document (CONTRACT.md §4) instead of a table.
        #[arg(long)]
        json: bool,
        /// A classifier written by `shotfix train` (default: the shipped one),
        /// used on the reported levels when the pulses carry them.
        #[arg(long)]
        model: Option<PathBuf>,
    },
    /// Detect pulses in every sensor's audio, then locate (a research-layout test folder, a folder of ShotSpotter smj0 WAVs, or a scene folder with audio).
    Analyze {
        path: PathBuf,
        /// Print one JSON document (CONTRACT.md §4) instead of a table.
        #[arg(long)]
        json: bool,
        /// A classifier written by `shotfix train` (default: the shipped one).
        #[arg(long)]
        model: Option<PathBuf>,
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
    /// Run the server: signed sensor ingest, streaming location, alerts (SSE, WebSocket, webhooks, CAP, GeoJSON), REST API.
    Serve {
        /// Server configuration (TOML; see crates/server/src/config.rs).
        #[arg(long)]
        config: PathBuf,
    },
    /// Check the server's hash-chained incident history; names the first broken entry (exit 1 if any).
    Verify {
        /// Server configuration (its database is checked).
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// People's accounts on the server's database.
    #[command(subcommand)]
    User(UserCommand),
    /// Bring outside records into the server's database.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Bearer tokens for machines and partner organisations.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The performance measures of a period, from the server's database:
    /// alerts, latency, review and field outcomes, misses, 911 calls, cost.
    Measures {
        #[arg(long)]
        config: PathBuf,
        /// First day, YYYY-MM-DD, in the server's map.timezone.
        #[arg(long)]
        from: String,
        /// Last day (included), YYYY-MM-DD.
        #[arg(long)]
        to: String,
        /// Also write the figures as CSV (measure, value, unit) to this file ("-": standard output, instead of the table).
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Play a scene folder or research-layout test to a running server as live, signed sensor reports (over HTTP, or through an MQTT broker).
    Replay {
        path: PathBuf,
        /// The server, e.g. http://127.0.0.1:8080
        #[arg(long, conflicts_with = "mqtt")]
        server: Option<String>,
        /// Instead of --server: publish to the server's MQTT broker, e.g. mqtt://127.0.0.1:1883
        #[arg(long)]
        mqtt: Option<String>,
        /// The server's report topic filter (its [mqtt] topic); `+` is the sensor id.
        #[arg(long, default_value = server::config::MQTT_TOPIC, requires = "mqtt")]
        mqtt_topic: String,
        /// The server's configuration, for the sensors' keys.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Instead of replaying, write a server configuration (fresh keys) for PATH's sensors.
        #[arg(long)]
        write_config: Option<PathBuf>,
        /// With --write-config: the configuration's database, an SQLite file or a postgres:// URL (default shotfix.db).
        #[arg(long, requires = "write_config")]
        db: Option<OsString>,
        /// Anchor for a local frame: LAT,LON[,ALT_M].
        #[arg(long)]
        origin: Option<String>,
        /// 1 = real time, 10 = ten times faster, 0 = as fast as the server accepts.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Send each pulse's audio clip (1 s before to 1 s after it), cut from
        /// the folder's recordings, as the sensors would upload it.
        #[arg(long)]
        clips: bool,
        /// Send one heartbeat from each sensor first (with --server): the
        /// recording's noise floor and length, its clock as the recording's.
        #[arg(long, requires = "server")]
        heartbeats: bool,
        /// Move the replay so its first pulse is heard at this time (RFC 3339,
        /// or `now`), renaming its pulses: the same folder can then be played
        /// to one server again.
        #[arg(long)]
        start_at: Option<String>,
    },
    /// Start everything: the server (on SQLite unless --db says otherwise) and a simulated city of sensors firing a scenario through the real ingest path.
    Demo {
        #[arg(long, default_value = "scenarios/two-shooters.toml")]
        scenario: PathBuf,
        /// SQLite file or postgres:// URL (default: a temporary SQLite file).
        #[arg(long)]
        db: Option<OsString>,
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Play the scenario once, print health and stop.
        #[arg(long)]
        once: bool,
        /// The map's tile URL template ({z}/{x}/{y}); "" for none (the
        /// simulated city's streets and buildings are drawn either way).
        #[arg(long, default_value = server::config::OSM_TILES)]
        tiles: String,
        /// The city's IANA time zone for displayed times and analytics.
        #[arg(long, default_value = "UTC")]
        timezone: String,
    },
    /// Train the gunfire classifier on simulated scenes (and the real
    /// Pittsburgh recordings) and write it as a model file.
    Train {
        /// Scenario templates, each simulated under every training seed.
        #[arg(long, default_value = "scenarios/classify")]
        scenarios: PathBuf,
        /// Seeds per template (1000, 1001, …).
        #[arg(long, default_value_t = 6)]
        seeds: u64,
        /// Pittsburgh live-fire tests (FPn/test_NNN) to train on too.
        #[arg(long, default_value = "../shared/data/pittsburgh-dev")]
        pittsburgh: PathBuf,
        /// Train on simulated scenes only.
        #[arg(long)]
        no_pittsburgh: bool,
        #[arg(long, default_value = "models/classifier.json")]
        out: PathBuf,
    },
    /// The sensor agent: detect pulses in live or recorded audio and report them to a server (docs/sensor.md). Exit 2: the configuration is wrong.
    Sensor(agent::cmd::Args),
    /// Evidence bundles: export a stored incident, pack a folder of recordings, verify a bundle.
    #[command(subcommand)]
    Evidence(EvidenceCommand),
    /// The Investigative Lead Summary, as HTML or PDF.
    #[command(subcommand)]
    Report(ReportCommand),
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
    /// Sustained ingest into SQLite: signed HTTP reports as fast as the server
    /// takes them, then a check that every acknowledged pulse is stored.
    Ingest {
        /// How long to send, seconds.
        #[arg(long, default_value_t = 20.0)]
        seconds: f64,
        #[arg(long, default_value_t = 1000)]
        sensors: usize,
        #[arg(long, default_value_t = 20)]
        pulses_per_report: usize,
        /// Reports in flight at once.
        #[arg(long, default_value_t = 64)]
        in_flight: usize,
        /// Print the results as JSON instead of a line.
        #[arg(long)]
        json: bool,
    },
    /// Server latency under load: simulate SCENARIO's city of sensors, send its
    /// reports to a server in real time, and time each first alert from the last
    /// pulse its location needed to the SSE feed and a webhook receiver.
    Latency {
        #[arg(default_value = "scenarios/load/busy-city.toml")]
        scenario: PathBuf,
        /// Print the results as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The pipeline's capacity: feed a scene's pulses to the streaming
    /// association in batches of event time, with no network or storage, and
    /// time each batch.
    Pipeline {
        scene: PathBuf,
        /// Event time per batch, milliseconds (the pipeline thread's tick is 50).
        #[arg(long, default_value_t = 50.0)]
        batch_ms: f64,
        /// Print the results as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The classifier on held-out simulated scenes (seeds 2000, …) and on
    /// Pittsburgh with each firing position left out of its training.
    Classify {
        #[arg(long, default_value = "scenarios/classify")]
        scenarios: PathBuf,
        /// Also judge scenes from the templates under this folder (repeatable),
        /// which training never sees, each under the evaluation seeds.
        #[arg(long)]
        unseen: Vec<PathBuf>,
        #[arg(long, default_value_t = 6)]
        train_seeds: u64,
        #[arg(long, default_value_t = 4)]
        eval_seeds: u64,
        #[arg(long, default_value = "../shared/data/pittsburgh-dev")]
        pittsburgh: PathBuf,
        /// Leave Pittsburgh out (training and evaluation).
        #[arg(long)]
        no_pittsburgh: bool,
        /// Also list every wrongly called incident with its features (stderr).
        #[arg(long)]
        verbose: bool,
        /// Print the results as JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Simulate every scenario (*.toml) under DIR, locate and analyze each, and score against the truth.
    Scenarios {
        #[arg(default_value = "scenarios")]
        dir: PathBuf,
        /// Simulate each scenario under this many seeds (its own seed and the
        /// ones after it: other cities and sensor layouts, the same events).
        #[arg(long, default_value_t = 1)]
        seeds: u64,
        /// Print the results as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Locate { path, json, model } => locate_cmd::run(&path, model.as_deref(), json),
        Command::Analyze { path, json, model } => {
            analyze_cmd::run_analyze(&path, model.as_deref(), json)
        }
        Command::Pulses { path, json } => analyze_cmd::run_pulses(&path, json),
        Command::Eval(EvalCommand::Pittsburgh {
            dir,
            verbose,
            json,
            audio,
        }) => eval::pittsburgh(&dir, verbose, json, audio),
        Command::Simulate { scenario, out } => simulate_cmd::run(&scenario, &out),
        Command::Serve { config } => serve_cmd::serve(&config),
        Command::Sensor(args) => return sensor_cmd::main(&args),
        Command::Verify { config, json } => match access_cmd::verify(&config, json) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => Err(e),
        },
        Command::Evidence(EvidenceCommand::Export { id, config, out }) => {
            evidence_cmd::export(&config, &id, &out).map(|hash| {
                println!("{}: bundle SHA-256 {hash}", out.display());
            })
        }
        Command::Evidence(EvidenceCommand::Pack { path, out }) => evidence_cmd::pack(&path, &out)
            .map(|hash| {
                println!("{}: bundle SHA-256 {hash}", out.display());
            }),
        Command::Evidence(EvidenceCommand::Verify { dir, json }) => {
            match evidence_cmd::verify(&dir, json) {
                Ok(true) => Ok(()),
                Ok(false) => return ExitCode::FAILURE,
                Err(e) => Err(e),
            }
        }
        Command::Report(ReportCommand::Incident {
            id,
            format,
            config,
            out,
        }) => report_cmd::run_incident(&config, &id, format.format(), out.as_deref()),
        Command::Report(ReportCommand::Bundle { dir, format, out }) => {
            report_cmd::run_bundle(&dir, format.format(), out.as_deref())
        }
        Command::Report(ReportCommand::Folder { path, format, out }) => {
            report_cmd::run_folder(&path, format.format(), out.as_deref())
        }
        Command::Import(ImportCommand::Alerts {
            file,
            config,
            columns,
            timezone,
            skip_bad,
        }) => import_cmd::alerts(
            &file,
            &config,
            columns.as_deref(),
            timezone.as_deref(),
            skip_bad,
        ),
        Command::Import(ImportCommand::Calls {
            file,
            config,
            columns,
            types,
            timezone,
            skip_bad,
        }) => import_cmd::calls(
            &file,
            &config,
            columns.as_deref(),
            types.as_deref(),
            timezone.as_deref(),
            skip_bad,
        ),
        Command::Measures {
            config,
            from,
            to,
            csv,
            json,
        } => import_cmd::measures(&config, &from, &to, csv.as_deref(), json),
        Command::User(UserCommand::Add {
            name,
            role,
            config,
            password_stdin,
        }) => access_cmd::add_user(&config, &name, &role, password_stdin),
        Command::Token(TokenCommand::Add {
            name,
            role,
            config,
            expires_days,
        }) => access_cmd::add_token(&config, &name, &role, expires_days),
        Command::Replay {
            path,
            server,
            mqtt,
            mqtt_topic,
            config,
            write_config,
            db,
            origin,
            speed,
            clips,
            heartbeats,
            start_at,
        } => serve_cmd::replay(
            &path,
            serve_cmd::replay_target(server, mqtt, mqtt_topic),
            config.as_deref(),
            write_config.as_deref(),
            db.as_deref(),
            &serve_cmd::ReplayOptions {
                origin,
                speed,
                clips,
                heartbeats,
                start_at,
            },
        ),
        Command::Demo {
            scenario,
            db,
            listen,
            once,
            tiles,
            timezone,
        } => serve_cmd::demo(
            &scenario,
            db,
            &listen,
            once,
            serve_cmd::DemoMap { tiles, timezone },
        ),
        Command::Eval(EvalCommand::Scenarios { dir, seeds, json }) => {
            eval_sim::run(&dir, seeds, json)
        }
        Command::Train {
            scenarios,
            seeds,
            pittsburgh,
            no_pittsburgh,
            out,
        } => classify_cmd::train(
            &scenarios,
            seeds,
            (!no_pittsburgh).then_some(pittsburgh.as_path()),
            &out,
        ),
        Command::Eval(EvalCommand::Classify {
            scenarios,
            unseen,
            train_seeds,
            eval_seeds,
            pittsburgh,
            no_pittsburgh,
            verbose,
            json,
        }) => classify_cmd::eval(
            &scenarios,
            &unseen,
            train_seeds,
            eval_seeds,
            (!no_pittsburgh).then_some(pittsburgh.as_path()),
            verbose,
            json,
        ),
        Command::Eval(EvalCommand::Ingest {
            seconds,
            sensors,
            pulses_per_report,
            in_flight,
            json,
        }) => eval_ingest::run(seconds, sensors, pulses_per_report, in_flight, json),
        Command::Eval(EvalCommand::Latency { scenario, json }) => {
            eval_latency::run(&scenario, json)
        }
        Command::Eval(EvalCommand::Pipeline {
            scene,
            batch_ms,
            json,
        }) => eval_pipeline::run(&scene, batch_ms, json),
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
