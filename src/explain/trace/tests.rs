//! Traces agree with the library: every entry's products sum to the value computed.

use super::*;
use crate::geometry::PaddingSpec;
use crate::ops::conv::{conv, ConvAlgo};

fn t(shape: &[usize], v: &[f32]) -> Tensor {
    Tensor::new(shape.to_vec(), v.to_vec()).unwrap()
}

fn seed004() -> (Tensor, Tensor) {
    let x = t(
        &[1, 1, 5, 5],
        &[
            4., 5., 2., 2., 1., 3., 3., 2., 2., 4., 4., 3., 4., 1., 1., 5., 1., 4., 1., 2., 5., 1.,
            3., 1., 4.,
        ],
    );
    let w = t(&[1, 1, 3, 3], &[4., 3., 3., 5., 5., 5., 2., 4., 3.]);
    (x, w)
}

fn sum(e: &Entry) -> f32 {
    e.terms.iter().map(|t| t.a * t.b).sum::<f32>() + e.bias.unwrap_or(0.0)
}

fn params(stride: usize, pad: usize, dil: usize, mode: PaddingMode, flip: bool) -> ConvParams {
    ConvParams {
        stride: vec![stride],
        padding: PaddingSpec::Explicit(vec![(pad, pad)]),
        dilation: vec![dil],
        groups: 1,
        padding_mode: mode,
        flip,
    }
}

#[test]
fn seed004_forward_and_gradients_sum_to_the_library_values() {
    let (x, w) = seed004();
    let p = params(1, 0, 1, PaddingMode::Zeros, false);
    let tr = conv_trace(&x, &w, None, &p).unwrap();
    assert_eq!(
        tr.y.data(),
        &[109., 92., 72., 108., 85., 74., 110., 74., 79.]
    );
    for c in &tr.cells {
        assert_eq!(c.terms.len(), 9);
        assert_eq!(sum(c), c.value);
    }
    // the first window is the top-left 3×3 block, in kernel order
    let first: Vec<usize> = tr.cells[0].terms.iter().map(|t| t.a_at).collect();
    assert_eq!(first, vec![0, 1, 2, 5, 6, 7, 10, 11, 12]);
    let gy = Tensor::full(&[1, 1, 3, 3], 1.0);
    let g = conv_grad_trace(&x, &w, &gy, &p).unwrap();
    // seed 004 (d): the centre of dE/dA is the sum of the whole kernel, 34
    assert_eq!(g.input[12].value, 34.0);
    assert_eq!(g.input[12].terms.len(), 9);
    assert_eq!(g.input[0].terms.len(), 1);
    for e in g.input.iter().chain(&g.weight) {
        assert_eq!(sum(e), e.value);
    }
}

#[test]
fn strided_padded_dilated_reflect_and_flip_sum_to_the_library_values() {
    let x = t(
        &[1, 1, 5, 6],
        &(0..30).map(|v| v as f32 - 7.0).collect::<Vec<_>>(),
    );
    let w = t(&[2, 1, 2, 2], &[1., -2., 3., 0.5, 2., 1., -1., 0.25]);
    let b = t(&[2], &[0.5, -1.0]);
    for (mode, flip) in [(PaddingMode::Zeros, false), (PaddingMode::Reflect, true)] {
        let p = params(2, 1, 2, mode, flip);
        let tr = conv_trace(&x, &w, Some(&b), &p).unwrap();
        for c in &tr.cells {
            assert!((sum(c) - c.value).abs() < 1e-4, "{mode:?} {c:?}");
        }
        let gy = t(
            tr.y.shape(),
            &(0..tr.y.numel())
                .map(|v| v as f32 * 0.5)
                .collect::<Vec<_>>(),
        );
        let g = conv_grad_trace(&x, &w, &gy, &p).unwrap();
        for e in g.input.iter().chain(&g.weight) {
            assert!((sum(e) - e.value).abs() < 1e-3, "{mode:?} {e:?}");
        }
    }
}

