//! `stride conv` end to end: the seed exercises printed as matrices, `--explain` in its three
//! forms, `.npy` output, and every bad-input class of the issue (exit code 2, one-line message
//! naming the argument, no panic, no output file left behind).

mod common;
use common::*;
use std::path::Path;
use stride::Tensor;

const A: &str = "[[4,5,2,2,1],[3,3,2,2,4],[4,3,4,1,1],[5,1,4,1,2],[5,1,3,1,4]]";
const B: &str = "[[4,3,3],[5,5,5],[2,4,3]]";

/// A raw `.npy` file with the given header dict and payload.
fn raw_npy(path: &Path, dict: &str, payload: &[u8]) {
    std::fs::write(path, npy_bytes(dict, payload)).unwrap();
}

#[test]
fn prints_seed_004_result() {
    let out = ok(&words(&format!("conv --input {A} --kernel {B}")));
    assert!(out.contains("[ 109   92   72 ]"), "{out}");
    assert!(out.contains("[ 110   74   79 ]"), "{out}");
}

#[test]
fn explain_shows_windows_and_dot_products() {
    let out = ok(&words(&format!("conv --input {A} --kernel {B} --explain")));
    assert!(
        out.contains("H: floor((5 + 0 + 0 - 1·(3-1) - 1) / 1) + 1 = 3"),
        "{out}"
    );
    assert!(
        out.contains("= 4·4 + 5·3 + 2·3 + 3·5 + 3·5 + 2·5 + 4·2 + 3·4 + 4·3 = 109"),
        "{out}"
    );
    assert!(out.contains("[ 109   92   72 ]"));
    let im2col = ok(&words(&format!(
        "conv --input {A} --kernel {B} --explain im2col"
    )));
    assert!(
        im2col.contains("columns (9, 9)") && im2col.contains("kernel matrix · columns (1, 9)"),
        "{im2col}"
    );
    let toep = ok(&words(&format!(
        "conv --input {A} --kernel {B} --explain toeplitz"
    )));
    assert!(
        toep.contains("T (9, 25)") && toep.contains("T · x (9, 1)"),
        "{toep}"
    );
    let padded = ok(&words(&format!(
        "conv --input {A} --kernel {B} --padding 1 --padding-mode reflect --explain"
    )));
    assert!(
        padded.contains("Padded input (reflect padding)") && padded.contains("(1, 7, 7)"),
        "{padded}"
    );
}

#[test]
fn seed_000_stride_2_and_npy_output() {
    let dir = tempfile::tempdir().unwrap();
    let y = dir.path().join("y.npy");
    let i = "[[1,1,-2,0,1],[1,0,0,2,1],[0,1,0,5,-1],[-2,1,0,-1,1],[0,1,0,5,-1]]";
    let out = ok(&[
        "conv",
        "--input",
        i,
        "--kernel",
        "[[0,1,1],[1,0,0],[0,1,0]]",
        "--stride",
        "2",
        "--output",
        y.to_str().unwrap(),
    ]);
    assert!(out.contains("wrote"));
    let t = stride::io::npy::read(&y).unwrap();
    assert_eq!(
        t,
        Tensor::new(vec![1, 1, 2, 2], vec![1., 6., 0., 9.]).unwrap()
    );
}

#[test]
fn version_and_help() {
    assert!(ok(&["--version"]).starts_with("stride "));
    let h = ok(&["conv", "--help"]);
    for flag in [
        "--input",
        "--weight",
        "--bias",
        "--stride",
        "--padding",
        "--dilation",
        "--groups",
        "--padding-mode",
        "--flip",
        "--algo",
        "--output",
        "--explain",
    ] {
        assert!(h.contains(flag), "help lacks {flag}");
    }
}

/// Runs a failing command with `--output` and checks the message and that no file was left.
fn fails(args: &[&str], needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let y = dir.path().join("y.npy");
    let mut full: Vec<&str> = args.to_vec();
    full.extend(["--output", y.to_str().unwrap()]);
    usage_error_in(dir.path(), &full, needle);
}

