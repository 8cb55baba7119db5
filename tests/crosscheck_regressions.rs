//! Regressions found by `scripts/crosscheck.py` (stride's CLI against PyTorch, through the
//! flags of the CLI contract only): golden cases it wrote to
//! tests/fixtures/crosscheck_regressions.json, run through the binary exactly as an outside
//! grader would, and one test per bug it found.

mod common;
use common::*;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use stride::Tensor;

#[derive(Deserialize)]
struct Case {
    id: usize,
    /// Flag values: op, stride, padding, dilation, groups, algo, padding_mode, flip, output_padding.
    params: BTreeMap<String, serde_json::Value>,
    x: TensorJson,
    w: TensorJson,
    b: Option<TensorJson>,
    y: TensorJson,
    gy: Option<TensorJson>,
    gx: Option<TensorJson>,
    gw: Option<TensorJson>,
    gb: Option<TensorJson>,
}

#[derive(Deserialize)]
struct File {
    cases: Vec<Case>,
}

/// The case's flags, as `scripts/crosscheck.py` passed them.
fn flags(c: &Case) -> Vec<String> {
    let mut v = vec![c.params["op"].as_str().unwrap().to_string()];
    for (key, val) in &c.params {
        match (key.as_str(), val) {
            ("op", _) | ("flip", serde_json::Value::Bool(false)) => {}
            ("flip", _) => v.push("--flip".into()),
            (k, serde_json::Value::String(s)) => {
                v.push(format!("--{}", k.replace('_', "-")));
                v.push(s.clone());
            }
            (k, n) => {
                v.push(format!("--{}", k.replace('_', "-")));
                v.push(n.to_string());
            }
        }
    }
    v
}

fn read(p: &Path) -> Tensor {
    stride::io::npy::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Runs `stride`, asserting success.
fn run_ok(args: &[String]) {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&a);
}

/// Asserts a usage error: exit 2, one line on stderr that contains `names`.
fn one_line_error(args: &[&str], names: &str) {
    assert_usage_error(&stride(args), &format!("stride {args:?}"), names);
}

#[test]
fn golden_cases_through_the_cli() {
    let f: File = fixture("crosscheck_regressions.json");
    assert!(f.cases.len() >= 30);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for c in &f.cases {
        let mut args = flags(c);
        args.extend(["--input".into(), npy(d, "x.npy", &c.x.tensor())]);
        args.extend(["--weight".into(), npy(d, "w.npy", &c.w.tensor())]);
        if let Some(b) = &c.b {
            args.extend(["--bias".into(), npy(d, "b.npy", &b.tensor())]);
        }
        args.extend(["--output".into(), d.join("y.npy").display().to_string()]);
        let mut want = vec![("y", &c.y)];
        if let (Some(gy), Some(gx), Some(gw), Some(gb)) = (&c.gy, &c.gx, &c.gw, &c.gb) {
            args.extend(["--grad-output".into(), npy(d, "gy.npy", &gy.tensor())]);
            for (flag, name, t) in [
                ("--grad-input", "gx", gx),
                ("--grad-weight", "gw", gw),
                ("--grad-bias", "gb", gb),
            ] {
                args.extend([
                    flag.into(),
                    d.join(format!("{name}.npy")).display().to_string(),
                ]);
                want.push((name, t));
            }
        }
        run_ok(&args);
        for (name, t) in want {
            let got = read(&d.join(format!("{name}.npy")));
            assert_close(&got, &t.tensor(), 1e-4, &format!("case {} {name}", c.id));
        }
    }
}

/// Bug: clap's usage errors took 3 to 7 lines (usage, help hint), and negative numbers
/// (`--stride -1`) were taken for unknown flags instead of being reported on their argument.
#[test]
fn usage_errors_are_one_line_naming_the_argument() {
    let x = "[[1,2,3],[4,5,6],[7,8,9]]";
    let conv = |extra: &[&'static str]| {
        let mut v = vec!["conv", "--input", x, "--kernel", "[[1,0],[0,1]]"];
        v.extend_from_slice(extra);
        v
    };
    let convt = |extra: &[&'static str]| {
        let mut v = vec!["conv-transpose", "--input", x, "--kernel", "[[1,0],[0,1]]"];
        v.extend_from_slice(extra);
        v
    };
    one_line_error(&["conv", "--input", x], "--weight");
    one_line_error(&conv(&["--pading", "1"]), "--padding");
    one_line_error(&conv(&["--groups"]), "--groups");
    one_line_error(&conv(&["--groups", "x"]), "--groups");
    one_line_error(&conv(&["--groups", "-1"]), "--groups");
    one_line_error(&conv(&["--flip=3"]), "--flip");
    one_line_error(&conv(&["--stride", "-1"]), "stride: cannot read '-1'");
    one_line_error(&conv(&["--dilation", "-2"]), "dilation: cannot read '-2'");
    one_line_error(&conv(&["--padding", "-1"]), "padding: cannot read '-1'");
    one_line_error(&convt(&["--padding", "-1"]), "padding: cannot read '-1'");
    one_line_error(&convt(&["--output-padding", "-1"]), "output-padding");
    one_line_error(&convt(&["--groups", "-2"]), "--groups");
    // a negative scalar literal is a value, not a flag
    let out = ok(&conv(&["--bias", "-0.5"]));
    assert!(out.contains("5.5") && out.contains("13.5"), "{out}");
}

/// Bug: huge numbers from the command line panicked (capacity overflow, slices out of range:
/// exit 101), aborted on allocation (exit 134) or overflowed silently (a wrong transposed
/// output size, exit 0). Now: a one-line error naming the argument, exit 2, no file.
#[test]
fn huge_sizes_are_refused_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let y = dir.path().join("y.npy");
    let x = "[[1,2,3],[4,5,6],[7,8,9]]";
    for (op, flag, value, names) in [
        ("conv", "--padding", "9223372036854775807", "padding"),
        ("conv", "--padding", "18446744073709551615", "padding"),
        ("conv", "--padding", "0:9223372036854775807", "padding"),
        ("conv", "--padding", "100000", "padding"),
        ("conv", "--dilation", "9223372036854775808", "dilation"),
        (
            "conv-transpose",
            "--stride",
            "4611686018427387904",
            "stride",
        ),
        ("conv-transpose", "--stride", "100000", "stride"),
        (
            "conv-transpose",
            "--padding",
            "9223372036854775807",
            "padding",
        ),
    ] {
        let args = [
            op,
            "--input",
            x,
            "--kernel",
            "[[1,0],[0,1]]",
            flag,
            value,
            "--output",
            y.to_str().unwrap(),
        ];
        one_line_error(&args, names);
        assert!(!y.exists(), "{args:?} left {}", y.display());
    }
}

/// Bug: `--output` naming a directory (or a path under a plain file) exited 1 with the cause
/// printed twice; the user's path is at fault: exit 2, one line naming the flag, no file.
#[test]
fn output_path_that_is_a_directory_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let conv = ["conv", "--input", "[[1,2],[3,4]]", "--kernel", "[[1]]"];
    let d = dir.path().to_str().unwrap();
    one_line_error(
        &[&conv[..], &["--output", d]].concat(),
        "output: cannot write",
    );
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let under = file.join("gx.npy");
    let grads = ["--grad-output", "[[1,1],[1,1]]", "--grad-input"];
    let err = usage_error(&[&conv[..], &grads, &[under.to_str().unwrap()]].concat());
    assert!(err.contains("grad-input: cannot write"), "{err}");
    assert_eq!(err.matches("Not a directory").count(), 1, "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}
