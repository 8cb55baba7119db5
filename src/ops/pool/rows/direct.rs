//! AVX-512 forward of max and min pooling with width stride 1 or 2 (and, at the end, of
//! average pooling with 2-wide windows at stride 2): every output row is
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
//!
//! Narrow planes put several output rows in one vector: `G = 16 / L` groups of `L` lanes
//! (`L = 4` when `OW <= 4`, `8` when `OW <= 8`, else 16), group `g` computing output row `r + g`;
//! the lanes are packed back into `G·OW` consecutive outputs (`vpermps`) before one store.

use super::plan::{Lane, Plan};
use std::arch::x86_64::*;
use std::mem::MaybeUninit;

/// Whether this kernel applies: max or min with width stride 1 or 2 and at most 16 outputs
/// per row (the caller checks AVX-512). Wider rows stay on the phase path: measured (one
/// thread, 8×64×112×112 k3 s2 p1 and 64×32×56×56 k2 s2) this kernel was 7–20 % slower there
/// once the input no longer fits the cache, 1.2× (OW 14) to 2.8× (OW 3) faster up to 16.
pub(super) fn applies(p: &Plan) -> bool {
    matches!(p.lane, Lane::Extreme { .. }) && (p.s == 1 || p.s == 2) && p.ow <= 16
}

/// One tap for all lanes: `v` and the flat indices `iv` of its cells replace `best`, `at` where
/// `v > best` or `v` is NaN.
#[inline(always)]
unsafe fn take(best: &mut __m512, at: &mut __m512i, v: __m512, iv: __m512i) {
    let m = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, *best) | _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v);
    *best = _mm512_mask_mov_ps(*best, m, v);
    *at = _mm512_mask_mov_epi32(*at, m, iv);
}

/// Where one tap reads for the lanes of a block: the first element `start` (input column of
/// lane 0) and the elements inside the row as bits over a group's `L·s` elements.
#[derive(Clone, Copy)]
struct TapRead {
    start: isize,
    bits: u32,
}

impl TapRead {
    /// Elements `e` (column `start + e`) of a group's `L·s` that lie in `[0, w)`.
    fn new(start: isize, w: isize, span: isize) -> TapRead {
        let lo = (-start).clamp(0, span);
        let hi = (w - start).clamp(lo, span);
        let bits = (((1u64 << (hi - lo)) - 1) as u32) << lo;
        TapRead { start, bits }
    }
}

/// One tap's values for every group: lane `λ = g·L + o` gets `row_g[start + s·o]`, `fill`
/// outside `[0, w)` or where group `g` has no row (`None`). Only cells inside a row are read.
#[inline(always)]
unsafe fn load_tap<const S: usize, const G: usize>(
    rows: &[Option<*const f32>; G],
    t: TapRead,
    fill: __m512,
) -> __m512 {
    let (l, s) = (16 / G, S);
    let mut regs = [fill; 2];
    for (g, row) in rows.iter().enumerate() {
        let Some(row) = *row else { continue };
        // virtual position p0 + e (32 of them over the two registers) holds element e
        let p0 = g * l * s;
        let bits = t.bits << p0;
        for (k, reg) in regs[..S].iter_mut().enumerate() {
            let b = (bits >> (16 * k)) as u16;
            if b != 0 {
                let ptr = row.wrapping_offset(t.start + (16 * k) as isize - p0 as isize);
                *reg = _mm512_mask_loadu_ps(*reg, b, ptr);
            }
        }
    }
    if S == 1 {
        return regs[0];
    }
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    _mm512_permutex2var_ps(regs[0], even, regs[1])
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
    idx: Option<&mut [MaybeUninit<u32>]>,
) {
    // groups of output rows per vector: L = 16 / G lanes each
    match (p.s, p.ow) {
        (1, 0..=4) => rows_impl::<1, 4>(p, x, row0, y, idx),
        (1, 5..=8) => rows_impl::<1, 2>(p, x, row0, y, idx),
        (1, _) => rows_impl::<1, 1>(p, x, row0, y, idx),
        (_, 0..=4) => rows_impl::<2, 4>(p, x, row0, y, idx),
        (_, 5..=8) => rows_impl::<2, 2>(p, x, row0, y, idx),
        _ => rows_impl::<2, 1>(p, x, row0, y, idx),
    }
}

