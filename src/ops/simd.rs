//! Helpers shared by the AVX-512 direct kernels (`conv::rows`, `conv::blocked`): a 16×16
//! transpose in registers, and the step from a runtime block size to a const generic one.

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

/// Transposes a 16×16 block held as 16 row vectors (unpack within 128-bit lanes, then
/// shuffle the 128-bit lanes twice).
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

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn transpose16_transposes() {
        use std::arch::x86_64::*;
        if !std::is_x86_feature_detected!("avx512f") {
            return;
        }
        let m: Vec<f32> = (0..256).map(|v| v as f32).collect();
        // SAFETY: AVX-512F checked above; every load reads 16 values of `m`
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
