//! Weight gradient of the batch-lanes kernel:
//! `gw[oc, ic, ky, kx] = Σ_n Σ_(oh, ow) gy[n, oc, oh, ow] · x[n, ic, oh·sh + ky·dh − ph, ow + kx·dw − pw]`
//! with 16 images in the vector lanes: the output gradient is copied to `(N/16, Cout, oh, ow, 16)`
//! like the input, and each task — (pair of output channels, input channel, kernel row) — keeps
//! its 2 × kw sums in registers over every image block, row and column, in that fixed order (so
//! the result does not depend on the thread count), then adds up the 16 lanes.

use super::{suits, L};
use crate::ops::conv::ConvShape;
#[cfg(target_arch = "x86_64")]
use crate::ops::{scratch, simd::const_dispatch};
#[cfg(target_arch = "x86_64")]
use rayon::prelude::*;
#[cfg(target_arch = "x86_64")]
use std::cell::RefCell;

/// Widest kernel row the register block holds (kw sums per channel).
const KW_MAX: usize = 14;

#[cfg(target_arch = "x86_64")]
thread_local! {
    /// Per-thread copy of the output gradient with images in the lanes, reused across calls.
    static LANES_GY: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Weight gradient. `x`: (N, Cin, H, W), `gy`: (N, Cout, oh, ow), `gw`: (Cout, Cin, kh, kw)
/// (overwritten). Requires [`suits`]; kernels wider than 14 and machines without AVX-512 defer
/// to im2col.
pub fn backward_weight(s: &ConvShape, x: &[f32], gy: &[f32], gw: &mut [f32]) {
    assert!(
        suits(s),
        "batch_lanes::backward_weight called on a shape it does not support"
    );
    #[cfg(target_arch = "x86_64")]
    if crate::ops::simd::avx512() && s.window.axes[2].kernel <= KW_MAX {
        return backward_weight_avx512(s, x, gy, gw);
    }
    super::super::im2col::backward_weight(s, x, gy, gw)
}

#[cfg(target_arch = "x86_64")]
fn backward_weight_avx512(s: &ConvShape, x: &[f32], gy: &[f32], gw: &mut [f32]) {
    let [_, ah, aw] = &s.window.axes;
    let (kh, kw) = (ah.kernel, aw.kernel);
    let blocks = s.batch.div_ceil(L);
    let pairs = s.cout.div_ceil(2);
    let gy_len = blocks * s.cout * s.window.out_len() * L;
    super::with_lanes_x(s, x, true, |xt| {
        scratch::with(&LANES_GY, gy_len, |gyt| {
            super::to_lanes(gy, s.batch, s.cout, ah.output, aw.output, (0, 0), gyt);
            let gyt = &*gyt;
            // for each (pair of output channels, input channel, kernel row), in parallel: its
            // 2 × kw sums
            let sums: Vec<[[f32; KW_MAX]; 2]> = (0..pairs * s.cin * kh)
                .into_par_iter()
                .map(|task| {
                    let (pair, rest) = (task / (s.cin * kh), task % (s.cin * kh));
                    let sweep = Sweep {
                        s,
                        xt,
                        gyt,
                        oc0: 2 * pair,
                        ic: rest / kh,
                        ky: rest % kh,
                    };
                    // SAFETY: AVX-512 checked by `backward_weight`
                    unsafe { sweep.run() }
                })
                .collect();
            for (task, sum) in sums.iter().enumerate() {
                let (pair, rest) = (task / (s.cin * kh), task % (s.cin * kh));
                let (ic, ky) = (rest / kh, rest % kh);
                for (b, row) in sum.iter().enumerate().take((s.cout - 2 * pair).min(2)) {
                    let oc = 2 * pair + b;
                    gw[((oc * s.cin + ic) * kh + ky) * kw..][..kw].copy_from_slice(&row[..kw]);
                }
            }
        })
    })
}

/// One task of the weight gradient: output channels `oc0, oc0 + 1` (the second absent when
/// Cout is odd: its gradient rows read as zero), input channel `ic`, kernel row `ky`.
#[cfg(target_arch = "x86_64")]
struct Sweep<'a> {
    s: &'a ConvShape,
    xt: &'a [f32],
    gyt: &'a [f32],
    oc0: usize,
    ic: usize,
    ky: usize,
}

#[cfg(target_arch = "x86_64")]
impl Sweep<'_> {
    /// The task's sums `[b][kx]`.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    unsafe fn run(&self) -> [[f32; KW_MAX]; 2] {
        let chans = (self.s.cout - self.oc0).min(2);
        let kw = self.s.window.axes[2].kernel;
        match chans {
            1 => const_dispatch!(kw, KW => self.sums::<KW, 1>()),
            _ => const_dispatch!(kw, KW => self.sums::<KW, 2>()),
        }
    }

    /// [`Sweep::run`] for a kernel row of KW taps and B channels.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    #[inline]
    #[allow(clippy::needless_range_loop)] // indices name the register block's rows and columns
    unsafe fn sums<const KW: usize, const B: usize>(&self) -> [[f32; KW_MAX]; 2] {
        use std::arch::x86_64::*;
        let s = self.s;
        let [_, ah, aw] = &s.window.axes;
        let (wp, ow, oh_n) = (aw.padded(), aw.output, ah.output);
        let dil = aw.dilation * L;
        let mut acc = [[_mm512_setzero_ps(); KW]; B];
        // the last column read, ow − 1 + (kw − 1)·dw, lies inside the padded row
        assert!(ow - 1 + (KW - 1) * aw.dilation < wp);
        for blk in 0..s.batch.div_ceil(L) {
            for oh in ah.valid_outputs(self.ky) {
                let ih = ah.source(oh, self.ky).expect("a valid output row");
                let xrow = &self.xt[((blk * s.cin + self.ic) * ah.input + ih) * wp * L..][..wp * L];
                let grows: [&[f32]; B] = std::array::from_fn(|b| {
                    &self.gyt[((blk * s.cout + self.oc0 + b) * oh_n + oh) * ow * L..][..ow * L]
                });
                let xp = xrow.as_ptr();
                for o in 0..ow {
                    // (a plain loop, not a closure: a closure would not inherit the target
                    // features)
                    let mut gv = [_mm512_setzero_ps(); B];
                    for (b, v) in gv.iter_mut().enumerate() {
                        *v = _mm512_loadu_ps(grows[b].as_ptr().add(o * L));
                    }
                    for kx in 0..KW {
                        let xv = _mm512_loadu_ps(xp.add(o * L + kx * dil));
                        for b in 0..B {
                            acc[b][kx] = _mm512_fmadd_ps(gv[b], xv, acc[b][kx]);
                        }
                    }
                }
            }
        }
        let mut out = [[0.0; KW_MAX]; 2];
        for b in 0..B {
            for kx in 0..KW {
                out[b][kx] = _mm512_reduce_add_ps(acc[b][kx]);
            }
        }
        out
    }
}
