//! Worked solution for the gradients of a convolution (seed 004 (d), seed 000 (c)): given
//! `∂E/∂y`, the bias gradient as a sum, the kernel gradient as the correlation of the input with
//! `∂E/∂y`, and the input gradient as the full convolution of `∂E/∂y` with the flipped kernel,
//! every entry traced to the products that make it. The terms come from the geometry module
//! (`Window3::source`, `padded_coord`) and the values from the direct reference, so the numbers
//! narrated are the numbers computed.

use super::conv::{padded_input, size_formula};
use super::{fmt_num, fmt_products, Explanation, Step, MAX_TERMS};
use crate::error::{Error, Result};
use crate::geometry::PaddingMode;
use crate::ops::conv::{check_grad_output, conv_backward, ConvAlgo, ConvParams, ConvShape};
use crate::ops::conv::{ConvGrads, GradRequest};
use crate::tensor::Tensor;

/// One product of a traced sum: labels and values of its two factors.
struct Term {
    a: (String, f32),
    b: (String, f32),
}

/// `(i, j)`: the 1-based spatial position of flat index `flat` in a plane of sizes `dims`.
fn pos(flat: usize, dims: [usize; 3], nd: usize) -> String {
    let idx = [
        flat / (dims[1] * dims[2]),
        (flat / dims[2]) % dims[1],
        flat % dims[2],
    ];
    let p: Vec<String> = idx[3 - nd..].iter().map(|v| (v + 1).to_string()).collect();
    format!("({})", p.join(","))
}

/// `name[n=.., c=..](i,j)` with the leading indices shown only when they vary.
fn label(name: &str, lead: &[(&str, usize, bool)], at: String) -> String {
    let parts: Vec<String> = lead
        .iter()
        .filter(|(_, _, show)| *show)
        .map(|(k, v, _)| {
            if k.is_empty() {
                v.to_string()
            } else {
                format!("{k}={v}")
            }
        })
        .collect();
    if parts.is_empty() {
        format!("{name}{at}")
    } else {
        format!("{name}[{}]{at}", parts.join(", "))
    }
}

/// `a·b + c·d = 1·4 + 1·5 = 9` (or a note when nothing contributes).
fn traced(terms: &[Term], value: f32) -> String {
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

/// Explains the gradients of `y = conv(x, w) + b` for the output gradient `gy`.
pub fn explain_grad(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    gy: &Tensor,
    p: &ConvParams,
) -> Result<Explanation> {
    let s = ConvShape::new(x.shape(), w.shape(), b.map(|b| b.shape()), p)?;
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
    let grads = conv_backward(x, w, gy, p, ConvAlgo::Direct, GradRequest::all())?;
    let nd = s.window.nd;
    let mut ex = Explanation {
        title: "Convolution gradients, step by step".into(),
        steps: vec![],
    };
    let mut given = Step::new("The chain rule")
        .line("forward: y[o] = Σ_t x[src(o, t)] · w[t] (+ b), where output cell o, kernel tap t reads input pixel src(o, t)");
    for (name, a) in super::conv::axis_names(nd).iter().zip(s.window.real_axes()) {
        given = given.line(size_formula(name, a));
    }
    given = given
        .line("each product x[src(o, t)]·w[t] passes ∂E/∂y[o]·x[src(o, t)] to w[t] and ∂E/∂y[o]·w[t] to x[src(o, t)]; g = ∂E/∂y below")
        .show("g = ∂E/∂y", gy.clone(), nd);
    if p.flip {
        given = given.line(
            "--flip: the forward used the flipped kernel w' (w'[t] = w[flip t]); so ∂E/∂w[t] = ∂E/∂w'[flip t]",
        );
    }
    ex.steps.push(given);
    if b.is_some() {
        ex.steps.push(bias_step(&s, gy, &grads));
    }
    ex.steps.push(weight_step(&s, x, w, gy, p, &grads));
    ex.steps.extend(input_steps(&s, w, gy, p, &grads));
    let mut result = Step::new("Result")
        .show("∂E/∂x", grads.input.expect("input gradient"), nd)
        .show("∂E/∂w", grads.weight.expect("weight gradient"), nd);
    if b.is_some() {
        result = result.show("∂E/∂b", grads.bias.expect("bias gradient"), 0);
    }
    ex.steps.push(result);
    Ok(ex)
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
            label("∂E/∂b", &[("", c, true)], String::new()),
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
    if win.real_axes().iter().any(|a| a.pad_begin + a.pad_end > 0) {
        let img = s.cin * in_len;
        for n in 0..s.batch {
            st = st.show(
                format!("padded input, image {n}"),
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
                                label("g", &lead_g, pos(o, out_dims, nd)),
                                gy.data()[(n * s.cout + oc) * out_len + o],
                            ),
                            b: (
                                label("x", &lead_x, pos(src, in_dims, nd)),
                                x.data()[(n * s.cin + ic) * in_len + src],
                            ),
                        });
                    }
                }
                let lead = [("", oc, w.shape()[0] > 1), ("", icg, cin_g > 1)];
                let at = (oc * cin_g + icg) * taps + t;
                st = st.line(format!(
                    "∂E/∂{} = {}",
                    label("w", &lead, pos(t, k_dims, nd)),
                    traced(&terms, gw.data()[at])
                ));
            }
        }
    }
    st
}

