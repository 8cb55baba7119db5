//! The width-lanes kernel (`--algo width-lanes`, formerly `rows`): direct convolution with
//! output columns in the vector lanes, by register blocks of output rows, for problems where
//! im2col's GEMM has too little to chew on: depthwise convolutions, few channels, small images (LeNet's layers
//! and the input gradients of them). Zero padding and unit width stride only ([`suits`]).
//!
//! Per work item (image n, group g): copy the group's input planes into a zero-padded scratch
//! `(Cin/g, Dp, Hp, Wp + VB)` (the slack lets every block read VB columns unchecked). Then for
//! each block of C ≤ OCB output channels × R output rows (`rows_for`: C·R ≤ 24) × VB = 16
//! output columns, keep C·R vector accumulators in registers while running over the (input
//! channel, tap) pairs that reach the image from those rows (`live_taps`): R input vector
//! loads `xp[base + r·row_step + delta(ic, tap)]` and C broadcast weights `w[oc, ic, tap]`
//! feed C·R FMAs. `delta` (the tap's offset in the padded planes, from geometry's
//! `padded_coord`) is the same for every output row, so it is computed once per call.

use super::ConvShape;
use crate::geometry::PaddingMode;
use crate::ops::activation::{forward_inplace, Activation};
use crate::ops::scratch;
use crate::ops::uninit::assume_init;
use rayon::prelude::*;
use std::cell::RefCell;
use std::mem::MaybeUninit;

mod wgrad;
pub use wgrad::{backward_weight, backward_weight_bias};

/// Output columns per register block (one AVX-512 vector).
const VB: usize = 16;
/// Output channels per register block (accumulators held at once).
const OCB: usize = 8;

