//! A labelled grid of small images (feature maps, kernels, inputs) drawn in one colour map
//! with one shared value range, each image upscaled by an integer factor with
//! nearest-neighbour sampling (a 5×5 kernel stays 25 crisp squares), and a legend that shows
//! the colours of that range. Returned as PNG bytes.

use super::colormap::{finite_range, ColorMap, Rgb};
use super::{draw_err, encode_png, register_font, FONT};
use crate::error::Result;
use crate::explain::fmt_num;
use plotters::prelude::*;

/// One small image: `h × w` values, row-major, and the label written under it.
#[derive(Clone, Debug)]
pub struct Cell {
    pub label: String,
    pub h: usize,
    pub w: usize,
    pub values: Vec<f32>,
}

/// One row of cells, with the label written at its left (may be empty).
#[derive(Clone, Debug, Default)]
pub struct Row {
    pub label: String,
    pub cells: Vec<Cell>,
}

/// A picture: a title, rows of cells, a colour map and the size each cell is drawn at.
#[derive(Clone, Debug)]
pub struct Grid {
    pub title: String,
    pub rows: Vec<Row>,
    pub map: ColorMap,
    /// Target size in pixels of a cell's longer side; the upscaling factor is the largest
    /// integer that keeps the cell within it (at least 1).
    pub cell_px: usize,
}

/// The layout of a grid in pixels (computed once, used to draw and by tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub width: usize,
    pub height: usize,
    /// Nearest-neighbour upscaling factor of every cell.
    pub scale: usize,
}

const MARGIN: usize = 12;
const TITLE_H: usize = 30;
const LABEL_H: usize = 18;
const GAP: usize = 10;
const LEGEND_H: usize = 46;
const ROW_LABEL_W: usize = 120;
const BAR_W: usize = 240;

impl Grid {
    fn cell_dims(&self) -> (usize, usize) {
        let cells = self.rows.iter().flat_map(|r| &r.cells);
        let h = cells.clone().map(|c| c.h).max().unwrap_or(1).max(1);
        let w = cells.map(|c| c.w).max().unwrap_or(1).max(1);
        (h, w)
    }

    fn row_label_w(&self) -> usize {
        if self.rows.iter().any(|r| !r.label.is_empty()) {
            ROW_LABEL_W
        } else {
            0
        }
    }

    /// Where everything goes: the scale from `cell_px`, then the picture's size.
    pub fn layout(&self) -> Layout {
        let (h, w) = self.cell_dims();
        let scale = (self.cell_px / h.max(w)).max(1);
        let cols = self.rows.iter().map(|r| r.cells.len()).max().unwrap_or(0);
        let (cw, ch) = (w * scale, h * scale + LABEL_H);
        let grid_w = self.row_label_w() + cols * cw + cols.saturating_sub(1) * GAP;
        let width = 2 * MARGIN + grid_w.max(BAR_W + 120).max(self.title.chars().count() * 9);
        let height = MARGIN
            + TITLE_H
            + self.rows.len() * ch
            + self.rows.len().saturating_sub(1) * GAP
            + LEGEND_H
            + MARGIN;
        Layout {
            width,
            height,
            scale,
        }
    }

    /// The top-left pixel of cell `col` of row `row`.
    pub fn cell_origin(&self, row: usize, col: usize) -> (usize, usize) {
        let (h, w) = self.cell_dims();
        let scale = self.layout().scale;
        (
            MARGIN + self.row_label_w() + col * (w * scale + GAP),
            MARGIN + TITLE_H + row * (h * scale + LABEL_H + GAP),
        )
    }

    /// The value range the colours span (shared by every cell; symmetric for diverging maps).
    pub fn range(&self) -> (f32, f32) {
        let (lo, hi) = finite_range(
            self.rows
                .iter()
                .flat_map(|r| &r.cells)
                .flat_map(|c| &c.values),
        );
        self.map.range(lo, hi)
    }

    /// Draws the grid and returns PNG bytes.
    pub fn render(&self) -> Result<Vec<u8>> {
        let lay = self.layout();
        let (w, h) = (lay.width, lay.height);
        let range = self.range();
        let mut buf = vec![255u8; w * h * 3];
        let put = |buf: &mut [u8], x: usize, y: usize, c: Rgb| {
            if x < w && y < h {
                buf[(y * w + x) * 3..][..3].copy_from_slice(&c);
            }
        };
        // the cells: each value a scale×scale square (nearest-neighbour upscaling)
        let cell_h = self.cell_dims().0;
        let mut labels: Vec<(String, usize, usize, u32)> =
            vec![(self.title.clone(), MARGIN, MARGIN, 18)];
        for (ri, row) in self.rows.iter().enumerate() {
            let y = self.cell_origin(ri, 0).1;
            if !row.label.is_empty() {
                labels.push((
                    row.label.clone(),
                    MARGIN,
                    y + (cell_h * lay.scale) / 2 - 7,
                    14,
                ));
            }
            for (ci, cell) in row.cells.iter().enumerate() {
                let x = self.cell_origin(ri, ci).0;
                for (i, &v) in cell.values.iter().enumerate() {
                    let c = self.map.color(v, range);
                    let (py, px) = (i / cell.w.max(1), i % cell.w.max(1));
                    for dy in 0..lay.scale {
                        for dx in 0..lay.scale {
                            put(
                                &mut buf,
                                x + px * lay.scale + dx,
                                y + py * lay.scale + dy,
                                c,
                            );
                        }
                    }
                }
                labels.push((cell.label.clone(), x, y + cell.h * lay.scale + 3, 12));
            }
        }
        // the legend: a colour bar over the range, its ends and 0 (when inside) labelled
        let ly = h - MARGIN - LEGEND_H + 8;
        let lx = MARGIN + 110;
        for i in 0..BAR_W {
            let c = self.map.at(i as f32 / (BAR_W - 1) as f32);
            for dy in 0..14 {
                put(&mut buf, lx + i, ly + dy, c);
            }
        }
        labels.push(("colour scale".into(), MARGIN, ly, 13));
        let tick = |v: f32| {
            lx + (((v - range.0) / (range.1 - range.0)) * (BAR_W - 1) as f32).round() as usize
        };
        let mut ticks = vec![range.0, range.1];
        if range.0 < 0.0 && range.1 > 0.0 {
            ticks.push(0.0);
        }
        for v in ticks {
            labels.push((fmt_num(v), tick(v).saturating_sub(6), ly + 18, 12));
        }
        self.draw_text(&mut buf, w, h, &labels)?;
        encode_png(w, h, &buf)
    }

    fn draw_text(
        &self,
        buf: &mut [u8],
        w: usize,
        h: usize,
        labels: &[(String, usize, usize, u32)],
    ) -> Result<()> {
        register_font();
        let root = BitMapBackend::with_buffer(buf, (w as u32, h as u32)).into_drawing_area();
        for (text, x, y, size) in labels {
            let style = (FONT, *size).into_font().color(&BLACK);
            root.draw(&Text::new(text.clone(), (*x as i32, *y as i32), style))
                .map_err(draw_err)?;
        }
        root.present().map_err(draw_err)
    }
}
