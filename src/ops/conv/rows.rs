//! Direct convolution by register blocks of output rows, for problems where im2col's GEMM has
//! too little to chew on: depthwise convolutions, few channels, small images (LeNet's layers
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
use rayon::prelude::*;
use std::cell::RefCell;

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
        let (cout_g, k) = (s.cout_g(), s.k_len());
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
    let mut deltas = Vec::with_capacity(s.k_len());
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
        "rows::forward called on a shape it does not support"
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
                if std::is_x86_feature_detected!("avx512f") {
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
                match rb {
                    1 => b.run::<1>(),
                    2 => b.run::<2>(),
                    3 => b.run::<3>(),
                    4 => b.run::<4>(),
                    5 => b.run::<5>(),
                    6 => b.run::<6>(),
                    7 => b.run::<7>(),
                    _ => b.run::<8>(),
                }
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

/// Output channels per weight-gradient register block.
const WG_OC: usize = 4;

/// Weight gradient by the same blocking: `gw[oc, ic, tap] = Σ_n Σ_rows Σ_cols gy[n, oc, row, col]
/// · xp[n, ic, base(row, col) + delta(ic, tap)]`. Per block of WG_OC output channels and up to
/// 6 consecutive (input channel, tap) pairs (1 channel × 12 pairs for depthwise), the vector
/// accumulators sweep every output row of an image (one masked `gy` load per channel and one
/// `xp` load per tap feed channels × taps FMAs); lane sums are kept per thread as 16-lane
/// partials and reduced at the end.
/// `gw`: (Cout, Cin/g, kd, kh, kw), overwritten. Requires [`suits`].
pub fn backward_weight(s: &ConvShape, x: &[f32], gy: &[f32], gw: &mut [f32]) {
    assert!(
        suits(s),
        "rows::backward_weight called on a shape it does not support"
    );
    let plan = Plan::new(s, &vec![0.0; gw.len()]);
    let k = plan.deltas.len();
    let padded = s.cin_g() * plan.dims.iter().product::<usize>();
    // images per work item: small images are swept together so each register block runs long
    let nb = (1024 / s.window.out_len()).clamp(1, 16).min(s.batch);
    let chunks = s.batch.div_ceil(nb);
    // lane partials of one group: (Cout/g, Cin/g·taps, VB)
    let group_len = s.cout_g() * k * VB;
    // accumulates images n0..n1 of group g into the group's lane partials
    let sweep = |g: usize, n0: usize, n1: usize, acc: &mut [f32]| {
        scratch::with(&PADDED, padded * (n1 - n0), |xp| {
            for n in n0..n1 {
                let xp_n = &mut xp[(n - n0) * padded..][..padded];
                pad_item(s, x, n * s.groups + g, plan.dims, xp_n);
            }
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU supports AVX-512F; `xp` has the VB slack columns.
                unsafe { wgrad_avx512(s, &plan, xp, gy, g, n0..n1, acc) };
                return;
            }
            wgrad_generic(s, &plan, xp, gy, g, n0..n1, acc);
        })
    };
    // gw[oc, i] = sum of the 16 lanes
    let lane_sums = |gw: &mut [f32], lanes: &[f32]| {
        for (g, l) in gw.iter_mut().zip(lanes.chunks(VB)) {
            *g = l.iter().sum();
        }
    };
    if s.groups >= 4 * rayon::current_num_threads() {
        // many groups (depthwise): each group sweeps all images on its own, no reduction
        gw.par_chunks_mut(s.cout_g() * k)
            .enumerate()
            .for_each(|(g, gw_g)| {
                let mut acc = vec![0.0f32; group_len];
                for c in 0..chunks {
                    sweep(g, c * nb, (c * nb + nb).min(s.batch), &mut acc);
                }
                lane_sums(gw_g, &acc);
            });
        return;
    }
    // few groups: work items (image chunk, group), lane partials per thread, summed at the end
    let partial = (0..chunks * s.groups)
        .into_par_iter()
        .fold(
            || vec![0.0f32; s.groups * group_len],
            |mut acc, item| {
                let (c, g) = (item / s.groups, item % s.groups);
                let acc_g = &mut acc[g * group_len..][..group_len];
                sweep(g, c * nb, (c * nb + nb).min(s.batch), acc_g);
                acc
            },
        )
        .reduce(
            || vec![0.0f32; s.groups * group_len],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                a
            },
        );
    lane_sums(gw, &partial);
}

