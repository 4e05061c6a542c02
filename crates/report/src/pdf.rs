//! The report as PDF, typeset by typst used as a library: the report becomes
//! typst markup (every outside text passed as a string literal, so nothing a
//! reviewer types can be read as markup), the figures are the same SVG as the
//! HTML's, and the fonts are typst's own embedded ones, so the PDF comes out
//! the same on every machine, with no system fonts involved.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::OnceLock;

use typst::diag::{FileError, FileResult};
use typst::foundations::{Bytes, Datetime, Duration};
use typst::syntax::{FileId, RootedPath, Source, VirtualPath, VirtualRoot};
use typst::text::{Font, FontBook};
use typst::utils::LazyHash;
use typst::{Library, LibraryExt, World};

use crate::charts;
use crate::{to_millis, Report};

/// Why no PDF was made.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error(transparent)]
    Chart(#[from] charts::ChartError),
    #[error("typesetting the report: {0}")]
    Typeset(String),
}

/// A typst string literal of `text`.
fn lit(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Monospace text: `#mono("…")`.
fn mono(text: &str) -> String {
    format!("mono({})", lit(text))
}

fn kv_table(out: &mut String, rows: &[(String, String)]) {
    out.push_str("#table(columns: (auto, 1fr), stroke: 0.4pt + luma(180),\n");
    for (k, v) in rows {
        let _ = writeln!(out, "  strong({}), {},", lit(k), lit(v));
    }
    out.push_str(")\n");
}

/// The typst source of `report`, and the SVG files it includes.
pub fn markup(report: &Report) -> Result<(String, Vec<(String, String)>), PdfError> {
    let mut files = vec![
        ("/map.svg".to_string(), charts::map_svg(report, 720, 540)?),
        (
            "/sequence.svg".to_string(),
            charts::sequence_svg(report, 720, 90 + 60 * crate::html::shooters(report))?,
        ),
    ];
    let mut t = String::new();
    let _ = writeln!(
        t,
        "#set document(title: {}, author: \"shotfix\")",
        lit(&format!("{}: {}", Report::TITLE, report.subject))
    );
    let _ = writeln!(
        t,
        "#set page(paper: \"a4\", margin: (x: 1.6cm, y: 1.8cm), numbering: \"1 / 1\", footer: context [#set text(size: 7pt); #text(font: \"DejaVu Sans Mono\", {}) #h(1fr) #counter(page).display(\"1 / 1\", both: true)])",
        lit(&format!("bundle {}", report.bundle_sha256))
    );
    t.push_str("#set text(font: \"Libertinus Serif\", size: 10pt, lang: \"en\")\n");
    t.push_str("#let mono(s) = text(font: \"DejaVu Sans Mono\", size: 0.82em, s)\n");
    t.push_str("#show heading.where(level: 2): set block(above: 1.3em, below: 0.6em)\n");
    let _ = writeln!(t, "= {}", Report::TITLE);
    let _ = writeln!(t, "#text(size: 13pt, strong({}))\n", lit(&report.subject));
    let _ = writeln!(
        t,
        "#text(size: 9pt, fill: luma(70), {})\n",
        lit(&format!(
            "Source: {}. Made {}.",
            report.source, report.generated_utc
        ))
    );
    let _ = writeln!(
        t,
        "Evidence bundle SHA-256 (of its SHA256SUMS): #{}\n",
        mono(&report.bundle_sha256)
    );

    t.push_str("== Summary\n");
    kv_table(&mut t, &report.summary);
    for n in &report.notes {
        let _ = writeln!(t, "#text(size: 9pt, fill: luma(70), {})\n", lit(n));
    }

    t.push_str("== Map\n#text(size: 9pt, fill: luma(70))[Sensors (filled: used by a shot), shots (numbered, coloured by shooter) with their 95 % circles, in metres on a local frame.]\n\n#image(\"/map.svg\", width: 100%)\n");

    t.push_str("== Shots\n#set table(inset: 3pt)\n#text(size: 7.5pt, table(columns: (auto, auto, auto, auto, auto, auto, auto, auto, 1fr), stroke: 0.4pt + luma(180),\n");
    t.push_str("  strong[\\#], strong[Time (UTC)], strong[Interval], strong[Shooter], strong[Lat, lon], strong[East, north m], strong[95 % m], strong[Class], strong[Sensors and residuals (ms)],\n");
    for (s, gap) in report.shots.iter().zip(report.intervals()) {
        let place = match (s.lat, s.lon) {
            (Some(la), Some(lo)) => format!("{la:.6}, {lo:.6}"),
            _ => "–".into(),
        };
        let arrivals: Vec<String> = s
            .arrivals
            .iter()
            .map(|a| format!("{} {:+.2}", a.sensor, a.residual_ms))
            .collect();
        let _ = writeln!(
            t,
            "  {}, {}, {}, {}, {}, {}, {}, {}, {},",
            lit(&s.n.to_string()),
            mono(&to_millis(&s.t_utc)),
            lit(&gap
                .map(|g| format!("{g:.3} s"))
                .unwrap_or_else(|| "–".into())),
            lit(&s.shooter.to_string()),
            mono(&place),
            mono(&format!("{:.1}, {:.1}", s.x, s.y)),
            lit(&format!("{:.1}", s.err95_m)),
            lit(&format!("{} ({:.2})", s.class, s.confidence)),
            mono(&arrivals.join(", ")),
        );
    }
    t.push_str("))\n");

    t.push_str("== Shot sequence\n");
    if let Some(order) = report.order_of_fire() {
        let _ = writeln!(t, "#{}\n", lit(&order));
    }
    t.push_str("#image(\"/sequence.svg\", width: 100%)\n");

    t.push_str("== Waveforms\n");
    if report.waveforms.is_empty() {
        t.push_str("No audio is part of this evidence.\n");
    } else {
        t.push_str("#text(size: 9pt, fill: luma(70))[Each sensor's audio around its arrivals, normalised to its own peak, against seconds since the first shot's emission; red lines mark the arrivals the shots used.]\n\n");
        for (k, w) in report.waveforms.iter().enumerate() {
            let name = format!("/wave{k}.svg");
            let _ = writeln!(t, "#image({}, width: 100%)", lit(&name));
            files.push((name, charts::waveform_svg(w, 720, 110)?));
        }
    }

    t.push_str("== Conditions and versions\n");
    kv_table(&mut t, &report.conditions);

    t.push_str("== Human review\n");
    match &report.review {
        None => t.push_str("No person has changed the machine's result.\n"),
        Some(r) => {
            let _ = writeln!(
                t,
                "#{}\n",
                lit(&format!(
                    "{} by {} at {}. Reason given: “{}”",
                    r.status, r.by, r.at_utc, r.reason
                ))
            );
            t.push_str("#table(columns: 3, stroke: 0.4pt + luma(180), [], strong[Machine], strong[Person],\n");
            for (k, m, p) in &r.rows {
                let _ = writeln!(t, "  strong({}), {}, {},", lit(k), lit(m), lit(p));
            }
            t.push_str(")\n");
        }
    }

    t.push_str("== Change history\n");
    if report.history.is_empty() {
        t.push_str("This evidence was analysed directly; it has no stored history.\n");
    } else {
        t.push_str("#text(size: 7.5pt, table(columns: (auto, auto, auto, auto, auto, 1fr, auto), stroke: 0.4pt + luma(180),\n");
        t.push_str("  strong[Entry], strong[Ver.], strong[Time (UTC)], strong[Who], strong[Action], strong[Reason and result], strong[Entry hash],\n");
        for e in &report.history {
            let reason = if e.reason.is_empty() {
                e.result.clone()
            } else {
                format!("“{}” → {}", e.reason, e.result)
            };
            let _ = writeln!(
                t,
                "  {}, {}, {}, {}, {}, {}, {},",
                lit(&e.seq.to_string()),
                lit(&e.version.to_string()),
                mono(&e.at_utc),
                lit(&e.actor),
                lit(&e.action),
                lit(&reason),
                mono(&format!("{}…", e.hash.get(..16).unwrap_or(&e.hash))),
            );
        }
        t.push_str("))\n");
    }

    t.push_str("== Verification\n");
    for line in &report.reproduction {
        let _ = writeln!(t, "- #{}", lit(line));
    }
    let _ = writeln!(
        t,
        "- Check the bundle without shotfix: #mono(\"sha256sum -c SHA256SUMS\") in its folder, and #mono(\"sha256sum SHA256SUMS\") gives #{}.",
        mono(&report.bundle_sha256)
    );
    Ok((t, files))
}

/// typst's embedded fonts, parsed once.
fn fonts() -> &'static (LazyHash<FontBook>, Vec<Font>) {
    static FONTS: OnceLock<(LazyHash<FontBook>, Vec<Font>)> = OnceLock::new();
    FONTS.get_or_init(|| {
        let fonts: Vec<Font> = typst_assets::fonts()
            .flat_map(|bytes| Font::iter(Bytes::new(bytes)))
            .collect();
        (LazyHash::new(FontBook::from_fonts(&fonts)), fonts)
    })
}