/// `∂E/∂x[n, ic, i] = Σ_{oc} Σ_{(o, t): src(o, t) = i} g[n, oc, o] · w'[oc, ic, t]`: the full
/// convolution of the output gradient with the flipped kernel, then the padding dropped (or,
/// for reflect / replicate / circular, folded back onto the pixels it copied).
fn input_steps(
    s: &ConvShape,
    w: &Tensor,
    gy: &Tensor,
    p: &ConvParams,
    grads: &ConvGrads,
) -> Vec<Step> {
    let win = &s.window;
    let (in_len, out_len, taps, cin_g, cout_g, nd) = (
        win.in_len(),
        win.out_len(),
        win.taps(),
        s.cin_g(),
        s.cout_g(),
        win.nd,
    );
    let [ad, ah, aw] = win.axes;
    let in_dims = win.axes.map(|a| a.input);
    let out_dims = win.axes.map(|a| a.output);
    let k_dims = win.axes.map(|a| a.kernel);
    let pad_dims = win.axes.map(|a| a.padded());
    let spread_dims = win.axes.map(|a| a.spread_len());
    // the kernel the forward used (flipped for --flip), and its mirror for the full convolution
    let w_used = if p.flip { w.flip_spatial() } else { w.clone() };
    let w_mirror = w_used.flip_spatial();
    let split = |o: usize, dims: [usize; 3]| {
        [
            o / (dims[1] * dims[2]),
            (o / dims[2]) % dims[1],
            o % dims[2],
        ]
    };
    let flat = |c: [usize; 3], dims: [usize; 3]| (c[0] * dims[1] + c[1]) * dims[2] + c[2];
    let spread_len: usize = spread_dims.iter().product();
    let pad_len: usize = pad_dims.iter().product();
    let mut spread = vec![0.0f32; s.batch * s.cout * spread_len];
    let mut gx_pad = vec![0.0f64; s.batch * s.cin * pad_len];
    let mut terms: Vec<Vec<Term>> = (0..s.batch * s.cin * in_len).map(|_| vec![]).collect();
    // for each image, output channel and output cell: spread g, and send g·w to every tap
    for n in 0..s.batch {
        for oc in 0..s.cout {
            let ic0 = (oc / cout_g) * cin_g;
            for o in 0..out_len {
                let g = gy.data()[(n * s.cout + oc) * out_len + o];
                let oi = split(o, out_dims);
                let at = [0, 1, 2].map(|a| win.axes[a].padded_coord(oi[a], win.axes[a].kernel - 1));
                spread[(n * s.cout + oc) * spread_len + flat(at, spread_dims)] = g;
                for icg in 0..cin_g {
                    let ic = ic0 + icg;
                    for t in 0..taps {
                        let wv = w_used.data()[(oc * cin_g + icg) * taps + t];
                        let ti = split(t, k_dims);
                        let c = [
                            ad.padded_coord(oi[0], ti[0]),
                            ah.padded_coord(oi[1], ti[1]),
                            aw.padded_coord(oi[2], ti[2]),
                        ];
                        gx_pad[(n * s.cin + ic) * pad_len + flat(c, pad_dims)] +=
                            g as f64 * wv as f64;
                        if let Some(src) = win.source(o, t, s.mode) {
                            let wt = if p.flip { taps - 1 - t } else { t };
                            terms[(n * s.cin + ic) * in_len + src].push(Term {
                                a: (
                                    label(
                                        "g",
                                        &[("n", n, s.batch > 1), ("c", oc, s.cout > 1)],
                                        pos(o, out_dims, nd),
                                    ),
                                    g,
                                ),
                                b: (
                                    label(
                                        "w",
                                        &[("", oc, s.cout > 1), ("", icg, cin_g > 1)],
                                        pos(wt, k_dims, nd),
                                    ),
                                    wv,
                                ),
                            });
                        }
                    }
                }
            }
        }
    }
    let shape = |lead: usize, dims: [usize; 3]| {
        let mut v = vec![s.batch, lead];
        v.extend(&dims[3 - nd..]);
        v
    };
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
            Tensor::new(shape(s.cout, spread_dims), spread).expect("spread shape"),
            nd,
        )
        .show("flipped kernel", w_mirror, nd);
    let full = if win.real_axes().iter().any(|a| a.pad_begin + a.pad_end > 0) {
        full.show(
            "∂E/∂(padded input)",
            Tensor::new(
                shape(s.cin, pad_dims),
                gx_pad.iter().map(|&v| v as f32).collect(),
            )
            .expect("padded shape"),
            nd,
        )
    } else {
        full
    };
    let fold = match s.mode {
        PaddingMode::Zeros => "drop the padding: zero padding has no input pixel to pass its gradient to",
        PaddingMode::Reflect => "fold the padding back: each reflected cell adds its gradient to the pixel it mirrored",
        PaddingMode::Replicate => "fold the padding back: each replicated cell adds its gradient to the edge pixel it copied",
        PaddingMode::Circular => "fold the padding back: each wrapped cell adds its gradient to the pixel on the opposite side",
    };
    let gx = grads.input.as_ref().expect("input gradient");
    let mut per_entry = Step::new("Input gradient, entry by entry").line(fold);
    for n in 0..s.batch {
        for ic in 0..s.cin {
            for i in 0..in_len {
                let at = (n * s.cin + ic) * in_len + i;
                let lead = [("n", n, s.batch > 1), ("c", ic, s.cin > 1)];
                per_entry = per_entry.line(format!(
                    "∂E/∂{} = {}",
                    label("x", &lead, pos(i, in_dims, nd)),
                    traced(&terms[at], gx.data()[at])
                ));
            }
        }
    }
    vec![full, per_entry]
}
