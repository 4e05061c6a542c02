//! The report as one self-contained HTML page: inline style and inline SVG
//! figures, no script and nothing fetched, so it opens the same from a USB stick
//! in a court room as on the server.

use std::fmt::Write as _;

use crate::charts::{self, ChartError};
use crate::{to_millis, Report};

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:'Libertinus Serif',Georgia,serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#111}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #bbb}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}td,th{border:1px solid #ccc;padding:.2rem .45rem;text-align:left;vertical-align:top}
th{background:#f1f1f1}.num{text-align:right;font-family:'DejaVu Sans Mono',monospace}.mono{font-family:'DejaVu Sans Mono',monospace;word-break:break-all}
.fig svg{max-width:100%;height:auto}.note{color:#444;font-size:.9rem}.hash{font-family:'DejaVu Sans Mono',monospace;font-size:.85rem;word-break:break-all}
@media print{body{margin:0}h2{break-after:avoid}}";

fn rows(out: &mut String, rows: &[(String, String)]) {
    out.push_str("<table>\n");
    for (k, v) in rows {
        let _ = writeln!(out, "<tr><th>{}</th><td>{}</td></tr>", escape(k), escape(v));
    }
    out.push_str("</table>\n");
}

fn coord(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.6}")).unwrap_or_else(|| "–".into())
}

/// The report as HTML.
pub fn render(report: &Report) -> Result<String, ChartError> {
    let mut h = String::new();
    let title = format!("{}: {}", Report::TITLE, report.subject);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>\n{STYLE}\n</style>\n</head>\n<body>\n",
        escape(&title)
    );
    let _ = writeln!(h, "<h1>{}</h1>", escape(Report::TITLE));
    let _ = writeln!(h, "<p><strong>{}</strong></p>", escape(&report.subject));
    let _ = writeln!(
        h,
        "<p class=\"note\">Source: {}. Made {}.</p>",
        escape(&report.source),
        escape(&report.generated_utc)
    );
    let _ = writeln!(
        h,
        "<p>Evidence bundle SHA-256 (of its <code>SHA256SUMS</code>): <span class=\"hash\" id=\"bundle-hash\">{}</span></p>",
        escape(&report.bundle_sha256)
    );

    h.push_str("<h2>Summary</h2>\n");
    rows(&mut h, &report.summary);
    for n in &report.notes {
        let _ = writeln!(h, "<p class=\"note\">{}</p>", escape(n));
    }

    h.push_str("<h2>Map</h2>\n<p class=\"note\">Sensors (filled: used by a shot), shots (numbered, coloured by shooter) with their 95 % circles, in metres on a local frame.</p>\n");
    let _ = writeln!(
        h,
        "<div class=\"fig\">{}</div>",
        charts::map_svg(report, 720, 540)?
    );

    h.push_str("<h2>Shots</h2>\n<table id=\"shots\">\n<tr><th>#</th><th>Time (UTC)</th><th>Interval</th><th>Shooter</th><th>Latitude</th><th>Longitude</th><th>East m</th><th>North m</th><th>95 % m</th><th>Class</th><th>Sensors and residuals (ms)</th></tr>\n");
    for (s, gap) in report.shots.iter().zip(report.intervals()) {
        let arrivals: Vec<String> = s
            .arrivals
            .iter()
            .map(|a| format!("{} {:+.2}", escape(&a.sensor), a.residual_ms))
            .collect();
        let _ = writeln!(
            h,
            "<tr><td class=\"num\">{}</td><td class=\"mono\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.1}</td><td class=\"num\">{:.1}</td><td class=\"num\">{:.1}</td><td>{} ({:.2})</td><td class=\"mono\">{}</td></tr>",
            s.n,
            escape(&to_millis(&s.t_utc)),
            gap.map(|g| format!("{:.3} s", g)).unwrap_or_else(|| "–".into()),
            s.shooter,
            coord(s.lat),
            coord(s.lon),
            s.x,
            s.y,
            s.err95_m,
            escape(&s.class),
            s.confidence,
            arrivals.join(", ")
        );
    }
    h.push_str("</table>\n");

    h.push_str("<h2>Shot sequence</h2>\n");
    if let Some(order) = report.order_of_fire() {
        let _ = writeln!(h, "<p id=\"order-of-fire\">{}</p>", escape(&order));
    }
    let _ = writeln!(
        h,
        "<div class=\"fig\">{}</div>",
        charts::sequence_svg(report, 720, 90 + 60 * shooters(report))?
    );

    h.push_str("<h2>Waveforms</h2>\n");
    if report.waveforms.is_empty() {
        h.push_str("<p class=\"note\">No audio is part of this evidence.</p>\n");
    } else {
        h.push_str("<p class=\"note\">Each sensor's audio around its arrivals, normalised to its own peak, against seconds since the first shot's emission; red lines mark the arrivals the shots used.</p>\n");
        for w in &report.waveforms {
            let _ = writeln!(
                h,
                "<div class=\"fig\">{}</div>",
                charts::waveform_svg(w, 720, 110)?
            );
        }
    }

    h.push_str("<h2>Conditions and versions</h2>\n");
    rows(&mut h, &report.conditions);

    h.push_str("<h2>Human review</h2>\n");
    match &report.review {
        None => h.push_str("<p>No person has changed the machine's result.</p>\n"),
        Some(r) => {
            let _ = writeln!(
                h,
                "<p>{} by <strong>{}</strong> at {}. Reason given: “{}”</p>",
                escape(&r.status),
                escape(&r.by),
                escape(&r.at_utc),
                escape(&r.reason)
            );
            h.push_str(
                "<table id=\"review\">\n<tr><th></th><th>Machine</th><th>Person</th></tr>\n",
            );
            for (k, m, p) in &r.rows {
                let _ = writeln!(
                    h,
                    "<tr><th>{}</th><td>{}</td><td>{}</td></tr>",
                    escape(k),
                    escape(m),
                    escape(p)
                );
            }
            h.push_str("</table>\n");
        }
    }

    h.push_str("<h2>Change history</h2>\n");
    if report.history.is_empty() {
        h.push_str("<p class=\"note\">This evidence was analysed directly; it has no stored history.</p>\n");
    } else {
        h.push_str("<table id=\"history\">\n<tr><th>Entry</th><th>Version</th><th>Time (UTC)</th><th>Who</th><th>Action</th><th>Reason</th><th>Result</th><th>Entry hash</th></tr>\n");
        for e in &report.history {
            let _ = writeln!(
                h,
                "<tr><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"hash\">{}</td></tr>",
                e.seq,
                e.version,
                escape(&e.at_utc),
                escape(&e.actor),
                escape(&e.action),
                escape(&e.reason),
                escape(&e.result),
                escape(&e.hash)
            );
        }
        h.push_str("</table>\n");
    }

    h.push_str("<h2>Verification</h2>\n<ul>\n");
    for line in &report.reproduction {
        let _ = writeln!(h, "<li>{}</li>", escape(line));
    }
    let _ = writeln!(
        h,
        "<li>Check the bundle without shotfix: <code>sha256sum -c SHA256SUMS</code> in its folder, and <code>sha256sum SHA256SUMS</code> gives <span class=\"hash\">{}</span>.</li>",
        escape(&report.bundle_sha256)
    );
    h.push_str("</ul>\n</body>\n</html>\n");
    Ok(h)
}

