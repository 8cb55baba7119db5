//! The gradients of a convolution in matrix form, beside the sum form of `conv_grad`: with
//! im2col, `∂E/∂K = G · colsᵀ` (the output gradient, one row per output channel, times the
//! transposed column matrix: the pen-and-paper exercise's "using a matrix multiplication")
//! and `∂E/∂cols = Kᵀ · G` folded back onto the pixels the columns copied; with the Toeplitz
//! matrix, `∂E/∂x = Tᵀ · g`. The products are computed here as the narration states them and
//! the result shown is the library's `conv_backward`, so the two can be compared.

use super::conv::ExplainKind;
use super::conv_grad::grad_shape;
use super::kernel_used;
use super::{fmt_num, Explanation, Step};
use crate::error::Result;
use crate::ops::conv::{conv_backward, im2col, toeplitz};
use crate::ops::conv::{ConvAlgo, ConvParams, ConvShape, GradRequest};
use crate::tensor::Tensor;

/// `a (m × k) · b (k × n)` in f64, row-major.
fn matmul(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    (0..m * n)
        .map(|ij| {
            let (i, j) = (ij / n, ij % n);
            (0..k)
                .map(|t| a[i * k + t] as f64 * b[t * n + j] as f64)
                .sum::<f64>() as f32
        })
        .collect()
}

/// The transpose of a row-major `rows × cols` matrix.
fn transpose(a: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    (0..rows * cols)
        .map(|ij| a[(ij % rows) * cols + ij / rows])
        .collect()
}

fn tag(s: &ConvShape, n: usize, g: usize) -> String {
    match (s.batch > 1, s.groups > 1) {
        (true, true) => format!(" (image {}, group {})", n + 1, g + 1),
        (true, false) => format!(" (image {})", n + 1),
        (false, true) => format!(" (group {})", g + 1),
        _ => String::new(),
    }
}

fn result(x: &Tensor, w: &Tensor, gy: &Tensor, p: &ConvParams, nd: usize) -> Result<Step> {
    let want = GradRequest {
        input: true,
        weight: true,
        bias: false,
    };
    let grads = conv_backward(x, w, gy, p, ConvAlgo::Direct, want)?;
    Ok(
        Step::new("Result (the library's backward pass, for comparison)")
            .show("∂E/∂x", grads.input.expect("input gradient"), nd)
            .show("∂E/∂w", grads.weight.expect("weight gradient"), nd),
    )
}

/// The gradients of `y = conv(x, w)` for the output gradient `gy` in matrix form (`kind`
/// im2col or Toeplitz; `Direct` gives the sum form of `conv_grad`), ending with the library's
/// result for comparison.
pub fn explain_grad_matrix(
    x: &Tensor,
    w: &Tensor,
    gy: &Tensor,
    p: &ConvParams,
    kind: ExplainKind,
) -> Result<Explanation> {
    let s = grad_shape(x, w, None, gy, p)?;
    let w_used = kernel_used(w, p);
    let mut ex = match kind {
        ExplainKind::Direct => return super::conv_grad::explain_grad(x, w, None, gy, p),
        ExplainKind::Im2col => im2col_form(&s, x, &w_used, gy, p)?,
        ExplainKind::Toeplitz => toeplitz_form(&s, &w_used, gy)?,
    };
    ex.steps.push(result(x, w, gy, p, s.window.nd)?);
    Ok(ex)
}