#[test]
fn bad_input_gets_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let x3 = npy(dir.path(), "x3.npy", &Tensor::zeros(&[1, 3, 5, 5]));
    let w2 = npy(dir.path(), "w2.npy", &Tensor::zeros(&[4, 2, 3, 3]));
    let w1d = npy(dir.path(), "w1d.npy", &Tensor::zeros(&[4, 3, 3]));
    // shape mismatches
    fails(
        &["conv", "--input", &x3, "--weight", &w2],
        "weight: expects 2 input channels",
    );
    fails(
        &["conv", "--input", &x3, "--weight", &w1d],
        "input: has shape (1, 3, 5, 5), but a 1-D convolution",
    );
    fails(
        &["conv", "--input", A, "--kernel", B, "--bias", "[1,2]"],
        "bias: has shape (2) but must be (1)",
    );
    // kernel larger than the padded input
    fails(
        &["conv", "--input", "[[1,2],[3,4]]", "--kernel", B],
        "kernel: size 3 is larger than the padded input 2 on axis 0; add padding",
    );
    // zero stride or dilation
    fails(
        &["conv", "--input", A, "--kernel", B, "--stride", "0"],
        "stride: must be at least 1",
    );
    fails(
        &["conv", "--input", A, "--kernel", B, "--dilation", "0"],
        "dilation: must be at least 1",
    );
    // channels not divisible by groups
    let w6 = npy(dir.path(), "w6.npy", &Tensor::zeros(&[4, 1, 3, 3]));
    fails(
        &["conv", "--input", &x3, "--weight", &w6, "--groups", "3"],
        "groups: 3 does not divide",
    );
    // reflect padding not smaller than the input
    fails(
        &[
            "conv",
            "--input",
            "[[1,2],[3,4]]",
            "--kernel",
            "[[1]]",
            "--padding",
            "2",
            "--padding-mode",
            "reflect",
        ],
        "reflect padding 2 must be smaller than the input size 2",
    );
    // per-axis list of the wrong length, bad padding spec, unknown mode / algo
    fails(
        &["conv", "--input", A, "--kernel", B, "--stride", "1,1,1"],
        "stride: 3 values given for 2 spatial axes",
    );
    fails(
        &["conv", "--input", A, "--kernel", B, "--padding", "lots"],
        "padding: cannot read 'lots'",
    );
    fails(
        &[
            "conv",
            "--input",
            A,
            "--kernel",
            B,
            "--padding-mode",
            "mirror",
        ],
        "padding-mode: unknown mode 'mirror'",
    );
    fails(
        &["conv", "--input", A, "--kernel", B, "--algo", "fft"],
        "algo: unknown algorithm 'fft'",
    );
    // malformed literal
    fails(
        &["conv", "--input", "[[1,2],[3]]", "--kernel", B],
        "input: malformed literal",
    );
    fails(
        &["conv", "--input", A, "--kernel", "[[1,2,x]]"],
        "weight: malformed literal",
    );
    // unreadable or wrongly typed .npy
    fails(
        &["conv", "--input", "/nonexistent/x.npy", "--kernel", B],
        "input: cannot read /nonexistent/x.npy",
    );
    let garbage = dir.path().join("garbage.npy");
    std::fs::write(&garbage, b"not numpy at all").unwrap();
    fails(
        &["conv", "--input", garbage.to_str().unwrap(), "--kernel", B],
        "not a valid .npy file",
    );
    let ints = dir.path().join("ints.npy");
    raw_npy(
        &ints,
        "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }",
        &[0u8; 16],
    );
    fails(
        &[
            "conv",
            "--input",
            ints.to_str().unwrap(),
            "--kernel",
            "[[1]]",
        ],
        "dtype <i4 is not supported",
    );
    let fortran = dir.path().join("fortran.npy");
    raw_npy(
        &fortran,
        "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }",
        &[0u8; 16],
    );
    fails(
        &[
            "conv",
            "--input",
            fortran.to_str().unwrap(),
            "--kernel",
            "[[1]]",
        ],
        "Fortran order",
    );
    let short = dir.path().join("short.npy");
    raw_npy(
        &short,
        "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 4), }",
        &[0u8; 16],
    );
    fails(
        &[
            "conv",
            "--input",
            short.to_str().unwrap(),
            "--kernel",
            "[[1]]",
        ],
        "truncated",
    );
    // Toeplitz matrix too large
    let big = npy(dir.path(), "big.npy", &Tensor::zeros(&[1, 16, 64, 64]));
    let wb = npy(dir.path(), "wb.npy", &Tensor::zeros(&[16, 16, 3, 3]));
    fails(
        &[
            "conv", "--input", &big, "--weight", &wb, "--algo", "toeplitz",
        ],
        "Toeplitz matrix would be",
    );
    // Winograd's transformed weights over the memory limit (36 values per kernel channel pair:
    // 2.4 MB for 128 → 128 channels, against a limit of 1 MiB)
    let xw = npy(dir.path(), "xw.npy", &Tensor::zeros(&[1, 128, 4, 4]));
    let ww = npy(dir.path(), "ww.npy", &Tensor::zeros(&[128, 128, 3, 3]));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stride"))
        .args(["conv", "--input", &xw, "--weight", &ww, "--padding", "1"])
        .args(["--algo", "winograd"])
        .env("STRIDE_MAX_MEMORY", "1M")
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{e}");
    assert!(
        e.contains("algo winograd") && e.contains("--algo auto"),
        "{e}"
    );
    // explain on an input too large to narrate
    fails(
        &["conv", "--input", &big, "--weight", &wb, "--explain"],
        "too many to narrate",
    );
}

#[test]
fn float64_npy_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f64.npy");
    let vals: Vec<u8> = [1.0f64, 2.0, 3.0, 4.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    raw_npy(
        &p,
        "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1, 2, 2), }",
        &vals,
    );
    let out = ok(&[
        "conv",
        "--input",
        p.to_str().unwrap(),
        "--kernel",
        "[[1,1],[1,1]]",
    ]);
    assert!(out.contains("[ 10 ]"), "{out}");
}
