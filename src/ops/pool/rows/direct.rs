//! AVX-512 forward of max and min pooling with width stride 1 or 2: every output row is
//! computed 16 outputs at a time straight from the input rows, tap by tap in window order,
//! with no scratch rows (the portable path in the parent module splits rows into phases first).
//!
//! Per output row `oh` of a plane `(H, W)` and lanes `o = o0..o0+16`:
//! - `best = −∞`, `at = hs.first·W + ws[o].first` (the first tap inside the input, as the
//!   reference [`super::super::reduce`] starts);
//! - for every input row `h` of the height span (in order) and every width tap `j` (in order):
//!   `v[o] = sign·x[h, o·s − pb + j·d]` (−∞ outside `[0, W)`: masked loads, never outside the
//!   row), `take = v > best | v is NaN`, then `best = take ? v : best`, `at = take ? h·W + col : at`.
//!
//! That is the reference's rule on every lane: the first maximum in row-major window order
//! wins, a NaN wins and the last NaN wins (after a NaN `best` is NaN and no `v > NaN`).
//! Stride 2 loads 32 consecutive values and keeps the even ones (`vpermt2ps`).

use super::plan::{Lane, Plan};
use std::arch::x86_64::*;
use std::mem::MaybeUninit;

/// Whether this kernel applies: max or min with width stride 1 or 2 (the caller checks AVX-512).
pub(super) fn applies(p: &Plan) -> bool {
    matches!(p.lane, Lane::Extreme { .. }) && (p.s == 1 || p.s == 2)
}

/// The 16 lanes `l` (of which `mask` are wanted) of `row[start + s·l]`, `fill` where
/// `start + s·l` lies outside `[0, w)`. Only cells inside the row are read.
#[inline(always)]
unsafe fn load_strided(row: *const f32, start: isize, w: isize, s: usize, fill: __m512) -> __m512 {
    // the wanted range of elements e (row[start + e]) is [lo, hi)
    let span = 16 * s as isize;
    let lo = (-start).clamp(0, span);
    let hi = (w - start).clamp(lo, span);
    let bits: u32 = if hi - lo >= 32 {
        u32::MAX
    } else {
        ((1u64 << (hi - lo)) - 1) as u32
    } << lo;
    let ptr = row.wrapping_offset(start);
    if s == 1 {
        return _mm512_mask_loadu_ps(fill, bits as u16, ptr);
    }
    let a = _mm512_mask_loadu_ps(fill, bits as u16, ptr);
    let b = _mm512_mask_loadu_ps(fill, (bits >> 16) as u16, ptr.wrapping_add(16));
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    _mm512_permutex2var_ps(a, even, b)
}

/// One tap for the lanes `lanes` (a lane mask) of the vectors `best`, `at`: `v` and the flat
/// indices `iv` of its cells.
#[inline(always)]
unsafe fn take(best: &mut __m512, at: &mut __m512i, v: __m512, iv: __m512i) {
    let m = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, *best) | _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v);
    *best = _mm512_mask_mov_ps(*best, m, v);
    *at = _mm512_mask_mov_epi32(*at, m, iv);
}

/// Output rows `row0..` (global over planes) into `y` (whole rows) and their indices.
///
/// # Safety
/// The CPU must support AVX-512 F and VL (callers check [`crate::ops::simd::avx512`]); `p`
/// must satisfy [`applies`]; `x` holds every plane, `y` and `idx` whole output rows.
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
pub(super) unsafe fn forward_rows(
    p: &Plan,
    x: &[f32],
    row0: usize,
    y: &mut [MaybeUninit<f32>],
    mut idx: Option<&mut [MaybeUninit<u32>]>,
) {
    let Lane::Extreme { sign } = p.lane else {
        unreachable!("applies() checked")
    };
    let sgn = _mm512_set1_ps(if sign < 0.0 { -0.0 } else { 0.0 });
    let flip = |v: __m512| {
        _mm512_castsi512_ps(_mm512_xor_si512(
            _mm512_castps_si512(v),
            _mm512_castps_si512(sgn),
        ))
    };
    // −∞ after the sign flip
    let fill = flip(_mm512_set1_ps(f32::NEG_INFINITY));
    let (w, s, in_len) = (p.w as isize, p.s, p.h * p.w);
    let lanes_s = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(s as i32),
    );
    let rows = y.len() / p.ow;
    for r in 0..rows {
        let (plane, oh) = ((row0 + r) / p.oh, (row0 + r) % p.oh);
        let xp = x[plane * in_len..][..in_len].as_ptr();
        let hs = &p.hspans[oh];
        let (yr, ir) = (
            y[r * p.ow..].as_mut_ptr(),
            idx.as_deref_mut().map(|i| i[r * p.ow..].as_mut_ptr()),
        );
        let mut o0 = 0;
        while o0 < p.ow {
            let n = (p.ow - o0).min(16);
            let omask = ((1u32 << n) - 1) as u16;
            let mut best = _mm512_set1_ps(f32::NEG_INFINITY);
            let first = _mm512_maskz_loadu_epi32(omask, p.wfirst[o0..].as_ptr() as *const i32);
            let mut at = _mm512_add_epi32(first, _mm512_set1_epi32((hs.first * p.w) as i32));
            let col0 = (o0 * s) as isize - p.pb as isize;
            for i in 0..hs.count {
                let h = hs.coord(i);
                let row = xp.add(h * p.w);
                for &(rj, mj) in &p.taps {
                    let start = col0 + (mj * s + rj) as isize;
                    let v = flip(load_strided(row, start, w, s, fill));
                    let iv = _mm512_add_epi32(
                        lanes_s,
                        _mm512_set1_epi32((h as isize * w + start) as i32),
                    );
                    take(&mut best, &mut at, v, iv);
                }
            }
            _mm512_mask_storeu_ps(yr.add(o0) as *mut f32, omask, flip(best));
            if let Some(ir) = ir {
                _mm512_mask_storeu_epi32(ir.add(o0) as *mut i32, omask, at);
            }
            o0 += n;
        }
    }
}
