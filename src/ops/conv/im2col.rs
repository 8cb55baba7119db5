//! Convolution as unfold + GEMM. For each image and group, the input patches are copied into
//! a column matrix `cols: (Cin/g · kd·kh·kw, od·oh·ow)` (row = (input channel, tap), column =
//! output cell), and `y_g (Cout/g × out) = W_g (Cout/g × Cin/g·taps) · cols`.
//! The column matrix is built in tiles of output cells so its memory stays bounded
//! ([`TILE_BYTES`] per thread) however large the input.
//!
//! Backward, with the same tiles: the input gradient is `dcols = W_gᵀ · gy_g` folded back onto
//! the input (col2im, [`fold`]); the weight gradient is `gW_g += gy_g · colsᵀ`, one partial sum
//! per thread when images run in parallel, added up at the end.

use super::ConvShape;
use crate::ops::gemm::{matmul, MatRef};
use rayon::prelude::*;
use std::cell::RefCell;

/// Upper bound on one thread's column buffer: 8 MiB.
pub const TILE_BYTES: usize = 8 << 20;

thread_local! {
    /// Per-thread column buffer, reused across calls (fresh big buffers cost page faults).
    static COLS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Number of output cells per tile for this problem.
pub fn tile_len(s: &ConvShape) -> usize {
    let k = s.k_len().max(1);
    (TILE_BYTES / 4 / k).clamp(1, s.window.out_len())
}

/// Walks the column matrix of output cells `o0..o1` of one image-group: calls
/// `visit(row, j, src)` for row `icg·taps + tap`, column `j = o - o0`, and the flat index
/// `src = icg·in_len + pixel` into `x_g: (Cin/g, D, H, W)` that the cell reads (`None` in zero
/// padding; the mode's source pixel otherwise). `unfold` gathers along it and `fold` scatters.
#[inline]
fn walk(s: &ConvShape, o0: usize, o1: usize, mut visit: impl FnMut(usize, usize, Option<usize>)) {
    let win = &s.window;
    let [ad, ah, aw] = &win.axes;
    let (in_len, taps) = (win.in_len(), win.taps());
    // for each input channel and kernel tap: one row of cols
    for icg in 0..s.cin_g() {
        for tap in 0..taps {
            let (td, th, tw) = (
                tap / (ah.kernel * aw.kernel),
                (tap / aw.kernel) % ah.kernel,
                tap % aw.kernel,
            );
            let row = icg * taps + tap;
            // for each output cell of the tile
            for (j, o) in (o0..o1).enumerate() {
                let (od, oh, ow) = (
                    o / (ah.output * aw.output),
                    (o / aw.output) % ah.output,
                    o % aw.output,
                );
                let src = match (
                    ad.source_mode(od, td, s.mode),
                    ah.source_mode(oh, th, s.mode),
                    aw.source_mode(ow, tw, s.mode),
                ) {
                    (Some(d), Some(h), Some(w)) => {
                        Some(icg * in_len + (d * ah.input + h) * aw.input + w)
                    }
                    _ => None,
                };
                visit(row, j, src);
            }
        }
    }
}

/// Unfolds output cells `o0..o1` of one image-group `x_g: (Cin/g, D, H, W)` into
/// `cols: (Cin/g·taps, o1 - o0)`, row-major. Padding taps read 0 (or the mode's copy).
pub fn unfold(s: &ConvShape, x_g: &[f32], o0: usize, o1: usize, cols: &mut [f32]) {
    let width = o1 - o0;
    walk(s, o0, o1, |row, j, src| {
        cols[row * width + j] = src.map_or(0.0, |i| x_g[i]);
    });
}

/// The adjoint of [`unfold`] (col2im): adds each entry of `cols: (Cin/g·taps, o1 - o0)` to the
/// input pixel it was read from in `gx_g: (Cin/g, D, H, W)`. Entries read from zero padding are
/// dropped; entries read from a copied pixel (reflect, replicate, circular) go to that pixel.
pub fn fold(s: &ConvShape, cols: &[f32], o0: usize, o1: usize, gx_g: &mut [f32]) {
    let width = o1 - o0;
    walk(s, o0, o1, |row, j, src| {
        if let Some(i) = src {
            gx_g[i] += cols[row * width + j];
        }
    });
}

/// Forward pass for one image: `x_n: (Cin, D, H, W)`, `y_n: (Cout, od, oh, ow)`.
fn forward_image(
    s: &ConvShape,
    x_n: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y_n: &mut [f32],
    threads: usize,
) {
    let (in_len, out_len, k) = (s.window.in_len(), s.window.out_len(), s.k_len());
    let (cin_g, cout_g) = (s.cin_g(), s.cout_g());
    let tile = tile_len(s);
    COLS.with(|buf| {
        let mut buf = buf.borrow_mut();
        if buf.len() < k * tile {
            buf.resize(k * tile, 0.0);
        }
        for g in 0..s.groups {
            let x_g = &x_n[g * cin_g * in_len..][..cin_g * in_len];
            // W_g: (Cout/g × Cin/g·taps), row-major slice of the weight
            let w_g = MatRef::row_major(&w[g * cout_g * k..][..cout_g * k], cout_g, k);
            let y_g = &mut y_n[g * cout_g * out_len..][..cout_g * out_len];
            // for each tile of output cells
            for o0 in (0..out_len).step_by(tile) {
                let o1 = (o0 + tile).min(out_len);
                let cols = &mut buf[..k * (o1 - o0)];
                unfold(s, x_g, o0, o1, cols);
                // y_g[:, o0..o1] (row stride out_len) = W_g · cols
                matmul(
                    &mut y_g[o0..],
                    out_len,
                    w_g,
                    MatRef::row_major(cols, k, o1 - o0),
                    false,
                    threads,
                );
            }
        }
    });
    if let Some(b) = bias {
        for (oc, plane) in y_n.chunks_mut(out_len).enumerate() {
            plane.iter_mut().for_each(|v| *v += b[oc]);
        }
    }
}

/// Forward pass. Images run in parallel when there are at least as many as threads; otherwise
/// the GEMM itself is split.
pub fn forward(s: &ConvShape, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    let in_img = s.cin * s.window.in_len();
    let out_img = s.cout * s.window.out_len();
    let threads = rayon::current_num_threads();
    if s.batch >= threads && threads > 1 {
        y.par_chunks_mut(out_img)
            .zip(x.par_chunks(in_img))
            .for_each(|(y_n, x_n)| forward_image(s, x_n, w, bias, y_n, 1));
    } else {
        for (y_n, x_n) in y.chunks_mut(out_img).zip(x.chunks(in_img)) {
            forward_image(s, x_n, w, bias, y_n, threads);
        }
    }
}

/// Input gradient for one image: `gy_n: (Cout, od, oh, ow)`, `gx_n: (Cin, D, H, W)` (overwritten).
fn backward_input_image(s: &ConvShape, gy_n: &[f32], w: &[f32], gx_n: &mut [f32], threads: usize) {
    let (in_len, out_len, k) = (s.window.in_len(), s.window.out_len(), s.k_len());
    let (cin_g, cout_g) = (s.cin_g(), s.cout_g());
    let tile = tile_len(s);
    gx_n.fill(0.0);
    COLS.with(|buf| {
        let mut buf = buf.borrow_mut();
        if buf.len() < k * tile {
            buf.resize(k * tile, 0.0);
        }
        for g in 0..s.groups {
            // W_gᵀ: (Cin/g·taps × Cout/g)
            let w_gt = MatRef::row_major(&w[g * cout_g * k..][..cout_g * k], cout_g, k).t();
            let gy_g = &gy_n[g * cout_g * out_len..][..cout_g * out_len];
            let gx_g = &mut gx_n[g * cin_g * in_len..][..cin_g * in_len];
            // for each tile of output cells
            for o0 in (0..out_len).step_by(tile) {
                let o1 = (o0 + tile).min(out_len);
                let dcols = &mut buf[..k * (o1 - o0)];
                // gy_g[:, o0..o1]: (Cout/g × width), row stride out_len
                let gy_tile = MatRef {
                    data: &gy_g[o0..],
                    rows: cout_g,
                    cols: o1 - o0,
                    rs: out_len,
                    cs: 1,
                };
                // dcols (Cin/g·taps × width) = W_gᵀ · gy_g[:, o0..o1]
                matmul(dcols, o1 - o0, w_gt, gy_tile, false, threads);
                fold(s, dcols, o0, o1, gx_g);
            }
        }
    });
}

/// Input gradient (col2im). `gy: (N, Cout, od, oh, ow)`, `w` as the forward used it,
/// `gx: (N, Cin, D, H, W)` (overwritten). Images run in parallel when there are enough.
pub fn backward_input(s: &ConvShape, gy: &[f32], w: &[f32], gx: &mut [f32]) {
    let in_img = s.cin * s.window.in_len();
    let out_img = s.cout * s.window.out_len();
    let threads = rayon::current_num_threads();
    if s.batch >= threads && threads > 1 {
        gx.par_chunks_mut(in_img)
            .zip(gy.par_chunks(out_img))
            .for_each(|(gx_n, gy_n)| backward_input_image(s, gy_n, w, gx_n, 1));
    } else {
        for (gx_n, gy_n) in gx.chunks_mut(in_img).zip(gy.chunks(out_img)) {
            backward_input_image(s, gy_n, w, gx_n, threads);
        }
    }
}

/// Adds one image's weight gradient to `gw: (Cout, Cin/g·taps)`.
fn backward_weight_image(s: &ConvShape, x_n: &[f32], gy_n: &[f32], gw: &mut [f32], threads: usize) {
    let (in_len, out_len, k) = (s.window.in_len(), s.window.out_len(), s.k_len());
    let (cin_g, cout_g) = (s.cin_g(), s.cout_g());
    let tile = tile_len(s);
    COLS.with(|buf| {
        let mut buf = buf.borrow_mut();
        if buf.len() < k * tile {
            buf.resize(k * tile, 0.0);
        }
        for g in 0..s.groups {
            let x_g = &x_n[g * cin_g * in_len..][..cin_g * in_len];
            let gy_g = &gy_n[g * cout_g * out_len..][..cout_g * out_len];
            let gw_g = &mut gw[g * cout_g * k..][..cout_g * k];
            // for each tile of output cells
            for o0 in (0..out_len).step_by(tile) {
                let o1 = (o0 + tile).min(out_len);
                let cols = &mut buf[..k * (o1 - o0)];
                unfold(s, x_g, o0, o1, cols);
                let gy_tile = MatRef {
                    data: &gy_g[o0..],
                    rows: cout_g,
                    cols: o1 - o0,
                    rs: out_len,
                    cs: 1,
                };
                // gW_g (Cout/g × Cin/g·taps) += gy_g[:, o0..o1] · colsᵀ
                matmul(
                    gw_g,
                    k,
                    gy_tile,
                    MatRef::row_major(cols, k, o1 - o0).t(),
                    true,
                    threads,
                );
            }
        }
    });
}

/// Weight gradient (im2col). `x: (N, Cin, D, H, W)`, `gy: (N, Cout, od, oh, ow)`,
/// `gw: (Cout, Cin/g, kd, kh, kw)` (overwritten). With enough images each thread sums its own
/// partial gradient and the partials are added at the end; otherwise the GEMM is split.
pub fn backward_weight(s: &ConvShape, x: &[f32], gy: &[f32], gw: &mut [f32]) {
    let in_img = s.cin * s.window.in_len();
    let out_img = s.cout * s.window.out_len();
    let threads = rayon::current_num_threads();
    gw.fill(0.0);
    if s.batch >= threads && threads > 1 {
        let len = gw.len();
        // at most about one partial gradient per thread
        let total = x
            .par_chunks(in_img)
            .zip(gy.par_chunks(out_img))
            .with_min_len(s.batch.div_ceil(threads))
            .fold(
                || vec![0.0f32; len],
                |mut part, (x_n, gy_n)| {
                    backward_weight_image(s, x_n, gy_n, &mut part, 1);
                    part
                },
            )
            .reduce(
                || vec![0.0f32; len],
                |mut a, b| {
                    a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
                    a
                },
            );
        gw.copy_from_slice(&total);
    } else {
        for (x_n, gy_n) in x.chunks(in_img).zip(gy.chunks(out_img)) {
            backward_weight_image(s, x_n, gy_n, gw, threads);
        }
    }
}