/// The im2col form: per image and group, `∂E/∂K = G · colsᵀ` and `∂E/∂cols = Kᵀ · G`.
fn im2col_form(
    s: &ConvShape,
    x: &Tensor,
    w_used: &Tensor,
    gy: &Tensor,
    p: &ConvParams,
) -> Result<Explanation> {
    let (in_len, out_len, k) = (s.window.in_len(), s.window.out_len(), s.reduction_len());
    let (cin_g, cout_g) = (s.cin_g(), s.cout_g());
    let mut ex = Explanation {
        title: "Convolution gradients as matrix products (im2col)".into(),
        steps: vec![Step::new("The matrix form").line(format!(
            "forward: Y = K · cols with K the {cout_g} × {k} kernel matrix and cols the {k} × {out_len} im2col matrix; \
             so ∂E/∂K = G · colsᵀ (G = ∂E/∂Y as a {cout_g} × {out_len} matrix, one row per output channel) and \
             ∂E/∂cols = Kᵀ · G, whose entries are added back onto the input pixels each column copied (col2im){}",
            if p.flip { "; --flip: this is the gradient of the flipped kernel, flipped back in the result" } else { "" }
        ))],
    };
    for n in 0..s.batch {
        for g in 0..s.groups {
            let x_g = &x.data()[(n * s.cin + g * cin_g) * in_len..][..cin_g * in_len];
            let mut cols = vec![0.0; k * out_len];
            im2col::unfold(s, x_g, 0, out_len, &mut cols);
            let gm: Vec<f32> =
                gy.data()[(n * s.cout + g * cout_g) * out_len..][..cout_g * out_len].to_vec();
            let km = w_used.data()[g * cout_g * k..][..cout_g * k].to_vec();
            let dk = matmul(&gm, &transpose(&cols, k, out_len), cout_g, out_len, k);
            let dcols = matmul(&transpose(&km, cout_g, k), &gm, k, cout_g, out_len);
            ex.steps.push(
                Step::new(format!("Kernel gradient{}", tag(s, n, g)))
                    .show("G = ∂E/∂Y", Tensor::new(vec![cout_g, out_len], gm.clone())?, 2)
                    .show("colsᵀ", Tensor::new(vec![out_len, k], transpose(&cols, k, out_len))?, 2)
                    .show("∂E/∂K = G · colsᵀ", Tensor::new(vec![cout_g, k], dk)?, 2)
                    .conclude("each row of ∂E/∂K, reshaped to the kernel's shape, is that filter's gradient"),
            );
            ex.steps.push(
                Step::new(format!("Input gradient{}", tag(s, n, g)))
                    .show("Kᵀ", Tensor::new(vec![k, cout_g], transpose(&km, cout_g, k))?, 2)
                    .show("∂E/∂cols = Kᵀ · G", Tensor::new(vec![k, out_len], dcols)?, 2)
                    .conclude("col2im: add entry (row r, column o) to the input pixel that column o copied for row r; padding drops out"),
            );
        }
    }
    Ok(ex)
}

/// The Toeplitz form: per image `∂E/∂x = Tᵀ · g`.
fn toeplitz_form(s: &ConvShape, w_used: &Tensor, gy: &Tensor) -> Result<Explanation> {
    let t = toeplitz::matrix(s, w_used.data())?;
    let (rows, cols) = toeplitz::dims(s);
    let tt = transpose(t.data(), rows, cols);
    let mut ex = Explanation {
        title: "Convolution gradients as matrix products (Toeplitz)".into(),
        steps: vec![Step::new("The matrix form")
            .line(format!(
                "forward: y = T · x with T the {rows} × {cols} Toeplitz matrix; so ∂E/∂x = Tᵀ · g (g = ∂E/∂y flattened): \
                 the transposed matrix sends each output's gradient back along the weights that made it"
            ))
            .line("the kernel gradient is G · colsᵀ (see --explain im2col): each weight sits in T once per output cell")
            .show("Tᵀ", Tensor::new(vec![cols, rows], tt.clone())?, 2)],
    };
    for n in 0..s.batch {
        let g = &gy.data()[n * rows..][..rows];
        let gx = matmul(&tt, g, cols, rows, 1);
        let label = if s.batch > 1 {
            format!(" (image {})", n + 1)
        } else {
            String::new()
        };
        ex.steps.push(
            Step::new(format!("Matrix-vector product{label}"))
                .show("g (flattened)", Tensor::new(vec![rows, 1], g.to_vec())?, 2)
                .show("∂E/∂x = Tᵀ · g", Tensor::new(vec![cols, 1], gx.clone())?, 2)
                .conclude(format!(
                    "reshaped to the input: [{}]",
                    gx.iter()
                        .map(|v| fmt_num(*v))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
        );
    }
    Ok(ex)
}
