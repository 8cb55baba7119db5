//! Matrix multiplication: a strided f32 GEMM through the `gemm` crate (AVX-512 with the
//! `x86-v4` feature), and the naive triple loop it is tested against.
//!
//! Matrices are described by a base slice and row/column strides in elements, so transposed
//! operands and sub-blocks need no copy.

use std::mem::MaybeUninit;

/// A strided view of a matrix: element (r, c) is at `data[r*rs + c*cs]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a> MatRef<'a> {
    /// A row-major `rows × cols` matrix.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        MatRef {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose (no copy).
    pub fn t(self) -> Self {
        MatRef {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }

    fn check(&self) {
        if self.rows > 0 && self.cols > 0 {
            let last = (self.rows - 1) * self.rs + (self.cols - 1) * self.cs;
            assert!(last < self.data.len(), "matrix view out of bounds");
        }
    }
}

/// `dst (m × n, row stride ldd) = [dst +] a (m × k) · b (k × n)`.
/// `accumulate` adds to `dst` instead of overwriting it; `threads > 1` lets the GEMM split its work.
pub fn matmul(dst: &mut [f32], ldd: usize, a: MatRef, b: MatRef, accumulate: bool, threads: usize) {
    gemm_into(
        super::uninit::as_uninit(dst),
        ldd,
        a,
        b,
        accumulate,
        threads,
    );
}

/// `dst (m × n, row stride ldd) = a · b` into a destination that need not be initialised:
/// every `dst[r·ldd + c]` (r < m, c < n) is written and none is read, so a fresh output
/// needs no zero fill (for a 25 MB output the fill and its page faults cost as much as the
/// product).
pub fn matmul_uninit(
    dst: &mut [MaybeUninit<f32>],
    ldd: usize,
    a: MatRef,
    b: MatRef,
    threads: usize,
) {
    gemm_into(dst, ldd, a, b, false, threads);
}

/// [`matmul`] on a destination that holds initialised values where `accumulate` is set.
fn gemm_into(
    dst: &mut [MaybeUninit<f32>],
    ldd: usize,
    a: MatRef,
    b: MatRef,
    accumulate: bool,
    threads: usize,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k, "inner dimensions differ");
    a.check();
    b.check();
    if m == 0 || n == 0 {
        return;
    }
    assert!((m - 1) * ldd + n <= dst.len(), "destination out of bounds");
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                dst[r * ldd..r * ldd + n].iter_mut().for_each(|v| {
                    v.write(0.0);
                });
            }
        }
        return;
    }
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the views were bounds-checked above; dst does not alias a or b (&mut vs &); with
    // `accumulate` false (read_dst) the GEMM only writes dst.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr().cast::<f32>(),
            1,
            ldd as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

/// The reference: the textbook triple loop, accumulated in f64.
pub fn matmul_naive(dst: &mut [f32], ldd: usize, a: MatRef, b: MatRef, accumulate: bool) {
    for i in 0..a.rows {
        for j in 0..b.cols {
            let mut s = 0.0f64;
            for p in 0..a.cols {
                s += a.data[i * a.rs + p * a.cs] as f64 * b.data[p * b.rs + j * b.cs] as f64;
            }
            let d = &mut dst[i * ldd + j];
            *d = if accumulate { *d + s as f32 } else { s as f32 };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_naive_with_strides() {
        let (m, k, n) = (37, 53, 29);
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 13) as f32 - 6.0).collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 104729) % 11) as f32 - 5.0)
            .collect();
        // b is stored transposed (n × k) and viewed as k × n
        let am = MatRef::row_major(&a, m, k);
        let bm = MatRef::row_major(&b, n, k).t();
        let mut fast = vec![1.0; m * (n + 3)];
        let mut slow = fast.clone();
        matmul(&mut fast, n + 3, am, bm, true, 2);
        matmul_naive(&mut slow, n + 3, am, bm, true);
        assert_eq!(fast, slow);
    }
}
