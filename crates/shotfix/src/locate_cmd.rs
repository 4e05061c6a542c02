//! `shotfix locate PATH [--json]`.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use formats::LocateInput;
use locate::{LocateConfig, LocateOutput, Medium, PulseSet};

use crate::output;

/// Reads a folder and runs the locate engine on it.
pub fn locate_folder(path: &Path) -> anyhow::Result<(LocateInput, Medium, LocateOutput)> {
    let input = formats::read_locate_input(path)?;
    let set = PulseSet::new(input.sensors.clone(), input.pulses.clone())
        .with_context(|| format!("{}", path.display()))?;
    let medium = Medium::from_weather(&input.weather);
    let out = locate::locate(&set, &medium, &LocateConfig::default());
    Ok((input, medium, out))
}

/// `shotfix locate`: shots located from the pulse reports, each incident
/// classified from the reported levels, places and times when the pulses
/// carry levels (else `unknown`), as the server does.
pub fn run(path: &Path, model: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let classifier = crate::classify_cmd::load(model)?;
    let (input, medium, mut out) = locate_folder(path)?;
    crate::classify_cmd::classify_reports(&classifier, &input, &mut out);
    let doc = output::document(&input, &medium, &out);
    let text = if json {
        serde_json::to_string_pretty(&doc).context("serialising the result")? + "\n"
    } else {
        output::table(&doc)
    };
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth reporting.
    let _ = stdout.write_all(text.as_bytes());
    Ok(())
}