/// How many shooter lines the sequence figure needs.
pub(crate) fn shooters(report: &Report) -> u32 {
    report
        .shots
        .iter()
        .map(|s| s.shooter)
        .max()
        .unwrap_or(1)
        .clamp(1, 8) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_outside_is_escaped() {
        let html = render(&crate::tests::sample()).unwrap();
        assert!(html.contains("Incident 9f2c &amp; &lt;test&gt;"));
        assert!(!html.contains("<test>"));
        assert!(html.contains("S&lt;2&gt; -0.30"));
        assert!(
            html.contains("2026-07-04T21:30:01.123Z"),
            "times to the millisecond"
        );
        assert!(html.contains("shooter 2 first fired at +0.800 s"));
    }

    /// The whole page, byte for byte, against `snapshots/sample.html`: any
    /// change to the report's layout shows in review as a diff of that file.
    /// `SHOTFIX_UPDATE_SNAPSHOTS=1` rewrites it.
    #[test]
    fn snapshot() {
        let html = render(&crate::tests::sample()).unwrap();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots/sample.html");
        if std::env::var_os("SHOTFIX_UPDATE_SNAPSHOTS").is_some() {
            std::fs::write(path, &html).unwrap();
        }
        let expected = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            html == expected,
            "the HTML report differs from {path}; if the change is meant, rerun with SHOTFIX_UPDATE_SNAPSHOTS=1 and review the diff"
        );
    }
}
