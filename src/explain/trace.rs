//! Structured traces of a convolution, its gradients and its transpose: for every result entry,
//! which entries of which tensors were multiplied to make it, as flat indices. The narrations in
//! `conv` / `conv_grad` say the same in words; a trace is what a front-end needs to *highlight*
//! (the web page lights up a window, its kernel taps and the output cell they land in). Every
//! position comes from the geometry module (`Window3::source`, `AxisWindow::padded_coord`) and
//! every value from the library's own results, so the products listed are those computed; the
//! tests check that each entry's products sum to the value the library returns.
//!
//! Index conventions (all flat, row-major, over the whole tensor as the user gave it):
//! - `x_at`: into the padded input `(N, Cin, *padded)` (see [`conv_trace`]'s `padded`);
//! - `w_at`: into the weight as given (with `flip`, the tap of the given kernel that was used);
//! - `y_at` / `gy_at`: into the output (or output gradient);
//! - `gx_at`: into the input (unpadded).

use super::conv::padded_input;
use super::MAX_TERMS;
use crate::error::{Error, Result};
use crate::geometry::{PaddingMode, Window3};
use crate::ops::conv::{check_grad_output, GradRequest};
use crate::ops::conv::{conv, conv_backward, ConvAlgo, ConvGrads, ConvParams, ConvShape};
use crate::ops::conv_transpose::{
    adjoint_shape, conv_transpose, conv_transpose_backward, ConvTransposeParams,
};
use crate::tensor::Tensor;

/// One product `a · b` of a traced sum: flat indices into the two tensors and their values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Term {
    pub a_at: usize,
    pub a: f32,
    pub b_at: usize,
    pub b: f32,
}

/// One result entry and the products that make it (plus a bias, if any).
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Flat index of the entry in its result tensor.
    pub at: usize,
    pub terms: Vec<Term>,
    pub bias: Option<f32>,
    /// The value the library computed.
    pub value: f32,
}

/// A convolution forward, traced: `y[at] = Σ padded[a_at] · w[b_at] (+ bias)`.
#[derive(Clone, Debug)]
pub struct ConvTrace {
    /// `(N, Cin, *padded)` (without `N` for an unbatched input): the input with its padding
    /// filled in as the padding mode fills it.
    pub padded: Tensor,
    /// The kernel actually slid over the input (flipped with `flip`).
    pub kernel_used: Tensor,
    pub y: Tensor,
    /// One entry per output value, in the output's order.
    pub cells: Vec<Entry>,
    /// Flat indices into `padded` of the cells that are padding (not an input pixel's place).
    pub pad: Vec<usize>,
}

/// The gradients of a convolution, traced: `gw[at] = Σ padded[a_at] · gy[b_at]`,
/// `gx[at] = Σ w[a_at] · gy[b_at]` (the full convolution of `gy` with the flipped kernel).
#[derive(Clone, Debug)]
pub struct ConvGradTrace {
    pub grads: ConvGrads,
    pub weight: Vec<Entry>,
    pub input: Vec<Entry>,
}

/// A transposed convolution, traced by scatter: input value `x[at]` adds `x · w[b_at]` to
/// `y[y_at]` for each of its targets; `a_at` of each term is the target `y` index.
#[derive(Clone, Debug)]
pub struct ScatterTrace {
    pub y: Tensor,
    /// One entry per input value: `terms[i] = (y index, x value, w index, w value)`.
    pub inputs: Vec<Entry>,
    /// Each output value as the sum of what was scattered into it (plus the bias).
    pub outputs: Vec<Entry>,
}

/// Most values a traced tensor (the padded input, a transposed output) may hold: a page shows
/// every one of them, and a far larger one means padding or stride beyond any exercise.
pub const MAX_SHOWN: usize = 1 << 16;

fn check_shown(what: &str, values: usize) -> Result<()> {
    if values > MAX_SHOWN {
        return Err(Error::TooLarge {
            what: what.into(),
            msg: format!(
                "this would show {values} values, too many to trace step by step (limit {MAX_SHOWN}); \
                 use less padding or a smaller stride"
            ),
        });
    }
    Ok(())
}

fn check_terms(what: &str, terms: usize) -> Result<()> {
    if terms > MAX_TERMS {
        return Err(Error::TooLarge {
            what: what.into(),
            msg: format!(
                "this needs {terms} multiply-adds, too many to show step by step (limit {MAX_TERMS}); \
                 use a smaller input or kernel"
            ),
        });
    }
    Ok(())
}

/// Flat tap index of the tap mirrored on every spatial axis (`--flip`).
fn flipped_tap(win: &Window3, t: usize) -> usize {
    let [ad, ah, aw] = &win.axes;
    let [td, th, tw] = win.tap_coords(t);
    ((ad.kernel - 1 - td) * ah.kernel + (ah.kernel - 1 - th)) * aw.kernel + (aw.kernel - 1 - tw)
}

