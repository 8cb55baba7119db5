//! The batch-lanes kernel (`--algo batch-lanes`): direct convolution with 16 images of the batch
//! in the vector lanes, for the layers where neither the width-lanes nor the channel-lanes kernel
//! can fill its lanes — few output channels (LeNet's `1 → 6` first layer, the `16 → 6` input
//! gradient of its second) and narrow planes (14 or 10 columns).
//!
//! Layout: the input is copied to `XT: (N/16 blocks, Cin, H, Wp, 16)` — each pixel of 16 images
//! one vector, rows zero-padded on the left and right (`Wp = pl + W + pr`); rows above and below
//! the input are not stored but skipped (an output row only visits the kernel rows whose input
//! row exists), so a full-padding problem (the input gradient as a forward) wastes no
//! multiplies on zero rows.
//!
//! Register block: R ≤ 14 output columns × B ≤ 2 output channels (28 accumulators). For each
//! (input channel, kernel row, kernel column) it loads R input vectors, each used for B fused
//! multiply-adds against broadcast weights. The sums (column, image) are transposed to
//! (image, column) and stored as R columns of each image's output row: no transposed output
//! buffer.
//!
//! Applies to zero padding, one group, width stride 1, 1-D and 2-D ([`suits`]); the weight
//! gradient is in `wgrad`. Without AVX-512 both defer to im2col.

use super::ConvShape;
use crate::geometry::PaddingMode;
use crate::ops::scratch;
#[cfg(target_arch = "x86_64")]
use crate::ops::simd::{const_dispatch, transpose16};
#[cfg(target_arch = "x86_64")]
use crate::ops::uninit::SharedOut;
use rayon::prelude::*;
use std::cell::RefCell;

mod wgrad;
pub use wgrad::backward_weight;

/// Images per vector.
const L: usize = 16;
/// Most output columns per register block.
const RMAX: usize = 14;

thread_local! {
    /// Per-thread copy of the input with images in the lanes, reused across calls.
    static LANES_X: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Whether this kernel applies to `s`: zero padding, one group, width stride 1, no depth.
pub fn suits(s: &ConvShape) -> bool {
    let [ad, _, aw] = &s.window.axes;
    s.mode == PaddingMode::Zeros
        && s.groups == 1
        && aw.stride == 1
        && ad.input == 1
        && ad.kernel == 1
        && ad.output == 1
}

/// The rows of a *full* convolution (`pad = k − 1` on both sides of the width, stride and
/// dilation 1 along it: the input gradient of an unpadded convolution, LeNet's second layer's
/// 10-column output gradient spread back to 14 columns) narrow enough for `scatter_block`:
/// `Some((W, KW))`, the input width and kernel width, when `W + KW − 1 ≤ 16` output columns
/// and `2W + KW ≤ 29` registers (W input vectors, W + KW − 1 sums, one weight) and the pair is
/// among the compiled ones.
pub fn scatter_widths(s: &ConvShape) -> Option<(usize, usize)> {
    let aw = &s.window.axes[2];
    let full = aw.stride == 1
        && aw.dilation == 1
        && aw.pad_begin + 1 == aw.kernel
        && aw.pad_end + 1 == aw.kernel;
    let (w, kw) = (aw.input, aw.kernel);
    (suits(s) && full && (3..=5).contains(&kw) && (4..=12).contains(&w) && 2 * w + kw <= 29)
        .then_some((w, kw))
}

/// Copies planes `src: (N, C, rows, W)` to `dst: (N/16 blocks, C, rows, pl + W + pr, 16)`:
/// pixel `(n, c, r, w)` to lane `n % 16` of vector `(n / 16, c, r, pl + w)`; the padding
/// columns and the lanes of images past N are zero.
#[cfg(target_arch = "x86_64")]
fn to_lanes(
    src: &[f32],
    n: usize,
    c: usize,
    rows: usize,
    w: usize,
    pad: (usize, usize),
    dst: &mut [f32],
) {
    let wp = pad.0 + w + pad.1;
    let plane = rows * w;
    // for each (block of 16 images, channel), in parallel: its rows
    dst.par_chunks_mut(rows * wp * L)
        .enumerate()
        .for_each(|(item, d)| {
            let (blk, ch) = (item / c, item % c);
            let imgs = (n - blk * L).min(L);
            let srcs: Vec<&[f32]> = (0..imgs)
                .map(|l| &src[((blk * L + l) * c + ch) * plane..][..plane])
                .collect();
            // SAFETY: AVX-512 is checked by every caller of this file's kernels
            unsafe { lanes_rows(&srcs, rows, w, pad, d) }
        });
}

/// One (block, channel) of [`to_lanes`]: 16 × 16 tiles transposed in registers.
///
/// # Safety
/// The CPU must support AVX-512F; callers check [`crate::ops::simd::avx512`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn lanes_rows(srcs: &[&[f32]], rows: usize, w: usize, pad: (usize, usize), d: &mut [f32]) {
    use std::arch::x86_64::*;
    let wp = pad.0 + w + pad.1;
    assert!(d.len() == rows * wp * L && srcs.iter().all(|s| s.len() == rows * w));
    for r in 0..rows {
        let drow = &mut d[r * wp * L..][..wp * L];
        drow[..pad.0 * L].fill(0.0);
        drow[(pad.0 + w) * L..].fill(0.0);
        for w0 in (0..w).step_by(L) {
            let cols = (w - w0).min(L);
            let mask = ((1u32 << cols) - 1) as u16;
            let mut m = [_mm512_setzero_ps(); L];
            for (l, s) in srcs.iter().enumerate() {
                m[l] = _mm512_maskz_loadu_ps(mask, s[r * w + w0..].as_ptr());
            }
            let t = transpose16(&m);
            for (j, v) in t.iter().enumerate().take(cols) {
                _mm512_storeu_ps(drow[(pad.0 + w0 + j) * L..][..L].as_mut_ptr(), *v);
            }
        }
    }
}

