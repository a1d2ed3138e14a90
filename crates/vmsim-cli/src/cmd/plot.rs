//! `--plot FILE.svg` or `FILE.png`: the figures of `run` (faults, swap-ins
//! and TLB misses over time; resident pages per process) and `mrc`
//! (miss-ratio curves, drawn in `mrc.rs`), and the one place that turns a
//! drawing into the file asked for.
//!
//! Figures are drawn once, as SVG (plotters); a `.png` is that SVG
//! rendered by resvg with the system's fonts, so both look the same. Any
//! other extension is refused before the command runs, never written in
//! the wrong format. Tick labels are human (`2M`, not `2000000.0`); every
//! axis says what it counts and in which unit.

use std::io::Write as _;
use std::path::Path;

use anyhow::{Context, bail};
use plotters::prelude::*;
use vmsim::report::Report;

/// What `--plot` writes, from the file name's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlotFormat {
    /// Scalable vector graphics (text).
    Svg,
    /// A PNG image, rendered from the SVG.
    Png,
}

/// The format `path`'s extension asks for.
///
/// # Errors
/// An extension other than `.svg` or `.png` (any case).
pub fn format_of(path: &Path) -> anyhow::Result<PlotFormat> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    match ext.as_deref() {
        Some("svg") => Ok(PlotFormat::Svg),
        Some("png") => Ok(PlotFormat::Png),
        _ => bail!(
            "--plot {}: the file name must end in .svg or .png (the format is chosen by the extension)",
            path.display()
        ),
    }
}

/// Refuses a `--plot` destination before the command runs: a wrong
/// extension, or something that is not a regular file.
///
/// # Errors
/// See [`format_of`] and [`vmsim_trace::output::check_destination`].
pub fn check(path: Option<&Path>) -> anyhow::Result<()> {
    if let Some(p) = path {
        vmsim_trace::output::check_destination(p)
            .with_context(|| format!("{}: cannot write the plot", p.display()))?;
        format_of(p)?;
    }
    Ok(())
}

/// Writes the drawing `svg` to `path` (SVG as is, PNG rendered),
/// atomically.
///
/// # Errors
/// A wrong extension, no font for a PNG's text, or the file cannot be written.
pub fn save(path: &Path, svg: &str) -> anyhow::Result<()> {
    check(Some(path))?;
    let bytes = match format_of(path)? {
        PlotFormat::Svg => svg.as_bytes().to_vec(),
        PlotFormat::Png => png_of(svg).with_context(|| format!("--plot {}", path.display()))?,
    };
    let what = || format!("{}: cannot write the plot", path.display());
    let tmp = vmsim_trace::output::temp_next_to(path).with_context(what)?;
    tmp.as_file().write_all(&bytes).with_context(what)?;
    vmsim_trace::output::commit(tmp, path).with_context(what)?;
    Ok(())
}

/// Families tried, in order, for the SVG's `sans-serif` text.
const SANS: [&str; 6] = [
    "DejaVu Sans",
    "Liberation Sans",
    "Noto Sans",
    "Arial",
    "Helvetica",
    "FreeSans",
];

/// Renders an SVG drawing to PNG at twice its size (sharp on any screen).
fn png_of(svg: &str) -> anyhow::Result<Vec<u8>> {
    use resvg::{tiny_skia, usvg};
    let mut opt = usvg::Options::default();
    let db = opt.fontdb_mut();
    db.load_system_fonts();
    if db.is_empty() {
        bail!(
            "no fonts found on this system to draw the plot's text: write an SVG (--plot FILE.svg), or install fonts (e.g. Debian's fonts-dejavu-core)"
        );
    }
    let families: Vec<String> = db
        .faces()
        .flat_map(|f| f.families.iter().map(|(n, _)| n.clone()))
        .collect();
    let sans = SANS
        .iter()
        .find(|want| families.iter().any(|f| f == *want))
        .map(|s| (*s).to_owned())
        .or_else(|| families.first().cloned())
        .unwrap_or_default();
    db.set_sans_serif_family(sans);
    let tree = usvg::Tree::from_str(svg, &opt).context("cannot read the drawing")?;
    let scale = 2.0;
    let size = tree
        .size()
        .to_int_size()
        .scale_by(scale)
        .context("empty drawing")?;
    let mut pixmap =
        tiny_skia::Pixmap::new(size.width(), size.height()).context("the image is too large")?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    pixmap.encode_png().context("cannot encode the PNG")
}

