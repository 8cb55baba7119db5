//! `stride pool` end to end: printing, .npy output, indices, gradients, --explain on the seed
//! exercises, max-unpool, and the bad-input policy (one line, exit code 2, nothing written).

mod common;
use common::{ok, usage_error, words};
use std::path::Path;
use stride::io::npy;
use stride::Tensor;

const SEED_C: &str = "[[109,92,72],[108,85,74],[110,74,79]]";
const SEED_I: &str = "[[1,1,-2,0,1],[1,0,0,2,1],[0,1,0,5,-1],[-2,1,0,-1,1],[0,1,0,5,-1]]";

#[test]
fn seed_004_max_pool_prints_and_explains() {
    let out = ok(&words(&format!(
        "pool max --input {SEED_C} --kernel 2 --stride 1"
    )));
    assert!(
        out.contains("[ 109   92 ]") && out.contains("[ 110   85 ]"),
        "{out}"
    );
    let ex = ok(&words(&format!(
        "pool max --input {SEED_C} --kernel 2 --stride 1 --explain"
    )));
    assert!(ex.contains("max(109, 92, 108, 85) = 109"), "{ex}");
    assert!(ex.contains("max(85, 74, 74, 79) = 85"), "{ex}");
}

#[test]
fn seed_000_max_pool_k3_s2_explains_each_window() {
    let ex = ok(&words(&format!(
        "pool max --input {SEED_I} --kernel 3 --stride 2 --explain"
    )));
    assert!(
        ex.contains("H: floor((5 + 0 + 0 - 1·(3-1) - 1) / 2) + 1 = 2"),
        "{ex}"
    );
    assert!(
        ex.contains("max(-2, 0, 1, 0, 2, 1, 0, 5, -1) = 5 at input (3,4) (flat index 13"),
        "{ex}"
    );
    assert_eq!(ex.matches("Output cell").count(), 4);
}

#[test]
fn writes_output_indices_and_gradient() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    let x = Tensor::new(
        vec![1, 2, 4, 4],
        (0..32).map(|v| ((v * 7) % 32) as f32).collect(),
    )
    .unwrap();
    npy::write(Path::new(&p("x.npy")), &x).unwrap();
    let gy = Tensor::full(&[1, 2, 2, 2], 1.0);
    npy::write(Path::new(&p("gy.npy")), &gy).unwrap();
    ok(&[
        "pool",
        "max",
        "--input",
        &p("x.npy"),
        "--kernel",
        "2",
        "--output",
        &p("y.npy"),
        "--indices",
        &p("i.npy"),
        "--grad-output",
        &p("gy.npy"),
        "--grad-input",
        &p("gx.npy"),
    ]);
    let y = npy::read(Path::new(&p("y.npy"))).unwrap();
    let gx = npy::read(Path::new(&p("gx.npy"))).unwrap();
    assert_eq!(y.shape(), &[1, 2, 2, 2]);
    assert_eq!(gx.shape(), x.shape());
    assert_eq!(gx.data().iter().sum::<f32>(), 8.0);
    // max-unpool puts each max back where it came from
    ok(&[
        "pool",
        "max-unpool",
        "--input",
        &p("y.npy"),
        "--indices",
        &p("i.npy"),
        "--kernel",
        "2",
        "--output",
        &p("up.npy"),
    ]);
    let up = npy::read(Path::new(&p("up.npy"))).unwrap();
    assert_eq!(up.shape(), x.shape());
    for (u, v) in up.data().iter().zip(x.data()) {
        assert!(*u == 0.0 || u == v);
    }
}

