//! Structured trace of a pooling: for every output value, the input cells of its window and
//! where its gradient goes (`∂y[at]/∂x[i]` for each input cell `i` it reaches: 1 at the argmax
//! for max, `1/|window|` for avg, the softmax weights for soft pooling, ...). The windows come
//! from the same spans the computation walks (`Windows::spans` + `sweep`), the values from
//! `pool_forward`, and the gradient weights from `pool_backward` itself, fed a one-hot output
//! gradient per cell, so a front-end shows exactly what the library computes.

use super::MAX_TERMS;
use crate::error::{Error, Result};
use crate::ops::pool::reduce::sweep;
use crate::ops::pool::{pool_backward, pool_forward, PoolKind, PoolParams, PoolShape, Windows};
use crate::tensor::Tensor;

/// Most output cells whose gradient routes are traced (one backward pass each).
pub const MAX_ROUTED_CELLS: usize = 1024;

/// One output value of a pooling.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolCell {
    /// Flat index into the output.
    pub at: usize,
    /// Flat indices into the input of the window's cells inside the input, row-major.
    pub window: Vec<usize>,
    pub value: f32,
    /// `(input index, ∂y[at]/∂x[index])` for every input cell with a non-zero weight.
    pub routes: Vec<(usize, f32)>,
}

/// A pooling traced cell by cell; `gx` when an output gradient was given.
#[derive(Clone, Debug)]
pub struct PoolTrace {
    pub y: Tensor,
    pub gx: Option<Tensor>,
    pub cells: Vec<PoolCell>,
}

/// Refuses a pooling too large to trace (before anything of its size is allocated).
pub fn check(s: &PoolShape) -> Result<()> {
    let taps = match (&s.window, &s.windows) {
        (Some(w), _) => w.taps(),
        (None, Windows::KMax { .. }) => s.input[2],
        _ => s.in_len(),
    };
    let cells_n = s.planes * s.out_len();
    let terms = cells_n.saturating_mul(taps);
    if terms > MAX_TERMS || cells_n > MAX_ROUTED_CELLS {
        return Err(Error::TooLarge {
            what: "input".into(),
            msg: format!(
                "this pooling has {cells_n} output values reading {terms} window cells, too many to show \
                 step by step (limits {MAX_ROUTED_CELLS} and {MAX_TERMS}); use a smaller input"
            ),
        });
    }
    Ok(())
}

/// Traces `pool_forward(x, p)` and, with `gy`, `pool_backward`.
pub fn pool_trace(x: &Tensor, p: &PoolParams, gy: Option<&Tensor>) -> Result<PoolTrace> {
    let s = PoolShape::new(x.shape(), p)?;
    check(&s)?;
    let (in_len, out_len) = (s.in_len(), s.out_len());
    let cells_n = s.planes * out_len;
    let out = pool_forward(x, p)?;
    let gx = gy.map(|gy| pool_backward(x, &out, gy, p)).transpose()?;
    let mut cells: Vec<PoolCell> = (0..cells_n)
        .map(|at| PoolCell {
            at,
            window: vec![],
            value: out.y.data()[at],
            routes: vec![],
        })
        .collect();
    for plane in 0..s.planes {
        let base = plane * in_len;
        if p.kind == PoolKind::KMax {
            // each output cell of a row selects from the whole row (last axis)
            let (row_len, k) = (s.input[2], s.output[2]);
            for o in 0..out_len {
                let row = base + (o / k) * row_len;
                cells[plane * out_len + o].window = (row..row + row_len).collect();
            }
            continue;
        }
        let spans = s.windows.spans(plane, &s.input);
        sweep(&spans, &s.input, |o, cell| {
            let w = &mut cells[plane * out_len + o].window;
            cell.for_each(|i| w.push(base + i));
        });
    }
    // where each output's gradient goes: the library's own backward of a one-hot gradient
    let mut onehot = Tensor::zeros(out.y.shape());
    for (at, cell) in cells.iter_mut().enumerate() {
        onehot.data_mut()[at] = 1.0;
        let g = pool_backward(x, &out, &onehot, p)?;
        onehot.data_mut()[at] = 0.0;
        cell.routes = g
            .data()
            .iter()
            .enumerate()
            .filter(|(_, &v)| v != 0.0)
            .map(|(i, &v)| (i, v))
            .collect();
    }
    Ok(PoolTrace {
        y: out.y,
        gx,
        cells,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x() -> Tensor {
        Tensor::new(
            vec![1, 1, 3, 3],
            vec![109., 92., 72., 108., 85., 74., 110., 74., 79.],
        )
        .unwrap()
    }

    #[test]
    fn max_routes_to_the_argmax() {
        let mut p = PoolParams::new(PoolKind::Max, &[2]);
        p.stride = vec![1];
        let tr = pool_trace(&x(), &p, None).unwrap();
        assert_eq!(tr.y.data(), &[109., 92., 110., 85.]);
        assert_eq!(tr.cells[0].window, vec![0, 1, 3, 4]);
        assert_eq!(tr.cells[2].routes, vec![(6, 1.0)]);
    }

    #[test]
    fn avg_spreads_evenly_and_gx_sums_the_routes() {
        let mut p = PoolParams::new(PoolKind::Avg, &[2]);
        p.stride = vec![1];
        let gy = Tensor::full(&[1, 1, 2, 2], 1.0);
        let tr = pool_trace(&x(), &p, Some(&gy)).unwrap();
        assert_eq!(
            tr.cells[3].routes,
            vec![(4, 0.25), (5, 0.25), (7, 0.25), (8, 0.25)]
        );
        let gx = tr.gx.unwrap();
        assert_eq!(gx.data()[4], 1.0);
        assert_eq!(gx.data()[0], 0.25);
    }

    #[test]
    fn soft_weights_sum_to_one_and_kmax_reads_rows() {
        let mut p = PoolParams::new(PoolKind::Soft, &[2]);
        p.stride = vec![1];
        let small = Tensor::new(vec![1, 1, 2, 2], vec![0.1, 0.2, 0.3, 0.4]).unwrap();
        let tr = pool_trace(&small, &p, None).unwrap();
        assert_eq!(tr.cells[0].routes.len(), 4);
        let mut p = PoolParams::new(PoolKind::KMax, &[]);
        p.k = 2;
        let row = Tensor::new(vec![1, 1, 5], vec![3., 1., 4., 1., 5.]).unwrap();
        let tr = pool_trace(&row, &p, None).unwrap();
        assert_eq!(tr.y.data(), &[4., 5.]);
        assert_eq!(tr.cells[1].window, vec![0, 1, 2, 3, 4]);
        assert_eq!(tr.cells[1].routes, vec![(4, 1.0)]);
    }
}
