//! Transposed convolution: the adjoint identity ⟨conv(x), y⟩ = ⟨x, conv_transpose(y)⟩ on random
//! configurations, finite-difference gradients, fast paths against the reference, PyTorch's
//! forward and backward (tests/fixtures/conv_grad.json), and bad parameters.

mod common;
mod grad_common;

use common::{fast_algos, rand_tensor, random_transpose};
use grad_common::{assert_grads_match, assert_torch_close, fd_check_grads, fixtures};
use stride::geometry::{parse_per_axis, PaddingMode, PaddingSpec};
use stride::ops::conv::{conv, ConvAlgo, ConvParams, GradRequest};
use stride::ops::conv_transpose::{conv_transpose, conv_transpose_backward, ConvTransposeParams};
use stride::rng::Rng;
use stride::Tensor;

/// The convolution whose adjoint `p` is: same stride, padding, dilation and groups; the
/// transposed weight `(Cin, Cout/g, *k)` read as a conv weight `(Cout_conv, Cin_conv/g, *k)`.
fn as_conv(p: &ConvTransposeParams) -> ConvParams {
    ConvParams {
        stride: p.stride.clone(),
        padding: p.padding.clone(),
        dilation: p.dilation.clone(),
        groups: p.groups,
        padding_mode: PaddingMode::Zeros,
        flip: false,
    }
}

#[test]
fn adjoint_identity_on_random_configurations() {
    let mut rng = Rng::new(11);
    let mut checked = 0;
    for case in 0..300 {
        let (x, w, _, p) = random_transpose(&mut rng);
        let y = conv_transpose(&x, &w, None, &p, ConvAlgo::Direct).unwrap();
        let u = rand_tensor(&mut rng, y.shape());
        let cu = conv(&u, &w, None, &as_conv(&p), ConvAlgo::Direct).unwrap();
        if cu.shape() != x.shape() {
            // output_padding >= stride (allowed when < dilation): the convolution has more
            // windows than the transposed input has pixels; the identity holds on a crop only.
            continue;
        }
        checked += 1;
        for algo in [ConvAlgo::Direct, ConvAlgo::Im2col, ConvAlgo::Toeplitz] {
            let y = conv_transpose(&x, &w, None, &p, algo).unwrap();
            let cu = conv(&u, &w, None, &as_conv(&p), algo).unwrap();
            let (lhs, rhs) = (cu.dot(&x), u.dot(&y));
            assert!(
                (lhs - rhs).abs() <= 1e-4 * (1.0 + lhs.abs()),
                "case {case} {algo:?} {p:?}: ⟨conv(u), x⟩ = {lhs} but ⟨u, conv_transpose(x)⟩ = {rhs}"
            );
        }
    }
    assert!(checked > 200, "only {checked} configurations checked");
}

fn loss(x: &Tensor, w: &Tensor, b: Option<&Tensor>, gy: &Tensor, p: &ConvTransposeParams) -> f64 {
    conv_transpose(x, w, b, p, ConvAlgo::Direct)
        .unwrap()
        .dot(gy)
}

#[test]
fn gradients_match_finite_differences() {
    let mut rng = Rng::new(12);
    for case in 0..120 {
        let (x, w, b, p) = random_transpose(&mut rng);
        let y = conv_transpose(&x, &w, b.as_ref(), &p, ConvAlgo::Direct).unwrap();
        let gy = rand_tensor(&mut rng, y.shape());
        let g =
            conv_transpose_backward(&x, &w, &gy, &p, ConvAlgo::Direct, GradRequest::all()).unwrap();
        let what = format!("case {case} {p:?} x{:?} w{:?}", x.shape(), w.shape());
        fd_check_grads(
            &what,
            &x,
            &w,
            b.as_ref(),
            y.shape()[y.rank() + 1 - w.rank()],
            &g,
            &mut rng,
            |x, w, b| loss(x, w, b, &gy, &p),
        );
    }
}

