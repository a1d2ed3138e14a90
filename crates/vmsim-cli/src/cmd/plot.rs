//! `--plot FILE.svg`: faults and TLB misses over time.

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;
use vmsim::report::Report;

/// Draws page faults and TLB misses per interval against references.
pub fn timeline(report: &Report, path: &Path) -> anyhow::Result<()> {
    let s = &report.timeline.samples;
    let mut faults = Vec::new();
    let mut misses = Vec::new();
    let mut prev = vmsim::report::Sample::default();
    for x in s {
        let dr = (x.references - prev.references).max(1) as f64;
        faults.push((
            x.references as f64,
            (x.faults - prev.faults) as f64 * 1000.0 / dr,
        ));
        misses.push((
            x.references as f64,
            (x.tlb_misses - prev.tlb_misses) as f64 * 1000.0 / dr,
        ));
        prev = x.clone();
    }
    let xmax = s.last().map_or(1.0, |l| l.references as f64).max(1.0);
    let ymax = faults
        .iter()
        .chain(&misses)
        .map(|p| p.1)
        .fold(1.0f64, f64::max)
        * 1.1;
    let tmp = vmsim_trace::output::temp_next_to(path)
        .with_context(|| format!("{}: cannot write the plot", path.display()))?;
    {
        let root = SVGBackend::new(tmp.path(), (1000, 500)).into_drawing_area();
        let draw = || -> Result<(), Box<dyn std::error::Error>> {
            root.fill(&WHITE)?;
            let mut chart = ChartBuilder::on(&root)
                .caption(
                    format!("vmsim: {}", report.machine.description),
                    ("sans-serif", 20),
                )
                .margin(15)
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d(0f64..xmax, 0f64..ymax)?;
            chart
                .configure_mesh()
                .x_desc("references")
                .y_desc("events per 1000 references")
                .draw()?;
            chart
                .draw_series(LineSeries::new(faults.iter().copied(), &RED))?
                .label("page faults")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
            chart
                .draw_series(LineSeries::new(misses.iter().copied(), &BLUE))?
                .label("TLB misses (every level)")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
            chart
                .configure_series_labels()
                .border_style(BLACK)
                .background_style(WHITE)
                .draw()?;
            root.present()?;
            Ok(())
        };
        if let Err(e) = draw() {
            anyhow::bail!("{}: cannot draw the plot: {e}", path.display());
        }
    }
    vmsim_trace::output::commit(tmp, path)
        .with_context(|| format!("{}: cannot write the plot", path.display()))?;
    Ok(())
}
