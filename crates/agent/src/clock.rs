//! The clock's quality, as the report's [`wire::ClockV1`].
//!
//! On a sensor, chrony disciplines the system clock from gpsd and the GPS's
//! pulse per second (docs/sensor.md). chronyd passes its estimate to the
//! kernel, so `adjtimex` (a read-only query) gives the synchronisation state
//! and the estimated error without running anything; `chronyc -c tracking`
//! gives chrony's own figures. A replay of a GPS-timed recording is timed by
//! the recording, and says so.

use std::process::Command;

use crate::config::ClockSource;

/// Reads the clock's state from `source`. A source that cannot be read gives
/// an unsynchronised clock (the server then leaves the pulses out of locating)
/// and the reason.
pub fn read(source: ClockSource) -> (wire::ClockV1, Option<String>) {
    let result = match source {
        ClockSource::Recording => Ok(wire::ClockV1 {
            synced: true,
            est_error_ms: None,
            source: "recording".into(),
        }),
        ClockSource::Adjtimex => crate::sys::adjtimex().map(|k| wire::ClockV1 {
            synced: k.synced,
            est_error_ms: Some(k.est_error_us as f64 / 1e3),
            source: "adjtimex".into(),
        }),
        ClockSource::Chrony => chrony(),
    };
    match result {
        Ok(c) => (c, None),
        Err(e) => (
            wire::ClockV1 {
                synced: false,
                est_error_ms: None,
                source: "none".into(),
            },
            Some(e),
        ),
    }
}

/// `chronyc -c tracking`.
fn chrony() -> Result<wire::ClockV1, String> {
    let out = Command::new("chronyc")
        .args(["-c", "tracking"])
        .output()
        .map_err(|e| format!("chronyc: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "chronyc tracking failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    parse_chrony(&String::from_utf8_lossy(&out.stdout))
}

/// Parses `chronyc -c tracking`'s CSV line. Fields (chrony 4): reference id,
/// reference name, stratum, reference time, system time offset (s), last
/// offset, RMS offset, frequency, residual frequency, skew, root delay (s),
/// root dispersion (s), update interval, leap status. The error bound is the
/// one chrony documents: |offset| + root dispersion + root delay / 2.
pub fn parse_chrony(line: &str) -> Result<wire::ClockV1, String> {
    let f: Vec<&str> = line.trim().split(',').collect();
    if f.len() < 14 {
        return Err(format!("chronyc tracking: {} fields, expected 14", f.len()));
    }
    let num = |i: usize| -> Result<f64, String> {
        f[i].trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("chronyc tracking: field {} is not a number", i + 1))
    };
    let offset = num(4)?;
    let delay = num(10)?;
    let dispersion = num(11)?;
    let stratum = num(2)?;
    let leap = f[13].trim();
    let synced = leap != "Not synchronised" && stratum > 0.0 && stratum < 16.0;
    Ok(wire::ClockV1 {
        synced,
        est_error_ms: Some((offset.abs() + dispersion + delay / 2.0) * 1e3),
        source: "chrony".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chrony_tracking_lines_parse() {
        let gps = "50505300,PPS,1,1700000000.123,0.000000120,0.000000080,0.000000300,-12.345,0.001,0.010,0.000000500,0.000010000,16.0,Normal\n";
        let c = parse_chrony(gps).unwrap();
        assert!(c.synced);
        let e = c.est_error_ms.unwrap();
        assert!(
            (e - (0.000000120 + 0.00001 + 0.00000025) * 1e3).abs() < 1e-9,
            "{e}"
        );
        let lost = "00000000,,0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,1.0,1.0,0.0,Not synchronised";
        assert!(!parse_chrony(lost).unwrap().synced);
        assert!(parse_chrony("garbage").is_err());
    }

    #[test]
    fn the_kernel_clock_can_be_read() {
        // Any Linux kernel answers a read-only adjtimex; whether this machine's
        // clock is synchronised is not the test's business.
        let (c, error) = read(ClockSource::Adjtimex);
        assert_eq!(error, None);
        assert_eq!(c.source, "adjtimex");
        assert!(c.est_error_ms.is_some_and(|e| e >= 0.0));
    }
}
