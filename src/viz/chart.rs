//! The training chart: loss (left) and accuracy (right) per epoch, train and test, as a PNG
//! drawn with `plotters` — anti-aliased text, round tick values, axis titles and a legend.

use super::{draw_err, encode_png, register_font, FONT};
use crate::checkpoint::EpochMetrics;
use crate::error::Result;
use plotters::prelude::*;

const TRAIN: RGBColor = RGBColor(31, 119, 180);
const TEST: RGBColor = RGBColor(214, 39, 40);
/// Size of the chart in pixels.
pub const SIZE: (u32, u32) = (960, 420);

/// One panel: a title, a y-axis title and range, and the train and test series.
struct Panel<'a> {
    title: &'a str,
    y_title: &'a str,
    y: (f64, f64),
    series: [(&'a str, RGBColor, Vec<f64>); 2],
}

/// The epoch axis: `1..=epochs` (at least `1..=2`, so one epoch still has a width).
fn x_range(epochs: usize) -> std::ops::Range<f64> {
    1.0..epochs.max(2) as f64
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    epochs: usize,
    p: &Panel,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let mut chart = ChartBuilder::on(area)
        .caption(p.title, (FONT, 18))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(x_range(epochs), p.y.0..p.y.1)
        .map_err(draw_err)?;
    let int_label = |v: &f64| {
        if (v - v.round()).abs() < 1e-9 {
            format!("{}", v.round() as i64)
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(p.y_title)
        .x_labels(epochs.clamp(2, 11))
        .x_label_formatter(&int_label)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()
        .map_err(draw_err)?;
    for (name, color, ys) in &p.series {
        let pts: Vec<(f64, f64)> = ys
            .iter()
            .enumerate()
            .filter(|(_, y)| y.is_finite())
            .map(|(i, &y)| ((i + 1) as f64, y))
            .collect();
        let c = *color;
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
            .map_err(draw_err)?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))
            .map_err(draw_err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .draw()
        .map_err(draw_err)?;
    Ok(())
}

/// A round upper bound for the loss axis: 1, 2 or 5 times a power of ten, tenths included.
fn round_up(v: f64) -> f64 {
    let v = v.max(1e-3);
    let p = 10f64.powf(v.log10().floor());
    [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|&c| c >= v)
        .unwrap_or(10.0 * p)
}

/// Renders the loss and accuracy curves of `history` as PNG bytes.
pub fn render(title: &str, history: &[EpochMetrics]) -> Result<Vec<u8>> {
    register_font();
    let (w, h) = SIZE;
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let col = |f: fn(&EpochMetrics) -> f64| history.iter().map(f).collect::<Vec<f64>>();
        let (tl, vl) = (col(|m| m.train_loss), col(|m| m.test_loss));
        let (ta, va) = (col(|m| m.train_acc), col(|m| m.test_acc));
        let finite = |v: &[f64], init: f64, f: fn(f64, f64) -> f64| {
            v.iter()
                .filter(|x| x.is_finite())
                .fold(init, |a, &b| f(a, b))
        };
        let lmax = round_up(finite(&tl, 0.0, f64::max).max(finite(&vl, 0.0, f64::max)));
        let amin = finite(&ta, 1.0, f64::min).min(finite(&va, 1.0, f64::min));
        // accuracy from a round tenth below the lowest value (at most 0.9) up to 1
        let amin = ((amin - 0.02) * 10.0).floor().clamp(0.0, 9.0) / 10.0;
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        let root = root.titled(title, (FONT, 20)).map_err(draw_err)?;
        let panels = root.split_evenly((1, 2));
        let epochs = history.len().max(1);
        draw_panel(
            &panels[0],
            epochs,
            &Panel {
                title: "loss",
                y_title: "cross-entropy loss",
                y: (0.0, lmax),
                series: [("train", TRAIN, tl), ("test", TEST, vl)],
            },
        )?;
        draw_panel(
            &panels[1],
            epochs,
            &Panel {
                title: "accuracy",
                y_title: "accuracy",
                y: (amin, 1.0),
                series: [("train", TRAIN, ta), ("test", TEST, va)],
            },
        )?;
        root.present().map_err(draw_err)?;
    }
    encode_png(w as usize, h as usize, &buf)
}

#[cfg(test)]
mod tests {
    use super::round_up;

    #[test]
    fn loss_axis_ends_on_a_round_value() {
        assert_eq!(round_up(0.61), 0.8);
        assert_eq!(round_up(2.3), 2.5);
        assert_eq!(round_up(1.0), 1.0);
    }
}
