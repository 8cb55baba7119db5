//! The vector steps of the Winograd weight gradient ([`super::wgrad`]), channels in the lanes,
//! each as an AVX-512 function and its portable twin (plain Rust, for any CPU and for
//! `STRIDE_SIMD=portable`; the same sums in the same order):
//! - [`channels_last`]: `(N, C, HW)` → `(N, HW, groups, C/g rounded up to 16)`, zeros in the
//!   padding lanes, 16 × 16 blocks through registers;
//! - [`accumulate`]: `dU (rows × cg) += Σ_t dM[t] ⊗ V[t]` over a run of tiles, register blocks of
//!   OCB output channels × CIV vectors of input channels.

/// Channels per vector.
pub const W: usize = 16;

/// Output channels per register block for `civ` vectors of input channels (OCB·CIV ≤ 24
/// accumulators, so the CIV loads and one broadcast fit beside them in 32 registers).
pub const fn ocb(civ: usize) -> usize {
    match civ {
        4 => 6,
        3 => 8,
        2 => 12,
        _ => 16,
    }
}

/// Most output channels one register block reads past the last row (the broadcasts of a
/// partial block): buffers of `dM` carry this many spare values at their end.
pub const SPARE: usize = 16;

/// `dst[(r·dw + j)·cp + g·cg + c] = src[(g·c_g + c)·plane + p0 + r·w + j]` for r < rows,
/// j < w (`shape = [rows, w, dw]`), cp = groups·cg, zero for `c_g ≤ c < cg`: rows of one
/// image's planes `src: (groups·c_g, plane)` channels-last, one 16-channel block at a time.
pub fn channels_last(
    src: &[f32],
    plane: usize,
    p0: usize,
    shape: [usize; 3],
    cc: [usize; 3],
    dst: &mut [f32],
) {
    let ([rows, w, dw], [groups, c_g, cg]) = (shape, cc);
    let cp = groups * cg;
    assert!(cg.is_multiple_of(W) && cg >= c_g && w <= dw && p0 + rows * w <= plane);
    assert!(src.len() >= groups * c_g * plane);
    assert!(rows == 0 || dst.len() >= ((rows - 1) * dw + w - 1) * cp + cp);
    let simd = crate::ops::simd::avx512();
    for g in 0..groups {
        for c0 in (0..cg).step_by(W) {
            // channels c0..c0 + lanes of group g (fewer than 16 in the last block)
            let lanes = c_g.saturating_sub(c0).min(W);
            let planes = &src[(g * c_g + c0.min(c_g)) * plane..];
            let col = g * cg + c0;
            for r in 0..rows {
                let (p, d) = (p0 + r * w, &mut dst[r * dw * cp + col..]);
                #[cfg(target_arch = "x86_64")]
                if simd {
                    // SAFETY: the CPU supports AVX-512 (`simd::avx512`); bounds asserted inside.
                    // (no lanes: `planes` may end before p)
                    let rows = planes.get(p..).unwrap_or(&[]);
                    unsafe { crate::ops::simd::transpose_rows(rows, plane, lanes, w, d, cp) };
                    continue;
                }
                let _ = simd;
                for j in 0..w {
                    for (l, o) in d[j * cp..][..W].iter_mut().enumerate() {
                        *o = if l < lanes {
                            planes[l * plane + p + j]
                        } else {
                            0.0
                        };
                    }
                }
            }
        }
    }
}

/// The operands of [`accumulate`] over a run of `tiles` tiles at one transformed position:
/// `dm[t·dms + r]` (output channel r of tile t) and `v[t·vs + c]` (input channel c).
#[derive(Clone, Copy)]
pub struct Operands<'a> {
    pub dm: &'a [f32],
    pub dms: usize,
    pub v: &'a [f32],
    pub vs: usize,
    pub tiles: usize,
}

impl Operands<'_> {
    /// The operands from output row `r0` and input column `c0` on.
    fn at(&self, r0: usize, c0: usize) -> Self {
        Operands {
            dm: &self.dm[r0..],
            v: &self.v[c0..],
            ..*self
        }
    }
}

