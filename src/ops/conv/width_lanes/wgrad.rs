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
    backward_weight_bias(s, x, gy, gw, None)
}

/// [`backward_weight`], and the bias gradient `gb[oc] = Σ gy[n, oc, ..]` when `gb` is given:
/// each work item sums its planes of `gy` right after the weight gradient read them (from cache;
/// a separate pass reads LeNet's first layer's 4.8 MB output gradient from memory once more),
/// into 16-lane partials added in the same fixed order.
pub fn backward_weight_bias(
    s: &ConvShape,
    x: &[f32],
    gy: &[f32],
    gw: &mut [f32],
    mut gb: Option<&mut [f32]>,
) {
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
    // lane partials of one group: (Cout/g, Cin/g·taps, VB), then (Cout/g, VB) for the bias
    let weight_len = s.cout_g() * k * VB;
    let group_len = weight_len + if gb.is_some() { s.cout_g() * VB } else { 0 };
    // accumulates images n0..n1 of group g into the group's lane partials
    let sweep = |g: usize, n0: usize, n1: usize, acc: &mut [f32]| {
        let (acc_w, acc_b) = acc.split_at_mut(weight_len);
        scratch::with(&PADDED, padded * (n1 - n0), |xp| {
            for n in n0..n1 {
                let xp_n = &mut xp[(n - n0) * padded..][..padded];
                pad_item(s, x, n * s.groups + g, plan.dims, xp_n);
            }
            #[cfg(target_arch = "x86_64")]
            if crate::ops::simd::avx512() {
                // SAFETY: the CPU supports AVX-512F; `xp` has the VB slack columns.
                unsafe { wgrad_avx512(s, &plan, xp, gy, g, n0..n1, acc_w) };
                return;
            }
            wgrad_generic(s, &plan, xp, gy, g, n0..n1, acc_w);
        });
        if !acc_b.is_empty() {
            bias_lanes(s, gy, g, n0..n1, acc_b);
        }
    };
    // the lane partials of every group (group_len each), summed into gw (and gb)
    let acc = if s.groups >= 4 * rayon::current_num_threads() {
        // many groups (depthwise): each group sweeps all images on its own, no reduction
        let mut acc = vec![0.0f32; s.groups * group_len];
        acc.par_chunks_mut(group_len)
            .enumerate()
            .for_each(|(g, acc_g)| {
                for c in 0..chunks {
                    sweep(g, c * nb, (c * nb + nb).min(s.batch), acc_g);
                }
            });
        acc
    } else {
        // few groups: work items (image chunk, group), lane partials per fixed slot of items,
        // summed in slot order (the same bits at the same thread count, whatever the scheduling)
        let mut partial = vec![0.0f32; s.groups * group_len];
        crate::ops::partials::sum_in_order(chunks * s.groups, &mut partial, |item, acc| {
            let (c, g) = (item / s.groups, item % s.groups);
            let acc_g = &mut acc[g * group_len..][..group_len];
            sweep(g, c * nb, (c * nb + nb).min(s.batch), acc_g);
        });
        partial
    };
    // each value = the sum of its 16 lanes
    let lane_sums = |out: &mut [f32], lanes: &[f32]| {
        for (g, l) in out.iter_mut().zip(lanes.chunks(VB)) {
            *g = l.iter().sum();
        }
    };
    let cg = s.cout_g();
    for (g, acc_g) in acc.chunks(group_len).enumerate() {
        lane_sums(&mut gw[g * cg * k..][..cg * k], &acc_g[..weight_len]);
        if let Some(gb) = gb.as_deref_mut() {
            lane_sums(&mut gb[g * cg..][..cg], &acc_g[weight_len..]);
        }
    }
}