/// Column blocks of an output row of width `ow`: `(R, starts)`, R ≤ RMAX balanced; the last
/// block is shifted left to end at `ow` (it may recompute columns of the previous one, with
/// the same values), so every block runs at full width.
fn column_blocks(ow: usize) -> (usize, Vec<usize>) {
    let n = ow.div_ceil(RMAX);
    let r = ow.div_ceil(n);
    let starts = (0..n).map(|j| (j * r).min(ow - r)).collect();
    (r, starts)
}

/// Forward pass. `x`: (N, Cin, H, W), `w`: (Cout, Cin, kh, kw), `y`: (N, Cout, oh, ow), every
/// value written. Requires [`suits`]; without AVX-512 it defers to im2col.
pub fn forward(s: &ConvShape, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    assert!(
        suits(s),
        "batch_lanes::forward called on a shape it does not support"
    );
    #[cfg(target_arch = "x86_64")]
    if crate::ops::simd::avx512() {
        return forward_avx512(s, x, w, bias, y);
    }
    y.fill(0.0);
    super::im2col::forward(s, x, w, bias, y)
}

/// Runs `f` on `x` with the images in the lanes ([`to_lanes`]; with `padded`, the width padded
/// as `s` pads it).
#[cfg(target_arch = "x86_64")]
fn with_lanes_x<R>(s: &ConvShape, x: &[f32], padded: bool, f: impl FnOnce(&[f32]) -> R) -> R {
    let [_, ah, aw] = &s.window.axes;
    // unpadded rows for the scatter blocks
    let pads = if padded {
        (aw.pad_begin, aw.pad_end)
    } else {
        (0, 0)
    };
    let wp = pads.0 + aw.input + pads.1;
    let len = s.batch.div_ceil(L) * s.cin * ah.input * wp * L;
    scratch::with(&LANES_X, len, |xt| {
        to_lanes(x, s.batch, s.cin, ah.input, aw.input, pads, xt);
        f(xt)
    })
}

