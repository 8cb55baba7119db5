//! Worked solution for the gradients of a convolution (seed 004 (d), seed 000 (c)): given
//! `∂E/∂y`, the bias gradient as a sum, the kernel gradient as the correlation of the input with
//! `∂E/∂y`, and the input gradient as the full convolution of `∂E/∂y` with the flipped kernel,
//! every entry traced to the products that make it. The terms come from the geometry module
//! (`Window3::source`, `padded_coord`) and the values from the direct reference, so the numbers
//! narrated are the numbers computed.

use super::conv::{focus_index, padded_input};
use super::{axis_names, is_padded, label, position, size_formula, split3};
use super::{fmt_num, fmt_products, Explanation, Step, MAX_TERMS};
use crate::error::{Error, Result};
use crate::geometry::PaddingMode;
use crate::ops::conv::{check_grad_output, conv_backward, ConvAlgo, ConvParams, ConvShape};
use crate::ops::conv::{ConvGrads, GradRequest};
use crate::tensor::Tensor;

/// One product of a traced sum: labels and values of its two factors.
pub(crate) struct Term {
    pub a: (String, f32),
    pub b: (String, f32),
}

/// `a·b + c·d = 1·4 + 1·5 = 9` (or a note when nothing contributes).
pub(crate) fn traced(terms: &[Term], value: f32) -> String {
    if terms.is_empty() {
        return format!("no window reads it = {}", fmt_num(value));
    }
    let sym: Vec<String> = terms
        .iter()
        .map(|t| format!("{}·{}", t.a.0, t.b.0))
        .collect();
    let nums: Vec<(f32, f32)> = terms.iter().map(|t| (t.a.1, t.b.1)).collect();
    format!(
        "{} = {} = {}",
        sym.join(" + "),
        fmt_products(&nums),
        fmt_num(value)
    )
}

/// The checked shape of a gradient explanation: the forward's operands as `conv` takes them,
/// and `gy` of the output's shape and small enough to narrate.
pub(crate) fn grad_shape(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    gy: &Tensor,
    p: &ConvParams,
) -> Result<ConvShape> {
    let s = ConvShape::new(x.shape(), w.shape(), b.map(|b| b.shape()), p)?;
    check_size(&s, gy)?;
    Ok(s)
}

pub(crate) fn check_size(s: &ConvShape, gy: &Tensor) -> Result<()> {
    check_grad_output(gy.shape(), &s.out_shape())?;
    let terms = s.batch * s.cout * s.window.out_len() * s.reduction_len();
    if terms > MAX_TERMS {
        return Err(Error::TooLarge {
            what: "explain".into(),
            msg: format!(
                "these gradients have {terms} products each, too many to narrate (limit {MAX_TERMS}); \
                 use a smaller input or drop --explain"
            ),
        });
    }
    Ok(())
}

/// The chain-rule step: the forward sum, the size formulas and the given `g = ∂E/∂y`.
fn chain_rule_step(s: &ConvShape, gy: &Tensor, p: &ConvParams) -> Step {
    let nd = s.window.nd;
    let mut given = Step::new("The chain rule")
        .line("forward: y[o] = Σ_t x[src(o, t)] · w[t] (+ b), where output cell o, kernel tap t reads input pixel src(o, t)");
    for (name, a) in axis_names(nd).iter().zip(s.window.real_axes()) {
        given = given.line(size_formula(name, a, false));
    }
    given = given
        .line("each product x[src(o, t)]·w[t] passes ∂E/∂y[o]·x[src(o, t)] to w[t] and ∂E/∂y[o]·w[t] to x[src(o, t)]; g = ∂E/∂y below")
        .show("g = ∂E/∂y", gy.clone(), nd);
    if p.flip {
        given = given.line(
            "--flip: the forward used the flipped kernel w' (w'[t] = w[flip t]); so ∂E/∂w[t] = ∂E/∂w'[flip t]",
        );
    }
    given
}

/// Explains the gradients of `y = conv(x, w) + b` for the output gradient `gy`.
pub fn explain_grad(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    gy: &Tensor,
    p: &ConvParams,
) -> Result<Explanation> {
    explain_grad_at(x, w, b, gy, p, None)
}

