//! The Investigative Lead Summary: one incident's result, evidence and history
//! as a document a court can read and the other side's expert can check.
//!
//! [`Report`] is everything the document says, already derived; this crate only
//! lays it out, as self-contained HTML ([`html`]) or PDF ([`pdf`], typeset with
//! typst as a library), with the charts ([`charts`]) drawn by plotters as SVG.
//! It does no I/O and reads no clock: the same [`Report`] always gives the same
//! bytes, which is what lets a report be snapshot-tested and re-made.

pub mod charts;
pub mod html;
pub mod pdf;

/// Everything one report says.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// e.g. "Incident 9f2c41d7".
    pub subject: String,
    /// What the evidence is: "stored incident on server …", "ShotSpotter WAV files in …".
    pub source: String,
    /// When the report was made (RFC 3339 UTC), given by the caller.
    pub generated_utc: String,
    /// The SHA-256 of the evidence bundle's `SHA256SUMS`.
    pub bundle_sha256: String,
    /// Label and value rows: class, confidence, rounds, shooters, place, ….
    pub summary: Vec<(String, String)>,
    pub sensors: Vec<MapSensor>,
    /// In time order.
    pub shots: Vec<ShotRow>,
    pub waveforms: Vec<Waveform>,
    /// Label and value rows: weather, speed of sound, software, model, settings.
    pub conditions: Vec<(String, String)>,
    /// The machine's result beside a person's decision, when there was one.
    pub review: Option<ReviewBeside>,
    /// The incident's change history, oldest first (empty for a folder).
    pub history: Vec<HistoryRow>,
    /// What re-deriving the result from the bundle gave, one line each.
    pub reproduction: Vec<String>,
    /// Plain statements of what the report cannot show (no clips uploaded, …).
    pub notes: Vec<String>,
}

/// A sensor on the map, in a local frame (metres east and north).
#[derive(Debug, Clone, PartialEq)]
pub struct MapSensor {
    pub id: String,
    pub x: f64,
    pub y: f64,
    /// Whether any shot used it.
    pub used: bool,
}

/// One located shot.
#[derive(Debug, Clone, PartialEq)]
pub struct ShotRow {
    /// 1-based, in time order.
    pub n: usize,
    /// Emission time, RFC 3339 UTC, to the millisecond.
    pub t_utc: String,
    /// Seconds since the incident's first shot.
    pub t_rel_s: f64,
    /// Metres east and north in the map's frame.
    pub x: f64,
    pub y: f64,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub err95_m: f64,
    /// 1-based, numbered in the order the shooters first fired.
    pub shooter: usize,
    pub class: String,
    pub confidence: f64,
    pub arrivals: Vec<ArrivalRow>,
}

/// One sensor's arrival used by a shot.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrivalRow {
    pub sensor: String,
    pub residual_ms: f64,
    pub range_m: f64,
}

/// A stretch of one sensor's audio around its arrivals.
#[derive(Debug, Clone, PartialEq)]
pub struct Waveform {
    pub sensor: String,
    /// Seconds since the first shot's emission of the first sample.
    pub t0_rel_s: f64,
    pub sample_rate_hz: u32,
    pub samples: Vec<f32>,
    /// Arrival times of the shots' pulses, seconds since the first emission.
    pub marks_rel_s: Vec<f64>,
}

/// A person's review beside the machine's result.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewBeside {
    pub status: String,
    pub by: String,
    pub at_utc: String,
    pub reason: String,
    /// (field, machine, person) rows.
    pub rows: Vec<(String, String, String)>,
}

/// One entry of the hash-chained history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    pub seq: i64,
    pub version: i64,
    pub at_utc: String,
    pub actor: String,
    pub action: String,
    pub reason: String,
    /// What that version said: class, rounds, shooters.
    pub result: String,
    pub hash: String,
}

impl Report {
    /// The report's title.
    pub const TITLE: &'static str = "Investigative Lead Summary";

    /// The shots' intervals: seconds since the previous shot, `None` for the first.
    pub fn intervals(&self) -> Vec<Option<f64>> {
        let mut prev: Option<f64> = None;
        self.shots
            .iter()
            .map(|s| {
                let gap = prev.map(|p| s.t_rel_s - p);
                prev = Some(s.t_rel_s);
                gap
            })
            .collect()
    }

    /// The order in which the shooters first fired, as a sentence, when there
    /// are several (`None` otherwise).
    pub fn order_of_fire(&self) -> Option<String> {
        let shooters = self.shots.iter().map(|s| s.shooter).max().unwrap_or(0);
        if shooters < 2 {
            return None;
        }
        let parts: Vec<String> = (1..=shooters)
            .filter_map(|k| {
                let mine: Vec<&ShotRow> = self.shots.iter().filter(|s| s.shooter == k).collect();
                let first = mine.first()?;
                Some(format!(
                    "shooter {k} first fired at +{:.3} s (shot {}), {} round{}",
                    first.t_rel_s,
                    first.n,
                    mine.len(),
                    if mine.len() == 1 { "" } else { "s" }
                ))
            })
            .collect();
        Some(format!(
            "Order of fire: {}. Shooters are told apart by position: shots closer than 10 m, or within their combined 95 % radii, are one shooter.",
            parts.join("; ")
        ))
    }
}