#[test]
fn every_kind_runs() {
    let x = "[[1,2,3,4],[5,6,7,8],[9,10,11,12],[13,14,15,16]]";
    for args in [
        vec!["min", "--kernel", "2"],
        vec![
            "avg",
            "--kernel",
            "3",
            "--stride",
            "2",
            "--padding",
            "1",
            "--ceil-mode",
            "--count-include-pad",
            "false",
        ],
        vec!["avg", "--kernel", "2", "--divisor-override", "3"],
        vec!["lp", "--kernel", "2", "--norm-type", "1"],
        vec!["soft", "--kernel", "2", "--dilation", "2", "--stride", "1"],
        vec!["adaptive-max", "--output-size", "3,2"],
        vec!["adaptive-avg", "--output-size", "3"],
        vec!["global-max"],
        vec!["global-avg"],
        vec!["kmax", "--k", "2"],
        vec![
            "fractional-max",
            "--kernel",
            "2",
            "--output-size",
            "3",
            "--seed",
            "7",
        ],
    ] {
        let mut a = vec!["pool", args[0], "--input", x];
        a.extend(&args[1..]);
        let out = ok(&a);
        assert!(out.starts_with("output ("), "{a:?}: {out}");
        let mut e = a.clone();
        e.push("--explain");
        assert!(ok(&e).contains("step by step"), "{a:?}");
    }
    // lp with p = 1 is the window sum
    let out = ok(&words(&format!(
        "pool lp --input {x} --kernel 2 --norm-type 1"
    )));
    assert!(
        out.contains("[ 14  22 ]") && out.contains("[ 46  54 ]"),
        "{out}"
    );
    let out = ok(&words(&format!("pool global-avg --input {x}")));
    assert!(out.contains("8.5"), "{out}");
}

#[test]
fn bad_input_exits_2_with_one_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let y = dir.path().join("y.npy").to_string_lossy().into_owned();
    let x = "[[1,2,3,4],[5,6,7,8],[9,10,11,12],[13,14,15,16]]";
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["max", "--kernel", "5"], "larger than the padded input"),
        (
            vec!["max", "--kernel", "3", "--padding", "2"],
            "more than half the kernel",
        ),
        (vec!["max"], "needs --kernel"),
        (
            vec!["avg", "--kernel", "2", "--stride", "0"],
            "stride: must be at least 1",
        ),
        (vec!["kmax", "--k", "5"], "larger than the last axis"),
        (vec!["kmax"], "needs --k"),
        (vec!["adaptive-avg", "--output-size", "0"], "at least 1"),
        (vec!["adaptive-max"], "needs --output-size"),
        (
            vec!["fractional-max", "--kernel", "2", "--output-size", "4"],
            "do not fit",
        ),
        (
            vec!["avg", "--kernel", "2", "--dilation", "2"],
            "does not apply",
        ),
        (vec!["global-max", "--kernel", "2"], "does not apply"),
        (
            vec!["lp", "--kernel", "2", "--norm-type", "-1"],
            "norm-type",
        ),
        (
            vec!["avg", "--kernel", "2", "--divisor-override", "0"],
            "divisor-override",
        ),
        (
            vec![
                "max",
                "--kernel",
                "2",
                "--grad-output",
                "[[1,2,3]]",
                "--grad-input",
                "g.npy",
            ],
            "grad-output",
        ),
        (vec!["max-unpool", "--kernel", "2"], "needs --indices"),
        (
            vec!["max-unpool", "--kernel", "2", "--indices", "[[0,1],[2,99]]"],
            "one index per input value",
        ),
        (vec!["max", "--kernel", "x"], "kernel"),
        (vec!["bogus"], "bogus"),
        (
            vec!["max", "--kernel", "2", "--dilation", "18446744073709551615"],
            "too large",
        ),
        (
            vec!["adaptive-avg", "--output-size", "65536,65536"],
            "more than",
        ),
    ];
    for (args, want) in cases {
        let mut a = vec!["pool", args[0], "--input", x, "--output", &y];
        a.extend(&args[1..]);
        let err = usage_error(&a);
        assert!(err.contains(want), "{a:?}: {err}");
        assert!(!Path::new(&y).exists(), "{a:?} wrote output");
    }
    // an output folder that does not exist is refused before anything is written
    let gx = dir.path().join("gx.npy").to_string_lossy().into_owned();
    let err = usage_error(&[
        "pool",
        "max",
        "--input",
        x,
        "--kernel",
        "2",
        "--output",
        &y,
        "--grad-output",
        "[[1,1],[1,1]]",
        "--grad-input",
        "/nonexistent/dir/gx.npy",
    ]);
    assert!(err.contains("grad-input"), "{err}");
    assert!(!Path::new(&y).exists() && !Path::new(&gx).exists());
    let single_line = usage_error(&words(&format!("pool max --input {x} --kernel 5")));
    assert_eq!(single_line.trim_end().lines().count(), 1, "{single_line}");
}