fn library() -> &'static LazyHash<Library> {
    static LIBRARY: OnceLock<LazyHash<Library>> = OnceLock::new();
    LIBRARY.get_or_init(|| LazyHash::new(Library::default()))
}

/// A closed world: the report's markup and figures, typst's fonts, and no
/// file system, network or clock (the date is fixed; the report carries its own).
struct ReportWorld {
    main: Source,
    files: HashMap<FileId, Bytes>,
}

fn file_id(path: &str) -> Option<FileId> {
    let vpath = VirtualPath::new(path).ok()?;
    Some(FileId::new(RootedPath::new(VirtualRoot::Project, vpath)))
}

impl World for ReportWorld {
    fn library(&self) -> &LazyHash<Library> {
        library()
    }

    fn book(&self) -> &LazyHash<FontBook> {
        &fonts().0
    }

    fn main(&self) -> FileId {
        self.main.id()
    }

    fn source(&self, id: FileId) -> FileResult<Source> {
        if id == self.main.id() {
            Ok(self.main.clone())
        } else {
            Err(FileError::NotFound(id.vpath().get_with_slash().into()))
        }
    }

    fn file(&self, id: FileId) -> FileResult<Bytes> {
        self.files
            .get(&id)
            .cloned()
            .ok_or_else(|| FileError::NotFound(id.vpath().get_with_slash().into()))
    }

