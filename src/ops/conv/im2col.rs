//! Convolution as unfold + GEMM. For each image and group, the input patches are copied into
//! a column matrix `cols: (Cin/g · kd·kh·kw, od·oh·ow)` (row = (input channel, tap), column =
//! output cell), and `y_g (Cout/g × out) = W_g (Cout/g × Cin/g·taps) · cols`.
//! The column matrix is built in tiles of output cells so its memory stays bounded
//! ([`TILE_BYTES`] per thread) however large the input.
//!
//! Backward, with the same tiles: the input gradient is `dcols = W_gᵀ · gy_g` folded back onto
//! the input (col2im, [`fold`]); the weight gradient is `gW_g += gy_g · colsᵀ`, one partial sum
//! per thread when images run in parallel, added up at the end.

pub use super::unfold::{fold, fold_reference, unfold, unfold_reference, unfold_strided};
use super::ConvShape;
use crate::ops::gemm::{matmul, matmul_uninit, MatRef};
use crate::ops::scratch;
use crate::ops::uninit::{as_uninit, assume_init, zeroed};
use rayon::prelude::*;
use std::cell::RefCell;
use std::mem::MaybeUninit;

/// Upper bound on one thread's column buffer: 8 MiB.
pub const TILE_BYTES: usize = 8 << 20;

thread_local! {
    /// Per-thread column buffer, reused across calls (fresh big buffers cost page faults).
    static COLS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Number of output cells per tile for this problem.
pub fn tile_len(s: &ConvShape) -> usize {
    let k = s.reduction_len().max(1);
    (TILE_BYTES / 4 / k).clamp(1, s.window.out_len())
}

/// Forward pass for one image: `x_n: (Cin, D, H, W)`, `y_n: (Cout, od, oh, ow)` (need not be
/// initialised: the GEMMs write every value before the bias is added).
fn forward_image(
    s: &ConvShape,
    x_n: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y_n: &mut [MaybeUninit<f32>],
    threads: usize,
) {
    let (in_len, out_len, k) = (s.window.in_len(), s.window.out_len(), s.reduction_len());
    let (cin_g, cout_g) = (s.cin_g(), s.cout_g());
    let tile = tile_len(s);
    if is_pointwise(s) {
        // 1×1, stride 1, no padding: x_g (Cin/g × in) already is the column matrix; no copy.
        for g in 0..s.groups {
            let x_g =
                MatRef::row_major(&x_n[g * cin_g * in_len..][..cin_g * in_len], cin_g, in_len);
            let w_g = MatRef::row_major(&w[g * cout_g * k..][..cout_g * k], cout_g, k);
            let y_g = &mut y_n[g * cout_g * out_len..][..cout_g * out_len];
            matmul_uninit(y_g, out_len, w_g, x_g, threads);
        }
    } else {
        scratch::with(&COLS, k * tile, |buf| {
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
                    let cols = MatRef::row_major(cols, k, o1 - o0);
                    matmul_uninit(&mut y_g[o0..], out_len, w_g, cols, threads);
                }
            }
        });
    }
    // SAFETY: the GEMMs above wrote every value of y_n (all groups, all tiles of cells)
    add_bias(unsafe { assume_init(y_n) }, bias, out_len);
}

/// `y_n[oc, :] += b[oc]`.
fn add_bias(y_n: &mut [f32], bias: Option<&[f32]>, out_len: usize) {
    if let Some(b) = bias {
        for (oc, plane) in y_n.chunks_mut(out_len).enumerate() {
            plane.iter_mut().for_each(|v| *v += b[oc]);
        }
    }
}

/// A 1×1 convolution at stride 1 without padding, whose input is its own column matrix.
/// (The window of a transposed convolution may cover fewer outputs than inputs; then it is not.)
pub fn is_pointwise(s: &ConvShape) -> bool {
    s.window.axes.iter().all(|a| {
        a.kernel == 1 && a.stride == 1 && a.pad_begin == 0 && a.pad_end == 0 && a.output == a.input
    })
}

/// Forward pass for a chunk of small images at once: their columns sit side by side in one
/// `cols: (Cin/g·taps, nb·out)` so each group needs one bigger GEMM instead of nb tiny ones;
/// the product `(Cout/g, nb·out)` is then scattered to `y_chunk: (nb, Cout, out)`.
fn forward_images(
    s: &ConvShape,
    x_chunk: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y_chunk: &mut [MaybeUninit<f32>],
    threads: usize,
) {
    let (in_len, out_len, k) = (s.window.in_len(), s.window.out_len(), s.reduction_len());
    let (cin_g, cout_g) = (s.cin_g(), s.cout_g());
    let nb = y_chunk.len() / (s.cout * out_len);
    let width = nb * out_len;
    scratch::with(&COLS, (k + cout_g) * width, |buf| {
        let (cols, prod) = buf.split_at_mut(k * width);
        let prod = &mut prod[..cout_g * width];
        for g in 0..s.groups {
            // cols[:, i·out..(i+1)·out] = unfold(image i, group g)
            for i in 0..nb {
                let x_g = &x_chunk[(i * s.cin + g * cin_g) * in_len..][..cin_g * in_len];
                unfold_strided(s, x_g, 0, out_len, &mut cols[i * out_len..], width);
            }
            let w_g = MatRef::row_major(&w[g * cout_g * k..][..cout_g * k], cout_g, k);
            // prod (Cout/g × nb·out) = W_g · cols
            matmul(
                prod,
                width,
                w_g,
                MatRef::row_major(cols, k, width),
                false,
                threads,
            );
            // scatter: y[i, g·Cout/g + oc, :] = prod[oc, i·out..]
            for i in 0..nb {
                for oc in 0..cout_g {
                    let dst = &mut y_chunk[(i * s.cout + g * cout_g + oc) * out_len..][..out_len];
                    let src = &prod[oc * width + i * out_len..][..out_len];
                    dst.iter_mut().zip(src).for_each(|(d, &v)| {
                        d.write(v);
                    });
                }
            }
        }
    });
    // SAFETY: the scatter above wrote every value (all images, groups and channels)
    for y_n in unsafe { assume_init(y_chunk) }.chunks_mut(s.cout * out_len) {
        add_bias(y_n, bias, out_len);
    }
}