/// Adds the output gradient of group `g`, images `ns`, to the bias lane partials `lanes`
/// `(Cout/g, VB)`: value `j` of a plane to lane `j % VB` (vectorised 16 wide).
fn bias_lanes(s: &ConvShape, gy: &[f32], g: usize, ns: std::ops::Range<usize>, lanes: &mut [f32]) {
    let (cout_g, out_len) = (s.cout_g(), s.window.out_len());
    crate::ops::activation::wide(|| {
        for n in ns {
            for (ocg, l) in lanes.chunks_exact_mut(VB).enumerate() {
                let plane = &gy[(n * s.cout + g * cout_g + ocg) * out_len..][..out_len];
                let chunks = plane.chunks_exact(VB);
                let tail = chunks.remainder();
                for ch in chunks {
                    for (a, v) in l.iter_mut().zip(ch) {
                        *a += v;
                    }
                }
                for (a, v) in l.iter_mut().zip(tail) {
                    *a += v;
                }
            }
        }
    })
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

/// Output channels per register block of the AVX-512 weight gradient: the group's channels
/// split into balanced blocks of at most 6.
#[cfg(target_arch = "x86_64")]
fn oc_block(cout_g: usize) -> usize {
    cout_g.div_ceil(cout_g.div_ceil(6))
}

/// Most taps per register block for `oc` channels: `oc·TW` accumulators, `oc` output-gradient
/// vectors and one input vector within 26 of the 32 zmm registers (a 6 × 4 block spilled three
/// accumulators to the stack every step), at most 12.
#[cfg(target_arch = "x86_64")]
const fn taps_for(oc: usize) -> usize {
    let t = (26 - oc) / oc;
    if t > 12 {
        12
    } else {
        t
    }
}

/// Copies the output gradient of group `g`, images `ns`, into `gp` in the order the AVX-512
/// blocks read it: `(oc block, image, output row, 16-column vector, oc, 16)`, zero past the
/// row's last column and for the missing channels of a short last block. Each step of a block
/// then loads its `oc` vectors from one pointer at fixed offsets, with no masks (the masked
/// loads, the per-channel plane pointers and the spilled accumulators of reading `gy` in
/// place made LeNet's first layer's weight gradient run at a quarter of the FMA peak).
///
/// # Safety
/// The CPU must support AVX-512F (callers check [`crate::ops::simd::avx512`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn pack_gy(s: &ConvShape, gy: &[f32], g: usize, ns: std::ops::Range<usize>, gp: &mut [f32]) {
    use std::arch::x86_64::*;
    let (cout_g, out_len, ow) = (s.cout_g(), s.window.out_len(), s.window.axes[2].output);
    let oc = oc_block(cout_g);
    let (rows, nv) = (out_len / ow, ow.div_ceil(VB));
    assert!(gp.len() >= packed_gy_len(s, ns.len()));
    assert!((ns.end * s.cout) * out_len <= gy.len());
    let mut dst = gp.as_mut_ptr();
    for oc0 in (0..cout_g).step_by(oc) {
        for n in ns.clone() {
            let planes = gy.as_ptr().add((n * s.cout + g * cout_g + oc0) * out_len);
            for r in 0..rows {
                for v in 0..nv {
                    let (c0, m) = (r * ow + v * VB, VB.min(ow - v * VB));
                    let mask = ((1u32 << m) - 1) as u16;
                    for c in 0..oc {
                        // channels past the group's last read nothing (mask 0)
                        let mc = if oc0 + c < cout_g { mask } else { 0 };
                        let lanes =
                            _mm512_maskz_loadu_ps(mc, planes.wrapping_add(c * out_len + c0));
                        _mm512_storeu_ps(dst, lanes);
                        dst = dst.add(VB);
                    }
                }
            }
        }
    }
}

/// Length of [`pack_gy`]'s buffer for `images` images.
#[cfg(target_arch = "x86_64")]
fn packed_gy_len(s: &ConvShape, images: usize) -> usize {
    let (cout_g, out_len, ow) = (s.cout_g(), s.window.out_len(), s.window.axes[2].output);
    let oc = oc_block(cout_g);
    cout_g.div_ceil(oc) * oc * images * (out_len / ow) * ow.div_ceil(VB) * VB
}

