//! The one SIMD gate, and helpers shared by the AVX-512 kernels.
//!
//! [`isa`] decides once per process which instruction set stride's own kernels may use: AVX-512
//! when the CPU has every feature any kernel enables (`avx512f`, `avx512vl`, `avx2`, `fma`), else
//! the portable code (plain Rust, auto-vectorised for the build target). Setting the environment
//! variable `STRIDE_SIMD=portable` forces the portable path, so the tests can run both (CI does).
//! Every kernel asks [`avx512`] before calling a `#[target_feature]` function; none checks a
//! feature of its own. (The `gemm` crate behind im2col dispatches by itself.)
//!
//! Also here: a 16×16 transpose in registers, and the step from a runtime block size to a
//! const generic one.

use std::sync::OnceLock;

/// The instruction set stride's kernels use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512 (F, VL) with AVX2 and FMA.
    Avx512,
    /// Plain Rust: the reference-speed fallback for any CPU.
    Portable,
}

/// The environment variable that forces the portable kernels (`STRIDE_SIMD=portable`).
pub const ENV: &str = "STRIDE_SIMD";

/// The instruction set the kernels use, decided on first call: [`Isa::Portable`] when
/// `STRIDE_SIMD=portable` or the CPU lacks any of the features the kernels enable.
pub fn isa() -> Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| {
        if std::env::var(ENV).is_ok_and(|v| v.eq_ignore_ascii_case("portable")) {
            return Isa::Portable;
        }
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
        {
            return Isa::Avx512;
        }
        Isa::Portable
    })
}

/// Whether the AVX-512 kernels may run (see [`isa`]): the only check before calling a
/// `#[target_feature(enable = "avx512f…")]` function.
#[inline]
pub fn avx512() -> bool {
    isa() == Isa::Avx512
}

/// Runs `$body` with `$c` bound, as a constant, to the runtime size `$v` (1 to 14; larger
/// values run as 14, so callers pass at most 14): a kernel whose register block size is a const
/// generic can then be called for a size known only at run time, one monomorphised copy per
/// size. `const_dispatch!(r, R => block::<R>(...))`.
macro_rules! const_dispatch {
    ($v:expr, $c:ident => $body:expr) => {
        match $v {
            0 => unreachable!("a register block of size 0"),
            1 => {
                const $c: usize = 1;
                $body
            }
            2 => {
                const $c: usize = 2;
                $body
            }
            3 => {
                const $c: usize = 3;
                $body
            }
            4 => {
                const $c: usize = 4;
                $body
            }
            5 => {
                const $c: usize = 5;
                $body
            }
            6 => {
                const $c: usize = 6;
                $body
            }
            7 => {
                const $c: usize = 7;
                $body
            }
            8 => {
                const $c: usize = 8;
                $body
            }
            9 => {
                const $c: usize = 9;
                $body
            }
            10 => {
                const $c: usize = 10;
                $body
            }
            11 => {
                const $c: usize = 11;
                $body
            }
            12 => {
                const $c: usize = 12;
                $body
            }
            13 => {
                const $c: usize = 13;
                $body
            }
            _ => {
                const $c: usize = 14;
                $body
            }
        }
    };
}
pub(crate) use const_dispatch;

/// `dst[j·dst_stride + lane] = src[lane·stride + j]` for j < len, lane < 16, zero for lanes ≥
/// `lanes`: `lanes` rows of `src` (`stride` apart, `len` used of each) transposed to (position,
/// lane), 16 positions × 16 rows at a time through [`transpose16`]. The one transpose of the
/// channels-in-lanes kernels: channel-lanes' packed weights and output-gradient chunks,
/// Winograd's channels-last copies.
///
/// # Safety
/// The CPU must support AVX-512F; callers check [`avx512`]. The bounds are asserted here.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn transpose_rows(
    src: &[f32],
    stride: usize,
    lanes: usize,
    len: usize,
    dst: &mut [f32],
    dst_stride: usize,
) {
    use std::arch::x86_64::*;
    assert!(lanes <= 16 && (len == 0 || dst.len() >= (len - 1) * dst_stride + 16));
    assert!(lanes == 0 || src.len() >= (lanes - 1) * stride + len);
    for pos0 in (0..len).step_by(16) {
        let m = 16.min(len - pos0);
        let mask = ((1u32 << m) - 1) as u16;
        // rows past `lanes` load nothing (mask 0) and stay zero; a fixed count of loads, so the
        // rows stay in registers
        let mut rows = [_mm512_setzero_ps(); 16];
        for (lane, r) in rows.iter_mut().enumerate() {
            let (k, at) = if lane < lanes {
                (mask, lane * stride + pos0)
            } else {
                (0, 0)
            };
            *r = _mm512_maskz_loadu_ps(k, src.as_ptr().wrapping_add(at));
        }
        let t = transpose16(&rows);
        let d = dst.as_mut_ptr().add(pos0 * dst_stride);
        if m == 16 {
            // whole blocks: a fixed count, unrolled
            for (j, v) in t.iter().enumerate() {
                _mm512_storeu_ps(d.add(j * dst_stride), *v);
            }
        } else {
            for (j, v) in t.iter().enumerate().take(m) {
                _mm512_storeu_ps(d.add(j * dst_stride), *v);
            }
        }
    }
}