/// Flat index in the padded plane of the tap `t` of output cell `o`: `o·s + t·d` per axis.
fn padded_at(win: &Window3, o: usize, t: usize) -> usize {
    let [ad, ah, aw] = &win.axes;
    let [od, oh, ow] = win.out_coords(o);
    let [td, th, tw] = win.tap_coords(t);
    let (d, h, w) = (
        ad.padded_coord(od, td),
        ah.padded_coord(oh, th),
        aw.padded_coord(ow, tw),
    );
    (d * ah.padded() + h) * aw.padded() + w
}

fn padded_len(win: &Window3) -> usize {
    win.axes.iter().map(|a| a.padded()).product()
}

/// For each `(n, oc, o, icg, t)` of the direct sum, calls `f(y_at, x_at, w_at)` with the flat
/// output index, padded-input index and (given) weight index.
fn for_each_product(s: &ConvShape, flip: bool, mut f: impl FnMut(usize, usize, usize)) {
    let win = &s.window;
    let (out_len, taps, cin_g, plen) = (win.out_len(), win.taps(), s.cin_g(), padded_len(win));
    for n in 0..s.batch {
        for oc in 0..s.cout {
            let g = oc / s.cout_g();
            for o in 0..out_len {
                let y_at = (n * s.cout + oc) * out_len + o;
                for icg in 0..cin_g {
                    let ic = g * cin_g + icg;
                    for t in 0..taps {
                        let wt = if flip { flipped_tap(win, t) } else { t };
                        let x_at = (n * s.cin + ic) * plen + padded_at(win, o, t);
                        f(y_at, x_at, (oc * cin_g + icg) * taps + wt);
                    }
                }
            }
        }
    }
}

/// Traces `conv(x, w, b)`: the padded input and, per output value, its window's products.
pub fn conv_trace(x: &Tensor, w: &Tensor, b: Option<&Tensor>, p: &ConvParams) -> Result<ConvTrace> {
    let s = ConvShape::new(x.shape(), w.shape(), b.map(|b| b.shape()), p)?;
    check_terms("input", s.macs() as usize)?;
    check_shown("padding", s.batch * s.cin * padded_len(&s.window))?;
    let y = conv(x, w, b, p, ConvAlgo::Direct)?;
    let in_img = s.cin * s.window.in_len();
    let mut pad = Vec::with_capacity(s.batch * s.cin * padded_len(&s.window));
    for n in 0..s.batch {
        pad.extend_from_slice(padded_input(&s, &x.data()[n * in_img..][..in_img]).data());
    }
    let mut pshape: Vec<usize> = vec![s.cin];
    pshape.extend(s.window.real_axes().iter().map(|a| a.padded()));
    if s.batched {
        pshape.insert(0, s.batch);
    }
    let padded = Tensor::new(pshape, pad)?;
    let mut cells: Vec<Entry> = (0..y.numel())
        .map(|at| Entry {
            at,
            terms: vec![],
            bias: b.map(|b| b.data()[(at / s.window.out_len()) % s.cout]),
            value: y.data()[at],
        })
        .collect();
    for_each_product(&s, p.flip, |y_at, x_at, w_at| {
        cells[y_at].terms.push(Term {
            a_at: x_at,
            a: padded.data()[x_at],
            b_at: w_at,
            b: w.data()[w_at],
        })
    });
    let kernel_used = super::kernel_used(w, p);
    let plen = padded_len(&s.window);
    let pad = (0..padded.numel())
        .filter(|&at| is_padding(&s.window, at % plen))
        .collect();
    Ok(ConvTrace {
        padded,
        kernel_used,
        y,
        cells,
        pad,
    })
}

/// Traces the gradients of `y = conv(x, w) + b` for the output gradient `gy`: every entry of
/// `∂E/∂w` and `∂E/∂x` with the products that make it.
pub fn conv_grad_trace(
    x: &Tensor,
    w: &Tensor,
    gy: &Tensor,
    p: &ConvParams,
) -> Result<ConvGradTrace> {
    let s = ConvShape::new(x.shape(), w.shape(), None, p)?;
    check_grad_output(gy.shape(), &s.out_shape())?;
    check_terms("input", s.macs() as usize)?;
    check_shown("padding", s.batch * s.cin * padded_len(&s.window))?;
    let grads = conv_backward(x, w, gy, p, ConvAlgo::Direct, GradRequest::all())?;
    let (gw, gx) = (
        grads.weight.as_ref().expect("asked"),
        grads.input.as_ref().expect("asked"),
    );
    let entries = |t: &Tensor| -> Vec<Entry> {
        t.data()
            .iter()
            .enumerate()
            .map(|(at, &value)| Entry {
                at,
                terms: vec![],
                bias: None,
                value,
            })
            .collect()
    };
    let (mut weight, mut input) = (entries(gw), entries(gx));
    let trace = conv_trace(x, w, None, p)?;
    let win = &s.window;
    let (plen, in_len) = (padded_len(win), win.in_len());
    for_each_product(&s, p.flip, |y_at, x_at, w_at| {
        let g = gy.data()[y_at];
        weight[w_at].terms.push(Term {
            a_at: x_at,
            a: trace.padded.data()[x_at],
            b_at: y_at,
            b: g,
        });
        // the input pixel whose value sits at this padded position (padding modes copy pixels,
        // so their gradient flows back to the pixel copied; zero padding has no pixel)
        let (img, at) = (x_at / plen, x_at % plen);
        if let Some(src) = padded_source(win, at, s.mode) {
            input[img * in_len + src].terms.push(Term {
                a_at: w_at,
                a: w.data()[w_at],
                b_at: y_at,
                b: g,
            });
        }
    });
    Ok(ConvGradTrace {
        grads,
        weight,
        input,
    })
}

