//! The width-lanes kernel (`--algo width-lanes`, formerly `rows`): direct convolution with
//! output columns in the vector lanes, by register blocks of output rows, for problems where
//! im2col's GEMM has too little to chew on: depthwise convolutions, few channels, small images (LeNet's layers
//! and the input gradients of them). Zero padding and unit width stride only ([`suits`]).
//!
//! Per work item (image n, group g): copy the group's input planes into a zero-padded scratch
//! `(Cin/g, Dp, Hp, Wp + VB)` (the slack lets every block read VB columns unchecked). Then for
//! each block of OCB output channels, output row and block of VB = 16 output columns, keep
//! OCB vector accumulators in registers while running over all (input channel, tap) pairs:
//! one input vector load `xp[base + delta(ic, tap)]` feeds OCB FMAs with broadcast weights
//! `w[oc, ic, tap]`. `delta` (the tap's offset in the padded planes, from geometry's
//! `padded_coord`) is the same for every output row, so it is computed once per call.

use super::ConvShape;
use crate::geometry::PaddingMode;
use crate::ops::scratch;
#[cfg(target_arch = "x86_64")]
use crate::ops::simd::const_dispatch;
use rayon::prelude::*;
use std::cell::RefCell;

mod wgrad;
pub use wgrad::backward_weight;

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

/// Forward pass. `x`: (N, Cin, D, H, W), `w`: (Cout, Cin/g, kd, kh, kw), `y`: (N, Cout, od, oh, ow).
/// Requires [`suits`].
pub fn forward(s: &ConvShape, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
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
                    unsafe {
                        if s.cout_g() == 1 {
                            compute_avx512_single(s, &plan, xp, bias, item, y_g)
                        } else {
                            compute_avx512(s, &plan, xp, bias, item, y_g)
                        }
                    };
                    return;
                }
                compute_generic(s, &plan, xp, bias, item, y_g);
            })
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
    y_g: &mut [f32],
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
            y_g[o..o + m].copy_from_slice(&a[..m]);
        }
    });
}

/// AVX-512 version: OCB zmm accumulators, one input load and OCB broadcast-FMAs per tap.
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
    y_g: &mut [f32],
) {
    use std::arch::x86_64::*;
    let (g, cout_g, out_len) = (item % s.groups, s.cout_g(), s.window.out_len());
    let [_, ah, aw] = &s.window.axes;
    let k = plan.deltas.len();
    let wt = &plan.wt[g * k * cout_g..][..k * cout_g];
    let max_delta = plan.deltas.iter().copied().max().unwrap_or(0);
    for_each_block(s, plan, |oc0, ocs, od, oh, ow0, m, base| {
        // every load reads xp[base + delta .. + VB]; the slack columns keep it in bounds
        assert!(base + max_delta + VB <= xp.len());
        let mut acc = [_mm512_setzero_ps(); OCB];
        for (c, a) in acc.iter_mut().enumerate().take(ocs) {
            *a = _mm512_set1_ps(bias.map_or(0.0, |b| b[g * cout_g + oc0 + c]));
        }
        let p = xp.as_ptr().add(base);
        let wp = wt.as_ptr().add(oc0);
        if ocs == OCB {
            for (i, &delta) in plan.deltas.iter().enumerate() {
                let v = _mm512_loadu_ps(p.add(delta));
                let wi = wp.add(i * cout_g);
                for (c, a) in acc.iter_mut().enumerate() {
                    *a = _mm512_fmadd_ps(_mm512_set1_ps(*wi.add(c)), v, *a);
                }
            }
        } else {
            for (i, &delta) in plan.deltas.iter().enumerate() {
                let v = _mm512_loadu_ps(p.add(delta));
                let wi = wp.add(i * cout_g);
                for (c, a) in acc.iter_mut().enumerate().take(ocs) {
                    *a = _mm512_fmadd_ps(_mm512_set1_ps(*wi.add(c)), v, *a);
                }
            }
        }
        let mask = ((1u32 << m) - 1) as u16;
        for (c, a) in acc.iter().enumerate().take(ocs) {
            let o = (oc0 + c) * out_len + (od * ah.output + oh) * aw.output + ow0;
            assert!(o + m <= y_g.len());
            _mm512_mask_storeu_ps(y_g.as_mut_ptr().add(o), mask, *a);
        }
    });
}