/// [`explain_grad`], with the input gradient traced for one input cell only when `cell`
/// (1-based spatial position, `--cell I,J`) is given.
pub fn explain_grad_at(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    gy: &Tensor,
    p: &ConvParams,
    cell: Option<&[usize]>,
) -> Result<Explanation> {
    let s = grad_shape(x, w, b, gy, p)?;
    let in_dims: Vec<usize> = s.window.real_axes().iter().map(|a| a.input).collect();
    let focus = cell.map(|c| focus_index(c, &in_dims)).transpose()?;
    let grads = conv_backward(x, w, gy, p, ConvAlgo::Direct, GradRequest::all())?;
    let nd = s.window.nd;
    let mut ex = Explanation {
        title: "Convolution gradients, step by step".into(),
        steps: vec![chain_rule_step(&s, gy, p)],
    };
    if b.is_some() {
        ex.steps.push(bias_step(&s, gy, &grads));
    }
    ex.steps.push(weight_step(&s, x, w, gy, p, &grads));
    let traced = input_terms(&s, w, gy, p);
    ex.steps.push(full_conv_step(&s, w, p, &traced));
    ex.steps.push(entry_step(&s, &traced, &grads, focus));
    let mut result = Step::new("Result")
        .show("∂E/∂x", grads.input.expect("input gradient"), nd)
        .show("∂E/∂w", grads.weight.expect("weight gradient"), nd);
    if b.is_some() {
        result = result.show("∂E/∂b", grads.bias.expect("bias gradient"), 0);
    }
    ex.steps.push(result);
    Ok(ex)
}

/// Only the kernel gradient of `y = conv(x, w)` (for learning a kernel): the chain rule and
/// `∂E/∂w` entry by entry.
pub fn explain_weight_grad(
    x: &Tensor,
    w: &Tensor,
    gy: &Tensor,
    p: &ConvParams,
) -> Result<Explanation> {
    let s = grad_shape(x, w, None, gy, p)?;
    let want = GradRequest {
        weight: true,
        ..GradRequest::default()
    };
    let grads = conv_backward(x, w, gy, p, ConvAlgo::Direct, want)?;
    Ok(Explanation {
        title: "Kernel gradient, step by step".into(),
        steps: vec![
            chain_rule_step(&s, gy, p),
            weight_step(&s, x, w, gy, p, &grads),
        ],
    })
}

/// `∂E/∂b[c] = Σ_n Σ_o g[n, c, o]`.
fn bias_step(s: &ConvShape, gy: &Tensor, grads: &ConvGrads) -> Step {
    let out_len = s.window.out_len();
    let mut st = Step::new("Bias gradient: the sum of ∂E/∂y over each output channel");
    let gb = grads.bias.as_ref().expect("bias gradient");
    for c in 0..s.cout {
        let vals: Vec<String> = (0..s.batch)
            .flat_map(|n| gy.data()[(n * s.cout + c) * out_len..][..out_len].iter())
            .map(|&v| fmt_num(v))
            .collect();
        st = st.line(format!(
            "{} = {} = {}",
            label("∂E/∂b", &[("", c, true)], ""),
            vals.join(" + "),
            fmt_num(gb.data()[c])
        ));
    }
    st
}

