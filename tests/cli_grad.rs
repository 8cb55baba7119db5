//! End to end: `stride conv` and `stride conv-transpose` with the gradient flags
//! (`--grad-output GY --grad-input GX --grad-weight GW [--grad-bias GB]`): printed, written as
//! `.npy`, explained, and every class of bad input (exit code 2, one line, no file written).

mod common;

use common::{files_in, npy as save, rand_tensor, stride, words};
use std::path::Path;
use std::process::Output;
use stride::io::npy;
use stride::ops::conv::{conv_backward, ConvAlgo, ConvParams, GradRequest};
use stride::ops::conv_transpose::{conv_transpose, conv_transpose_backward, ConvTransposeParams};
use stride::rng::Rng;
use stride::Tensor;

const A: &str = "[[4,5,2,2,1],[3,3,2,2,4],[4,3,4,1,1],[5,1,4,1,2],[5,1,3,1,4]]";
const B: &str = "[[4,3,3],[5,5,5],[2,4,3]]";
const ONES: &str = "[[1,1,1],[1,1,1],[1,1,1]]";

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts a usage error: exit code 2, one line naming `arg`.
/// The error policy (one line naming `arg`, exit 2, no panic), as the common checker enforces it.
fn assert_usage_error(o: &Output, arg: &str) {
    common::assert_usage_error(o, "stride", arg);
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).to_string_lossy().into_owned()
}

#[test]
fn conv_prints_gradients_of_seed_004() {
    let o = stride(&words(&format!(
        "conv --input {A} --kernel {B} --grad-output {ONES}"
    )));
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("output (1, 1, 3, 3)"), "{out}");
    assert!(out.contains("grad_input (1, 1, 5, 5)"), "{out}");
    assert!(out.contains("[ 11  23  34  23  11 ]"), "{out}");
    assert!(out.contains("grad_weight (1, 1, 3, 3)"), "{out}");
    assert!(
        !out.contains("grad_bias"),
        "no bias, no bias gradient printed: {out}"
    );
}

#[test]
fn conv_explains_gradients() {
    let o = stride(&words(&format!(
        "conv --input {A} --kernel {B} --grad-output {ONES} --explain"
    )));
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("Convolution, step by step"), "{out}");
    assert!(out.contains("Convolution gradients, step by step"), "{out}");
    assert!(out.contains("∂E/∂x(1,2) = g(1,1)·w(1,2) + g(1,2)·w(1,1) = 1·3 + 1·4 = 7"));
    assert!(out.contains("∂E/∂w(1,1) = g(1,1)·x(1,1) + "), "{out}");
    assert!(out.contains("full convolution of ∂E/∂y with the flipped kernel"));
}

#[test]
fn conv_writes_every_gradient_like_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut rng = Rng::new(3);
    let x = rand_tensor(&mut rng, &[2, 4, 6, 5]);
    let w = rand_tensor(&mut rng, &[6, 2, 3, 2]);
    let b = rand_tensor(&mut rng, &[6]);
    let gy = rand_tensor(&mut rng, &[2, 6, 3, 3]);
    let (xs, ws, bs, gys) = (
        save(d, "x.npy", &x),
        save(d, "w.npy", &w),
        save(d, "b.npy", &b),
        save(d, "gy.npy", &gy),
    );
    let (gx, gw, gb, y) = (
        path(d, "gx.npy"),
        path(d, "gw.npy"),
        path(d, "gb.npy"),
        path(d, "y.npy"),
    );
    let o = stride(&[
        "conv",
        "--input",
        &xs,
        "--weight",
        &ws,
        "--bias",
        &bs,
        "--stride",
        "2,2",
        "--padding",
        "1:0,1",
        "--padding-mode",
        "reflect",
        "--groups",
        "2",
        "--flip",
        "--output",
        &y,
        "--grad-output",
        &gys,
        "--grad-input",
        &gx,
        "--grad-weight",
        &gw,
        "--grad-bias",
        &gb,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("wrote") && stdout(&o).contains("gx.npy (2, 4, 6, 5)"));
    let p = ConvParams {
        stride: vec![2, 2],
        padding: "1:0,1".parse().unwrap(),
        groups: 2,
        padding_mode: "reflect".parse().unwrap(),
        flip: true,
        ..Default::default()
    };
    let g = conv_backward(&x, &w, &gy, &p, ConvAlgo::Direct, GradRequest::all()).unwrap();
    let close = |file: &str, want: &Tensor| {
        let got = npy::read(Path::new(file)).unwrap();
        assert!(got.max_abs_diff(want) < 1e-4, "{file}");
    };
    close(&gx, g.input.as_ref().unwrap());
    close(&gw, g.weight.as_ref().unwrap());
    close(&gb, g.bias.as_ref().unwrap());
    assert!(Path::new(&y).exists());
}

