//! Convolution forward against PyTorch golden values (tests/fixtures/conv_forward.json, made by
//! scripts/gen_conv_fixtures.py), through the library (every algorithm) and through the CLI.

mod common;
use common::*;
use serde::Deserialize;
use stride::ops::conv::{conv, ConvAlgo};

#[derive(Deserialize)]
struct Case {
    stride: String,
    padding: String,
    dilation: String,
    groups: usize,
    padding_mode: String,
    flip: bool,
    x: TensorJson,
    w: TensorJson,
    b: Option<TensorJson>,
    y: TensorJson,
}

#[derive(Deserialize)]
struct File {
    cases: Vec<Case>,
}

fn params(c: &Case) -> stride::ops::conv::ConvParams {
    stride::ops::conv::ConvParams {
        stride: stride::geometry::parse_per_axis("stride", &c.stride).unwrap(),
        padding: c.padding.parse().unwrap(),
        dilation: stride::geometry::parse_per_axis("dilation", &c.dilation).unwrap(),
        groups: c.groups,
        padding_mode: c.padding_mode.parse().unwrap(),
        flip: c.flip,
    }
}

#[test]
fn library_matches_pytorch() {
    let f: File = fixture("conv_forward.json");
    assert!(f.cases.len() >= 40);
    for (i, c) in f.cases.iter().enumerate() {
        let (x, w, b, want) = (
            c.x.tensor(),
            c.w.tensor(),
            c.b.as_ref().map(|b| b.tensor()),
            c.y.tensor(),
        );
        for algo in [
            ConvAlgo::Direct,
            ConvAlgo::Im2col,
            ConvAlgo::Toeplitz,
            ConvAlgo::Auto,
        ] {
            let y = conv(&x, &w, b.as_ref(), &params(c), algo)
                .unwrap_or_else(|e| panic!("case {i} {algo:?}: {e}"));
            assert_close(&y, &want, 1e-5, &format!("case {i} {algo:?}"));
        }
    }
}

#[test]
fn cli_matches_pytorch() {
    let f: File = fixture("conv_forward.json");
    let dir = tempfile::tempdir().unwrap();
    for (i, c) in f.cases.iter().enumerate().step_by(3) {
        let x = npy(dir.path(), "x.npy", &c.x.tensor());
        let w = npy(dir.path(), "w.npy", &c.w.tensor());
        let y = dir.path().join("y.npy");
        let groups = c.groups.to_string();
        let mut args = vec![
            "conv",
            "--input",
            &x,
            "--weight",
            &w,
            "--stride",
            &c.stride,
            "--padding",
            &c.padding,
            "--dilation",
            &c.dilation,
            "--groups",
            &groups,
            "--padding-mode",
            &c.padding_mode,
            "--output",
            y.to_str().unwrap(),
        ];
        let b;
        if let Some(bias) = &c.b {
            b = npy(dir.path(), "b.npy", &bias.tensor());
            args.extend(["--bias", &b]);
        }
        if c.flip {
            args.push("--flip");
        }
        ok(&args);
        let got = stride::io::npy::read(&y).unwrap();
        assert_close(&got, &c.y.tensor(), 1e-5, &format!("cli case {i}"));
    }
}