/// [`forward_rows`] for width stride `S` and `G` output rows per vector.
#[inline(always)]
unsafe fn rows_impl<const S: usize, const G: usize>(
    p: &Plan,
    x: &[f32],
    row0: usize,
    y: &mut [MaybeUninit<f32>],
    mut idx: Option<&mut [MaybeUninit<u32>]>,
) {
    let Lane::Extreme { sign } = p.lane else {
        unreachable!("applies() checked")
    };
    let sgn = _mm512_castps_si512(_mm512_set1_ps(if sign < 0.0 { -0.0 } else { 0.0 }));
    let flip = |v: __m512| _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(v), sgn));
    // −∞ after the sign flip
    let fill = flip(_mm512_set1_ps(f32::NEG_INFINITY));
    let (w, s, in_len, ow) = (p.w as isize, S, p.h * p.w, p.ow);
    let (l, g_n) = (16 / G, G);
    let iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let lane_o = _mm512_and_si512(iota, _mm512_set1_epi32(l as i32 - 1));
    let lane_s = _mm512_mullo_epi32(lane_o, _mm512_set1_epi32(s as i32));
    // packing: output k of the step comes from lane (k / OW)·L + k % OW
    let pack: [i32; 16] =
        std::array::from_fn(|k| ((k / ow.min(l)) * l + k % ow.min(l)).min(15) as i32);
    let pack = _mm512_loadu_si512(pack.as_ptr() as *const _);
    let rows = y.len() / ow;
    let mut reads: Vec<TapRead> = Vec::with_capacity(p.taps.len());
    let mut r = 0;
    while r < rows {
        let ng = g_n.min(rows - r);
        let mut xg = [std::ptr::null::<f32>(); 4];
        let mut hg = [&p.hspans[0]; 4];
        for g in 0..ng {
            let (plane, oh) = ((row0 + r + g) / p.oh, (row0 + r + g) % p.oh);
            xg[g] = x[plane * in_len..][..in_len].as_ptr();
            hg[g] = &p.hspans[oh];
        }
        let count = hg[..ng].iter().map(|h| h.count).max().unwrap_or(0);
        let mut o0 = 0;
        while o0 < ow {
            let n = (ow - o0).min(l);
            let wf = _mm512_permutexvar_epi32(
                lane_o,
                _mm512_maskz_loadu_epi32(
                    ((1u32 << n) - 1) as u16,
                    p.wfirst[o0..].as_ptr() as *const i32,
                ),
            );
            let mut at = wf;
            for (g, hs) in hg[..ng].iter().enumerate() {
                let gm = (0xFFFFu32 >> (16 - l) << (g * l)) as u16;
                at = _mm512_mask_add_epi32(at, gm, wf, _mm512_set1_epi32((hs.first * p.w) as i32));
            }
            let mut best = _mm512_set1_ps(f32::NEG_INFINITY);
            let col0 = (o0 * s) as isize - p.pb as isize;
            reads.clear();
            reads.extend(
                p.taps.iter().map(|&(rj, mj)| {
                    TapRead::new(col0 + (mj * s + rj) as isize, w, (l * s) as isize)
                }),
            );
            for i in 0..count {
                let mut rowp = [None; G];
                let mut hw = _mm512_setzero_si512();
                for (g, (hs, xp)) in hg[..ng].iter().zip(xg).enumerate() {
                    if i < hs.count {
                        let h = hs.coord(i);
                        rowp[g] = Some(xp.add(h * p.w));
                        let gm = (0xFFFFu32 >> (16 - l) << (g * l)) as u16;
                        hw = _mm512_mask_mov_epi32(hw, gm, _mm512_set1_epi32((h * p.w) as i32));
                    }
                }
                let base = _mm512_add_epi32(hw, lane_s);
                for &t in &reads {
                    let v = flip(load_tap::<S, G>(&rowp, t, fill));
                    let iv = _mm512_add_epi32(base, _mm512_set1_epi32(t.start as i32));
                    take(&mut best, &mut at, v, iv);
                }
            }
            let best = flip(best);
            if l == 16 {
                let m = ((1u32 << n) - 1) as u16;
                _mm512_mask_storeu_ps(y[r * ow + o0..].as_mut_ptr() as *mut f32, m, best);
                if let Some(ic) = idx.as_deref_mut() {
                    _mm512_mask_storeu_epi32(ic[r * ow + o0..].as_mut_ptr() as *mut i32, m, at);
                }
            } else {
                let m = ((1u32 << (ng * ow)) - 1) as u16;
                let yv = _mm512_permutexvar_ps(pack, best);
                _mm512_mask_storeu_ps(y[r * ow..].as_mut_ptr() as *mut f32, m, yv);
                if let Some(ic) = idx.as_deref_mut() {
                    let iv = _mm512_permutexvar_epi32(pack, at);
                    _mm512_mask_storeu_epi32(ic[r * ow..].as_mut_ptr() as *mut i32, m, iv);
                }
            }
            o0 += n;
        }
        r += ng;
    }
}