/// Transposes a 16×16 block held as 16 row vectors (unpack within 128-bit lanes, then
/// shuffle the 128-bit lanes twice).
///
/// # Safety
/// The CPU must support AVX-512F; callers check [`avx512`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
pub(crate) unsafe fn transpose16(
    m: &[std::arch::x86_64::__m512; 16],
) -> [std::arch::x86_64::__m512; 16] {
    use std::arch::x86_64::*;
    let mut t = [_mm512_setzero_ps(); 16];
    for i in 0..8 {
        t[2 * i] = _mm512_unpacklo_ps(m[2 * i], m[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(m[2 * i], m[2 * i + 1]);
    }
    let mut r = [_mm512_setzero_ps(); 16];
    for q in 0..4 {
        let (a, b, c, d) = (t[4 * q], t[4 * q + 1], t[4 * q + 2], t[4 * q + 3]);
        r[4 * q] = _mm512_shuffle_ps::<0x44>(a, c);
        r[4 * q + 1] = _mm512_shuffle_ps::<0xEE>(a, c);
        r[4 * q + 2] = _mm512_shuffle_ps::<0x44>(b, d);
        r[4 * q + 3] = _mm512_shuffle_ps::<0xEE>(b, d);
    }
    for h in [0, 8] {
        for i in 0..4 {
            t[h + i] = _mm512_shuffle_f32x4::<0x88>(r[h + i], r[h + i + 4]);
            t[h + i + 4] = _mm512_shuffle_f32x4::<0xDD>(r[h + i], r[h + i + 4]);
        }
    }
    for i in 0..8 {
        r[i] = _mm512_shuffle_f32x4::<0x88>(t[i], t[i + 8]);
        r[i + 8] = _mm512_shuffle_f32x4::<0xDD>(t[i], t[i + 8]);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_follows_the_environment_and_the_cpu() {
        if std::env::var(ENV).is_ok_and(|v| v.eq_ignore_ascii_case("portable")) {
            assert_eq!(isa(), Isa::Portable);
            return;
        }
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            avx512(),
            ["avx512f", "avx512vl", "avx2", "fma"]
                .iter()
                .all(|f| match *f {
                    "avx512f" => std::is_x86_feature_detected!("avx512f"),
                    "avx512vl" => std::is_x86_feature_detected!("avx512vl"),
                    "avx2" => std::is_x86_feature_detected!("avx2"),
                    _ => std::is_x86_feature_detected!("fma"),
                })
        );
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn transpose16_transposes() {
        use std::arch::x86_64::*;
        if !avx512() {
            return;
        }
        let m: Vec<f32> = (0..256).map(|v| v as f32).collect();
        // SAFETY: AVX-512 checked above; every load reads 16 values of `m`
        unsafe {
            let mut rows = [_mm512_setzero_ps(); 16];
            for (i, r) in rows.iter_mut().enumerate() {
                *r = _mm512_loadu_ps(m[i * 16..].as_ptr());
            }
            let t = transpose16(&rows);
            for (j, v) in t.iter().enumerate() {
                let mut out = [0.0f32; 16];
                _mm512_storeu_ps(out.as_mut_ptr(), *v);
                for (i, o) in out.iter().enumerate() {
                    assert_eq!(*o, m[i * 16 + j]);
                }
            }
        }
    }
}
