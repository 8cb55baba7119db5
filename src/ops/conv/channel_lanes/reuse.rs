//! The row-reuse register block of the channel-lanes kernel, for one block of 16 output
//! channels (Cout/g ≤ 16, or the last odd block), width stride 1, dilation 1 and kernel rows of
//! 3, 5 or 7 taps ([`applies`]): one broadcast input value feeds every tap of the kernel row that
//! reads it.
//!
//! With one channel block the plain block ([`super::block`]) issues one broadcast per FMA
//! (`x[delta_i + c]` for each (input channel, tap) `i` and output column `c`): two micro-ops per
//! FMA, so the front end, not the FMA units, sets the pace. Here the kernel row `(ic, kd, kh)`
//! is one step: its KW weight vectors stay in registers and input column `j` of the row (R +
//! KW − 1 of them) is broadcast once for the outputs `c = j − kx` it reaches: `acc[c] += w[kx] ·
//! x[j]`, up to KW FMAs per broadcast. Registers: R ≤ 14 accumulators + KW weights + 1.
//! Measured (CPU time, 1 thread, 2026-12-01, A/B under load): LeNet's second layer forward
//! (5 taps) 1.15×, the 3-D input gradient (16 channels, 3 taps) 1.3×. With two channel blocks
//! (2·R accumulators + 2·KW weights) the registers spill or R shrinks: 5% to 2.5× slower.

use super::L;
#[cfg(target_arch = "x86_64")]
use crate::ops::simd::const_dispatch;

/// Whether the row-reuse block applies: width stride 1, width dilation 1, 3, 5 or 7 taps.
pub(super) fn applies(stride: usize, dilation: usize, taps: usize) -> bool {
    stride == 1 && dilation == 1 && matches!(taps, 3 | 5 | 7)
}

/// Runs the row-reuse block for runtime (R, KW), like [`super::dispatch`] with one channel
/// block; `deltas` lists every (input channel, tap) in weight order, so kernel row `row` starts
/// at `deltas[row·KW]`.
///
/// # Safety
/// The CPU must support AVX-512F; [`applies`] must hold and R ≤ 14; the reads `p[delta + c]`
/// (c < R + KW − 1) and the weights `wb[i·L..][..L]` must be in bounds.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn dispatch(
    r: usize,
    taps: usize,
    p: *const f32,
    deltas: &[usize],
    wb: *const f32,
    sums: &mut [std::arch::x86_64::__m512; L],
) {
    match taps {
        3 => const_dispatch!(r, R => block::<R, 3>(p, deltas, wb, sums)),
        5 => const_dispatch!(r, R => block::<R, 5>(p, deltas, wb, sums)),
        _ => const_dispatch!(r, R => block::<R, 7>(p, deltas, wb, sums)),
    }
}

/// R output columns of one channel block over the kernel rows of `deltas`: see the module
/// doc. Adds to the sums `sums[c]` (rows past R untouched).
///
/// # Safety
/// As [`dispatch`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
#[allow(clippy::needless_range_loop)] // indices name the register block's columns and taps
unsafe fn block<const R: usize, const KW: usize>(
    p: *const f32,
    deltas: &[usize],
    wb: *const f32,
    sums: &mut [std::arch::x86_64::__m512; L],
) {
    use std::arch::x86_64::*;
    let mut acc = [_mm512_setzero_ps(); R];
    acc.copy_from_slice(&sums[..R]);
    for i0 in (0..deltas.len()).step_by(KW) {
        let q = p.add(deltas[i0]);
        let mut w = [_mm512_setzero_ps(); KW];
        for kx in 0..KW {
            w[kx] = _mm512_loadu_ps(wb.add((i0 + kx) * L));
        }
        for j in 0..R + KW - 1 {
            let xv = _mm512_set1_ps(*q.add(j));
            for kx in 0..KW {
                // output column c = j − kx reads x[j] through tap kx (constant after unrolling)
                if j >= kx && j - kx < R {
                    acc[j - kx] = _mm512_fmadd_ps(w[kx], xv, acc[j - kx]);
                }
            }
        }
    }
    sums[..R].copy_from_slice(&acc);
}
