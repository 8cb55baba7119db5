//! Pooling against PyTorch golden values (tests/fixtures/pool.json, made by
//! scripts/gen_pool_fixtures.py): forward output, argmax indices and input gradient of max,
//! avg, lp, adaptive, global, fractional max pooling and max-unpooling in 1-D, 2-D and 3-D.

mod common;
use common::assert_close_each;
use serde::Deserialize;
use stride::geometry::PaddingSpec;
use stride::ops::pool::{
    max_unpool, max_unpool_backward, pool_backward, pool_forward, PoolKind, PoolParams,
};
use stride::Tensor;

#[derive(Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Arr {
    shape: Vec<usize>,
    data: Vec<f64>,
}

impl Arr {
    fn tensor(&self) -> Tensor {
        Tensor::new(
            self.shape.clone(),
            self.data.iter().map(|&v| v as f32).collect(),
        )
        .unwrap()
    }
    fn indices(&self) -> Vec<u32> {
        self.data.iter().map(|&v| v as u32).collect()
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Params {
    kernel: Vec<usize>,
    stride: Vec<usize>,
    padding: Vec<usize>,
    dilation: Vec<usize>,
    ceil_mode: bool,
    count_include_pad: Option<bool>,
    divisor_override: Option<usize>,
    norm_type: Option<f64>,
    output_size: Vec<usize>,
    samples: Option<Arr>,
    input_indices: Option<Arr>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    kind: String,
    params: Params,
    x: Arr,
    y: Arr,
    gy: Arr,
    gx: Arr,
    indices: Option<Arr>,
}

fn load() -> Vec<Case> {
    let text = include_str!("fixtures/pool.json");
    serde_json::from_str::<Fixture>(text).unwrap().cases
}

fn params(c: &Case, kind: PoolKind) -> PoolParams {
    let q = &c.params;
    let mut p = PoolParams::new(kind, &q.kernel);
    p.stride = q.stride.clone();
    p.padding = PaddingSpec::Explicit(q.padding.iter().map(|&v| (v, v)).collect());
    if q.padding.is_empty() {
        p.padding = PaddingSpec::default();
    }
    if !q.dilation.is_empty() {
        p.dilation = q.dilation.clone();
    }
    p.ceil_mode = q.ceil_mode;
    p.count_include_pad = q.count_include_pad.unwrap_or(true);
    p.divisor_override = q.divisor_override;
    p.norm_type = q.norm_type.unwrap_or(2.0);
    p.output_size = q.output_size.clone();
    p.samples = q.samples.as_ref().map(Arr::tensor);
    // the spatial axes of the case: the input's rank minus (N, C) or (C)
    let nd = [&q.kernel, &q.output_size]
        .iter()
        .map(|v| v.len())
        .max()
        .filter(|&n| n > 0)
        .unwrap_or(c.x.shape.len() - 2);
    p.spatial_axes = Some(nd);
    p
}

fn close(name: &str, what: &str, got: &Tensor, want: &Tensor, tol: f32) {
    assert_close_each(got, want, tol, &format!("{name}: {what}"));
}

#[test]
fn every_fixture_matches_pytorch() {
    let cases = load();
    assert!(cases.len() >= 45);
    let mut kinds_seen = std::collections::BTreeSet::new();
    for c in &cases {
        kinds_seen.insert(c.kind.clone());
        let x = c.x.tensor();
        let (y, gx) = if c.kind == "max-unpool" {
            let p = params(c, PoolKind::Max);
            let idx = c.params.input_indices.as_ref().unwrap().indices();
            let y = max_unpool(&x, &idx, &p).unwrap();
            let gx = max_unpool_backward(&x, &idx, &c.gy.tensor(), &p).unwrap();
            (y, gx)
        } else {
            let kind: PoolKind = c.kind.parse().unwrap();
            let p = params(c, kind);
            let out = pool_forward(&x, &p).unwrap_or_else(|e| panic!("{}: {e}", c.name));
            if let Some(want) = &c.indices {
                assert_eq!(
                    out.indices.as_deref().unwrap(),
                    want.indices().as_slice(),
                    "{}: indices",
                    c.name
                );
            }
            let gx = pool_backward(&x, &out, &c.gy.tensor(), &p).unwrap();
            (out.y, gx)
        };
        close(&c.name, "y", &y, &c.y.tensor(), 2e-6);
        close(&c.name, "gx", &gx, &c.gx.tensor(), 2e-5);
    }
    for k in [
        "max",
        "avg",
        "lp",
        "adaptive-max",
        "adaptive-avg",
        "global-max",
        "global-avg",
        "fractional-max",
        "max-unpool",
    ] {
        assert!(kinds_seen.contains(k), "no fixture for {k}");
    }
}