/// A count for a tick label: `0`, `500`, `1.5K`, `2M`, `12G` (powers of
/// 1000, at most three significant digits, no trailing zeros).
#[must_use]
pub fn human_count(v: f64) -> String {
    let a = v.abs();
    let (x, unit) = if a >= 1e12 {
        (v / 1e12, "T")
    } else if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e3 {
        (v / 1e3, "K")
    } else {
        (v, "")
    };
    let digits = if x.abs() >= 100.0 || x == x.trunc() {
        0
    } else if x.abs() >= 10.0 {
        1
    } else if x.abs() >= 1.0 {
        2
    } else {
        3
    };
    let mut s = format!("{x:.digits$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_owned();
    }
    if s == "-0" {
        s = "0".into();
    }
    format!("{s}{unit}")
}

/// A series colour: a fixed, distinguishable palette.
fn color(i: usize) -> RGBColor {
    const C: [RGBColor; 10] = [
        RGBColor(0xd6, 0x27, 0x28),
        RGBColor(0x1f, 0x77, 0xb4),
        RGBColor(0x2c, 0xa0, 0x2c),
        RGBColor(0xff, 0x7f, 0x0e),
        RGBColor(0x94, 0x67, 0xbd),
        RGBColor(0x8c, 0x56, 0x4b),
        RGBColor(0xe3, 0x77, 0xc2),
        RGBColor(0x7f, 0x7f, 0x7f),
        RGBColor(0xbc, 0xbd, 0x22),
        RGBColor(0x17, 0xbe, 0xcf),
    ];
    C[i % C.len()]
}

/// One line of a panel.
struct Series {
    name: String,
    points: Vec<(f64, f64)>,
    dashed: bool,
}

/// Draws one panel: `series` against references, with labelled axes and a
/// legend.
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    y_desc: &str,
    xmax: f64,
    series: &[Series],
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let ymax = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0f64, f64::max)
        .max(1.0)
        * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 17))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(62)
        .build_cartesian_2d(0f64..xmax, 0f64..ymax)?;
    chart
        .configure_mesh()
        .x_desc("references (simulated time)")
        .y_desc(y_desc)
        .x_label_formatter(&|v| human_count(*v))
        .y_label_formatter(&|v| human_count(*v))
        .x_labels(8)
        .y_labels(6)
        .light_line_style(RGBColor(0xee, 0xee, 0xee))
        .draw()?;
    for (i, s) in series.iter().enumerate() {
        let c = color(i);
        let style = c.stroke_width(2);
        if s.points.len() < 3 {
            // Too few samples for a line (a run shorter than the sampling
            // interval): the points themselves.
            chart
                .draw_series(s.points.iter().map(|&p| Circle::new(p, 4, c.filled())))?
                .label(s.name.clone())
                .legend(move |(x, y)| Circle::new((x + 10, y), 4, c.filled()));
        } else if s.dashed {
            chart
                .draw_series(DashedLineSeries::new(s.points.iter().copied(), 6, 4, style))?
                .label(s.name.clone())
                .legend(move |(x, y)| {
                    EmptyElement::at((x, y))
                        + PathElement::new(vec![(0, 0), (7, 0)], c.stroke_width(2))
                        + PathElement::new(vec![(12, 0), (20, 0)], c.stroke_width(2))
                });
        } else {
            chart
                .draw_series(LineSeries::new(s.points.iter().copied(), style))?
                .label(s.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                });
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .border_style(RGBColor(0x99, 0x99, 0x99))
        .background_style(WHITE.mix(0.9))
        .label_font(("sans-serif", 13))
        .draw()?;
    Ok(())
}