/// Output rows per register block when a group has a single output channel (depthwise):
/// RB independent accumulators hide the FMA latency that one channel's chain would expose.
const RB: usize = 8;

/// AVX-512 version for one output channel per group (depthwise): blocks of RB output rows ×
/// 16 columns, one broadcast weight and RB input loads per tap.
///
/// # Safety
/// The CPU must support AVX-512F; callers check [`crate::ops::simd::avx512`]. The vector loads
/// and stores inside are not bounds-checked: the buffers must have the sizes the caller in this
/// file sets up for them.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn compute_avx512_single(
    s: &ConvShape,
    plan: &Plan,
    xp: &[f32],
    bias: Option<&[f32]>,
    item: usize,
    y_g: &mut [f32],
) {
    let g = item % s.groups;
    let [ad, ah, aw] = &s.window.axes;
    let [_, hp, wp] = plan.dims;
    let k = plan.deltas.len();
    // with one output channel per group the transposed weights are (group, Cin/g·taps)
    let wt = &plan.wt[g * k..][..k];
    let b0 = bias.map_or(0.0, |b| b[g]);
    let max_delta = plan.deltas.iter().copied().max().unwrap_or(0);
    // padded distance between consecutive output rows
    let row_step = ah.stride * wp;
    for od in 0..ad.output {
        for oh0 in (0..ah.output).step_by(RB) {
            let rb = RB.min(ah.output - oh0);
            let row = (ad.padded_coord(od, 0) * hp + ah.padded_coord(oh0, 0)) * wp;
            for ow0 in (0..aw.output).step_by(VB) {
                let m = VB.min(aw.output - ow0);
                let base = row + ow0;
                let out = (od * ah.output + oh0) * aw.output + ow0;
                // loads read xp[base + r·row_step + delta ..+VB], stores y[out + r·ow ..+m]
                assert!(base + (rb - 1) * row_step + max_delta + VB <= xp.len());
                assert!(out + (rb - 1) * aw.output + m <= y_g.len());
                let b = SingleBlock {
                    p: xp.as_ptr().add(base),
                    row_step,
                    deltas: &plan.deltas,
                    wt,
                    bias: b0,
                    mask: ((1u32 << m) - 1) as u16,
                    y: y_g.as_mut_ptr().add(out),
                    y_step: aw.output,
                };
                const_dispatch!(rb, R => b.run::<R>())
            }
        }
    }
}

/// One block of [`compute_avx512_single`]: input at `p` (+ r·row_step for row r), output at
/// `y` (+ r·y_step), `mask` = the valid columns.
struct SingleBlock<'a> {
    p: *const f32,
    row_step: usize,
    deltas: &'a [usize],
    wt: &'a [f32],
    bias: f32,
    mask: u16,
    y: *mut f32,
    y_step: usize,
}

impl SingleBlock<'_> {
    /// R output rows × 16 columns of one depthwise block.
    ///
    /// # Safety
    /// The CPU must support AVX-512F; callers check [`crate::ops::simd::avx512`]. The vector loads
    /// and stores inside are not bounds-checked: the buffers must have the sizes the caller in this
    /// file sets up for them.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn run<const R: usize>(&self) {
        use std::arch::x86_64::*;
        let mut acc = [_mm512_set1_ps(self.bias); R];
        for (&delta, &w) in self.deltas.iter().zip(self.wt) {
            let wv = _mm512_set1_ps(w);
            let q = self.p.add(delta);
            for (r, a) in acc.iter_mut().enumerate() {
                *a = _mm512_fmadd_ps(wv, _mm512_loadu_ps(q.add(r * self.row_step)), *a);
            }
        }
        for (r, a) in acc.iter().enumerate() {
            _mm512_mask_storeu_ps(self.y.add(r * self.y_step), self.mask, *a);
        }
    }
}