/// Portable weight-gradient accumulation of group `g`, images `ns` (padded one after another
/// in `xp`) into the lane partials.
fn wgrad_generic(
    s: &ConvShape,
    plan: &Plan,
    xp: &[f32],
    gy: &[f32],
    g: usize,
    ns: std::ops::Range<usize>,
    acc: &mut [f32],
) {
    let padded = s.cin_g() * plan.dims.iter().product::<usize>();
    for n in ns.clone() {
        let xp = &xp[(n - ns.start) * padded..][..padded];
        wgrad_generic_image(s, plan, xp, gy, n * s.groups + g, acc);
    }
}

fn wgrad_generic_image(
    s: &ConvShape,
    plan: &Plan,
    xp: &[f32],
    gy: &[f32],
    item: usize,
    acc: &mut [f32],
) {
    let (n, g, cout_g) = (item / s.groups, item % s.groups, s.cout_g());
    let [ad, ah, aw] = &s.window.axes;
    let [_, hp, wp] = plan.dims;
    let (k, out_len) = (plan.deltas.len(), s.window.out_len());
    for ocg in 0..cout_g {
        let oc = g * cout_g + ocg;
        let gy_plane = &gy[(n * s.cout + oc) * out_len..][..out_len];
        for (i, &delta) in plan.deltas.iter().enumerate() {
            let lanes = &mut acc[(ocg * k + i) * VB..][..VB];
            for od in 0..ad.output {
                for oh in 0..ah.output {
                    let base = (ad.padded_coord(od, 0) * hp + ah.padded_coord(oh, 0)) * wp + delta;
                    let gy_row = &gy_plane[(od * ah.output + oh) * aw.output..][..aw.output];
                    for (j, gv) in gy_row.iter().enumerate() {
                        lanes[j % VB] += gv * xp[base + j];
                    }
                }
            }
        }
    }
}

/// AVX-512 weight-gradient accumulation of one item into the lane partials.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn wgrad_avx512(
    s: &ConvShape,
    plan: &Plan,
    xp: &[f32],
    gy: &[f32],
    g: usize,
    ns: std::ops::Range<usize>,
    acc: &mut [f32],
) {
    // one output channel per group (depthwise): blocks of 1 channel × up to 12 taps, so a
    // dozen independent accumulators hide the FMA latency; otherwise WG_OC channels × 6 taps
    let k = plan.deltas.len();
    macro_rules! by_taps {
        ($oc:expr, $max:literal, $oc0:expr, $taps:expr) => {
            let taps = $taps;
            for i0 in taps.clone().step_by($max) {
                let (oc0, ns) = ($oc0, ns.clone());
                match (taps.end - i0).min($max) {
                    1 => wgrad_block::<$oc, 1>(s, plan, xp, gy, g, ns, oc0, i0, acc),
                    2 => wgrad_block::<$oc, 2>(s, plan, xp, gy, g, ns, oc0, i0, acc),
                    3 => wgrad_block::<$oc, 3>(s, plan, xp, gy, g, ns, oc0, i0, acc),
                    4 => wgrad_block::<$oc, 4>(s, plan, xp, gy, g, ns, oc0, i0, acc),
                    5 => wgrad_block::<$oc, 5>(s, plan, xp, gy, g, ns, oc0, i0, acc),
                    6 => wgrad_block::<$oc, 6>(s, plan, xp, gy, g, ns, oc0, i0, acc),
                    7 => wgrad_block::<$oc, 7>(s, plan, xp, gy, g, ns, oc0, i0, acc),
                    8 => wgrad_block::<$oc, 8>(s, plan, xp, gy, g, ns, oc0, i0, acc),
                    9 => wgrad_block::<$oc, 9>(s, plan, xp, gy, g, ns, oc0, i0, acc),
                    10 => wgrad_block::<$oc, 10>(s, plan, xp, gy, g, ns, oc0, i0, acc),
                    11 => wgrad_block::<$oc, 11>(s, plan, xp, gy, g, ns, oc0, i0, acc),
                    _ => wgrad_block::<$oc, 12>(s, plan, xp, gy, g, ns, oc0, i0, acc),
                }
            }
        };
    }
    if s.cout_g() == 1 {
        by_taps!(1, 12, 0, 0..k);
    } else {
        // blocks within one kernel row (r: an (input channel, td, th) triple): nearby deltas
        let taps_row = s.window.axes[2].kernel;
        for oc0 in (0..s.cout_g()).step_by(WG_OC) {
            for r in 0..k / taps_row {
                by_taps!(WG_OC, 6, oc0, r * taps_row..(r + 1) * taps_row);
            }
        }
    }
}

