//! Direct convolution by register blocks of output rows, for problems where im2col's GEMM has
//! too little to chew on: depthwise convolutions and few input channels per group (LeNet's
//! first layer, Cin = 1). Zero padding and unit width stride only ([`suits`]).
//!
//! Per work item (image n, group g): copy the group's input planes into a zero-padded scratch
//! plane `(Cin/g, Dp, Hp, Wp + VB)` (the slack lets every block read VB columns without bounds
//! checks), then for each output channel, output row and block of VB output columns keep the
//! VB accumulators in registers while summing over input channels and kernel taps:
//! `acc[j] += w[oc, ic, td, th, tw] · xp[ic, padded(od, td), padded(oh, th), ow0 + j + tw·dw]`.
//! Compiled for AVX-512 when the CPU has it (VB = 32 → two zmm accumulators).

use super::ConvShape;
use crate::geometry::PaddingMode;
use rayon::prelude::*;
use std::cell::RefCell;

/// Output columns per register block.
const VB: usize = 32;

thread_local! {
    /// Per-thread padded input planes, reused across calls.
    static PADDED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Whether this kernel applies and is the better choice for `s` (measured on the standard
/// shapes: depthwise and Cin/g ≤ 2 win over GEMM).
pub fn suits(s: &ConvShape) -> bool {
    s.mode == PaddingMode::Zeros && s.cin_g() <= 2 && s.window.axes[2].stride == 1
}

/// Forward pass. `x`: (N, Cin, D, H, W), `w`: (Cout, Cin/g, kd, kh, kw), `y`: (N, Cout, od, oh, ow).
/// Requires [`suits`].
pub fn forward(s: &ConvShape, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    assert!(
        suits(s),
        "rows::forward called on a shape it does not support"
    );
    let out_len = s.window.out_len();
    let block: BlockFn = pick_block();
    // for each (image, group), in parallel: its Cout/g output planes are contiguous
    y.par_chunks_mut(s.cout_g() * out_len)
        .enumerate()
        .for_each(|(item, y_g)| {
            let mut xp = PADDED.with(|b| std::mem::take(&mut *b.borrow_mut()));
            item_body(s, x, w, bias, item, y_g, &mut xp, block);
            PADDED.with(|b| *b.borrow_mut() = xp);
        });
}

/// Sums one block of VB output columns: `out[j] = b + Σ_(off, w) w · xp[base + off + j]`,
/// writing `out.len() ≤ VB` values. Callers guarantee `base + off + VB <= xp.len()`.
type BlockFn = unsafe fn(xp: &[f32], base: usize, taps: &[(usize, f32)], b: f32, out: &mut [f32]);

fn pick_block() -> BlockFn {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") {
        return block_avx512;
    }
    block_generic
}

/// Portable block sum (the compiler vectorizes what it can).
unsafe fn block_generic(xp: &[f32], base: usize, taps: &[(usize, f32)], b: f32, out: &mut [f32]) {
    let mut acc = [b; VB];
    for &(off, wv) in taps {
        let src = &xp[base + off..base + off + VB];
        for j in 0..VB {
            acc[j] += wv * src[j];
        }
    }
    out.copy_from_slice(&acc[..out.len()]);
}

/// AVX-512 block sum: two zmm accumulators, one broadcast weight and two FMAs per tap.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn block_avx512(xp: &[f32], base: usize, taps: &[(usize, f32)], b: f32, out: &mut [f32]) {
    use std::arch::x86_64::*;
    let p = xp.as_ptr().add(base);
    let mut a0 = _mm512_set1_ps(b);
    let mut a1 = a0;
    for &(off, wv) in taps {
        // SAFETY: callers guarantee base + off + 32 <= xp.len().
        let wv = _mm512_set1_ps(wv);
        a0 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(p.add(off)), a0);
        a1 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(p.add(off + 16)), a1);
    }
    let n = out.len();
    let o = out.as_mut_ptr();
    if n >= 16 {
        _mm512_storeu_ps(o, a0);
        _mm512_mask_storeu_ps(o.add(16), ((1u32 << (n - 16)) - 1) as u16, a1);
    } else {
        _mm512_mask_storeu_ps(o, ((1u32 << n) - 1) as u16, a0);
    }
}

