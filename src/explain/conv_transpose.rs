//! Worked solution for transposed convolution: the output size, then each input value
//! scattering a copy of the kernel scaled by it into the output (stride apart, the padding
//! cropped), and each output entry as the sum of the copies that overlap there. It is the
//! convolution's input gradient with the input in the role of `∂E/∂y`, and the steps say so.
//! Positions come from the adjoint convolution's geometry, values from the library.

use super::conv::focus_index;
use super::conv_grad::{traced, Term};
use super::{axis_names, fmt_num, label, position, transposed_size_formula, TRANSPOSED_RULE};
use super::{Explanation, Step, MAX_TERMS};
use crate::error::{Error, Result};
use crate::geometry::PaddingMode;
use crate::ops::conv::{ConvAlgo, ConvShape};
use crate::ops::conv_transpose::{adjoint_shape, conv_transpose, ConvTransposeParams};
use crate::tensor::{fmt_shape, Tensor};

/// Explains `conv_transpose(x, w, b)`; with `cell` (1-based, `--cell I,J`) only that input
/// cell's scatter is shown.
pub fn explain(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    p: &ConvTransposeParams,
    cell: Option<&[usize]>,
) -> Result<Explanation> {
    // the adjoint convolution: its input is our output, its output our input
    let s = adjoint_shape(x.shape(), w.shape(), b.map(|b| b.shape()), p)?;
    let win = &s.window;
    let nd = win.nd;
    let (x_len, y_len, taps) = (win.out_len(), win.in_len(), win.taps());
    let terms = s.batch * s.cout * x_len * taps * s.cin_g();
    if terms > MAX_TERMS {
        return Err(Error::TooLarge {
            what: "explain".into(),
            msg: format!(
                "this transposed convolution has {terms} multiply-adds, too many to narrate (limit {MAX_TERMS}); \
                 use a smaller input or drop --explain"
            ),
        });
    }
    let x_dims: Vec<usize> = win.real_axes().iter().map(|a| a.output).collect();
    let focus = cell.map(|c| focus_index(c, &x_dims)).transpose()?;
    let y = conv_transpose(x, w, b, p, ConvAlgo::Direct)?;
    let mut size = Step::new("Output size")
        .line(format!(
            "input {}, weight {} (Cin, Cout/groups, kernel)",
            fmt_shape(x.shape()),
            fmt_shape(w.shape())
        ))
        .line(TRANSPOSED_RULE);
    for (name, a) in axis_names(nd).iter().zip(win.real_axes()) {
        size = size.line(transposed_size_formula(name, a, a.output_padding()));
    }
    let mut ex = Explanation {
        title: "Transposed convolution, step by step".into(),
        steps: vec![
            size.line(format!("output shape {}", fmt_shape(y.shape()))),
            Step::new("Input and kernel")
                .line(
                    "each input value scatters a copy of the kernel, scaled by that value, into the output: input cell i \
                     places its copy starting at stride·i (minus pad_begin); where copies overlap they add, and what \
                     lands in the padding is cropped",
                )
                .line(
                    "this is the convolution's input gradient: conv-transpose(x, w) = ∂E/∂(conv input) for ∂E/∂y = x \
                     (see `stride conv ... --grad-output X --explain`), which is why it undoes the shape of a convolution",
                )
                .show("input", x.clone(), nd)
                .show("kernel", w.clone(), nd),
        ],
    };
    let cout_t = s.cin;
    let y3 = win.axes.map(|a| a.input);
    let sums = scatter_steps(&s, x, w, focus, &mut ex)?;
    let mut st = Step::new("Each output entry: the sum of the copies that overlap it");
    for n in 0..s.batch {
        for co in 0..cout_t {
            for i in 0..y_len {
                let at = (n * cout_t + co) * y_len + i;
                let bias = b.map_or(String::new(), |b| {
                    format!(" (bias {} included)", fmt_num(b.data()[co]))
                });
                st = st.line(format!(
                    "{} = {}{bias}",
                    label(
                        "y",
                        &[("n", n, s.batch > 1), ("c", co, cout_t > 1)],
                        &position(i, y3, nd)
                    ),
                    traced(&sums[at], y.data()[at])
                ));
            }
        }
    }
    ex.steps.push(st);
    ex.steps.push(Step::new("Result").show("output", y, nd));
    Ok(ex)
}

/// One step per input cell: the kernel scaled by its value and where each product lands.
/// Returns, per output entry, the products that sum to it.
fn scatter_steps(
    s: &ConvShape,
    x: &Tensor,
    w: &Tensor,
    focus: Option<usize>,
    ex: &mut Explanation,
) -> Result<Vec<Vec<Term>>> {
    let (win, nd, taps) = (&s.window, s.window.nd, s.window.taps());
    let (x_len, y_len) = (win.out_len(), win.in_len());
    let (cout_t, cin_g) = (s.cin, s.cin_g());
    let k_dims = win.axes.map(|a| a.kernel);
    let (x3, y3) = (win.axes.map(|a| a.output), win.axes.map(|a| a.input));
    let mut sums: Vec<Vec<Term>> = (0..s.batch * cout_t * y_len).map(|_| vec![]).collect();
    // for each image, input channel (the adjoint's output channel) and input cell: scatter
    for n in 0..s.batch {
        for ci in 0..s.cout {
            let co0 = (ci / s.cout_g()) * cin_g;
            for o in 0..x_len {
                let v = x.data()[(n * s.cout + ci) * x_len + o];
                let x_label = label(
                    "x",
                    &[("n", n, s.batch > 1), ("c", ci, s.cout > 1)],
                    &position(o, x3, nd),
                );
                let mut lines = vec![];
                let mut copies = Step::new(format!(
                    "{x_label} = {} scatters {} × kernel",
                    fmt_num(v),
                    fmt_num(v)
                ));
                for cog in 0..cin_g {
                    let co = co0 + cog;
                    let k = &w.data()[(ci * cin_g + cog) * taps..][..taps];
                    for (t, &kv) in k.iter().enumerate() {
                        let w_label = label(
                            "w",
                            &[("", ci, s.cout > 1), ("", cog, cin_g > 1)],
                            &position(t, k_dims, nd),
                        );
                        let y_lead = [("n", n, s.batch > 1), ("c", co, cout_t > 1)];
                        match win.source(o, t, PaddingMode::Zeros) {
                            Some(at) => {
                                lines.push(format!(
                                    "{w_label}: {} → {}",
                                    fmt_num(v * kv),
                                    label("y", &y_lead, &position(at, y3, nd))
                                ));
                                sums[(n * cout_t + co) * y_len + at].push(Term {
                                    a: (x_label.clone(), v),
                                    b: (w_label, kv),
                                });
                            }
                            None => lines.push(format!(
                                "{w_label}: {} → padding (cropped)",
                                fmt_num(v * kv)
                            )),
                        }
                    }
                    let scaled = k.iter().map(|&kv| v * kv).collect();
                    copies = copies.show(
                        format!("{} · kernel (to output channel {})", fmt_num(v), co + 1),
                        Tensor::new(k_dims[3 - nd..].to_vec(), scaled)?,
                        nd,
                    );
                }
                if focus.is_none_or(|f| f == o) {
                    ex.steps.push(copies.conclude(lines.join("; ")));
                }
            }
        }
    }
    Ok(sums)
}
