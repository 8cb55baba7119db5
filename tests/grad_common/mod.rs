//! Shared helpers of the gradient tests: random convolution and transposed-convolution
//! configurations that sweep every parameter, finite-difference checks, and the PyTorch
//! gradient fixtures (tests/fixtures/conv_grad.json). Needs `mod common;` beside it.
#![allow(dead_code)]

use crate::common::{fixture, TensorJson};
use serde::Deserialize;
use stride::geometry::{PaddingMode, PaddingSpec};
use stride::ops::conv::ConvParams;
use stride::ops::conv_transpose::ConvTransposeParams;
use stride::rng::Rng;
use stride::Tensor;

/// A random tensor with values in [-1, 1).
pub fn rand_tensor(rng: &mut Rng, shape: &[usize]) -> Tensor {
    let n = shape.iter().product();
    Tensor::new(shape.to_vec(), rng.vec(n, -1.0, 1.0)).unwrap()
}

/// A random convolution: 1-D/2-D/3-D, batched or not, channels, groups (incl. depthwise), bias
/// or not, stride, every padding form and mode, dilation, flip. Geometry is always valid.
pub fn random_conv(rng: &mut Rng) -> (Tensor, Tensor, Option<Tensor>, ConvParams) {
    let nd = 1 + rng.below(3);
    let depthwise = rng.below(6) == 0;
    let mut groups = [1, 1, 2, 3][rng.below(4)];
    let cin = groups * (1 + rng.below(2));
    let cout = if depthwise {
        groups = cin;
        cin * (1 + rng.below(2))
    } else {
        groups * (1 + rng.below(2))
    };
    let batched = rng.below(4) != 0;
    let n = 1 + rng.below(2);
    let mode = [
        PaddingMode::Zeros,
        PaddingMode::Zeros,
        PaddingMode::Reflect,
        PaddingMode::Replicate,
        PaddingMode::Circular,
    ][rng.below(5)];
    let (mut k, mut stride, mut dil, mut inp, mut pads) = (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..nd {
        let kk = 1 + rng.below(if nd == 3 { 2 } else { 3 });
        let d = 1 + rng.below(2);
        let s = 1 + rng.below(3);
        let span = d * (kk - 1) + 1;
        let i = (span + rng.below(if nd == 3 { 3 } else { 5 })).max(2);
        let pmax = if mode == PaddingMode::Reflect {
            i - 1
        } else {
            i
        };
        pads.push((rng.below(3).min(pmax), rng.below(3).min(pmax)));
        k.push(kk);
        stride.push(s);
        dil.push(d);
        inp.push(i);
    }
    let padding = match rng.below(6) {
        0 => PaddingSpec::Valid,
        1 => PaddingSpec::Same,
        2 => PaddingSpec::Full,
        _ => PaddingSpec::Explicit(pads),
    };
    // same / full may need more padding than reflect or circular can give; fall back to zeros
    let mode = match padding {
        PaddingSpec::Same | PaddingSpec::Full => PaddingMode::Zeros,
        _ => mode,
    };
    let mut xs = if batched { vec![n, cin] } else { vec![cin] };
    xs.extend(&inp);
    let mut ws = vec![cout, cin / groups];
    ws.extend(&k);
    let x = rand_tensor(rng, &xs);
    let w = rand_tensor(rng, &ws);
    let b = (rng.below(2) == 0).then(|| rand_tensor(rng, &[cout]));
    let p = ConvParams {
        stride,
        padding,
        dilation: dil,
        groups,
        padding_mode: mode,
        flip: rng.below(4) == 0,
    };
    (x, w, b, p)
}

/// A random transposed convolution (stride, padding incl. begin:end, output padding below the
/// stride or the dilation, dilation, groups, bias or not, batched or not).
pub fn random_transpose(rng: &mut Rng) -> (Tensor, Tensor, Option<Tensor>, ConvTransposeParams) {
    let nd = 1 + rng.below(3);
    let groups = [1, 1, 2, 3][rng.below(4)];
    let cin = groups * (1 + rng.below(2));
    let cout = groups * (1 + rng.below(2));
    let batched = rng.below(4) != 0;
    let n = 1 + rng.below(2);
    let (mut k, mut stride, mut dil, mut inp, mut pads, mut op) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..nd {
        let kk = 1 + rng.below(3);
        let d = 1 + rng.below(2);
        let s = 1 + rng.below(3);
        let i = 1 + rng.below(if nd == 3 { 3 } else { 4 });
        let o = rng.below(s.max(d));
        // keep the output non-empty: (i-1)*s + d*(k-1) + op + 1 > pb + pe
        let room = (i - 1) * s + d * (kk - 1) + o;
        let pb = rng.below(2).min(room / 2);
        let pe = if rng.below(3) == 0 {
            rng.below(2).min(room / 2)
        } else {
            pb
        };
        k.push(kk);
        stride.push(s);
        dil.push(d);
        inp.push(i);
        pads.push((pb, pe));
        op.push(o);
    }
    let mut xs = if batched { vec![n, cin] } else { vec![cin] };
    xs.extend(&inp);
    let mut ws = vec![cin, cout / groups];
    ws.extend(&k);
    let x = rand_tensor(rng, &xs);
    let w = rand_tensor(rng, &ws);
    let b = (rng.below(2) == 0).then(|| rand_tensor(rng, &[cout]));
    let p = ConvTransposeParams {
        stride,
        padding: PaddingSpec::Explicit(pads),
        output_padding: op,
        dilation: dil,
        groups,
    };
    (x, w, b, p)
}

/// Central finite differences of the scalar `loss` with respect to `at`, compared with `grad`
/// on up to `checks` entries (all of them when there are fewer). The losses tested are linear
/// in the perturbed tensor, so a step of 0.5 is exact up to rounding.
pub fn fd_check(
    what: &str,
    at: &Tensor,
    grad: &Tensor,
    checks: usize,
    rng: &mut Rng,
    loss: impl Fn(&Tensor) -> f64,
) {
    assert_eq!(at.shape(), grad.shape(), "{what}: gradient shape");
    let h = 0.5f32;
    let n = at.numel();
    let idx: Vec<usize> = if n <= checks {
        (0..n).collect()
    } else {
        (0..checks).map(|_| rng.below(n)).collect()
    };
    for i in idx {
        let mut plus = at.clone();
        plus.data_mut()[i] += h;
        let mut minus = at.clone();
        minus.data_mut()[i] -= h;
        let fd = (loss(&plus) - loss(&minus)) / (2.0 * h as f64);
        let g = grad.data()[i] as f64;
        assert!(
            (fd - g).abs() <= 1e-3 * (1.0 + g.abs()),
            "{what}[{i}]: finite difference {fd} vs gradient {g}"
        );
    }
}

/// One PyTorch case: parameters in the CLI's syntax, inputs and expected results.
#[derive(Deserialize, Debug, Clone)]
pub struct Case {
    pub params: serde_json::Map<String, serde_json::Value>,
    pub x: TensorJson,
    pub w: TensorJson,
    pub b: Option<TensorJson>,
    pub gy: TensorJson,
    pub y: TensorJson,
    pub gx: TensorJson,
    pub gw: TensorJson,
    pub gb: Option<TensorJson>,
}

impl Case {
    /// A string parameter.
    pub fn s(&self, key: &str) -> String {
        self.params[key].as_str().unwrap().to_string()
    }
    /// An integer parameter.
    pub fn u(&self, key: &str) -> usize {
        self.params[key].as_u64().unwrap() as usize
    }
}

/// `tests/fixtures/conv_grad.json` (generated by `scripts/gen_conv_grad_fixtures.py`).
#[derive(Deserialize, Debug)]
pub struct Fixtures {
    pub conv: Vec<Case>,
    pub conv_transpose: Vec<Case>,
}

pub fn fixtures() -> Fixtures {
    fixture("conv_grad.json")
}

/// Asserts `got` matches PyTorch's `want` to f32 precision.
pub fn assert_torch_close(what: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    let err = got.max_abs_diff(want);
    assert!(
        err <= 1e-4 * (1.0 + want.max_abs()),
        "{what}: max error {err}\n got {:?}\nwant {:?}",
        got.data(),
        want.data()
    );
}