/// True when flat padded index `at` lies in the padding (outside `pb..pb + i` on some axis).
fn is_padding(win: &Window3, at: usize) -> bool {
    let [_, ah, aw] = &win.axes;
    let c = [
        at / (ah.padded() * aw.padded()),
        (at / aw.padded()) % ah.padded(),
        at % aw.padded(),
    ];
    win.axes
        .iter()
        .zip(c)
        .any(|(a, c)| c < a.pad_begin || c >= a.pad_begin + a.input)
}

/// The in-plane input index whose value appears at flat padded index `at` under `mode`.
fn padded_source(win: &Window3, at: usize, mode: PaddingMode) -> Option<usize> {
    let [ad, ah, aw] = &win.axes;
    let (d, h, w) = (
        at / (ah.padded() * aw.padded()),
        (at / aw.padded()) % ah.padded(),
        at % aw.padded(),
    );
    let (d, h, w) = (
        ad.padded_source(d, mode)?,
        ah.padded_source(h, mode)?,
        aw.padded_source(w, mode)?,
    );
    Some((d * ah.input + h) * aw.input + w)
}

/// Traces `conv_transpose(x, w, b)`: each input value scattered, scaled by the kernel, into the
/// output, and each output value as the sum of what landed on it.
pub fn conv_transpose_trace(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    p: &ConvTransposeParams,
) -> Result<ScatterTrace> {
    // the adjoint convolution: its `output` cells are our inputs, its `input` cells our outputs
    let s = adjoint_shape(x.shape(), w.shape(), b.map(|b| b.shape()), p)?;
    check_terms("input", s.macs() as usize)?;
    check_shown("stride", s.batch * s.cin * padded_len(&s.window))?;
    let y = conv_transpose(x, w, b, p, ConvAlgo::Direct)?;
    let win = &s.window;
    let (x_len, y_len, taps) = (win.out_len(), win.in_len(), win.taps());
    let (cin_t, cout_g) = (s.cout, s.cin_g());
    let mut inputs = vec![];
    let mut outputs: Vec<Entry> = (0..y.numel())
        .map(|at| Entry {
            at,
            terms: vec![],
            bias: b.map(|b| b.data()[(at / y_len) % s.cin]),
            value: y.data()[at],
        })
        .collect();
    for n in 0..s.batch {
        for ic in 0..cin_t {
            let g = ic / s.cout_g();
            for i in 0..x_len {
                let x_at = (n * cin_t + ic) * x_len + i;
                let xv = x.data()[x_at];
                let mut e = Entry {
                    at: x_at,
                    terms: vec![],
                    bias: None,
                    value: xv,
                };
                for ocg in 0..cout_g {
                    let oc = g * cout_g + ocg;
                    for t in 0..taps {
                        // cropped by the padding when the tap lands outside the output
                        let Some(dst) = win.source(i, t, PaddingMode::Zeros) else {
                            continue;
                        };
                        let y_at = (n * s.cin + oc) * y_len + dst;
                        let w_at = (ic * cout_g + ocg) * taps + t;
                        let term = Term {
                            a_at: y_at,
                            a: xv,
                            b_at: w_at,
                            b: w.data()[w_at],
                        };
                        e.terms.push(term);
                        outputs[y_at].terms.push(Term { a_at: x_at, ..term });
                    }
                }
                inputs.push(e);
            }
        }
    }
    Ok(ScatterTrace { y, inputs, outputs })
}

/// The gradients of a transposed convolution (same as `conv_transpose_backward`, all three).
pub fn conv_transpose_grads(
    x: &Tensor,
    w: &Tensor,
    gy: &Tensor,
    p: &ConvTransposeParams,
) -> Result<ConvGrads> {
    conv_transpose_backward(x, w, gy, p, ConvAlgo::Direct, GradRequest::all())
}

mod full;
pub use full::{full_conv, FullConv};

#[cfg(test)]
mod tests;