/// `du[r·cg + c] (+)= Σ_{t < tiles} dm[t·dms + r] · v[t·vs + c]` for r < rows, c < cg (cg a
/// multiple of 16): one transformed position of one group over a run of tiles, each sum taken
/// in order of t in registers, then stored (`add` false) or added to `du` — the same order on
/// every path. `dm` must hold [`SPARE`] values past the last row it is read at.
pub fn accumulate<const SIMD: bool>(
    a: Operands,
    du: &mut [f32],
    rows: usize,
    cg: usize,
    add: bool,
) {
    assert!(a.tiles > 0 && cg.is_multiple_of(W) && du.len() >= rows * cg);
    assert!(a.v.len() >= (a.tiles - 1) * a.vs + cg);
    assert!(a.dm.len() >= (a.tiles - 1) * a.dms + rows + SPARE);
    let nv = cg / W;
    let mut c0 = 0;
    while c0 < nv {
        let civ = (nv - c0).min(4);
        let step = ocb(civ);
        for r0 in (0..rows).step_by(step) {
            let (n, b) = (step.min(rows - r0), a.at(r0, c0 * W));
            let du = &mut du[r0 * cg + c0 * W..];
            match civ {
                4 => block::<SIMD, 4, { ocb(4) }>(b, du, cg, n, add),
                3 => block::<SIMD, 3, { ocb(3) }>(b, du, cg, n, add),
                2 => block::<SIMD, 2, { ocb(2) }>(b, du, cg, n, add),
                _ => block::<SIMD, 1, { ocb(1) }>(b, du, cg, n, add),
            }
        }
        c0 += civ;
    }
}

/// One register block of [`accumulate`]: rows `0..n` (n ≤ OCB; the broadcasts read OCB rows)
/// × columns `0..16·CIV`, `du` rows `dus` apart.
#[inline(always)]
fn block<const SIMD: bool, const CIV: usize, const OCB: usize>(
    a: Operands,
    du: &mut [f32],
    dus: usize,
    n: usize,
    add: bool,
) {
    let Operands {
        dm,
        dms,
        v,
        vs,
        tiles,
    } = a;
    assert!(n <= OCB && du.len() >= (n - 1) * dus + CIV * W);
    assert!(dm.len() >= (tiles - 1) * dms + OCB && v.len() >= (tiles - 1) * vs + CIV * W);
    #[cfg(target_arch = "x86_64")]
    if SIMD {
        // SAFETY: SIMD is set only by callers running under AVX-512 (`simd::avx512`); every
        // load is in bounds (asserted above), the stores write du rows < n.
        return unsafe {
            avx512::block::<CIV, OCB>(dm.as_ptr(), dms, v.as_ptr(), vs, tiles, du, dus, n, add)
        };
    }
    let mut acc = [[[0.0f32; W]; CIV]; OCB];
    for t in 0..tiles {
        let vt = &v[t * vs..][..CIV * W];
        let mt = &dm[t * dms..][..OCB];
        for (acc_o, &b) in acc.iter_mut().zip(mt) {
            for (c, a) in acc_o.iter_mut().enumerate() {
                for (l, x) in a.iter_mut().enumerate() {
                    *x += b * vt[c * W + l];
                }
            }
        }
    }
    for (o, acc_o) in acc.iter().enumerate().take(n) {
        for (c, a) in acc_o.iter().enumerate() {
            for (d, x) in du[o * dus + c * W..][..W].iter_mut().zip(a) {
                *d = if add { *d + x } else { *x };
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::W;
    use std::arch::x86_64::*;

    /// [`super::block`]: OCB × CIV accumulators; per tile CIV loads of `v` and OCB broadcasts
    /// of `dm`.
    ///
    /// # Safety
    /// The CPU must support AVX-512F; the bounds [`super::block`] asserts.
    #[target_feature(enable = "avx512f")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn block<const CIV: usize, const OCB: usize>(
        dm: *const f32,
        dms: usize,
        v: *const f32,
        vs: usize,
        tiles: usize,
        du: &mut [f32],
        dus: usize,
        n: usize,
        add: bool,
    ) {
        let mut acc = [[_mm512_setzero_ps(); CIV]; OCB];
        for t in 0..tiles {
            let vt = v.add(t * vs);
            let x: [__m512; CIV] = std::array::from_fn(|c| _mm512_loadu_ps(vt.add(c * W)));
            let mt = dm.add(t * dms);
            for (o, acc_o) in acc.iter_mut().enumerate() {
                let b = _mm512_set1_ps(*mt.add(o));
                for c in 0..CIV {
                    acc_o[c] = _mm512_fmadd_ps(b, x[c], acc_o[c]);
                }
            }
        }
        for (o, acc_o) in acc.iter().enumerate().take(n) {
            for (c, a) in acc_o.iter().enumerate() {
                let p = du.as_mut_ptr().add(o * dus + c * W);
                let sum = if add {
                    _mm512_add_ps(_mm512_loadu_ps(p), *a)
                } else {
                    *a
                };
                _mm512_storeu_ps(p, sum);
            }
        }
    }
}
