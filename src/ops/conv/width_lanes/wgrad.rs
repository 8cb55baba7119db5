//! Weight gradient of the row kernel: the correlation of the padded input with the output
//! gradient, 16 output columns in the vector lanes, lane sums reduced at the end.

use super::{pad_item, suits, ConvShape, Plan, PADDED, VB};
use crate::ops::scratch;
use rayon::prelude::*;

/// Weight gradient by the same blocking: `gw[oc, ic, tap] = Σ_n Σ_rows Σ_cols gy[n, oc, row, col]
/// · xp[n, ic, base(row, col) + delta(ic, tap)]`. Per block of up to 6 output channels and up to
/// 24/channels consecutive (input channel, tap) pairs (1 channel × 12 pairs for depthwise), the vector
/// accumulators sweep every output row of an image (one masked `gy` load per channel and one
/// `xp` load per tap feed channels × taps FMAs); lane sums are kept per fixed slot of work items
/// as 16-lane partials and added in slot order at the end.
/// `gw`: (Cout, Cin/g, kd, kh, kw), overwritten. Requires [`suits`].
pub fn backward_weight(s: &ConvShape, x: &[f32], gy: &[f32], gw: &mut [f32]) {
    assert!(
        suits(s),
        "width_lanes::backward_weight called on a shape it does not support"
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
            if crate::ops::simd::avx512() {
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
    // few groups: work items (image chunk, group), lane partials per fixed slot of items,
    // summed in slot order (the same bits at the same thread count, whatever the scheduling)
    let mut partial = vec![0.0f32; s.groups * group_len];
    crate::ops::partials::sum_in_order(chunks * s.groups, &mut partial, |item, acc| {
        let (c, g) = (item / s.groups, item % s.groups);
        let acc_g = &mut acc[g * group_len..][..group_len];
        sweep(g, c * nb, (c * nb + nb).min(s.batch), acc_g);
    });
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

/// `wgrad_block::<OC, TW>(args)` for the runtime pair `($oc, $tw)`, one monomorphised copy per
/// listed pair (the blocks [`wgrad_avx512`] forms).
#[cfg(target_arch = "x86_64")]
macro_rules! wgrad_blocks {
    ($args:tt, $oc:expr, $tw:expr; $($OC:literal => [$($TW:literal),*]),*) => {
        match ($oc, $tw) {
            $($(($OC, $TW) => wgrad_block::<$OC, $TW> $args,)*)*
            _ => unreachable!("a weight-gradient block outside wgrad_avx512's sizes"),
        }
    };
}

/// AVX-512 weight-gradient accumulation of one item into the lane partials.
///
/// # Safety
/// The CPU must support AVX-512F; callers check [`crate::ops::simd::avx512`]. The vector loads
/// and stores inside are not bounds-checked: the buffers must have the sizes the caller in this
/// file sets up for them.
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
    // blocks of OC ≤ 6 output channels (balanced over the group's channels) × TW taps (balanced
    // runs of the flattened (input channel, tap) pairs, TW ≤ 24/OC, at most 12): OC·TW ≤ 24
    // accumulators + OC output-gradient vectors + one input vector stay in the 32 registers,
    // and a dozen or more independent accumulators hide the FMA latency
    let k = plan.deltas.len();
    let oc_blocks = s.cout_g().div_ceil(6);
    let oc = s.cout_g().div_ceil(oc_blocks);
    let tw_max = (24 / oc).min(12);
    let tap_blocks = k.div_ceil(tw_max);
    for ob in 0..oc_blocks {
        let oc0 = ob * oc;
        let ocs = oc.min(s.cout_g() - oc0);
        for tb in 0..tap_blocks {
            let (i0, i1) = (tb * k / tap_blocks, (tb + 1) * k / tap_blocks);
            let (ns, tw) = (ns.clone(), i1 - i0);
            wgrad_blocks!((s, plan, xp, gy, g, ns, oc0, i0, acc), ocs, tw;
                1 => [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
                2 => [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
                3 => [1, 2, 3, 4, 5, 6, 7, 8], 4 => [1, 2, 3, 4, 5, 6],
                5 => [1, 2, 3, 4], 6 => [1, 2, 3, 4]);
        }
    }
}

/// OC output channels from `oc0` × TW consecutive taps from `i0`, over the output of
/// group `g` of images `ns` (whose padded planes follow each other in `xp`).
///
/// # Safety
/// The CPU must support AVX-512F; callers check [`crate::ops::simd::avx512`]. The vector loads
/// and stores inside are not bounds-checked: the buffers must have the sizes the caller in this
/// file sets up for them.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
#[inline(never)]
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