/// `∂E/∂w[oc, ic, t] = Σ_n Σ_o g[n, oc, o] · x[n, ic, src(o, t)]`: the correlation of the input
/// with the output gradient.
fn weight_step(
    s: &ConvShape,
    x: &Tensor,
    w: &Tensor,
    gy: &Tensor,
    p: &ConvParams,
    grads: &ConvGrads,
) -> Step {
    let win = &s.window;
    let (in_len, out_len, taps, cin_g, nd) =
        (win.in_len(), win.out_len(), win.taps(), s.cin_g(), win.nd);
    let in_dims = win.axes.map(|a| a.input);
    let out_dims = win.axes.map(|a| a.output);
    let k_dims = win.axes.map(|a| a.kernel);
    let strides: Vec<String> = win
        .real_axes()
        .iter()
        .map(|a| a.stride.to_string())
        .collect();
    let pad_note = match s.mode {
        PaddingMode::Zeros => "padding cells read 0 and drop out",
        _ => "padding cells read the pixel they copy",
    };
    let mut st = Step::new("Kernel gradient: correlate the input with ∂E/∂y").line(format!(
        "∂E/∂w[t] = Σ_o g[o] · x[src(o, t)]: lay g over the (padded) input with its entries {} apart (the stride) \
         and shifted by each tap t; {pad_note}",
        strides.join("×")
    ));
    if is_padded(win) {
        let img = s.cin * in_len;
        for n in 0..s.batch {
            st = st.show(
                format!("padded input, image {}", n + 1),
                padded_input(s, &x.data()[n * img..][..img]),
                nd,
            );
        }
    }
    let gw = grads.weight.as_ref().expect("weight gradient");
    for oc in 0..s.cout {
        let ic0 = (oc / s.cout_g()) * cin_g;
        for icg in 0..cin_g {
            let ic = ic0 + icg;
            for t in 0..taps {
                // the tap the forward used for w[t] (flipped kernel: the mirrored tap)
                let tu = if p.flip { taps - 1 - t } else { t };
                let mut terms = vec![];
                for n in 0..s.batch {
                    for o in 0..out_len {
                        let Some(src) = win.source(o, tu, s.mode) else {
                            continue;
                        };
                        let lead_g = [("n", n, s.batch > 1), ("c", oc, s.cout > 1)];
                        let lead_x = [("n", n, s.batch > 1), ("c", ic, s.cin > 1)];
                        terms.push(Term {
                            a: (
                                label("g", &lead_g, &position(o, out_dims, nd)),
                                gy.data()[(n * s.cout + oc) * out_len + o],
                            ),
                            b: (
                                label("x", &lead_x, &position(src, in_dims, nd)),
                                x.data()[(n * s.cin + ic) * in_len + src],
                            ),
                        });
                    }
                }
                let lead = [("", oc, w.shape()[0] > 1), ("", icg, cin_g > 1)];
                let at = (oc * cin_g + icg) * taps + t;
                st = st.line(format!(
                    "∂E/∂{} = {}",
                    label("w", &lead, &position(t, k_dims, nd)),
                    traced(&terms, gw.data()[at])
                ));
            }
        }
    }
    st
}

/// What the input gradient is made of: `g` spread out by the stride (the grid of the full
/// convolution), the gradient with respect to the padded input, and for each input entry
/// `(n, ic, i)` the products `g·w` that reach it.
struct InputTrace {
    /// `(N, Cout, *spread)`.
    spread: Vec<f32>,
    /// `(N, Cin, *padded)`, summed in f64.
    gx_pad: Vec<f64>,
    terms: Vec<Vec<Term>>,
}

/// `∂E/∂x[n, ic, i] = Σ_{oc} Σ_{(o, t): src(o, t) = i} g[n, oc, o] · w'[oc, ic, t]`: for
/// each image, output channel and output cell, spread `g` and send `g·w` to every tap.
fn input_terms(s: &ConvShape, w: &Tensor, gy: &Tensor, p: &ConvParams) -> InputTrace {
    let win = &s.window;
    let (in_len, out_len, taps, cin_g, nd) =
        (win.in_len(), win.out_len(), win.taps(), s.cin_g(), win.nd);
    let out_dims = win.axes.map(|a| a.output);
    let k_dims = win.axes.map(|a| a.kernel);
    let pad_dims = win.axes.map(|a| a.padded());
    let spread_dims = win.axes.map(|a| a.spread_len());
    // the kernel the forward used (flipped for --flip)
    let w_used = super::kernel_used(w, p);
    let flat = |c: [usize; 3], dims: [usize; 3]| (c[0] * dims[1] + c[1]) * dims[2] + c[2];
    let spread_len: usize = spread_dims.iter().product();
    let pad_len: usize = pad_dims.iter().product();
    let mut tr = InputTrace {
        spread: vec![0.0; s.batch * s.cout * spread_len],
        gx_pad: vec![0.0; s.batch * s.cin * pad_len],
        terms: (0..s.batch * s.cin * in_len).map(|_| vec![]).collect(),
    };
    for n in 0..s.batch {
        for oc in 0..s.cout {
            let ic0 = (oc / s.cout_g()) * cin_g;
            for o in 0..out_len {
                let g = gy.data()[(n * s.cout + oc) * out_len + o];
                let oi = split3(o, out_dims);
                let at = [0, 1, 2].map(|a| win.axes[a].padded_coord(oi[a], win.axes[a].kernel - 1));
                tr.spread[(n * s.cout + oc) * spread_len + flat(at, spread_dims)] = g;
                let g_label = label(
                    "g",
                    &[("n", n, s.batch > 1), ("c", oc, s.cout > 1)],
                    &position(o, out_dims, nd),
                );
                for icg in 0..cin_g {
                    let ic = ic0 + icg;
                    for t in 0..taps {
                        let wv = w_used.data()[(oc * cin_g + icg) * taps + t];
                        let ti = split3(t, k_dims);
                        let c = [0, 1, 2].map(|a| win.axes[a].padded_coord(oi[a], ti[a]));
                        tr.gx_pad[(n * s.cin + ic) * pad_len + flat(c, pad_dims)] +=
                            g as f64 * wv as f64;
                        if let Some(src) = win.source(o, t, s.mode) {
                            // the weight as the user gave it (the mirrored tap for --flip)
                            let wt = if p.flip { taps - 1 - t } else { t };
                            let w_label = label(
                                "w",
                                &[("", oc, s.cout > 1), ("", icg, cin_g > 1)],
                                &position(wt, k_dims, nd),
                            );
                            tr.terms[(n * s.cin + ic) * in_len + src].push(Term {
                                a: (g_label.clone(), g),
                                b: (w_label, wv),
                            });
                        }
                    }
                }
            }
        }
    }
    tr
}

