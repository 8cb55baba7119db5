//! Convolution as unfold + GEMM. For each image and group, the input patches are copied into
//! a column matrix `cols: (Cin/g · kd·kh·kw, od·oh·ow)` (row = (input channel, tap), column =
//! output cell), and `y_g (Cout/g × out) = W_g (Cout/g × Cin/g·taps) · cols`.
//! The column matrix is built in tiles of output cells so its memory stays bounded
//! ([`TILE_BYTES`] per thread) however large the input.

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

/// Unfolds output cells `o0..o1` of one image-group `x_g: (Cin/g, D, H, W)` into
/// `cols: (Cin/g·taps, o1 - o0)`, row-major. Padding taps read 0 (or the mode's copy).
pub fn unfold(s: &ConvShape, x_g: &[f32], o0: usize, o1: usize, cols: &mut [f32]) {
    let win = &s.window;
    let [ad, ah, aw] = &win.axes;
    let (in_len, taps, width) = (win.in_len(), win.taps(), o1 - o0);
    // for each input channel and kernel tap: one row of cols
    for icg in 0..s.cin_g() {
        let x_plane = &x_g[icg * in_len..][..in_len];
        for tap in 0..taps {
            let (td, th, tw) = (
                tap / (ah.kernel * aw.kernel),
                (tap / aw.kernel) % ah.kernel,
                tap % aw.kernel,
            );
            let row = &mut cols[(icg * taps + tap) * width..][..width];
            // for each output cell of the tile
            for (j, o) in (o0..o1).enumerate() {
                let (od, oh, ow) = (
                    o / (ah.output * aw.output),
                    (o / aw.output) % ah.output,
                    o % aw.output,
                );
                row[j] = match (
                    ad.source_mode(od, td, s.mode),
                    ah.source_mode(oh, th, s.mode),
                    aw.source_mode(ow, tw, s.mode),
                ) {
                    (Some(d), Some(h), Some(w)) => x_plane[(d * ah.input + h) * aw.input + w],
                    _ => 0.0,
                };
            }
        }
    }
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
