//! The course's exercises as a learner meets them (issue 13): learning a kernel (d2l 6.2.4),
//! constant output gradients, the transposed convolution and pooling backward explained, the
//! matrix forms of the gradients, 1-based positions, `--cell`, and the rough edges of `shape`,
//! `receptive-field`, LP pooling and literals.

mod common;

use common::{matrix_literal, ok, usage_error, words};

const X: &str = "[[1,1,0,0,0,0,1,1],[1,1,0,0,0,0,1,1],[1,1,0,0,0,0,1,1],[1,1,0,0,0,0,1,1],[1,1,0,0,0,0,1,1],[1,1,0,0,0,0,1,1]]";
const Y: &str = "[[0,1,0,0,0,-1,0],[0,1,0,0,0,-1,0],[0,1,0,0,0,-1,0],[0,1,0,0,0,-1,0],[0,1,0,0,0,-1,0],[0,1,0,0,0,-1,0]]";
const A: &str = "[[4,5,2,2,1],[3,3,2,2,4],[4,3,4,1,1],[5,1,4,1,2],[5,1,3,1,4]]";
const B: &str = "[[4,3,3],[5,5,5],[2,4,3]]";

/// The numbers inside the last `[ ... ]` row block printed under `name`.
fn matrix(out: &str, name: &str) -> Vec<f32> {
    let start = out
        .find(name)
        .unwrap_or_else(|| panic!("{name} not in {out}"));
    out[start..]
        .lines()
        .skip(1)
        .take_while(|l| l.trim_start().starts_with('['))
        .flat_map(|l| {
            l.trim()
                .trim_matches(['[', ']'])
                .split_whitespace()
                .map(|v| v.parse::<f32>().unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn learn_kernel_finds_d2l_edge_detector() {
    let dir = tempfile::tempdir().unwrap();
    let k = dir.path().join("k.npy");
    let out = ok(&[
        "learn-kernel",
        "--input",
        X,
        "--target",
        Y,
        "--kernel-size",
        "1,2",
        "--output",
        k.to_str().unwrap(),
    ]);
    let got = matrix(&out, "learned kernel");
    assert_eq!(got.len(), 2, "{out}");
    assert!(
        (got[0] - 1.0).abs() < 0.05 && (got[1] + 1.0).abs() < 0.05,
        "{out}"
    );
    // every other step printed, loss falling
    let losses: Vec<f32> = out
        .lines()
        .filter(|l| l.starts_with("step"))
        .filter_map(|l| {
            l.split("loss")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(losses.len(), 5, "{out}");
    assert!(losses.windows(2).all(|w| w[1] < w[0]), "{losses:?}");
    let saved = stride::io::npy::read(&k).unwrap();
    assert_eq!(saved.shape(), &[1, 1, 1, 2]);
    // the first step worked out: the gradient traced entry by entry and the update
    let ex = ok(&words(&format!(
        "learn-kernel --input {X} --target {Y} --kernel-size 1,2 --explain"
    )));
    assert!(ex.contains("∂E/∂w(1,2) = g(1,1)·x(1,2) + "), "{ex}");
    assert!(ex.contains("K after one step"), "{ex}");
    // a target of the wrong shape names the right one
    let e = usage_error(&words(&format!(
        "learn-kernel --input {X} --target {Y} --kernel-size 2,2"
    )));
    assert!(e.contains("is (5, 7)"), "{e}");
}

#[test]
fn constant_output_gradients() {
    let ones = ok(&words(&format!(
        "conv --input {A} --kernel {B} --grad-output ones"
    )));
    let explicit = ok(&words(&format!(
        "conv --input {A} --kernel {B} --grad-output [[1,1,1],[1,1,1],[1,1,1]]"
    )));
    assert_eq!(ones, explicit);
    // seed 004 (d): the centre of dE/dA is 34
    assert_eq!(matrix(&ones, "grad_input")[12], 34.0);
    let twos = ok(&words(&format!(
        "conv --input {A} --kernel {B} --grad-output 2"
    )));
    assert_eq!(matrix(&twos, "grad_input")[12], 68.0);
    let t = ok(&words(
        "conv-transpose --input [[1,2],[3,4]] --weight [[1,1],[1,1]] --grad-output ones",
    ));
    assert_eq!(matrix(&t, "grad_input"), vec![4.0, 4.0, 4.0, 4.0], "{t}");
}

#[test]
fn conv_transpose_explains_the_scatter() {
    let ex = ok(&words("conv-transpose --input [[1,2],[3,4]] --weight [[1,1],[1,-1]] --stride 2 --padding 1 --explain"));
    assert!(ex.contains("x(1,2) = 2 scatters 2 × kernel"), "{ex}");
    assert!(ex.contains("y(1,1) = x(1,1)·w(2,2) = 1·(-1) = -1"), "{ex}");
    assert!(ex.contains("convolution's input gradient"), "{ex}");
    assert_eq!(
        matrix(&ex, "output (1, 1, 2, 2)"),
        vec![-1.0, 2.0, 3.0, 4.0]
    );
}

#[test]
fn pool_backward_prints_and_explains() {
    let x = "[[1,2,3],[4,5,6],[7,8,9]]";
    let out = ok(&words(&format!(
        "pool max --input {x} --kernel 2 --stride 1 --grad-output ones"
    )));
    assert_eq!(
        matrix(&out, "grad_input"),
        vec![0., 0., 0., 0., 1., 1., 0., 1., 1.]
    );
    let ex = ok(&words(&format!(
        "pool avg --input {x} --kernel 2 --stride 1 --grad-output [[1,2],[3,4]] --explain"
    )));
    assert!(
        ex.contains("g at (2,2) = 4 → x(2,2): 1, x(2,3): 1, x(3,2): 1, x(3,3): 1"),
        "{ex}"
    );
    assert!(ex.contains("∂E/∂x(2,2) = 0.25 [from y(1,1)] + 0.5 [from y(1,2)] + 0.75 [from y(2,1)] + 1 [from y(2,2)] = 2.5"), "{ex}");
}

#[test]
fn matrix_forms_of_the_gradients() {
    let args = [
        "conv",
        "--input",
        "[[1,2,3],[4,5,6],[7,8,9]]",
        "--kernel",
        "[[1,0],[0,-1]]",
        "--grad-output",
        "ones",
        "--explain",
    ];
    let im = ok(&[&args[..], &["im2col"]].concat());
    assert!(im.contains("∂E/∂K = G · colsᵀ"), "{im}");
    assert_eq!(
        matrix(&im, "∂E/∂K = G · colsᵀ (1, 4)"),
        vec![12.0, 16.0, 24.0, 28.0]
    );
    let tp = ok(&[&args[..], &["toeplitz"]].concat());
    assert!(tp.contains("∂E/∂x = Tᵀ · g"), "{tp}");
    assert!(
        tp.contains("reshaped to the input: [1, 1, 0, 1, 0, -1, 0, -1, -1]"),
        "{tp}"
    );
}

#[test]
fn positions_are_one_based_and_cell_narrows() {
    let ex = ok(&words(&format!(
        "conv --input {A} --kernel {B} --bias [1] --grad-output ones --explain"
    )));
    assert!(ex.contains("numbered from 1"), "{ex}");
    assert!(ex.contains("∂E/∂b[1] = "), "{ex}");
    assert!(!ex.contains("c=0") && !ex.contains("[0]"), "{ex}");
    let two = "[[[[1,0],[0,1]]],[[[0,1],[1,0]]]]";
    let ex = ok(&words(&format!(
        "conv --input {A} --kernel {two} --explain"
    )));
    assert!(ex.contains("Output cell c=2 (1,1)"), "{ex}");
    // --cell: one output cell of a 20×20 input instead of hundreds
    let big = matrix_literal(20, 20, |r, c| (r * 20 + c) % 7);
    let ex = ok(&words(&format!(
        "conv --input {big} --kernel {B} --explain --cell 2,3"
    )));
    assert_eq!(ex.matches("Output cell").count(), 1, "{ex}");
    assert!(ex.contains("Output cell (2,3)"), "{ex}");
    let e = usage_error(&words(&format!(
        "conv --input {big} --kernel {B} --explain --cell 19,1"
    )));
    assert!(e.contains("18×18"), "{e}");
    // a wide Toeplitz matrix prints in bands of columns
    let ten = matrix_literal(10, 10, |r, c| r + c);
    let tp = ok(&[
        "conv",
        "--input",
        &ten,
        "--kernel",
        B,
        "--explain",
        "toeplitz",
    ]);
    assert!(
        tp.contains("columns 1–") && tp.lines().all(|l| l.chars().count() < 200),
        "wide lines"
    );
}

#[test]
fn shape_receptive_field_and_summary_edges() {
    let out = ok(&words("shape --input 5x5 --kernel 3 --filters 1"));
    assert!(out.contains("output: 3×3×1"), "{out}");
    assert!(
        out.contains("1 filter of") && !out.contains("1 filters"),
        "{out}"
    );
    let e = usage_error(&["receptive-field", "--kernels", "3x3"]);
    assert!(e.contains("--kernels 3"), "{e}");
    let e = usage_error(&words("receptive-field --kernels 3,3 --strides 1,1,1"));
    assert!(e.contains("for 2 layers"), "{e}");
    let out = ok(&words("receptive-field --kernels 3,3,3 --channels 1"));
    assert!(
        !out.contains("reduction") && out.contains("1 channel in and out"),
        "{out}"
    );
    let out = ok(&words(
        "receptive-field --kernels 3,2,3 --strides 1,2,1 --pools 2",
    ));
    assert!(
        out.contains("64·64·3² + 0 (layer 2: pooling, no weights) + 64·64·3² = 73,728 weights"),
        "{out}"
    );
    let out = ok(&words("summary conv(1,k=3) --input-shape 1,5,5"));
    assert!(out.contains("needs no input gradient"), "{out}");
}

#[test]
fn pooling_edges() {
    // LP with a large p stays finite and tends to the max; p = inf is max pooling
    let x = "[[10,20],[30,40]]";
    let lp = ok(&words(&format!(
        "pool lp --input {x} --kernel 2 --norm-type 200"
    )));
    let v = matrix(&lp, "output")[0];
    assert!(v.is_finite() && (v - 40.0).abs() < 0.5, "{lp}");
    let inf = ok(&words(&format!(
        "pool lp --input {x} --kernel 2 --norm-type inf"
    )));
    assert_eq!(matrix(&inf, "output"), vec![40.0]);
    // --padding same: out = ceil(in / stride) per axis, the extra padding at the end
    let same = ok(&words(
        "pool max --input [[1,2,3,4,5],[6,7,8,9,10],[1,1,1,1,1]] --kernel 2 --padding same",
    ));
    assert!(same.contains("output (1, 1, 2, 3)"), "{same}");
    assert_eq!(matrix(&same, "output"), vec![7.0, 9.0, 10.0, 1.0, 1.0, 1.0]);
}

#[test]
fn literal_rank_errors_say_what_to_write() {
    let e = usage_error(&words("conv --input [[1,2,3],[4,5,6]] --kernel [1,-1]"));
    assert!(e.contains("write [[1,-1]]"), "{e}");
    assert!(
        !e.contains("kernel: input:"),
        "one argument named, not two: {e}"
    );
    let e = usage_error(&words(
        "conv --input [[[1,2,3],[4,5,6]],[[1,2,3],[4,5,6]]] --kernel [[1,-1]]",
    ));
    assert!(e.contains("4-D literal"), "{e}");
}