#[cfg(target_arch = "x86_64")]
fn forward_avx512(s: &ConvShape, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    let blocks = s.batch.div_ceil(L);
    // channels per task: 2, or 1 for the scatter blocks (their registers hold one channel)
    let per = if scatter_widths(s).is_some() { 1 } else { 2 };
    let pairs = s.cout.div_ceil(per);
    let out_len = s.window.out_len();
    let rows = if per == 1 {
        scatter_rows(s)
    } else {
        Vec::new()
    };
    // y viewed as shared: tasks write disjoint (image, channel, row, column) cells
    let out = SharedOut::new(y);
    with_lanes_x(s, x, scatter_widths(s).is_none(), |xt| {
        // for each (block of 16 images, pair of output channels), in parallel
        (0..blocks * pairs).into_par_iter().for_each(|task| {
            let (blk, pair) = (task / pairs, task % pairs);
            let job = Job {
                s,
                xt,
                w,
                bias,
                blk,
                oc0: per * pair,
                chans: (s.cout - per * pair).min(per),
                out_len,
                scatter_rows: &rows,
            };
            // SAFETY: AVX-512 checked by `forward`; tasks write disjoint cells of y
            unsafe { job.run(out) }
        })
    })
}

/// One task: output channels `oc0..oc0 + chans` of the 16 images of block `blk`.
struct Job<'a> {
    s: &'a ConvShape,
    xt: &'a [f32],
    w: &'a [f32],
    bias: Option<&'a [f32]>,
    blk: usize,
    oc0: usize,
    chans: usize,
    out_len: usize,
    /// For the scatter blocks, per output row: the `(offset in the image block, weight index)`
    /// of every (input channel, kernel row) whose input row exists ([`scatter_rows`]).
    scatter_rows: &'a [Vec<(usize, usize)>],
}

#[cfg(target_arch = "x86_64")]
/// Per output row of `s`: the `(offset, weight index)` of every (input channel `ic`, kernel row
/// `ky`) whose input row `ih` exists — offset `(ic·H + ih)·W·16` in a block of unpadded lanes
/// rows, weight index `(ic·kh + ky)·kw` — the same for every task, so made once per call.
fn scatter_rows(s: &ConvShape) -> Vec<Vec<(usize, usize)>> {
    let [_, ah, aw] = &s.window.axes;
    let (kh, kw, w) = (ah.kernel, aw.kernel, aw.input);
    (0..ah.output)
        .map(|oh| {
            let mut rows = Vec::with_capacity(s.cin * kh);
            for ic in 0..s.cin {
                for ky in 0..kh {
                    if let Some(ih) = ah.source(oh, ky) {
                        rows.push(((ic * ah.input + ih) * w * L, (ic * kh + ky) * kw));
                    }
                }
            }
            rows
        })
        .collect()
}

impl Job<'_> {
    /// Computes and stores every output value of the task.
    ///
    /// # Safety
    /// The CPU must support AVX-512F. No other thread writes the task's cells of `y`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn run(&self, y: SharedOut) {
        use std::arch::x86_64::*;
        let s = self.s;
        if let Some(widths) = scatter_widths(s) {
            return self.run_scatter(y, widths);
        }
        let [_, ah, aw] = &s.window.axes;
        let (kh, kw, wp) = (ah.kernel, aw.kernel, aw.padded());
        let imgs = (s.batch - self.blk * L).min(L);
        // weights of the task's channels as (ic, ky, kx, 2): both channels' weights of one tap
        // side by side (the second zero when the task has one channel)
        let taps = s.cin * kh * kw;
        let mut wp2 = vec![0.0f32; taps * 2];
        for b in 0..self.chans {
            for (t, v) in self.w[(self.oc0 + b) * taps..][..taps].iter().enumerate() {
                wp2[t * 2 + b] = *v;
            }
        }
        let mut init = [_mm512_setzero_ps(); 2];
        for (b, v) in init.iter_mut().enumerate().take(self.chans) {
            *v = _mm512_set1_ps(self.bias.map_or(0.0, |bb| bb[self.oc0 + b]));
        }
        let (r, starts) = column_blocks(aw.output);
        let x_blk = self.blk * s.cin * ah.input * wp * L;
        let mut rows: Vec<(usize, usize)> = Vec::with_capacity(s.cin * kh);
        let mut tmp = [[_mm512_setzero_ps(); L]; 2];
        for oh in 0..ah.output {
            // the (input row offset, weight index) of every (ic, ky) whose input row exists
            rows.clear();
            for ic in 0..s.cin {
                for ky in 0..kh {
                    if let Some(ih) = ah.source(oh, ky) {
                        rows.push((x_blk + (ic * ah.input + ih) * wp * L, (ic * kh + ky) * kw));
                    }
                }
            }
            // every load reads xt[row + (ow0 + c + kx·dil)·16 ..][..16], c < r: inside the row
            assert!(rows.iter().all(|&(o, _)| o + wp * L <= self.xt.len()));
            for &ow0 in &starts {
                assert!(ow0 + r - 1 + (kw - 1) * aw.dilation < wp);
                let p = self.xt.as_ptr().add(ow0 * L);
                let dw = aw.dilation * L;
                match self.chans {
                    1 => {
                        const_dispatch!(r, R => block::<R, 1>(p, &rows, kw, dw, wp2.as_ptr(), init, &mut tmp))
                    }
                    _ => {
                        const_dispatch!(r, R => block::<R, 2>(p, &rows, kw, dw, wp2.as_ptr(), init, &mut tmp))
                    }
                }
                // (column, image) → (image, column): r columns of each image's output row
                let mask = ((1u32 << r) - 1) as u16;
                for (b, t) in tmp.iter().enumerate().take(self.chans) {
                    let per_img = transpose16(t);
                    for (l, v) in per_img.iter().enumerate().take(imgs) {
                        let n = self.blk * L + l;
                        let o = ((n * s.cout + self.oc0 + b) * self.out_len) + oh * aw.output + ow0;
                        _mm512_mask_storeu_ps(y.at(o, r), mask, *v);
                    }
                }
            }
        }
    }
}

