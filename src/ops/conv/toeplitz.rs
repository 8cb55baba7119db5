//! Convolution as one matrix product with the explicit Toeplitz matrix (the course's
//! "convolution as a matrix multiplication"): flatten each image to a vector `x` of length
//! `Cin·D·H·W`; then `y = T x + b` with `T` of shape `(Cout·od·oh·ow, Cin·D·H·W)`.
//! Row `(oc, o)` of `T` holds the kernel `w[oc]` laid at the input pixels its window reads;
//! padding modes fold taps that read copied pixels onto the original pixel (entries add up).
//! `T` is mostly zeros, so it is built only when it fits [`MAX_ENTRIES`].
//! Backward: the input gradient is `Tᵀ gy` (the transpose of the same matrix).

use super::ConvShape;
use crate::error::{Error, Result};
use crate::ops::gemm::{matmul, MatRef};
use crate::tensor::Tensor;

/// Largest Toeplitz matrix built: 16 Mi entries (64 MiB of f32).
pub const MAX_ENTRIES: usize = 16 << 20;

/// `(rows, cols)` of the Toeplitz matrix of `s`.
pub fn dims(s: &ConvShape) -> (usize, usize) {
    (s.cout * s.window.out_len(), s.cin * s.window.in_len())
}

/// Fails with a clear message when the matrix would exceed [`MAX_ENTRIES`].
pub fn check_size(s: &ConvShape) -> Result<()> {
    let (r, c) = dims(s);
    if r.saturating_mul(c) > MAX_ENTRIES {
        return Err(Error::TooLarge {
            what: "algo toeplitz".into(),
            msg: format!(
                "the Toeplitz matrix would be {r} × {c} ({:.0} MiB), over the {} MiB limit; \
                 use --algo im2col or direct for inputs this large",
                (r as f64 * c as f64 * 4.0) / (1 << 20) as f64,
                (MAX_ENTRIES * 4) >> 20
            ),
        });
    }
    Ok(())
}

/// Builds `T` (row-major `rows × cols`) from the (already flipped, if requested) weight.
pub fn matrix(s: &ConvShape, w: &[f32]) -> Result<Tensor> {
    check_size(s)?;
    let (rows, cols) = dims(s);
    let win = &s.window;
    let (in_len, out_len, taps) = (win.in_len(), win.out_len(), win.taps());
    let (cin_g, cout_g) = (s.cin_g(), s.cout_g());
    let mut t = vec![0.0f32; rows * cols];
    // for each output channel and output cell: one row
    for oc in 0..s.cout {
        let g = oc / cout_g;
        for o in 0..out_len {
            let row = &mut t[(oc * out_len + o) * cols..][..cols];
            // for each input channel of the group and each kernel tap
            for icg in 0..cin_g {
                let ic = g * cin_g + icg;
                for tap in 0..taps {
                    if let Some(src) = win.source(o, tap, s.mode) {
                        row[ic * in_len + src] += w[(oc * cin_g + icg) * taps + tap];
                    }
                }
            }
        }
    }
    Tensor::new(vec![rows, cols], t)
}

/// Forward pass: `Y (N × Cout·out) = X (N × Cin·in) · Tᵀ`, plus bias.
pub fn forward(
    s: &ConvShape,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
) -> Result<()> {
    let t = matrix(s, w)?;
    let (rows, cols) = dims(s);
    let xm = MatRef::row_major(x, s.batch, cols);
    let tt = MatRef::row_major(t.data(), rows, cols).t();
    matmul(y, rows, xm, tt, false, rayon::current_num_threads());
    if let Some(b) = bias {
        let out_len = s.window.out_len();
        for (i, plane) in y.chunks_mut(out_len).enumerate() {
            let bv = b[i % s.cout];
            plane.iter_mut().for_each(|v| *v += bv);
        }
    }
    Ok(())
}

/// Input gradient: the forward is `y = T x`, so `gx = Tᵀ gy`, i.e.
/// `GX (N × Cin·in) = GY (N × Cout·out) · T`. (The weight gradient has no Toeplitz form worth
/// building; the dispatcher computes it with im2col.) Overwrites `gx`.
pub fn backward_input(s: &ConvShape, gy: &[f32], w: &[f32], gx: &mut [f32]) -> Result<()> {
    let t = matrix(s, w)?;
    let (rows, cols) = dims(s);
    let gym = MatRef::row_major(gy, s.batch, rows);
    let tm = MatRef::row_major(t.data(), rows, cols);
    matmul(gx, cols, gym, tm, false, rayon::current_num_threads());
    Ok(())
}