thread_local! {
    /// Per-thread padded input planes, reused across calls.
    static PADDED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Whether this kernel applies to `s`: zero padding and unit stride along the width.
pub fn suits(s: &ConvShape) -> bool {
    s.mode == PaddingMode::Zeros && s.window.axes[2].stride == 1
}

/// Per-call tables shared by all work items.
struct Plan {
    /// Offset of each (input channel, tap) in the padded planes, relative to the block start.
    deltas: Vec<usize>,
    /// Weights as `(group, Cin/g·taps, Cout/g)`: a tap's weights for consecutive output channels
    /// are contiguous.
    wt: Vec<f32>,
    /// Padded plane extents (Dp, Hp, Wp + VB).
    dims: [usize; 3],
}

impl Plan {
    fn new(s: &ConvShape, w: &[f32]) -> Self {
        let [ad, ah, aw] = &s.window.axes;
        let dims = [ad.padded(), ah.padded(), aw.padded() + VB];
        let deltas = tap_deltas(s, dims);
        let (cout_g, k) = (s.cout_g(), s.reduction_len());
        let mut wt = vec![0.0; w.len()];
        for g in 0..s.groups {
            for ocg in 0..cout_g {
                for i in 0..k {
                    wt[(g * k + i) * cout_g + ocg] = w[(g * cout_g + ocg) * k + i];
                }
            }
        }
        Plan { deltas, wt, dims }
    }
}

/// Offset of each (input channel of a group, kernel tap), in weight order, in padded planes of
/// extents `dims` (Dp, Hp, row length), relative to the position of output (0, 0, 0): the tap's
/// padded coordinate per axis from geometry's `padded_coord`. An output at padded position
/// `base` reads `xp[base + delta]`.
pub(super) fn tap_deltas(s: &ConvShape, dims: [usize; 3]) -> Vec<usize> {
    let [ad, ah, aw] = &s.window.axes;
    let mut deltas = Vec::with_capacity(s.reduction_len());
    for icg in 0..s.cin_g() {
        for td in 0..ad.kernel {
            for th in 0..ah.kernel {
                for tw in 0..aw.kernel {
                    let d = icg * dims[0] + ad.padded_coord(0, td);
                    deltas.push(
                        (d * dims[1] + ah.padded_coord(0, th)) * dims[2] + aw.padded_coord(0, tw),
                    );
                }
            }
        }
    }
    deltas
}

/// Forward pass. `x`: (N, Cin, D, H, W), `w`: (Cout, Cin/g, kd, kh, kw), `y`: (N, Cout, od, oh, ow),
/// which need not be initialised: every value is written (a fresh output needs no zero fill:
/// depthwise 3×3's forward spent a fifth of its time in that fill). Requires [`suits`].
pub fn forward(
    s: &ConvShape,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [MaybeUninit<f32>],
) {
    forward_act(s, x, w, bias, y, None)
}

/// [`forward`], then `act` on each work item's output planes while they are in cache.
pub fn forward_act(
    s: &ConvShape,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [MaybeUninit<f32>],
    act: Option<Activation>,
) {
    assert!(
        suits(s),
        "width_lanes::forward called on a shape it does not support"
    );
    let plan = Plan::new(s, w);
    let out_len = s.window.out_len();
    let padded = s.cin_g() * plan.dims.iter().product::<usize>();
    // for each (image, group), in parallel: its Cout/g output planes are contiguous
    y.par_chunks_mut(s.cout_g() * out_len)
        .enumerate()
        .for_each(|(item, y_g)| {
            scratch::with(&PADDED, padded, |xp| {
                pad_item(s, x, item, plan.dims, xp);
                #[cfg(target_arch = "x86_64")]
                if crate::ops::simd::avx512() {
                    // SAFETY: the CPU supports AVX-512F; `xp` has the VB slack columns.
                    unsafe { compute_avx512(s, &plan, xp, bias, item, y_g) };
                } else {
                    compute_generic(s, &plan, xp, bias, item, y_g);
                }
                #[cfg(not(target_arch = "x86_64"))]
                compute_generic(s, &plan, xp, bias, item, y_g);
            });
            if let Some(act) = act {
                // SAFETY: the compute functions wrote every value of the item's planes
                forward_inplace(act, unsafe { assume_init(y_g) });
            }
        });
}

/// Copies the input planes of item (n, g) into the zero-padded scratch `xp`:
/// `(Cin/g, Dp, Hp, row)` with `dims` = (Dp, Hp, row ≥ Wp).
pub(super) fn pad_item(s: &ConvShape, x: &[f32], item: usize, dims: [usize; 3], xp: &mut [f32]) {
    let [ad, ah, aw] = &s.window.axes;
    let [dp, hp, wp] = dims;
    let (n, g, cin_g, in_len) = (
        item / s.groups,
        item % s.groups,
        s.cin_g(),
        s.window.in_len(),
    );
    xp.fill(0.0);
    for icg in 0..cin_g {
        let x_plane = &x[(n * s.cin + g * cin_g + icg) * in_len..][..in_len];
        for d in 0..ad.input {
            for h in 0..ah.input {
                let dst = ((icg * dp + ad.padded_index(d)) * hp + ah.padded_index(h)) * wp
                    + aw.padded_index(0);
                let src = (d * ah.input + h) * aw.input;
                xp[dst..dst + aw.input].copy_from_slice(&x_plane[src..src + aw.input]);
            }
        }
    }
}

/// Calls `f(oc0, ocs, od, oh, ow0, m, base)` for every block: output channels `oc0..oc0+ocs` of
/// the group, output row (od, oh), columns `ow0..ow0+m`, block start `base` in the padded planes.
#[inline(always)]
fn for_each_block(
    s: &ConvShape,
    plan: &Plan,
    mut f: impl FnMut(usize, usize, usize, usize, usize, usize, usize),
) {
    let [ad, ah, aw] = &s.window.axes;
    let [_, hp, wp] = plan.dims;
    for oc0 in (0..s.cout_g()).step_by(OCB) {
        let ocs = OCB.min(s.cout_g() - oc0);
        for od in 0..ad.output {
            for oh in 0..ah.output {
                let row = (ad.padded_coord(od, 0) * hp + ah.padded_coord(oh, 0)) * wp;
                for ow0 in (0..aw.output).step_by(VB) {
                    f(oc0, ocs, od, oh, ow0, VB.min(aw.output - ow0), row + ow0);
                }
            }
        }
    }
}

/// Portable version of the block loop.
fn compute_generic(
    s: &ConvShape,
    plan: &Plan,
    xp: &[f32],
    bias: Option<&[f32]>,
    item: usize,
    y_g: &mut [MaybeUninit<f32>],
) {
    let (g, cout_g, out_len) = (item % s.groups, s.cout_g(), s.window.out_len());
    let [_, ah, aw] = &s.window.axes;
    let k = plan.deltas.len();
    let wt = &plan.wt[g * k * cout_g..][..k * cout_g];
    for_each_block(s, plan, |oc0, ocs, od, oh, ow0, m, base| {
        let mut acc = [[0.0f32; VB]; OCB];
        for (c, a) in acc.iter_mut().enumerate().take(ocs) {
            *a = [bias.map_or(0.0, |b| b[g * cout_g + oc0 + c]); VB];
        }
        for (i, &delta) in plan.deltas.iter().enumerate() {
            let v = &xp[base + delta..base + delta + VB];
            for c in 0..ocs {
                let wv = wt[i * cout_g + oc0 + c];
                for j in 0..VB {
                    acc[c][j] += wv * v[j];
                }
            }
        }
        for (c, a) in acc.iter().enumerate().take(ocs) {
            let o = (oc0 + c) * out_len + (od * ah.output + oh) * aw.output + ow0;
            for (d, &v) in y_g[o..o + m].iter_mut().zip(&a[..m]) {
                d.write(v);
            }
        }
    });
}

/// The taps, as runs `spans` of indices into the (input channel, kd, kh, kw) order of
/// [`tap_deltas`], that read the image (not only zero padding) for output depth `od` and some
/// output row of `rows`: by geometry's `valid_outputs`, the kernel rows that reach the image
/// from a block of output rows are one contiguous range (so are the kernel depths from one
/// output depth). A full padding of k − 1 (the input gradient's adjoint problem: LeNet's second
/// layer pads its 10×10 output gradient by 4) leaves whole kernel rows in the padding for the
/// top and bottom blocks.
fn live_taps(
    s: &ConvShape,
    od: usize,
    rows: std::ops::Range<usize>,
    spans: &mut Vec<std::ops::Range<usize>>,
) {
    let [ad, ah, aw] = &s.window.axes;
    let meets = |r: std::ops::Range<usize>| r.start < rows.end && rows.start < r.end;
    let mut kh = (0..ah.kernel).filter(|&t| meets(ah.valid_outputs(t)));
    spans.clear();
    let Some(h0) = kh.next() else {
        return;
    };
    let h1 = kh.next_back().unwrap_or(h0);
    let kw = aw.kernel;
    for icg in 0..s.cin_g() {
        for d in (0..ad.kernel).filter(|&t| ad.valid_outputs(t).contains(&od)) {
            let first = ((icg * ad.kernel + d) * ah.kernel) * kw;
            let run = first + h0 * kw..first + (h1 + 1) * kw;
            match spans.last_mut() {
                Some(last) if last.end == run.start => last.end = run.end,
                _ => spans.push(run),
            }
        }
    }
}

/// Output rows per register block for a block of `c` output channels: `c·R` accumulators plus
/// `R` input vectors and one broadcast stay within the 32 zmm registers (≤ 24 accumulators), so
/// each tap costs R loads and `c` broadcasts for `c·R` FMAs. One channel (depthwise) still
/// takes 8 rows: independent accumulators hide the FMA latency one chain would expose.
const fn rows_for(c: usize) -> usize {
    match c {
        1 | 2 => 8,
        3 => 7,
        4 => 6,
        5 | 6 => 4,
        _ => 3,
    }
}

/// `$b.run::<C, R>()` for the runtime pair `($c, $r)`, one monomorphised copy per listed pair
/// (the pairs [`rows_for`] can produce).
#[cfg(target_arch = "x86_64")]
macro_rules! blocks {
    ($b:expr, $c:expr, $r:expr; $($C:literal => [$($R:literal),*]),*) => {
        match ($c, $r) {
            $($(($C, $R) => $b.run::<$C, $R>(),)*)*
            _ => unreachable!("a register block outside rows_for"),
        }
    };
}

/// AVX-512 version: blocks of C ≤ OCB output channels × R output rows ([`rows_for`]) × 16
/// columns, C·R zmm accumulators; per (input channel, tap) R input loads and C broadcast
/// weights feed C·R FMAs.
///
/// # Safety
/// The CPU must support AVX-512F; callers check [`crate::ops::simd::avx512`]. The vector loads
/// and stores inside are not bounds-checked: the buffers must have the sizes the caller in this
/// file sets up for them.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn compute_avx512(
    s: &ConvShape,
    plan: &Plan,
    xp: &[f32],
    bias: Option<&[f32]>,
    item: usize,
    y_g: &mut [MaybeUninit<f32>],
) {
    let (g, cout_g, out_len) = (item % s.groups, s.cout_g(), s.window.out_len());
    let [ad, ah, aw] = &s.window.axes;
    let [_, hp, wp] = plan.dims;
    let k = plan.deltas.len();
    let wt = &plan.wt[g * k * cout_g..][..k * cout_g];
    let max_delta = plan.deltas.iter().copied().max().unwrap_or(0);
    // padded distance between consecutive output rows
    let row_step = ah.stride * wp;
    let mut spans = Vec::new();
    for oc0 in (0..cout_g).step_by(OCB) {
        let ocs = OCB.min(cout_g - oc0);
        let mut b0 = [0.0; OCB];
        for (c, b) in b0.iter_mut().enumerate().take(ocs) {
            *b = bias.map_or(0.0, |b| b[g * cout_g + oc0 + c]);
        }
        let rows = rows_for(ocs);
        for od in 0..ad.output {
            for oh0 in (0..ah.output).step_by(rows) {
                let rb = rows.min(ah.output - oh0);
                let row = (ad.padded_coord(od, 0) * hp + ah.padded_coord(oh0, 0)) * wp;
                live_taps(s, od, oh0..oh0 + rb, &mut spans);
                for ow0 in (0..aw.output).step_by(VB) {
                    let m = VB.min(aw.output - ow0);
                    let base = row + ow0;
                    let out = oc0 * out_len + (od * ah.output + oh0) * aw.output + ow0;
                    // loads read xp[base + r·row_step + delta ..+VB], stores
                    // y[out + c·out_len + r·ow ..+m]
                    assert!(base + (rb - 1) * row_step + max_delta + VB <= xp.len());
                    assert!(out + (ocs - 1) * out_len + (rb - 1) * aw.output + m <= y_g.len());
                    let b = Block {
                        p: xp.as_ptr().add(base),
                        row_step,
                        deltas: &plan.deltas,
                        spans: &spans,
                        w: wt.as_ptr().add(oc0),
                        w_step: cout_g,
                        bias: b0,
                        mask: ((1u32 << m) - 1) as u16,
                        y: y_g.as_mut_ptr().add(out).cast::<f32>(),
                        y_step: aw.output,
                        c_step: out_len,
                    };
                    blocks!(b, ocs, rb; 1 => [1, 2, 3, 4, 5, 6, 7, 8], 2 => [1, 2, 3, 4, 5, 6, 7, 8],
                        3 => [1, 2, 3, 4, 5, 6, 7], 4 => [1, 2, 3, 4, 5, 6], 5 => [1, 2, 3, 4],
                        6 => [1, 2, 3, 4], 7 => [1, 2, 3], 8 => [1, 2, 3]);
                }
            }
        }
    }
}