impl Job<'_> {
    /// [`Job::run`] for a full convolution of narrow rows (one channel, `widths` =
    /// [`scatter_widths`]): each output row from [`scatter_block`] (all its columns at once),
    /// then stored per image.
    ///
    /// # Safety
    /// As [`Job::run`].
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn run_scatter(&self, y: SharedOut, (w, kw): (usize, usize)) {
        use std::arch::x86_64::*;
        let s = self.s;
        let [_, ah, aw] = &s.window.axes;
        let (kh, ow) = (ah.kernel, aw.output);
        debug_assert_eq!(ow, w + kw - 1);
        debug_assert_eq!(self.scatter_rows.len(), ah.output);
        let imgs = (s.batch - self.blk * L).min(L);
        let taps = s.cin * kh * kw;
        let wt = &self.w[self.oc0 * taps..][..taps];
        let init = _mm512_set1_ps(self.bias.map_or(0.0, |b| b[self.oc0]));
        let x_blk = self.blk * s.cin * ah.input * w * L;
        let block_len = s.cin * ah.input * w * L;
        let mut sums = [_mm512_setzero_ps(); L];
        let mask = ((1u32 << ow) - 1) as u16;
        for (oh, rows) in self.scatter_rows.iter().enumerate() {
            // every row reads xt[x_blk + offset ..][..w·16]; the weights wt[wi ..][..kw]
            assert!(x_blk + block_len <= self.xt.len());
            assert!(rows
                .iter()
                .all(|&(o, wi)| o + w * L <= block_len && wi + kw <= taps));
            let (p, wp) = (self.xt.as_ptr().add(x_blk), wt.as_ptr());
            scatter_dispatch!((w, kw), p, rows, wp, init, &mut sums);
            // (column, image) → (image, column): the whole output row of each image
            let per_img = transpose16(&sums);
            for (l, v) in per_img.iter().enumerate().take(imgs) {
                let n = self.blk * L + l;
                let o = (n * s.cout + self.oc0) * self.out_len + oh * ow;
                _mm512_mask_storeu_ps(y.at(o, ow), mask, *v);
            }
        }
    }
}

/// `scatter_block::<W, KW>(args)` for the runtime pair `(w, kw)` of [`scatter_widths`].
#[cfg(target_arch = "x86_64")]
macro_rules! scatter_dispatch {
    ($pair:expr, $($arg:expr),*) => {
        scatter_dispatch!(@pairs $pair, ($($arg),*);
            (4, 3), (5, 3), (6, 3), (7, 3), (8, 3), (9, 3), (10, 3), (11, 3), (12, 3),
            (4, 4), (5, 4), (6, 4), (7, 4), (8, 4), (9, 4), (10, 4), (11, 4), (12, 4),
            (4, 5), (5, 5), (6, 5), (7, 5), (8, 5), (9, 5), (10, 5), (11, 5), (12, 5))
    };
    (@pairs $pair:expr, $args:tt; $(($W:literal, $K:literal)),*) => {
        match $pair {
            $(($W, $K) => scatter_dispatch!(@call $W, $K, $args),)*
            _ => unreachable!("a scatter block outside scatter_widths"),
        }
    };
    (@call $W:literal, $K:literal, ($($arg:expr),*)) => {
        scatter_block::<$W, $K>($($arg),*)
    };
}
#[cfg(target_arch = "x86_64")]
use scatter_dispatch;