#[test]
fn grad_bias_without_bias_and_inline_output_gradient() {
    let dir = tempfile::tempdir().unwrap();
    let gb = path(dir.path(), "gb.npy");
    let o = stride(&[
        "conv",
        "--input",
        A,
        "--kernel",
        B,
        "--grad-output",
        "[[1,2,3],[4,5,6],[7,8,9]]",
        "--grad-bias",
        &gb,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let t = npy::read(Path::new(&gb)).unwrap();
    assert_eq!((t.shape(), t.data()), (&[1][..], &[45.0][..]));
    // only the gradients asked for are written
    assert_eq!(files_in(dir.path()).len(), 1);
}

#[test]
fn bad_gradient_flags_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (gx, gw, y) = (path(d, "gx.npy"), path(d, "gw.npy"), path(d, "y.npy"));
    let base = ["conv", "--input", A, "--kernel", B];
    let run = |extra: &[&str]| {
        let mut v: Vec<&str> = base.to_vec();
        v.extend_from_slice(extra);
        stride(&v)
    };
    // a gradient file without the output gradient
    assert_usage_error(&run(&["--grad-input", &gx]), "grad-output");
    // an output gradient of the wrong shape (after every other output was requested)
    let o = run(&[
        "--output",
        &y,
        "--grad-output",
        "[[1,1],[1,1]]",
        "--grad-input",
        &gx,
    ]);
    assert_usage_error(&o, "grad-output");
    assert!(stderr(&o).contains("(1, 1, 3, 3)"));
    // an unreadable output gradient
    assert_usage_error(
        &run(&[
            "--grad-output",
            &path(d, "missing.npy"),
            "--grad-input",
            &gx,
        ]),
        "missing.npy",
    );
    // two outputs to one file
    assert_usage_error(
        &run(&[
            "--grad-output",
            ONES,
            "--grad-input",
            &gx,
            "--grad-weight",
            &gx,
        ]),
        "grad-weight",
    );
    // one file in a missing directory: the others are not written either
    let o = run(&[
        "--output",
        &y,
        "--grad-output",
        ONES,
        "--grad-input",
        &gx,
        "--grad-weight",
        &path(d, "no/such/dir/gw.npy"),
    ]);
    assert_usage_error(&o, "gw.npy");
    assert!(files_in(d).is_empty(), "{:?}", files_in(d));
    let _ = gw;
}

#[test]
fn conv_transpose_prints_and_writes() {
    let o = stride(&words(
        "conv-transpose --input [[1,2],[3,4]] --weight [[1,1],[1,1]] --stride 2",
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("output (1, 1, 4, 4)"), "{out}");
    assert!(
        out.contains("[ 1  1  2  2 ]") && out.contains("[ 3  3  4  4 ]"),
        "{out}"
    );

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut rng = Rng::new(4);
    let x = rand_tensor(&mut rng, &[4, 3, 5]);
    let w = rand_tensor(&mut rng, &[4, 3, 3, 2]);
    let p = ConvTransposeParams {
        stride: vec![2, 3],
        padding: "1".parse().unwrap(),
        output_padding: vec![1, 0],
        dilation: vec![1, 2],
        groups: 2,
    };
    let y = conv_transpose(&x, &w, None, &p, ConvAlgo::Direct).unwrap();
    let gy = rand_tensor(&mut rng, y.shape());
    let (xs, ws, gys) = (
        save(d, "x.npy", &x),
        save(d, "w.npy", &w),
        save(d, "gy.npy", &gy),
    );
    let (ys, gx, gw, gb) = (
        path(d, "y.npy"),
        path(d, "gx.npy"),
        path(d, "gw.npy"),
        path(d, "gb.npy"),
    );
    let o = stride(&[
        "conv-transpose",
        "--input",
        &xs,
        "--weight",
        &ws,
        "--stride",
        "2,3",
        "--padding",
        "1",
        "--output-padding",
        "1,0",
        "--dilation",
        "1,2",
        "--groups",
        "2",
        "--output",
        &ys,
        "--grad-output",
        &gys,
        "--grad-input",
        &gx,
        "--grad-weight",
        &gw,
        "--grad-bias",
        &gb,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let g = conv_transpose_backward(&x, &w, &gy, &p, ConvAlgo::Direct, GradRequest::all()).unwrap();
    for (file, want) in [
        (&ys, &y),
        (&gx, g.input.as_ref().unwrap()),
        (&gw, g.weight.as_ref().unwrap()),
        (&gb, g.bias.as_ref().unwrap()),
    ] {
        let got = npy::read(Path::new(file)).unwrap();
        assert!(got.max_abs_diff(want) < 1e-4, "{file}");
    }
}

#[test]
fn conv_transpose_bad_input() {
    let base = [
        "conv-transpose",
        "--input",
        "[[1,2],[3,4]]",
        "--weight",
        "[[1,1],[1,1]]",
    ];
    let run = |extra: &[&str]| {
        let mut v: Vec<&str> = base.to_vec();
        v.extend_from_slice(extra);
        stride(&v)
    };
    assert_usage_error(&run(&["--output-padding", "1"]), "output-padding");
    assert_usage_error(&run(&["--padding", "same"]), "padding");
    assert_usage_error(&run(&["--padding", "3"]), "padding");
    assert_usage_error(&run(&["--groups", "2"]), "groups");
    assert_usage_error(&run(&["--grad-weight", "gw.npy"]), "grad-output");
    assert_usage_error(
        &run(&["--grad-output", "[[1,1],[1,1]]", "--grad-input", "gx.npy"]),
        "grad-output",
    );
    assert!(!Path::new("gx.npy").exists() && !Path::new("gw.npy").exists());
}