#[test]
fn transposed_scatter_matches_the_library() {
    // conv_transpose1d([1, 2], [1, 1, 1], stride 2) = [1, 1, 3, 2, 2]
    let x = t(&[1, 2], &[1., 2.]);
    let w = t(&[1, 1, 3], &[1., 1., 1.]);
    let p = ConvTransposeParams {
        stride: vec![2],
        ..Default::default()
    };
    let tr = conv_transpose_trace(&x, &w, None, &p).unwrap();
    assert_eq!(tr.y.data(), &[1., 1., 3., 2., 2.]);
    let targets: Vec<usize> = tr.inputs[1].terms.iter().map(|t| t.a_at).collect();
    assert_eq!(targets, vec![2, 3, 4]);
    for e in &tr.outputs {
        assert_eq!(sum(e), e.value);
    }
    // 2-D, stride 2, padding 1 (cropped taps), two output channels, a bias
    let x = t(&[1, 2, 2], &[1., 2., 3., 4.]);
    let w = t(
        &[1, 2, 3, 3],
        &(0..18).map(|v| v as f32 - 4.0).collect::<Vec<_>>(),
    );
    let b = t(&[2], &[1.0, -0.5]);
    let p = ConvTransposeParams {
        stride: vec![2],
        padding: PaddingSpec::Explicit(vec![(1, 1)]),
        ..Default::default()
    };
    let tr = conv_transpose_trace(&x, &w, Some(&b), &p).unwrap();
    for e in &tr.outputs {
        assert_eq!(sum(e), e.value);
    }
}

#[test]
fn too_large_is_refused() {
    let x = Tensor::zeros(&[1, 1, 100, 100]);
    let w = Tensor::zeros(&[1, 1, 5, 5]);
    let e = conv_trace(&x, &w, None, &params(1, 0, 1, PaddingMode::Zeros, false)).unwrap_err();
    assert!(e.to_string().contains("limit"), "{e}");
}

#[test]
fn huge_padding_or_stride_is_refused_before_anything_is_allocated() {
    // 9 output cells, but a padded input of 60001² values
    let x = Tensor::zeros(&[1, 1, 1, 1]);
    let w = Tensor::zeros(&[1, 1, 1, 1]);
    let mut p = params(30_000, 30_000, 1, PaddingMode::Zeros, false);
    p.padding = PaddingSpec::Explicit(vec![(30_000, 30_000)]);
    let e = conv_trace(&x, &w, None, &p).unwrap_err();
    assert!(e.to_string().starts_with("padding: "), "{e}");
    let x = Tensor::zeros(&[1, 2, 2]);
    let p = ConvTransposeParams {
        stride: vec![30_000],
        ..Default::default()
    };
    let e = conv_transpose_trace(&x, &w, None, &p).unwrap_err();
    assert!(e.to_string().starts_with("stride: "), "{e}");
}

#[test]
fn full_convolution_windows_sum_to_the_input_gradient() {
    // zero padding (no flip): Σ spread[window] · flipped[taps] = ∂E/∂x, entry by entry
    let x = t(
        &[1, 1, 5, 6],
        &(0..30).map(|v| v as f32).collect::<Vec<_>>(),
    );
    let w = t(
        &[2, 1, 2, 3],
        &[1., -2., 3., 0.5, 2., 1., -1., 0.25, 2., 0., 1., 1.],
    );
    for (stride, pad, dil, flip) in [
        (1, 0, 1, false),
        (2, 1, 1, true),
        (2, 1, 2, false),
        (3, 2, 1, true),
    ] {
        let p = params(stride, pad, dil, PaddingMode::Zeros, flip);
        let y = conv(&x, &w, None, &p, ConvAlgo::Direct).unwrap();
        let gy = t(
            y.shape(),
            &(0..y.numel()).map(|v| 1.0 + v as f32).collect::<Vec<_>>(),
        );
        let f = full_conv(&x, &w, &gy, &p).unwrap();
        let g = conv_grad_trace(&x, &w, &gy, &p).unwrap();
        for (i, e) in g.input.iter().enumerate() {
            let v: f32 = f.windows[i]
                .iter()
                .zip(&f.taps[i])
                .map(|(&a, &b)| f.spread.data()[a] * f.flipped.data()[b])
                .sum();
            assert_eq!(v, e.value, "s{stride} p{pad} d{dil} entry {i}");
        }
    }
    // seed 004 (d): the 5×5 all-ones gradient padded by 2 on each side is 7×7
    let (x, w) = seed004();
    let p = params(1, 0, 1, PaddingMode::Zeros, false);
    let f = full_conv(&x, &w, &Tensor::full(&[1, 1, 3, 3], 1.0), &p).unwrap();
    assert_eq!(f.spread.shape(), &[1, 1, 7, 7]);
    assert_eq!(f.windows[12].len(), 9);
}
