//! Charts of DP releases: `zkcohort researcher release --plot FILE.svg` draws a
//! histogram's or a table's noisy counts as bars.

use std::path::Path;

use anyhow::{bail, Context, Result};
use plotters::prelude::*;
use zkcohort_market::releases::ReleaseAnswer;

/// Writes the release's noisy counts as an SVG bar chart to `path`, one bar per
/// histogram bin or table cell (labelled `row, column`).
///
/// # Errors
/// A sum (it has no bins to draw), or the file cannot be written.
pub fn plot_release(answer: &ReleaseAnswer, path: &Path) -> Result<()> {
    let release = &answer.release.release;
    let values = &release.values;
    if values.sum.is_some() {
        bail!("a sum and mean has no bins to plot: ask for a histogram or a table");
    }
    let labels: Vec<String> = if values.columns.is_empty() {
        values.rows.clone()
    } else {
        values
            .rows
            .iter()
            .flat_map(|row| {
                values
                    .columns
                    .iter()
                    .map(move |column| format!("{row}, {column}"))
            })
            .collect()
    };
    let highest = values.counts.iter().copied().max().unwrap_or(0).max(1);
    let title = format!(
        "study {}: {} (epsilon {}, {} settled)",
        release.request.study,
        release.request.statistic,
        release.epsilon,
        answer.release.enrollments
    );
    let draw = || -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let root = SVGBackend::new(path, (960, 540)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d(
                (0..labels.len().saturating_sub(1)).into_segmented(),
                0u64..highest + highest / 10 + 1,
            )?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(labels.len())
            .x_label_formatter(&|position| match position {
                SegmentValue::CenterOf(index) => labels.get(*index).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .y_desc("noisy count")
            .draw()?;
        chart.draw_series(
            Histogram::vertical(&chart)
                .style(BLUE.mix(0.6).filled())
                .margin(8)
                .data(values.counts.iter().copied().enumerate()),
        )?;
        root.present()?;
        Ok(())
    };
    draw()
        .map_err(|error| anyhow::anyhow!("{error}"))
        .with_context(|| format!("writing the chart {}", path.display()))
}