/// One output row of a full convolution, W input columns and KW kernel columns (W + KW − 1
/// output columns, all in registers): for each input row `(offset, wi)` of `rows`, its W
/// vectors are loaded once and each adds `w[wi + kx]·x[j]` to output column `j + KW − 1 − kx`
/// — only the products that touch the input (the padded form of this row multiplies KW − 1
/// zero columns at each end: LeNet's 10-column rows spread to 14 did 70 products where 50
/// count). Sums (output column, image) in `out[..W + KW − 1]`, starting from `init`.
///
/// # Safety
/// The CPU must support AVX-512F; every read must be in bounds (checked by the caller).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
#[allow(clippy::needless_range_loop)] // indices name the register block's columns
unsafe fn scatter_block<const W: usize, const KW: usize>(
    p: *const f32,
    rows: &[(usize, usize)],
    w: *const f32,
    init: std::arch::x86_64::__m512,
    out: &mut [std::arch::x86_64::__m512; L],
) {
    use std::arch::x86_64::*;
    let mut acc = [init; L];
    for &(off, wi) in rows {
        let q = p.add(off);
        let mut v = [_mm512_setzero_ps(); W];
        for j in 0..W {
            v[j] = _mm512_loadu_ps(q.add(j * L));
        }
        for kx in 0..KW {
            let wv = _mm512_set1_ps(*w.add(wi + kx));
            for j in 0..W {
                acc[j + KW - 1 - kx] = _mm512_fmadd_ps(v[j], wv, acc[j + KW - 1 - kx]);
            }
        }
    }
    *out = acc;
}

/// R output columns × B channels: for each row `(offset, wi)` of `rows` and kernel column kx,
/// the input vectors `p[offset + c·16 + kx·dw ..]` (c < R) times the broadcast weights
/// `w2[(wi + kx)·2 + b]`. Writes the sums to `tmp[b][c]`.
///
/// # Safety
/// The CPU must support AVX-512F; every read must be in bounds (checked by the caller).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
#[allow(clippy::needless_range_loop)] // indices name the register block's rows and columns
unsafe fn block<const R: usize, const B: usize>(
    p: *const f32,
    rows: &[(usize, usize)],
    kw: usize,
    dw: usize,
    w2: *const f32,
    init: [std::arch::x86_64::__m512; 2],
    tmp: &mut [[std::arch::x86_64::__m512; L]; 2],
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); R]; B];
    for (b, a) in acc.iter_mut().enumerate() {
        a.iter_mut().for_each(|v| *v = init[b]);
    }
    for &(off, wi) in rows {
        for kx in 0..kw {
            let q = p.add(off + kx * dw);
            // (plain loops, not closures: a closure would not inherit the target features)
            let mut wv = [_mm512_setzero_ps(); B];
            for (b, v) in wv.iter_mut().enumerate() {
                *v = _mm512_set1_ps(*w2.add((wi + kx) * 2 + b));
            }
            for c in 0..R {
                let xv = _mm512_loadu_ps(q.add(c * L));
                for b in 0..B {
                    acc[b][c] = _mm512_fmadd_ps(xv, wv[b], acc[b][c]);
                }
            }
        }
    }
    for b in 0..B {
        for c in 0..R {
            tmp[b][c] = acc[b][c];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_blocks_cover_every_column() {
        for ow in 1..60 {
            let (r, starts) = column_blocks(ow);
            assert!(r <= RMAX && r <= ow);
            let mut seen = vec![false; ow];
            for s in starts {
                seen[s..s + r].iter_mut().for_each(|v| *v = true);
            }
            assert!(seen.iter().all(|&v| v), "ow {ow}");
        }
    }
}