/// Milliseconds precision of an RFC 3339 time: `…T00:49:26.612345678Z` → `…T00:49:26.612Z`.
pub fn to_millis(t_utc: &str) -> String {
    match (t_utc.find('.'), t_utc.strip_suffix('Z')) {
        (Some(dot), Some(body)) => {
            let frac = &body[dot + 1..];
            let ms: String = frac.chars().chain("000".chars()).take(3).collect();
            format!("{}.{ms}Z", &body[..dot])
        }
        _ => t_utc.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small report with two shooters, a review and a waveform.
    pub fn sample() -> Report {
        let shot = |n: usize, t: f64, x: f64, shooter: usize| ShotRow {
            n,
            t_utc: format!("2026-07-04T21:30:0{n}.123456789Z"),
            t_rel_s: t,
            x,
            y: 10.0,
            lat: Some(40.44),
            lon: Some(-79.99),
            err95_m: 3.5,
            shooter,
            class: "gunfire".into(),
            confidence: 0.97,
            arrivals: vec![
                ArrivalRow {
                    sensor: "S01".into(),
                    residual_ms: 0.12,
                    range_m: 210.0,
                },
                ArrivalRow {
                    sensor: "S<2>".into(),
                    residual_ms: -0.3,
                    range_m: 340.5,
                },
            ],
        };
        Report {
            subject: "Incident 9f2c & <test>".into(),
            source: "stored incident".into(),
            generated_utc: "2026-11-22T00:00:00Z".into(),
            bundle_sha256: "ab".repeat(32),
            summary: vec![("Class".into(), "gunfire (0.97)".into())],
            sensors: vec![
                MapSensor {
                    id: "S01".into(),
                    x: -200.0,
                    y: 0.0,
                    used: true,
                },
                MapSensor {
                    id: "S<2>".into(),
                    x: 300.0,
                    y: 150.0,
                    used: true,
                },
                MapSensor {
                    id: "S03".into(),
                    x: 50.0,
                    y: -400.0,
                    used: false,
                },
            ],
            shots: vec![
                shot(1, 0.0, 0.0, 1),
                shot(2, 0.8, 60.0, 2),
                shot(3, 1.1, 1.0, 1),
            ],
            waveforms: vec![Waveform {
                sensor: "S01".into(),
                t0_rel_s: 0.5,
                sample_rate_hz: 1000,
                samples: (0..2000).map(|i| ((i as f32) * 0.3).sin() * 0.1).collect(),
                marks_rel_s: vec![0.62, 1.42],
            }],
            conditions: vec![("Speed of sound".into(), "340.3 m/s".into())],
            review: Some(ReviewBeside {
                status: "confirmed".into(),
                by: "reviewer-1".into(),
                at_utc: "2026-07-04T21:31:00Z".into(),
                reason: "two distinct #positions* $".into(),
                rows: vec![("Rounds".into(), "2".into(), "3".into())],
            }),
            history: vec![HistoryRow {
                seq: 1,
                version: 1,
                at_utc: "2026-07-04T21:30:02Z".into(),
                actor: "machine".into(),
                action: "located".into(),
                reason: String::new(),
                result: "gunfire, 3 rounds, 2 shooters".into(),
                hash: "cd".repeat(32),
            }],
            reproduction: vec!["3 of 3 shots re-derived identically".into()],
            notes: vec![],
        }
    }

    #[test]
    fn intervals_and_order_of_fire() {
        let r = sample();
        let gaps = r.intervals();
        assert_eq!(gaps[0], None);
        assert!((gaps[1].unwrap() - 0.8).abs() < 1e-9);
        assert!((gaps[2].unwrap() - 0.3).abs() < 1e-9);
        let order = r.order_of_fire().unwrap();
        assert!(order.contains("shooter 1 first fired at +0.000 s (shot 1), 2 rounds"));
        assert!(
            order.contains("shooter 2 first fired at +0.800 s (shot 2), 1 round;")
                || order.contains("shooter 2 first fired at +0.800 s (shot 2), 1 round.")
        );
    }

    #[test]
    fn millisecond_times() {
        assert_eq!(
            to_millis("2018-12-19T00:49:26.612345Z"),
            "2018-12-19T00:49:26.612Z"
        );
        assert_eq!(
            to_millis("2018-12-19T00:49:26.6Z"),
            "2018-12-19T00:49:26.600Z"
        );
        assert_eq!(to_millis("2018-12-19T00:49:26Z"), "2018-12-19T00:49:26Z");
    }
}
