//! The vector steps of the fast path ([`super::plane`]), each as an AVX-512 function and its
//! portable twin (same results up to float32 rounding order; the portable twins are plain
//! Rust for any CPU and for `STRIDE_SIMD=portable`):
//! - [`patches`]: the 6×6 input patches of 16 tiles, tiles in the lanes, read straight from
//!   the input through masked loads (zeros in the padding) and split into lanes by permutes;
//! - [`interleave`]: the inverse for 4 output columns (`out[4l + j] = o[j][l]`);
//! - [`products`]: the register-blocked products `M (OCB × 16·TV) = U (OCB × K) · V (K × 16·TV)`.

/// Tiles per vector.
pub const L: usize = 16;
/// One value per tile.
pub type Lanes = [f32; L];

/// Where one run of tiles (lanes `l0..l1`, side by side in one tile row) reads its patches:
/// lane l's patch row r, column j is `x[ic·H·W + (y0 + r)·W + base + 4l + j]` when row
/// `y0 + r` lies in the image and the column `c0 + 4(l − l0) + j` (`base = n·Cin·H·W + c0 − 4·l0`)
/// does; `ma[m]`, `mb[m]`: the in-image values among the 16 at `base + 16m` (columns 0–3 of
/// the run's tiles) and at `base + 4 + 16m` (columns 4–5, as columns 0–1 of the next tile).
#[derive(Clone, Copy, Debug)]
pub struct RunView {
    pub y0: isize,
    pub base: isize,
    pub ma: [u16; 4],
    pub mb: [u16; 4],
}

impl RunView {
    /// The view of lanes `l0..l1` (of tiles from input column `c0`) with rows from `y0` of
    /// image plane offset `plane` (n·Cin·H·W), in an image of width `w`.
    pub fn new(l0: usize, l1: usize, y0: isize, c0: isize, plane: usize, w: usize) -> Self {
        let (mut ma, mut mb) = ([0u16; 4], [0u16; 4]);
        for i in 4 * l0..4 * l1 {
            let col = c0 + (i - 4 * l0) as isize;
            if (0..w as isize).contains(&col) {
                ma[i / L] |= 1 << (i % L);
            }
            if (0..w as isize).contains(&(col + 4)) && i % 4 < 2 {
                mb[i / L] |= 1 << (i % L);
            }
        }
        RunView {
            y0,
            base: plane as isize + c0 - 4 * l0 as isize,
            ma,
            mb,
        }
    }
}

/// The 6-column input patches of 16 tiles in lanes, `d[r][j][l]` for the `d.len()` rows (6 in
/// the plane, 1 on a line; 0 in the padding and in lanes of no run), from channel plane `x`
/// (`x[ic·H·W..]`) through the `runs`' views.
///
/// # Safety
/// `x` must point at channel `ic` of an input `(N, Cin, H, W)` (extents `hw`) the views were
/// made for: every in-image value they address is then inside it.
#[inline(always)]
pub unsafe fn patches<const SIMD: bool>(
    x: *const f32,
    runs: &[RunView],
    hw: [usize; 2],
    d: &mut [[Lanes; 6]],
) {
    #[cfg(target_arch = "x86_64")]
    if SIMD {
        // SAFETY: SIMD is set only by callers running under AVX-512 (`simd::avx512`); the
        // masked loads touch only the in-image values.
        return avx512::patches(x, runs, hw, d);
    }
    let [h, w] = hw;
    d.fill([[0.0; L]; 6]);
    for run in runs {
        for (r, dr) in d.iter_mut().enumerate() {
            let y = run.y0 + r as isize;
            if !(0..h as isize).contains(&y) {
                continue;
            }
            let row = x.wrapping_offset(y * w as isize + run.base);
            for (j, drj) in dr.iter_mut().enumerate() {
                let (masks, at) = if j < 4 {
                    (&run.ma, j)
                } else {
                    (&run.mb, j - 4)
                };
                for (l, v) in drj.iter_mut().enumerate() {
                    let i = 4 * l + at;
                    if masks[i / L] >> (i % L) & 1 == 1 {
                        *v = *row.wrapping_add(i + 4 * (j / 4));
                    }
                }
            }
        }
    }
}