/// Whether [`avg_rows`] applies: average pooling with width windows 2 wide at stride 2,
/// no width padding (the caller checks AVX-512).
pub(super) fn applies_avg(p: &Plan) -> bool {
    matches!(p.lane, Lane::Avg(_)) && p.s == 2 && p.pb == 0 && p.taps == [(0, 0), (1, 0)]
}

/// Average forward of output rows `row0..` (global over planes) into `y` (whole rows): per
/// 16 outputs the span's input rows are added element-wise (32 columns, 0 past the row), the
/// even and odd columns added (`vpermt2ps`), and the sum multiplied by `1 / divisor` — the
/// order of the phase path (vertical, then horizontal), in f32.
///
/// # Safety
/// As [`forward_rows`], with [`applies_avg`].
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
pub(super) unsafe fn avg_rows(p: &Plan, x: &[f32], row0: usize, y: &mut [MaybeUninit<f32>]) {
    let (w, ow, in_len) = (p.w, p.ow, p.h * p.w);
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    for r in 0..y.len() / ow {
        let (plane, oh) = ((row0 + r) / p.oh, (row0 + r) % p.oh);
        let xp = x[plane * in_len..][..in_len].as_ptr();
        let hs = &p.hspans[oh];
        let mut o0 = 0;
        while o0 < ow {
            let n = (ow - o0).min(16);
            let c0 = 2 * o0;
            let cells = (w - c0).min(32);
            let cm = if cells == 32 {
                u32::MAX
            } else {
                (1u32 << cells) - 1
            };
            let (mut a, mut b) = (_mm512_setzero_ps(), _mm512_setzero_ps());
            for i in 0..hs.count {
                let row = xp.add(hs.coord(i) * w + c0);
                a = _mm512_add_ps(a, _mm512_maskz_loadu_ps(cm as u16, row));
                b = _mm512_add_ps(b, _mm512_maskz_loadu_ps((cm >> 16) as u16, row.add(16)));
            }
            let sum = _mm512_add_ps(
                _mm512_permutex2var_ps(a, even, b),
                _mm512_permutex2var_ps(a, odd, b),
            );
            let om = ((1u32 << n) - 1) as u16;
            let inv = _mm512_maskz_loadu_ps(om, p.inv[oh * ow + o0..].as_ptr());
            let yv = _mm512_mul_ps(sum, inv);
            _mm512_mask_storeu_ps(y[r * ow + o0..].as_mut_ptr() as *mut f32, om, yv);
            o0 += n;
        }
    }
}