/// One register block of [`compute_avx512`]: input at `p` (+ r·row_step for row r), the
/// block's weights for tap i at `w + i·w_step` (C consecutive channels), output at `y`
/// (+ c·c_step + r·y_step), `mask` = the valid columns; only the taps `deltas[span]` of the
/// `spans` (those that reach the image for some row of the block).
#[cfg(target_arch = "x86_64")]
struct Block<'a> {
    p: *const f32,
    row_step: usize,
    deltas: &'a [usize],
    spans: &'a [std::ops::Range<usize>],
    w: *const f32,
    w_step: usize,
    bias: [f32; OCB],
    mask: u16,
    y: *mut f32,
    y_step: usize,
    c_step: usize,
}

#[cfg(target_arch = "x86_64")]
impl Block<'_> {
    /// C output channels × R output rows × 16 columns.
    ///
    /// # Safety
    /// The CPU must support AVX-512F; callers check [`crate::ops::simd::avx512`]. The vector loads
    /// and stores inside are not bounds-checked: the buffers must have the sizes the caller in this
    /// file sets up for them.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn run<const C: usize, const R: usize>(&self) {
        use std::arch::x86_64::*;
        let mut acc = [[_mm512_setzero_ps(); R]; C];
        for (a, &b) in acc.iter_mut().zip(&self.bias) {
            *a = [_mm512_set1_ps(b); R];
        }
        for span in self.spans {
            for (i, &delta) in self.deltas[span.clone()].iter().enumerate() {
                let q = self.p.add(delta);
                let mut v = [_mm512_setzero_ps(); R];
                for (r, v) in v.iter_mut().enumerate() {
                    *v = _mm512_loadu_ps(q.add(r * self.row_step));
                }
                let wi = self.w.add((span.start + i) * self.w_step);
                for (c, a) in acc.iter_mut().enumerate() {
                    let wv = _mm512_set1_ps(*wi.add(c));
                    for (a, &v) in a.iter_mut().zip(&v) {
                        *a = _mm512_fmadd_ps(wv, v, *a);
                    }
                }
            }
        }
        for (c, a) in acc.iter().enumerate() {
            for (r, a) in a.iter().enumerate() {
                _mm512_mask_storeu_ps(self.y.add(c * self.c_step + r * self.y_step), self.mask, *a);
            }
        }
    }
}