/// `dst[..len] = src[..len]`, len ≤ 64 (one run of output columns).
///
/// # Safety
/// `dst..dst + len` must be valid for writes that nothing else accesses meanwhile.
#[inline(always)]
pub unsafe fn store_run<const SIMD: bool>(src: &[f32], dst: *mut f32, len: usize) {
    assert!(len <= src.len());
    #[cfg(target_arch = "x86_64")]
    if SIMD {
        return avx512::store_run(src.as_ptr(), dst, len);
    }
    std::ptr::copy_nonoverlapping(src.as_ptr(), dst, len)
}

/// `out[4l + j] = o[j][l]` for j < 4, l < 16.
#[inline(always)]
pub fn interleave<const SIMD: bool>(o: &[Lanes; 4], out: &mut [f32; 4 * L]) {
    #[cfg(target_arch = "x86_64")]
    if SIMD {
        // SAFETY: as in `patches`; the stores write out[0..64].
        return unsafe { avx512::interleave(o, out) };
    }
    for (l, cell) in out.chunks_exact_mut(4).enumerate() {
        for (j, c) in cell.iter_mut().enumerate() {
            *c = o[j][l];
        }
    }
}

/// `m[o·ms + 16t + l] = Σ_{i<k} u[i·OCB + o] · v[i·vs + 16t + l]` for o < OCB, t < TV, l < 16:
/// one output-channel block times one block of tiles at one transformed position, summed in
/// order of i (the same order on every path and thread count).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn products<const SIMD: bool, const TV: usize, const OCB: usize>(
    u: &[f32],
    v: &[f32],
    vs: usize,
    k: usize,
    m: &mut [f32],
    ms: usize,
) {
    assert!(u.len() >= k * OCB && k > 0 && v.len() >= (k - 1) * vs + TV * L);
    assert!(m.len() >= (OCB - 1) * ms + TV * L);
    #[cfg(target_arch = "x86_64")]
    if SIMD {
        // SAFETY: as in `patches`; every load and store is in bounds (asserted above).
        return unsafe { avx512::products::<TV, OCB>(u.as_ptr(), v.as_ptr(), vs, k, m, ms) };
    }
    let mut acc = [[[0.0f32; L]; TV]; OCB];
    for i in 0..k {
        let vi = &v[i * vs..][..TV * L];
        for (o, acc_o) in acc.iter_mut().enumerate() {
            let b = u[i * OCB + o];
            for (t, a) in acc_o.iter_mut().enumerate() {
                for (l, x) in a.iter_mut().enumerate() {
                    *x += b * vi[t * L + l];
                }
            }
        }
    }
    for (o, acc_o) in acc.iter().enumerate() {
        for (t, a) in acc_o.iter().enumerate() {
            m[o * ms + t * L..][..L].copy_from_slice(a);
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub use avx512::Zmm;

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Lanes, RunView, L};
    use crate::ops::conv::winograd::transform::Vector;
    use std::arch::x86_64::*;
    use std::ops::{Add, Mul, Sub};

    /// One AVX-512 register as a [`Vector`] for the transforms. Its operators are
    /// `#[inline(always)]` and only ever run inlined into `#[target_feature(enable =
    /// "avx512f")]` functions (the fast path's AVX-512 entry points), where AVX-512 is checked.
    #[derive(Clone, Copy)]
    pub struct Zmm(__m512);

    impl Add for Zmm {
        type Output = Self;
        #[inline(always)]
        fn add(self, o: Self) -> Self {
            // SAFETY: see the type's doc.
            Zmm(unsafe { _mm512_add_ps(self.0, o.0) })
        }
    }
    impl Sub for Zmm {
        type Output = Self;
        #[inline(always)]
        fn sub(self, o: Self) -> Self {
            // SAFETY: see the type's doc.
            Zmm(unsafe { _mm512_sub_ps(self.0, o.0) })
        }
    }
    impl Mul<f32> for Zmm {
        type Output = Self;
        #[inline(always)]
        fn mul(self, c: f32) -> Self {
            // SAFETY: see the type's doc.
            Zmm(unsafe { _mm512_mul_ps(self.0, _mm512_set1_ps(c)) })
        }
    }
    impl Vector for Zmm {
        #[inline(always)]
        fn load(s: &[f32; 16]) -> Self {
            // SAFETY: see the type's doc; reads the 16 values of `s`.
            Zmm(unsafe { _mm512_loadu_ps(s.as_ptr()) })
        }
        #[inline(always)]
        fn store(self, d: &mut [f32; 16]) {
            // SAFETY: see the type's doc; writes the 16 values of `d`.
            unsafe { _mm512_storeu_ps(d.as_mut_ptr(), self.0) }
        }
        #[inline(always)]
        fn splat(v: f32) -> Self {
            // SAFETY: see the type's doc.
            Zmm(unsafe { _mm512_set1_ps(v) })
        }
        #[inline(always)]
        fn store_first(self, d: &mut [f32], n: usize) {
            assert!(n <= L && n <= d.len());
            let m = ((1u32 << n) - 1) as u16;
            // SAFETY: see the type's doc; writes d[..n], in bounds (asserted).
            unsafe { _mm512_mask_storeu_ps(d.as_mut_ptr(), m, self.0) }
        }
    }

    /// Lanes l of `v[4l + j]` (v: 64 values in 4 registers): the low and high 8 lanes by two
    /// two-register permutes (index (4l + j) mod 32), then one blend.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn every_fourth(v: &[__m512; 4], j: i32) -> __m512 {
        let idx = _mm512_and_si512(
            _mm512_add_epi32(
                _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60),
                _mm512_set1_epi32(j),
            ),
            _mm512_set1_epi32(31),
        );
        let lo = _mm512_permutex2var_ps(v[0], idx, v[1]);
        let hi = _mm512_permutex2var_ps(v[2], idx, v[3]);
        _mm512_mask_blend_ps(0xFF00, lo, hi)
    }

    /// [`super::patches`]: per patch row, the runs' values merged by masked loads into 4 + 4
    /// registers (columns 0–3 and 4–5 of every tile), then split into lanes.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub unsafe fn patches(x: *const f32, runs: &[RunView], hw: [usize; 2], d: &mut [[Lanes; 6]]) {
        let [h, w] = hw;
        for (r, dr) in d.iter_mut().enumerate() {
            let mut a = [_mm512_setzero_ps(); 4];
            let mut b = [_mm512_setzero_ps(); 4];
            for run in runs {
                let y = run.y0 + r as isize;
                if !(0..h as isize).contains(&y) {
                    continue;
                }
                let row = x.wrapping_offset(y * w as isize + run.base);
                for m in 0..4 {
                    a[m] = _mm512_mask_loadu_ps(a[m], run.ma[m], row.wrapping_add(16 * m));
                    b[m] = _mm512_mask_loadu_ps(b[m], run.mb[m], row.wrapping_add(16 * m + 4));
                }
            }
            for (j, drj) in dr.iter_mut().enumerate() {
                let v = if j < 4 {
                    every_fourth(&a, j as i32)
                } else {
                    every_fourth(&b, j as i32 - 4)
                };
                _mm512_storeu_ps(drj.as_mut_ptr(), v);
            }
        }
    }

    /// [`super::store_run`]: masked stores of 16 values.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub unsafe fn store_run(src: *const f32, dst: *mut f32, len: usize) {
        let mut k = 0;
        while k < len {
            let n = (len - k).min(L);
            let m = (((1u32 << n) - 1) & 0xFFFF) as u16;
            _mm512_mask_storeu_ps(dst.add(k), m, _mm512_maskz_loadu_ps(m, src.add(k)));
            k += L;
        }
    }

    /// [`super::interleave`]: pairs (o0, o1) and (o2, o3) zipped, then the pairs zipped.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub unsafe fn interleave(o: &[Lanes; 4], out: &mut [f32; 4 * L]) {
        let v = o.map(|r| _mm512_loadu_ps(r.as_ptr()));
        // zip: [a0 b0 a1 b1 … a7 b7] and [a8 b8 … a15 b15]
        let zip_lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        let zip_hi = _mm512_add_epi32(zip_lo, _mm512_set1_epi32(8));
        let p01 = [zip_lo, zip_hi].map(|i| _mm512_permutex2var_ps(v[0], i, v[1]));
        let p23 = [zip_lo, zip_hi].map(|i| _mm512_permutex2var_ps(v[2], i, v[3]));
        // pairs: [p0 p1 q0 q1 p2 p3 q2 q3 …] (4 tiles) and the same from the 5th pair on
        let pair_lo = _mm512_setr_epi32(0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
        let pair_hi = _mm512_add_epi32(pair_lo, _mm512_set1_epi32(8));
        for h in 0..2 {
            for (q, idx) in [pair_lo, pair_hi].into_iter().enumerate() {
                let r = _mm512_permutex2var_ps(p01[h], idx, p23[h]);
                _mm512_storeu_ps(out.as_mut_ptr().add((2 * h + q) * L), r);
            }
        }
    }

    /// [`super::products`]: OCB × TV accumulators (≤ 24 of the 32 registers); per step i, TV
    /// vector loads of `v` and OCB broadcasts of `u`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub unsafe fn products<const TV: usize, const OCB: usize>(
        u: *const f32,
        v: *const f32,
        vs: usize,
        k: usize,
        m: &mut [f32],
        ms: usize,
    ) {
        let mut acc = [[_mm512_setzero_ps(); TV]; OCB];
        for i in 0..k {
            let vi = v.add(i * vs);
            let x: [__m512; TV] = std::array::from_fn(|t| _mm512_loadu_ps(vi.add(t * L)));
            let ui = u.add(i * OCB);
            for (o, acc_o) in acc.iter_mut().enumerate() {
                let b = _mm512_set1_ps(*ui.add(o));
                for t in 0..TV {
                    acc_o[t] = _mm512_fmadd_ps(b, x[t], acc_o[t]);
                }
            }
        }
        for (o, acc_o) in acc.iter().enumerate() {
            for (t, a) in acc_o.iter().enumerate() {
                _mm512_storeu_ps(m.as_mut_ptr().add(o * ms + t * L), *a);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both<R: PartialEq + std::fmt::Debug>(f: impl Fn(bool) -> R) {
        if crate::ops::simd::avx512() {
            assert_eq!(f(true), f(false));
        }
    }

    #[test]
    fn simd_steps_match_their_portable_twins() {
        // two runs in one vector: lanes 0..5 and 5..14 of a 3×30 image, clipped at the edges
        let (h, w) = (3, 30);
        let x: Vec<f32> = (0..h * w).map(|i| i as f32).collect();
        let runs = [
            RunView::new(0, 5, -1, 10, 0, w),
            RunView::new(5, 14, 1, -1, 0, w),
        ];
        both(|s| {
            let mut d = [[[7.0; L]; 6]; 6];
            // SAFETY: the views address only the 3×30 plane `x`
            unsafe {
                if s {
                    patches::<true>(x.as_ptr(), &runs, [h, w], &mut d)
                } else {
                    patches::<false>(x.as_ptr(), &runs, [h, w], &mut d)
                }
            }
            d
        });
        let mut d = [[[7.0; L]; 6]; 6];
        // SAFETY: as above
        unsafe { patches::<false>(x.as_ptr(), &runs, [h, w], &mut d) };
        // lane 1 (first run): row −1 + r, column 10 + 4 + j
        assert_eq!(d[0][2][1], 0.0);
        assert_eq!(d[1][5][1], (19) as f32);
        // lane 5 (second run, first tile): column −1 + j: padding at j = 0
        assert_eq!(d[0][0][5], 0.0);
        assert_eq!(d[0][1][5], (w) as f32);
        assert_eq!(d[1][5][10], (2 * w + 24) as f32);
        assert_eq!(d[1][5][13], 0.0);
        assert_eq!(d[3][0][13], 0.0);
        assert_eq!(d[0][0][15], 0.0);
        let o: [Lanes; 4] = std::array::from_fn(|j| std::array::from_fn(|l| (j * 100 + l) as f32));
        both(|s| {
            let mut out = [0.0; 4 * L];
            if s {
                interleave::<true>(&o, &mut out)
            } else {
                interleave::<false>(&o, &mut out)
            }
            out.to_vec()
        });
        // small integers: the sums are exact on both paths
        let (k, vs, ms) = (5, 40, 35);
        let u: Vec<f32> = (0..k * 6).map(|i| (i % 7) as f32 - 3.0).collect();
        let v: Vec<f32> = (0..k * vs).map(|i| (i % 5) as f32).collect();
        both(|s| {
            let mut m = vec![0.0; 6 * ms];
            if s {
                products::<true, 2, 6>(&u, &v, vs, k, &mut m, ms)
            } else {
                products::<false, 2, 6>(&u, &v, vs, k, &mut m, ms)
            }
            m
        });
        let mut out = [0.0; 4 * L];
        interleave::<false>(&o, &mut out);
        assert_eq!(out[4 * 3 + 2], o[2][3]);
    }
}