/// The full convolution: `g` spread by the stride and padded, the flipped kernel, and (when
/// the forward padded) the gradient with respect to the padded input.
fn full_conv_step(s: &ConvShape, w: &Tensor, p: &ConvParams, tr: &InputTrace) -> Step {
    let win = &s.window;
    let nd = win.nd;
    let shape = |lead: usize, dims: [usize; 3]| {
        let mut v = vec![s.batch, lead];
        v.extend(&dims[3 - nd..]);
        v
    };
    let w_used = super::kernel_used(w, p);
    let k_txt: Vec<String> = win
        .real_axes()
        .iter()
        .map(|a| a.padded_coord(0, a.kernel - 1).to_string())
        .collect();
    let full = Step::new("Input gradient: full convolution of ∂E/∂y with the flipped kernel")
        .line("∂E/∂x[i] = Σ over every (o, t) whose window reads pixel i of g[o] · w[t]")
        .line(format!(
            "spread g out by the stride (stride−1 zeros between entries), pad it with dilation·(kernel−1) = {} zeros \
             on each side (per axis), and cross-correlate it with the kernel flipped on every axis (taps dilation apart): \
             that is the gradient with respect to the padded input",
            k_txt.join(", ")
        ))
        .show(
            "g spread and padded",
            Tensor::new(shape(s.cout, win.axes.map(|a| a.spread_len())), tr.spread.clone()).expect("spread shape"),
            nd,
        )
        .show("flipped kernel", w_used.flip_spatial(), nd);
    if !is_padded(win) {
        return full;
    }
    let gx_pad = tr.gx_pad.iter().map(|&v| v as f32).collect();
    full.show(
        "∂E/∂(padded input)",
        Tensor::new(shape(s.cin, win.axes.map(|a| a.padded())), gx_pad).expect("padded shape"),
        nd,
    )
}

/// Each input entry traced to its products (or only the `focus` cell), after saying what
/// happens to the padding.
fn entry_step(s: &ConvShape, tr: &InputTrace, grads: &ConvGrads, focus: Option<usize>) -> Step {
    let win = &s.window;
    let (in_len, in_dims, nd) = (win.in_len(), win.axes.map(|a| a.input), win.nd);
    let fold = match s.mode {
        PaddingMode::Zeros => "drop the padding: zero padding has no input pixel to pass its gradient to",
        PaddingMode::Reflect => "fold the padding back: each reflected cell adds its gradient to the pixel it mirrored",
        PaddingMode::Replicate => "fold the padding back: each replicated cell adds its gradient to the edge pixel it copied",
        PaddingMode::Circular => "fold the padding back: each wrapped cell adds its gradient to the pixel on the opposite side",
    };
    let gx = grads.input.as_ref().expect("input gradient");
    let mut st = Step::new("Input gradient, entry by entry").line(fold);
    for n in 0..s.batch {
        for ic in 0..s.cin {
            for i in (0..in_len).filter(|&i| focus.is_none_or(|f| f == i)) {
                let at = (n * s.cin + ic) * in_len + i;
                let lead = [("n", n, s.batch > 1), ("c", ic, s.cin > 1)];
                st = st.line(format!(
                    "∂E/∂{} = {}",
                    label("x", &lead, &position(i, in_dims, nd)),
                    traced(&tr.terms[at], gx.data()[at])
                ));
            }
        }
    }
    st
}
