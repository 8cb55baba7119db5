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
                    unsafe { compute_avx512(s, &plan, xp, bias, item, y_g) };
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

/// Output channels per weight-gradient register block.
const WG_OC: usize = 4;

/// Weight gradient by the same blocking: `gw[oc, ic, tap] = Σ_n Σ_rows Σ_cols gy[n, oc, row, col]
/// · xp[n, ic, base(row, col) + delta(ic, tap)]`. Per (output-channel block, input channel,
/// kernel row) and up to 6 taps of that row, WG_OC × 6 vector accumulators sweep every output
/// row of an image (one masked `gy` load per channel and one `xp` load per tap feed
/// WG_OC × taps FMAs); lane sums are kept per thread as 16-lane partials and reduced at the end.
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
    let lanes_len = s.cout * k * VB;
    let partial = (0..chunks * s.groups)
        .into_par_iter()
        .fold(
            || vec![0.0f32; lanes_len],
            |mut acc, item| {
                let (c, g) = (item / s.groups, item % s.groups);
                let (n0, n1) = (c * nb, (c * nb + nb).min(s.batch));
                scratch::with(&PADDED, padded * (n1 - n0), |xp| {
                    for n in n0..n1 {
                        pad_item(
                            s,
                            x,
                            n * s.groups + g,
                            plan.dims,
                            &mut xp[(n - n0) * padded..][..padded],
                        );
                    }
                    #[cfg(target_arch = "x86_64")]
                    if std::is_x86_feature_detected!("avx512f") {
                        // SAFETY: the CPU supports AVX-512F; `xp` has the VB slack columns.
                        unsafe { wgrad_avx512(s, &plan, xp, gy, g, n0..n1, &mut acc) };
                        return;
                    }
                    wgrad_generic(s, &plan, xp, gy, g, n0..n1, &mut acc);
                });
                acc
            },
        )
        .reduce(
            || vec![0.0f32; lanes_len],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                a
            },
        );
    // gw[oc, i] = sum of the 16 lanes
    for (g, lanes) in gw.iter_mut().zip(partial.chunks(VB)) {
        *g = lanes.iter().sum();
    }
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
            let lanes = &mut acc[(oc * k + i) * VB..][..VB];
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
    let taps_row = s.window.axes[2].kernel;
    let rows_of_taps = plan.deltas.len() / taps_row; // (icg, td, th) triples
    for oc0 in (0..s.cout_g()).step_by(WG_OC) {
        for r in 0..rows_of_taps {
            for tw0 in (0..taps_row).step_by(6) {
                let i0 = r * taps_row + tw0;
                match (taps_row - tw0).min(6) {
                    1 => wgrad_block::<1>(s, plan, xp, gy, g, ns.clone(), oc0, i0, acc),
                    2 => wgrad_block::<2>(s, plan, xp, gy, g, ns.clone(), oc0, i0, acc),
                    3 => wgrad_block::<3>(s, plan, xp, gy, g, ns.clone(), oc0, i0, acc),
                    4 => wgrad_block::<4>(s, plan, xp, gy, g, ns.clone(), oc0, i0, acc),
                    5 => wgrad_block::<5>(s, plan, xp, gy, g, ns.clone(), oc0, i0, acc),
                    _ => wgrad_block::<6>(s, plan, xp, gy, g, ns.clone(), oc0, i0, acc),
                }
            }
        }
    }
}

/// WG_OC output channels from `oc0` × TW consecutive taps from `i0`, over the output of
/// group `g` of images `ns` (whose padded planes follow each other in `xp`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn wgrad_block<const TW: usize>(
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
    let ocs = WG_OC.min(cout_g - oc0);
    let mut deltas = [0usize; TW];
    deltas.copy_from_slice(&plan.deltas[i0..i0 + TW]);
    let max_delta = deltas.iter().copied().max().unwrap_or(0);
    let mut a = [[_mm512_setzero_ps(); TW]; WG_OC];
    // for each image of the chunk
    for n in ns.clone() {
        let xp = &xp_all[(n - ns.start) * padded..][..padded];
        assert!(max_delta + VB <= xp.len());
        // gy planes of the block's channels; missing channels repeat the first with a zero mask
        let mut planes = [std::ptr::null::<f32>(); WG_OC];
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
                    let mut gv = [_mm512_setzero_ps(); WG_OC];
                    for c in 0..WG_OC {
                        // SAFETY: gy_row + ow0 + m <= out_len; channels past ocs load nothing
                        let mc = if c < ocs { mask } else { 0 };
                        gv[c] = _mm512_maskz_loadu_ps(mc, planes[c].add(gy_row + ow0));
                    }
                    let xb = xp.as_ptr().add(base);
                    for t in 0..TW {
                        let xv = _mm512_loadu_ps(xb.add(deltas[t]));
                        for c in 0..WG_OC {
                            a[c][t] = _mm512_fmadd_ps(gv[c], xv, a[c][t]);
                        }
                    }
                }
            }
        }
    }
    for (c, ac) in a.iter().enumerate().take(ocs) {
        let oc = g * cout_g + oc0 + c;
        for (t, v) in ac.iter().enumerate() {
            let dst = &mut acc[(oc * k + i0 + t) * VB..][..VB];
            let sum = _mm512_add_ps(_mm512_loadu_ps(dst.as_ptr()), *v);
            _mm512_storeu_ps(dst.as_mut_ptr(), sum);
        }
    }
}