#[test]
fn fast_paths_match_the_reference() {
    let mut rng = Rng::new(13);
    for case in 0..200 {
        let (x, w, b, p) = random_transpose(&mut rng);
        let y = conv_transpose(&x, &w, b.as_ref(), &p, ConvAlgo::Direct).unwrap();
        let gy = rand_tensor(&mut rng, y.shape());
        let r =
            conv_transpose_backward(&x, &w, &gy, &p, ConvAlgo::Direct, GradRequest::all()).unwrap();
        for algo in fast_algos().filter(|a| *a != ConvAlgo::Winograd) {
            let what = format!("case {case} {algo:?} {p:?}");
            let yf = conv_transpose(&x, &w, b.as_ref(), &p, algo).unwrap();
            assert!(yf.max_abs_diff(&y) < 1e-4, "{what}: forward");
            let f = conv_transpose_backward(&x, &w, &gy, &p, algo, GradRequest::all()).unwrap();
            assert_grads_match(&what, f, &r);
        }
    }
}

#[test]
fn pytorch_golden_forward_and_backward() {
    let fx = fixtures();
    for (i, c) in fx.conv_transpose.iter().enumerate() {
        let p = ConvTransposeParams {
            stride: parse_per_axis("stride", &c.s("stride")).unwrap(),
            padding: c.s("padding").parse().unwrap(),
            output_padding: parse_per_axis("output-padding", &c.s("output_padding")).unwrap(),
            dilation: parse_per_axis("dilation", &c.s("dilation")).unwrap(),
            groups: c.u("groups"),
        };
        let (x, w, gy) = (c.x.tensor(), c.w.tensor(), c.gy.tensor());
        let b = c.b.as_ref().map(|b| b.tensor());
        let what = format!("fixture {i} {:?}", c.params);
        for algo in [ConvAlgo::Direct, ConvAlgo::Im2col, ConvAlgo::Auto] {
            let y = conv_transpose(&x, &w, b.as_ref(), &p, algo).unwrap();
            assert_torch_close(&format!("{what} {algo:?} y"), &y, &c.y.tensor());
            let g = conv_transpose_backward(&x, &w, &gy, &p, algo, GradRequest::all()).unwrap();
            assert_torch_close(&format!("{what} gx"), &g.input.unwrap(), &c.gx.tensor());
            assert_torch_close(&format!("{what} gw"), &g.weight.unwrap(), &c.gw.tensor());
            if let Some(gb) = &c.gb {
                assert_torch_close(&format!("{what} gb"), &g.bias.unwrap(), &gb.tensor());
            }
        }
    }
}

#[test]
fn bad_parameters_are_clear_errors() {
    let x = Tensor::zeros(&[1, 2, 4, 4]);
    let w = Tensor::zeros(&[2, 3, 3, 3]);
    let err = |p: ConvTransposeParams, x: &Tensor, w: &Tensor| {
        conv_transpose(x, w, None, &p, ConvAlgo::Auto)
            .unwrap_err()
            .to_string()
    };
    let e = err(
        ConvTransposeParams {
            stride: vec![2],
            output_padding: vec![2],
            ..Default::default()
        },
        &x,
        &w,
    );
    assert!(
        e.starts_with("output-padding:") && e.contains("stride 2"),
        "{e}"
    );
    let e = err(
        ConvTransposeParams {
            padding: PaddingSpec::Same,
            ..Default::default()
        },
        &x,
        &w,
    );
    assert!(e.starts_with("padding:"), "{e}");
    let e = err(
        ConvTransposeParams::default(),
        &Tensor::zeros(&[1, 3, 4, 4]),
        &w,
    );
    assert!(
        e.starts_with("weight:") && e.contains("(Cin, Cout/groups"),
        "{e}"
    );
    let e = err(
        ConvTransposeParams {
            groups: 4,
            ..Default::default()
        },
        &x,
        &w,
    );
    assert!(e.starts_with("groups:"), "{e}");
    let e = err(
        ConvTransposeParams {
            padding: PaddingSpec::Explicit(vec![(5, 5)]),
            ..Default::default()
        },
        &x,
        &w,
    );
    assert!(
        e.starts_with("padding:") && e.contains("less padding"),
        "{e}"
    );
    // the output gradient must have the output's shape
    let gy = Tensor::zeros(&[1, 3, 4, 4]);
    let e = conv_transpose_backward(
        &x,
        &w,
        &gy,
        &ConvTransposeParams::default(),
        ConvAlgo::Auto,
        GradRequest::all(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("grad-output") && e.contains("(1, 3, 6, 6)"),
        "{e}"
    );
}