/// Per-interval rates (events per 1000 references) of a cumulative counter.
fn rate(
    samples: &[vmsim::report::Sample],
    f: impl Fn(&vmsim::report::Sample) -> u64,
) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(samples.len());
    let (mut r0, mut v0) = (0u64, 0u64);
    for s in samples {
        let dr = s.references.saturating_sub(r0).max(1) as f64;
        out.push((
            s.references as f64,
            f(s).saturating_sub(v0) as f64 * 1000.0 / dr,
        ));
        r0 = s.references;
        v0 = f(s);
    }
    out
}

/// The run's figure: faults, swap-ins and TLB misses per 1000 references
/// over the run; frames in use and each process's resident pages.
///
/// # Errors
/// The drawing or the file cannot be made.
pub fn timeline(report: &Report, path: &Path) -> anyhow::Result<()> {
    let s = &report.timeline.samples;
    let xmax = s.last().map_or(1.0, |l| l.references as f64).max(1.0);
    let events = vec![
        Series {
            name: "page faults (minor: demand-zero, COW, ...)".into(),
            points: rate(s, |x| x.faults),
            dashed: false,
        },
        Series {
            name: "TLB misses (every level)".into(),
            points: rate(s, |x| x.tlb_misses),
            dashed: false,
        },
        Series {
            name: "major faults (swap-ins)".into(),
            points: rate(s, |x| x.major_faults),
            dashed: true,
        },
    ];
    let mut memory = vec![Series {
        name: "frames in use (all)".into(),
        points: s
            .iter()
            .map(|x| (x.references as f64, x.frames_used as f64))
            .collect(),
        dashed: true,
    }];
    for p in &report.processes {
        let pid = p.pid.as_u32();
        memory.push(Series {
            name: format!("{} (pid {pid}) resident pages", p.name),
            points: s
                .iter()
                .map(|x| {
                    (
                        x.references as f64,
                        x.resident.get(&pid).copied().unwrap_or(0) as f64,
                    )
                })
                .collect(),
            dashed: false,
        });
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1000, 780)).into_drawing_area();
        let draw = || -> Result<(), Box<dyn std::error::Error>> {
            root.fill(&WHITE)?;
            let root = root.titled(
                &format!("vmsim run: {}", report.machine.description),
                ("sans-serif", 19),
            )?;
            let (top, bottom) = root.split_vertically(390);
            panel(
                &top,
                "Faults and TLB misses over the run",
                "events per 1000 references",
                xmax,
                &events,
            )?;
            panel(
                &bottom,
                "Memory over the run",
                "pages (frames)",
                xmax,
                &memory,
            )?;
            root.present()?;
            Ok(())
        };
        if let Err(e) = draw() {
            bail!("{}: cannot draw the plot: {e}", path.display());
        }
    }
    save(path, &svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_are_human() {
        assert_eq!(human_count(0.0), "0");
        assert_eq!(human_count(2_000_000.0), "2M");
        assert_eq!(human_count(1_500.0), "1.5K");
        assert_eq!(human_count(250_000.0), "250K");
        assert_eq!(human_count(12.5), "12.5");
        assert_eq!(human_count(0.25), "0.25");
        assert_eq!(human_count(3_100_000_000.0), "3.1G");
    }

    #[test]
    fn only_svg_and_png_are_written() {
        assert_eq!(format_of(Path::new("a.svg")).ok(), Some(PlotFormat::Svg));
        assert_eq!(format_of(Path::new("a.PNG")).ok(), Some(PlotFormat::Png));
        for bad in ["a.jpg", "a", "a.svg.txt", "a.pdf"] {
            assert!(format_of(Path::new(bad)).is_err(), "{bad}");
        }
    }
}