    fn font(&self, index: usize) -> Option<Font> {
        fonts().1.get(index).cloned()
    }

    fn today(&self, _offset: Option<Duration>) -> Option<Datetime> {
        None
    }
}

/// `YYYY-MM-DDTHH:MM:SS…Z` as a typst date and time.
fn made_at(t: &str) -> Option<Datetime> {
    let num = |a: usize, b: usize| t.get(a..b)?.parse::<u32>().ok();
    let ok = t.len() >= 20 && t.as_bytes()[10] == b'T' && t.ends_with('Z');
    if !ok {
        return None;
    }
    Datetime::from_ymd_hms(
        i32::try_from(num(0, 4)?).ok()?,
        u8::try_from(num(5, 7)?).ok()?,
        u8::try_from(num(8, 10)?).ok()?,
        u8::try_from(num(11, 13)?).ok()?,
        u8::try_from(num(14, 16)?).ok()?,
        u8::try_from(num(17, 19)?).ok()?,
    )
}

/// The report as PDF bytes.
pub fn render(report: &Report) -> Result<Vec<u8>, PdfError> {
    let (source, svgs) = markup(report)?;
    let bad = |what: &str| PdfError::Typeset(format!("{what} is not a valid path"));
    let main = file_id("/report.typ").ok_or_else(|| bad("/report.typ"))?;
    let mut files = HashMap::new();
    for (path, svg) in svgs {
        let id = file_id(&path).ok_or_else(|| bad(&path))?;
        files.insert(id, Bytes::new(svg.into_bytes()));
    }
    let world = ReportWorld {
        main: Source::new(main, source),
        files,
    };
    let document = typst::compile::<typst_layout::PagedDocument>(&world)
        .output
        .map_err(|errors| {
            PdfError::Typeset(
                errors
                    .iter()
                    .map(|e| e.message.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
    // PDF/A-2b: the archival form courts and records offices keep.
    let standards = typst_pdf::PdfStandards::new(&[typst_pdf::PdfStandard::A_2b])
        .map_err(|e| PdfError::Typeset(format!("PDF/A-2b: {e:?}")))?;
    // The document's date (PDF/A requires one) is when the report was made.
    let made = made_at(&report.generated_utc).ok_or_else(|| {
        PdfError::Typeset(format!(
            "generated_utc {:?} is not YYYY-MM-DDTHH:MM:SSZ",
            report.generated_utc
        ))
    })?;
    let options = typst_pdf::PdfOptions {
        ident: typst::foundations::Smart::Custom(report.bundle_sha256.clone()),
        timestamp: Some(typst_pdf::Timestamp::new_utc(made)),
        standards,
        ..typst_pdf::PdfOptions::default()
    };
    typst_pdf::pdf(&document, &options).map_err(|errors| {
        PdfError::Typeset(
            errors
                .iter()
                .map(|e| e.message.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_text_cannot_become_markup() {
        assert_eq!(lit("a\"b\\c\n#x"), "\"a\\\"b\\\\c\\n#x\"");
        let (source, files) = markup(&crate::tests::sample()).unwrap();
        // The reviewer's reason is a string, not markup.
        assert!(source.contains("two distinct #positions* $"));
        assert!(!source.contains("\n#positions"));
        assert_eq!(files.len(), 3, "map, sequence, one waveform");
    }

    #[test]
    fn the_sample_report_typesets() {
        let pdf = render(&crate::tests::sample()).unwrap();
        assert!(pdf.starts_with(b"%PDF-"));
        // Deterministic: the same report gives the same bytes.
        assert_eq!(pdf, render(&crate::tests::sample()).unwrap());
    }

    /// Page 1 rendered by poppler's pdftoppm (an independent PDF reader) is a
    /// real page with the report's content on it, and pdftotext finds the text.
    #[test]
    fn poppler_reads_page_one() {
        let dir = tempfile::tempdir().unwrap();
        let pdf_path = dir.path().join("report.pdf");
        std::fs::write(&pdf_path, render(&crate::tests::sample()).unwrap()).unwrap();
        let out = std::process::Command::new("pdftoppm")
            .args(["-png", "-r", "50", "-f", "1", "-l", "1", "-singlefile"])
            .arg(&pdf_path)
            .arg(dir.path().join("page1"))
            .output()
            .expect("pdftoppm (Debian: poppler-utils; scripts/test.sh installs it)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let png = std::fs::read(dir.path().join("page1.png")).unwrap();
        assert!(png.starts_with(b"\x89PNG"));
        // A blank A4 page at 50 dpi compresses to well under 2 KB.
        assert!(png.len() > 8_000, "page 1 looks empty: {} bytes", png.len());
        let text = std::process::Command::new("pdftotext")
            .arg(&pdf_path)
            .arg("-")
            .output()
            .expect("pdftotext");
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(text.contains("Investigative Lead Summary"), "{text}");
        assert!(
            text.contains(&"ab".repeat(32)),
            "the bundle hash is printed"
        );
        assert!(text.contains("two distinct #positions* $"), "{text}");
    }
}