#[cfg(target_arch = "x86_64")]
thread_local! {
    /// Per-thread packed output gradient ([`pack_gy`]), reused across calls.
    static PACKED_GY: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
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
    // runs of the flattened (input channel, tap) pairs, TW ≤ taps_for(OC)); a dozen or more
    // independent accumulators hide the FMA latency
    let k = plan.deltas.len();
    let oc = oc_block(s.cout_g());
    let tap_blocks = k.div_ceil(taps_for(oc));
    // one channel per block (depthwise): each step reads one vector of `gy`, in place (a packed
    // copy cost dw3x3's weight gradient 20% more than it saved)
    let len = if oc > 1 {
        packed_gy_len(s, ns.len())
    } else {
        0
    };
    let per_block = (len / s.cout_g().div_ceil(oc)).max(1);
    scratch::with(&PACKED_GY, len, |gp| {
        if oc > 1 {
            pack_gy(s, gy, g, ns.clone(), gp);
        }
        for ob in 0..s.cout_g().div_ceil(oc) {
            let gp = gp.chunks(per_block).nth(ob).unwrap_or_default();
            let oc0 = ob * oc;
            let ocs = oc.min(s.cout_g() - oc0);
            for tb in 0..tap_blocks {
                let (i0, i1) = (tb * k / tap_blocks, (tb + 1) * k / tap_blocks);
                let tw = i1 - i0;
                let src = GySource {
                    gp,
                    gy,
                    g,
                    ns: ns.clone(),
                };
                wgrad_blocks!((s, plan, xp, &src, oc0, ocs, i0, acc), oc, tw;
                    1 => [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
                    2 => [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
                    3 => [1, 2, 3, 4, 5, 6, 7], 4 => [1, 2, 3, 4, 5],
                    5 => [1, 2, 3, 4], 6 => [1, 2, 3]);
            }
        }
    })
}

/// Where a register block reads the output gradient: the channel block's part `gp` of
/// [`pack_gy`] for blocks of several channels; `gy` itself (group `g`, images `ns`) for one.
#[cfg(target_arch = "x86_64")]
struct GySource<'a> {
    gp: &'a [f32],
    gy: &'a [f32],
    g: usize,
    ns: std::ops::Range<usize>,
}

/// OC output channels from `oc0` (`ocs` of them real) × TW consecutive taps from `i0`, over
/// the images `src.ns` whose padded planes follow each other in `xp_all`, reading their output
/// gradient from `src`.
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
    src: &GySource,
    oc0: usize,
    ocs: usize,
    i0: usize,
    acc: &mut [f32],
) {
    use std::arch::x86_64::*;
    let padded = s.cin_g() * plan.dims.iter().product::<usize>();
    let [ad, ah, aw] = &s.window.axes;
    let [_, hp, wp] = plan.dims;
    let (k, out_len, ow) = (plan.deltas.len(), s.window.out_len(), aw.output);
    let (images, nv) = (src.ns.len(), ow.div_ceil(VB));
    let tail = ((1u32 << (ow - (nv - 1) * VB)) - 1) as u16;
    let mut deltas = [0usize; TW];
    deltas.copy_from_slice(&plan.deltas[i0..i0 + TW]);
    let max_delta = deltas.iter().copied().max().unwrap_or(0);
    if OC > 1 {
        // every step reads OC·16 packed values
        assert_eq!(src.gp.len(), images * ad.output * ah.output * nv * OC * VB);
    } else {
        assert!((src.ns.end * s.cout) * out_len <= src.gy.len());
    }
    let mut a = [[_mm512_setzero_ps(); TW]; OC];
    let mut gptr = src.gp.as_ptr();
    for n in 0..images {
        let xp = &xp_all[n * padded..][..padded];
        // one channel: its plane of `gy`
        let plane = (OC == 1).then(|| {
            let oc = src.g * s.cout_g() + oc0;
            src.gy
                .as_ptr()
                .add(((src.ns.start + n) * s.cout + oc) * out_len)
        });
        for od in 0..ad.output {
            for oh in 0..ah.output {
                let row = (ad.padded_coord(od, 0) * hp + ah.padded_coord(oh, 0)) * wp;
                // the row's last vector reads VB values from its start plus the largest delta
                assert!(row + (nv - 1) * VB + max_delta + VB <= xp.len());
                let xrow = xp.as_ptr().add(row);
                let gy_row = (od * ah.output + oh) * ow;
                for v in 0..nv {
                    let mut gv = [_mm512_setzero_ps(); OC];
                    if let Some(plane) = plane {
                        let mask = if v + 1 < nv { u16::MAX } else { tail };
                        gv[0] = _mm512_maskz_loadu_ps(mask, plane.add(gy_row + v * VB));
                    } else {
                        for (c, gv) in gv.iter_mut().enumerate() {
                            *gv = _mm512_loadu_ps(gptr.add(c * VB));
                        }
                        gptr = gptr.add(OC * VB);
                    }
                    let xb = xrow.add(v * VB);
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