/// OC output channels from `oc0` × TW consecutive taps from `i0`, over the output of
/// group `g` of images `ns` (whose padded planes follow each other in `xp`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn wgrad_block<const OC: usize, const TW: usize>(
    s: &ConvShape,
    plan: &Plan,
    xp_all: &[f32],
    gy: &[f32],
    g: usize,
    ns: std::ops::Range<usize>,
    oc0: usize,
    i0: usize,
    acc: &mut [f32],
) {
    use std::arch::x86_64::*;
    let cout_g = s.cout_g();
    let padded = s.cin_g() * plan.dims.iter().product::<usize>();
    let [ad, ah, aw] = &s.window.axes;
    let [_, hp, wp] = plan.dims;
    let (k, out_len) = (plan.deltas.len(), s.window.out_len());
    let ocs = OC.min(cout_g - oc0);
    let mut deltas = [0usize; TW];
    deltas.copy_from_slice(&plan.deltas[i0..i0 + TW]);
    let max_delta = deltas.iter().copied().max().unwrap_or(0);
    let mut a = [[_mm512_setzero_ps(); TW]; OC];
    // for each image of the chunk
    for n in ns.clone() {
        let xp = &xp_all[(n - ns.start) * padded..][..padded];
        assert!(max_delta + VB <= xp.len());
        // gy planes of the block's channels; missing channels repeat the first with a zero mask
        let mut planes = [std::ptr::null::<f32>(); OC];
        for (c, p) in planes.iter_mut().enumerate() {
            let oc = g * cout_g + oc0 + c.min(ocs - 1);
            *p = gy[(n * s.cout + oc) * out_len..][..out_len].as_ptr();
        }
        for od in 0..ad.output {
            for oh in 0..ah.output {
                let row = (ad.padded_coord(od, 0) * hp + ah.padded_coord(oh, 0)) * wp;
                let gy_row = (od * ah.output + oh) * aw.output;
                for ow0 in (0..aw.output).step_by(VB) {
                    let m = VB.min(aw.output - ow0);
                    let mask = ((1u32 << m) - 1) as u16;
                    let base = row + ow0;
                    assert!(base + max_delta + VB <= xp.len());
                    let mut gv = [_mm512_setzero_ps(); OC];
                    for c in 0..OC {
                        // SAFETY: gy_row + ow0 + m <= out_len; channels past ocs load nothing
                        let mc = if c < ocs { mask } else { 0 };
                        gv[c] = _mm512_maskz_loadu_ps(mc, planes[c].add(gy_row + ow0));
                    }
                    let xb = xp.as_ptr().add(base);
                    for t in 0..TW {
                        let xv = _mm512_loadu_ps(xb.add(deltas[t]));
                        for c in 0..OC {
                            a[c][t] = _mm512_fmadd_ps(gv[c], xv, a[c][t]);
                        }
                    }
                }
            }
        }
    }
    for (c, ac) in a.iter().enumerate().take(ocs) {
        for (t, v) in ac.iter().enumerate() {
            let dst = &mut acc[((oc0 + c) * k + i0 + t) * VB..][..VB];
            let sum = _mm512_add_ps(_mm512_loadu_ps(dst.as_ptr()), *v);
            _mm512_storeu_ps(dst.as_mut_ptr(), sum);
        }
    }
}
