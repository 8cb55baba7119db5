//! The training chart: loss (left) and accuracy (right) per epoch, train and test, as a PNG.
//! Drawn on a small RGB raster (lines, markers, axes) with the public-domain 8×8 bitmap font
//! of `font8x8`, encoded with `png`, so no system fonts are needed.

use crate::checkpoint::EpochMetrics;
use crate::error::{Error, Result};

type Rgb = [u8; 3];
const WHITE: Rgb = [255, 255, 255];
const BLACK: Rgb = [30, 30, 30];
const GRID: Rgb = [225, 225, 225];
const TRAIN: Rgb = [31, 119, 180];
const TEST: Rgb = [214, 39, 40];

/// An RGB raster.
struct Canvas {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Canvas {
    fn new(w: usize, h: usize) -> Self {
        Canvas {
            w,
            h,
            px: vec![255; w * h * 3],
        }
    }

    fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            let o = (y as usize * self.w + x as usize) * 3;
            self.px[o..o + 3].copy_from_slice(&c);
        }
    }

    fn rect(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, c: Rgb) {
        for y in y0..=y1 {
            for x in x0..=x1 {
                self.set(x, y, c);
            }
        }
    }

    /// A line `width` pixels thick (Bresenham with a square pen).
    fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: Rgb, width: i64) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            self.rect(
                x - width / 2,
                y - width / 2,
                x + (width - 1) / 2,
                y + (width - 1) / 2,
                c,
            );
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    /// Text with its top-left corner at (x, y), each font pixel drawn `scale`×`scale`.
    fn text(&mut self, x: i64, y: i64, s: &str, c: Rgb, scale: i64) {
        for (i, ch) in s.chars().enumerate() {
            let glyph = font8x8::legacy::BASIC_LEGACY[(ch as usize).min(127)];
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if bits >> col & 1 == 1 {
                        let (px, py) = (x + (i as i64 * 8 + col) * scale, y + row as i64 * scale);
                        self.rect(px, py, px + scale - 1, py + scale - 1, c);
                    }
                }
            }
        }
    }

    fn text_width(s: &str, scale: i64) -> i64 {
        s.chars().count() as i64 * 8 * scale
    }
}

/// One panel: a box with axes, y ticks, epoch ticks and two series.
struct Panel {
    x0: i64,
    y0: i64,
    w: i64,
    h: i64,
    ymin: f64,
    ymax: f64,
    epochs: usize,
}

impl Panel {
    fn px(&self, epoch: f64) -> i64 {
        let span = (self.epochs.max(2) - 1) as f64;
        let t = if self.epochs <= 1 {
            0.5
        } else {
            (epoch - 1.0) / span
        };
        self.x0 + (t * self.w as f64).round() as i64
    }

    fn py(&self, v: f64) -> i64 {
        let t = (v - self.ymin) / (self.ymax - self.ymin).max(1e-12);
        self.y0 + self.h - (t.clamp(0.0, 1.0) * self.h as f64).round() as i64
    }

    fn draw(&self, c: &mut Canvas, title: &str, series: &[(&str, Rgb, Vec<f64>)]) {
        // grid and y tick labels
        for i in 0..=4 {
            let v = self.ymin + (self.ymax - self.ymin) * i as f64 / 4.0;
            let y = self.py(v);
            c.line((self.x0, y), (self.x0 + self.w, y), GRID, 1);
            let label = format!("{v:.2}");
            c.text(
                self.x0 - Canvas::text_width(&label, 1) - 6,
                y - 4,
                &label,
                BLACK,
                1,
            );
        }
        // epoch ticks (at most ~10 labels)
        let every = self.epochs.div_ceil(10).max(1);
        for e in (1..=self.epochs).filter(|e| (e - 1) % every == 0 || *e == self.epochs) {
            let x = self.px(e as f64);
            c.line((x, self.y0 + self.h), (x, self.y0 + self.h + 4), BLACK, 1);
            let label = e.to_string();
            c.text(
                x - Canvas::text_width(&label, 1) / 2,
                self.y0 + self.h + 8,
                &label,
                BLACK,
                1,
            );
        }
        c.text(
            self.x0 + self.w / 2 - 20,
            self.y0 + self.h + 22,
            "epoch",
            BLACK,
            1,
        );
        // axes
        c.line((self.x0, self.y0), (self.x0, self.y0 + self.h), BLACK, 1);
        c.line(
            (self.x0, self.y0 + self.h),
            (self.x0 + self.w, self.y0 + self.h),
            BLACK,
            1,
        );
        c.text(self.x0, self.y0 - 22, title, BLACK, 2);
        // series and legend
        for (k, (name, color, vals)) in series.iter().enumerate() {
            let pts: Vec<(i64, i64)> = vals
                .iter()
                .enumerate()
                .map(|(i, &v)| (self.px(i as f64 + 1.0), self.py(v)))
                .collect();
            for w in pts.windows(2) {
                c.line(w[0], w[1], *color, 2);
            }
            for &(x, y) in &pts {
                c.rect(x - 3, y - 3, x + 3, y + 3, *color);
            }
            let (lx, ly) = (self.x0 + self.w - 90, self.y0 + 8 + 14 * k as i64);
            c.rect(lx, ly + 2, lx + 14, ly + 5, *color);
            c.text(lx + 20, ly, name, BLACK, 1);
        }
    }
}

/// Renders the loss and accuracy curves of `history` as PNG bytes.
pub fn render(title: &str, history: &[EpochMetrics]) -> Result<Vec<u8>> {
    let (w, h) = (960usize, 420usize);
    let mut c = Canvas::new(w, h);
    c.rect(0, 0, w as i64 - 1, h as i64 - 1, WHITE);
    c.text(20, 12, title, BLACK, 2);
    let epochs = history.len().max(1);
    let col = |f: fn(&EpochMetrics) -> f64| history.iter().map(f).collect::<Vec<f64>>();
    let (tl, vl) = (col(|m| m.train_loss), col(|m| m.test_loss));
    let (ta, va) = (col(|m| m.train_acc), col(|m| m.test_acc));
    let lmax = tl
        .iter()
        .chain(&vl)
        .fold(0.0f64, |a, &b| a.max(b))
        .max(1e-3)
        * 1.05;
    let amin = ta.iter().chain(&va).fold(1.0f64, |a, &b| a.min(b));
    let amin = ((amin - 0.02) * 20.0).floor().max(0.0) / 20.0;
    let left = Panel {
        x0: 80,
        y0: 80,
        w: 360,
        h: 270,
        ymin: 0.0,
        ymax: lmax,
        epochs,
    };
    let right = Panel {
        x0: 560,
        y0: 80,
        w: 360,
        h: 270,
        ymin: amin.min(0.95),
        ymax: 1.0,
        epochs,
    };
    left.draw(&mut c, "loss", &[("train", TRAIN, tl), ("test", TEST, vl)]);
    right.draw(
        &mut c,
        "accuracy",
        &[("train", TRAIN, ta), ("test", TEST, va)],
    );
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w as u32, h as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let err = |e: png::EncodingError| Error::arg("chart", format!("cannot encode the PNG: {e}"));
    let mut writer = enc.write_header().map_err(err)?;
    writer.write_image_data(&c.px).map_err(err)?;
    writer.finish().map_err(err)?;
    Ok(out)
}
