//! The worked gradient solution: seed 004 (d) narrated, every traced sum adding up to the
//! value the reference computed (on integer data, so exactly), and the size limit.

mod common;
use common::{t, IMAGE_A, KERNEL_B};
use stride::explain::conv_grad::explain_grad;
use stride::geometry::{PaddingMode, PaddingSpec};
use stride::ops::conv::{conv_backward, ConvAlgo, ConvParams, GradRequest};
use stride::rng::Rng;
use stride::Tensor;

fn int_tensor(rng: &mut Rng, shape: &[usize]) -> Tensor {
    let n = shape.iter().product();
    let v = (0..n).map(|_| rng.below(7) as f32 - 3.0).collect();
    Tensor::new(shape.to_vec(), v).unwrap()
}

/// Every line `∂E/∂…(…) = symbols = a·b + c·d = v`: checks that the products add up to `v`.
/// Returns how many traced lines there were for `x` and for `w`.
fn check_traced_sums(lines: &[String]) -> (usize, usize) {
    let (mut nx, mut nw) = (0, 0);
    for l in lines {
        let Some(rest) = l.strip_prefix("∂E/∂").filter(|_| !l.contains('Σ')) else {
            continue;
        };
        match rest.chars().next() {
            Some('x') => nx += 1,
            Some('w') => nw += 1,
            _ => continue,
        }
        let parts: Vec<&str> = l.split(" = ").collect();
        let value: f64 = parts.last().unwrap().parse().unwrap();
        if parts.len() == 2 {
            assert!(l.contains("no window reads it") && value == 0.0, "{l}");
            continue;
        }
        let sum: f64 = parts[2]
            .split(" + ")
            .map(|p| {
                let (a, b) = p.split_once('·').unwrap();
                let num = |s: &str| s.trim_matches(['(', ')']).parse::<f64>().unwrap();
                num(a) * num(b)
            })
            .sum();
        assert_eq!(sum, value, "{l}");
    }
    (nx, nw)
}

#[test]
fn seed_004_d_narrated() {
    let (a, b) = (t(&[1, 1, 5, 5], &IMAGE_A), t(&[1, 1, 3, 3], &KERNEL_B));
    let gy = Tensor::full(&[1, 1, 3, 3], 1.0);
    let ex = explain_grad(&a, &b, None, &gy, &ConvParams::default()).unwrap();
    let lines: Vec<String> = ex.steps.iter().flat_map(|s| s.lines.clone()).collect();
    assert!(lines
        .iter()
        .any(|l| l.starts_with("∂E/∂x(3,3) = ") && l.ends_with(" = 34")));
    assert_eq!(check_traced_sums(&lines), (25, 9));
    let result = ex.steps.last().unwrap();
    assert_eq!(result.tensors[0].name, "∂E/∂x");
    assert_eq!(
        result.tensors[0].tensor.data()[10..15],
        [11., 23., 34., 23., 11.]
    );
}

#[test]
fn traced_sums_add_up_in_every_configuration() {
    let mut rng = Rng::new(5);
    let configs = [
        // (x shape, w shape, stride, padding, dilation, groups, mode, flip)
        (
            vec![2, 2, 5],
            vec![4, 1, 3],
            2,
            "1:2",
            1,
            2,
            PaddingMode::Zeros,
            false,
        ),
        (
            vec![1, 4, 4],
            vec![2, 1, 2, 2],
            1,
            "1",
            1,
            1,
            PaddingMode::Reflect,
            true,
        ),
        (
            vec![1, 2, 3, 4],
            vec![2, 2, 2, 3],
            2,
            "2",
            1,
            1,
            PaddingMode::Circular,
            false,
        ),
        (
            vec![2, 1, 4, 4],
            vec![1, 1, 2, 2],
            1,
            "same",
            2,
            1,
            PaddingMode::Zeros,
            true,
        ),
        (
            vec![1, 1, 3, 3, 3],
            vec![2, 1, 2, 2, 2],
            1,
            "1",
            1,
            1,
            PaddingMode::Replicate,
            false,
        ),
    ];
    for (xs, ws, s, pad, d, g, mode, flip) in configs {
        let x = int_tensor(&mut rng, &xs);
        let w = int_tensor(&mut rng, &ws);
        let b = int_tensor(&mut rng, &[ws[0]]);
        let p = ConvParams {
            stride: vec![s],
            padding: pad.parse::<PaddingSpec>().unwrap(),
            dilation: vec![d],
            groups: g,
            padding_mode: mode,
            flip,
        };
        let y = stride::ops::conv::conv(&x, &w, Some(&b), &p, ConvAlgo::Direct).unwrap();
        let gy = int_tensor(&mut rng, y.shape());
        let ex = explain_grad(&x, &w, Some(&b), &gy, &p).unwrap();
        let lines: Vec<String> = ex.steps.iter().flat_map(|s| s.lines.clone()).collect();
        assert_eq!(check_traced_sums(&lines), (x.numel(), w.numel()), "{p:?}");
        let g = conv_backward(&x, &w, &gy, &p, ConvAlgo::Direct, GradRequest::all()).unwrap();
        let result = &ex.steps.last().unwrap().tensors;
        assert_eq!(&result[0].tensor, g.input.as_ref().unwrap());
        assert_eq!(&result[1].tensor, g.weight.as_ref().unwrap());
        assert_eq!(&result[2].tensor, g.bias.as_ref().unwrap());
    }
}

#[test]
fn refuses_to_narrate_large_problems() {
    let x = Tensor::zeros(&[1, 8, 32, 32]);
    let w = Tensor::zeros(&[8, 8, 3, 3]);
    let gy = Tensor::zeros(&[1, 8, 30, 30]);
    let e = explain_grad(&x, &w, None, &gy, &ConvParams::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("too many to narrate") && e.contains("--explain"),
        "{e}"
    );
}