/// Forward pass. Small images are batched into shared GEMMs (chunks of images in parallel);
/// big images run one per thread, or one at a time with the GEMM itself split.
pub fn forward(s: &ConvShape, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    forward_uninit(s, x, w, bias, as_uninit(y))
}

/// [`forward`] into `y` that need not be initialised (every value is written: no zero fill,
/// which for the 1×1 input gradient's 25 MB output cost as much as its GEMM).
pub fn forward_uninit(
    s: &ConvShape,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [MaybeUninit<f32>],
) {
    let in_img = s.cin * s.window.in_len();
    let out_img = s.cout * s.window.out_len();
    let threads = rayon::current_num_threads();
    let per_chunk = (tile_len(s) / s.window.out_len()).min(s.batch.div_ceil(threads));
    if per_chunk >= 2 && !is_pointwise(s) {
        let chunks = s.batch.div_ceil(per_chunk);
        let inner = if chunks >= threads { 1 } else { threads };
        y.par_chunks_mut(per_chunk * out_img)
            .zip(x.par_chunks(per_chunk * in_img))
            .for_each(|(y_c, x_c)| forward_images(s, x_c, w, bias, y_c, inner));
        return;
    }
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

/// Input gradient for one image: `gy_n: (Cout, od, oh, ow)`, `gx_n: (Cin, D, H, W)` (need not
/// be initialised: zeroed here, once, then the folds add into it).
fn backward_input_image(
    s: &ConvShape,
    gy_n: &[f32],
    w: &[f32],
    gx_n: &mut [MaybeUninit<f32>],
    threads: usize,
) {
    let (in_len, out_len, k) = (s.window.in_len(), s.window.out_len(), s.reduction_len());
    let (cin_g, cout_g) = (s.cin_g(), s.cout_g());
    let tile = tile_len(s);
    let gx_n = zeroed(gx_n);
    scratch::with(&COLS, k * tile, |buf| {
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
    backward_input_uninit(s, gy, w, as_uninit(gx))
}

/// [`backward_input`] into `gx` that need not be initialised (each image is zeroed once, in
/// its own task, before its folds: a fresh buffer needs no zero fill of its own).
pub fn backward_input_uninit(s: &ConvShape, gy: &[f32], w: &[f32], gx: &mut [MaybeUninit<f32>]) {
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
    let (in_len, out_len, k) = (s.window.in_len(), s.window.out_len(), s.reduction_len());
    let (cin_g, cout_g) = (s.cin_g(), s.cout_g());
    let tile = tile_len(s);
    scratch::with(&COLS, k * tile, |buf| {
        for g in 0..s.groups {
            let x_g = &x_n[g * cin_g * in_len..][..cin_g * in_len];
            let gy_g = &gy_n[g * cout_g * out_len..][..cout_g * out_len];
            let gw_g = &mut gw[g * cout_g * k..][..cout_g * k];
            if is_pointwise(s) {
                // 1×1: the input planes are the columns; one GEMM over every position
                let gy_g = MatRef::row_major(gy_g, cout_g, out_len);
                let x_t = MatRef::row_major(x_g, cin_g, in_len).t();
                matmul(gw_g, k, gy_g, x_t, true, threads);
                continue;
            }
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
/// `gw: (Cout, Cin/g, kd, kh, kw)` (overwritten). With enough images each fixed slot of images
/// sums its own partial gradient and the partials are added in slot order; otherwise the GEMM is
/// split.
pub fn backward_weight(s: &ConvShape, x: &[f32], gy: &[f32], gw: &mut [f32]) {
    let in_img = s.cin * s.window.in_len();
    let out_img = s.cout * s.window.out_len();
    let threads = rayon::current_num_threads();
    gw.fill(0.0);
    if s.batch >= threads && threads > 1 {
        // one partial gradient per fixed slot of images, added in slot order
        crate::ops::partials::sum_in_order(s.batch, gw, |n, part| {
            let x_n = &x[n * in_img..][..in_img];
            let gy_n = &gy[n * out_img..][..out_img];
            backward_weight_image(s, x_n, gy_n, part, 1);
        });
    } else {
        for (x_n, gy_n) in x.chunks(in_img).zip(gy.chunks(out_img)) {
            backward_weight_image(s, x_n, gy_n, gw, threads);
        }
    }
}