/// One work item: image `n`, group `g` (item = n·groups + g); `y_g`: its (Cout/g, od, oh, ow) planes.
#[allow(clippy::too_many_arguments)]
fn item_body(
    s: &ConvShape,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    item: usize,
    y_g: &mut [f32],
    xp: &mut Vec<f32>,
    block: BlockFn,
) {
    let win = &s.window;
    let [ad, ah, aw] = &win.axes;
    let (in_len, out_len, taps) = (win.in_len(), win.out_len(), win.taps());
    let (cin_g, cout_g) = (s.cin_g(), s.cout_g());
    let (n, g) = (item / s.groups, item % s.groups);
    // padded planes: (Cin/g, Dp, Hp, Wp + VB)
    let (dp, hp, wp) = (ad.padded(), ah.padded(), aw.padded() + VB);
    let plane_p = dp * hp * wp;
    if xp.len() < cin_g * plane_p {
        xp.resize(cin_g * plane_p, 0.0);
    }
    let xp = &mut xp[..cin_g * plane_p];
    xp.fill(0.0);
    // copy the group's input planes into the padded scratch, row by row
    for icg in 0..cin_g {
        let x_plane = &x[(n * s.cin + g * cin_g + icg) * in_len..][..in_len];
        for d in 0..ad.input {
            for h in 0..ah.input {
                let dst =
                    ((icg * dp + d + ad.pad_begin) * hp + h + ah.pad_begin) * wp + aw.pad_begin;
                let src = (d * ah.input + h) * aw.input;
                xp[dst..dst + aw.input].copy_from_slice(&x_plane[src..src + aw.input]);
            }
        }
    }
    let xp: &[f32] = xp;
    let mut tap_list: Vec<(usize, f32)> = Vec::with_capacity(cin_g * taps);
    // for each output channel of the group and output row
    for ocg in 0..cout_g {
        let oc = g * cout_g + ocg;
        let b = bias.map_or(0.0, |b| b[oc]);
        let w_oc = &w[oc * cin_g * taps..][..cin_g * taps];
        let y_plane = &mut y_g[ocg * out_len..][..out_len];
        for od in 0..ad.output {
            for oh in 0..ah.output {
                // the taps of this output row: offset into xp (relative to column ow0) and weight
                tap_list.clear();
                for icg in 0..cin_g {
                    for td in 0..ad.kernel {
                        for th in 0..ah.kernel {
                            let row = ((icg * dp + ad.padded_coord(od, td)) * hp
                                + ah.padded_coord(oh, th))
                                * wp;
                            for tw in 0..aw.kernel {
                                let wv = w_oc
                                    [((icg * ad.kernel + td) * ah.kernel + th) * aw.kernel + tw];
                                tap_list.push((row + aw.padded_coord(0, tw), wv));
                            }
                        }
                    }
                }
                let max_off = tap_list.iter().map(|t| t.0).max().unwrap_or(0);
                let y_row = &mut y_plane[(od * ah.output + oh) * aw.output..][..aw.output];
                // for each block of VB output columns
                for ow0 in (0..aw.output).step_by(VB) {
                    let m = VB.min(aw.output - ow0);
                    // the block reads columns ow0 + off .. + VB; the VB slack columns keep it in bounds
                    assert!(ow0 + max_off + VB <= xp.len());
                    // SAFETY: bounds checked just above; `block` matches the CPU (pick_block).
                    unsafe { block(xp, ow0, &tap_list, b, &mut y_row[ow0..ow0 + m]) };
                }
            }
        }
    }
}
