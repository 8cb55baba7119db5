//! `stride summary`: the report against the real network. Parameter counts against the built
//! layers' parameter tensors; shapes against a forward pass, layer by layer; MACs and FLOPs
//! against counts taken from the tensors seen in that forward pass and against PyTorch's own
//! FLOP counter (fixture); receptive fields against the input-gradient footprint of one output
//! cell on random conv / average-pooling stacks. The CLI is tested in tests/summary_cli.rs.

mod common;
use common::*;

use serde::Deserialize;
use stride::analysis::summary::{summarize, RfAxis, Summary};
use stride::geometry::{per_axis, tap_coord, PaddingSpec};
use stride::nn::init::Init;
use stride::nn::models::{Model, INPUT, PRESETS};
use stride::nn::spec::{LayerSpec, ModelSpec};
use stride::ops::pool::PoolParams;
use stride::rng::Rng;
use stride::Tensor;

// ---- helpers --------------------------------------------------------------------------------

fn spec(text: &str) -> ModelSpec {
    ModelSpec::parse(text, &INPUT).unwrap()
}

fn random_tensor(shape: &[usize], rng: &mut Rng) -> Tensor {
    let n = shape.iter().product();
    Tensor::new(shape.to_vec(), rng.vec(n, -1.0, 1.0)).unwrap()
}

/// A random network using every kind of layer a spec can hold; `None` when it does not fit.
fn random_spec(rng: &mut Rng) -> Option<ModelSpec> {
    let nd = 1 + rng.below(3);
    let size = if nd == 3 {
        5 + rng.below(6)
    } else {
        8 + rng.below(20)
    };
    let c = 1 + rng.below(4);
    let dims = vec![size + rng.below(4); nd];
    let mut text = format!(
        "input({c},{})",
        dims.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    let per = |rng: &mut Rng, lo: usize, n: usize| -> String {
        (0..nd)
            .map(|_| (lo + rng.below(n)).to_string())
            .collect::<Vec<_>>()
            .join("x")
    };
    for _ in 0..1 + rng.below(4) {
        let l = match rng.below(10) {
            0..=2 => {
                let g = [1, 1, 2][rng.below(3)];
                let pad = if rng.below(4) == 0 {
                    "same".to_string()
                } else {
                    per(rng, 0, 3)
                };
                format!(
                    "conv({},k={},s={},p={pad},d={},g={g},bias={})",
                    g * (1 + rng.below(3)),
                    per(rng, 1, 3),
                    per(rng, 1, 2),
                    per(rng, 1, 2),
                    rng.below(2) == 0
                )
            }
            3 => {
                let kind = ["maxpool", "avgpool", "minpool", "lppool", "softpool"][rng.below(5)];
                format!(
                    "{kind}({},s={},ceil={})",
                    2 + rng.below(2),
                    1 + rng.below(2),
                    rng.below(2) == 0
                )
            }
            4 => [
                "adaptiveavgpool(3)",
                "adaptivemaxpool(2)",
                "globalavgpool",
                "globalmaxpool",
            ][rng.below(4)]
            .to_string(),
            5 => "batchnorm".to_string(),
            6 => "dropout(0.3)".to_string(),
            _ => ["relu", "sigmoid", "tanh"][rng.below(3)].to_string(),
        };
        text.push(' ');
        text.push_str(&l);
    }
    text.push_str(" flatten linear(5) relu linear(3)");
    let s = ModelSpec::parse(&text, &INPUT).unwrap();
    s.shapes().ok().map(|_| s)
}

/// Input elements read by the windows of a pooling layer, counted tap by tap (sliding) or from
/// PyTorch's adaptive window formula, for output sizes `out`.
fn pool_reads(p: &PoolParams, input: &[usize], out: &[usize]) -> u64 {
    let nd = input.len();
    let mut reads = 1u64;
    for a in 0..nd {
        let (i, o_len) = (input[a], out[a]);
        let count: usize = match p.kind {
            k if k.is_sliding() => {
                let k = per_axis("k", &p.kernel, nd).unwrap()[a];
                let s = per_axis("s", p.stride_or_kernel(), nd).unwrap()[a];
                let d = per_axis("d", &p.dilation, nd).unwrap()[a];
                let PaddingSpec::Explicit(pads) = &p.padding else {
                    panic!("pool padding is explicit")
                };
                let pb = per_axis("p", pads, nd).unwrap()[a].0;
                (0..o_len)
                    .flat_map(|o| (0..k).map(move |t| tap_coord(o, t, s, d, pb)))
                    .filter(|&c| c >= 0 && (c as usize) < i)
                    .count()
            }
            // adaptive: cell o reads [floor(o·i/O), ceil((o+1)·i/O)); global: O = 1
            _ => (0..o_len)
                .map(|o| ((o + 1) * i).div_ceil(o_len) - o * i / o_len)
                .sum(),
        };
        reads *= count as u64;
    }
    reads
}

/// Builds `spec`, runs a random batch of 2 through its layers one by one, and checks every
/// row of the summary against the layers and the tensors they produced.
fn check_against_forward(spec: &ModelSpec, seed: u64) -> Summary {
    let s = summarize(spec, "t", 2).unwrap();
    let mut model = Model::build(spec, Init::Default, seed).unwrap();
    let mut rng = Rng::new(seed);
    let mut shape = vec![2];
    shape.extend(&spec.input);
    let mut x = random_tensor(&shape, &mut rng);
    let mut total_params = 0;
    for ((layer, ls), row) in model.net.layers.iter_mut().zip(&spec.layers).zip(&s.layers) {
        let what = format!("{} layer {} `{}`", spec, row.index, row.layer);
        // parameters: the sizes of the layer's parameter tensors
        let params: usize = layer.params().iter().map(|p| p.value.numel()).sum();
        assert_eq!(row.params, params as u64, "{what}: params");
        total_params += params;
        let weight = layer
            .params()
            .iter()
            .find(|p| p.name == "weight")
            .map(|p| p.value.shape().to_vec());
        let in_shape = x.shape().to_vec();
        x = layer.forward(x, true).unwrap();
        // shapes: the forward pass's, without the batch axis
        assert_eq!(x.shape()[0], 2, "{what}");
        assert_eq!(&x.shape()[1..], row.out_shape.as_slice(), "{what}: shape");
        // MACs and FLOPs from the tensors seen, per image
        let out_per_image = (x.numel() / 2) as u64;
        let (macs, flops) = match ls {
            LayerSpec::Conv { .. } | LayerSpec::Linear { .. } => {
                // conv weight (Cout, Cin/g, *k): out.numel · Cin/g · taps; linear (out, in)
                let w = weight.expect("weight");
                let fan_in = w[1..].iter().product::<usize>() as u64;
                (out_per_image * fan_in, 2 * out_per_image * fan_in)
            }
            LayerSpec::Pool { params, .. } => {
                let p = PoolParams {
                    spatial_axes: Some(in_shape.len() - 2),
                    ..params.clone()
                };
                let reads = pool_reads(&p, &in_shape[2..], &x.shape()[2..]);
                (0, in_shape[1] as u64 * reads)
            }
            LayerSpec::Act(_) | LayerSpec::Dropout { .. } => (0, out_per_image),
            LayerSpec::BatchNorm { .. } => (0, 2 * out_per_image),
            LayerSpec::Flatten => (0, 0),
        };
        assert_eq!(row.macs, macs, "{what}: MACs");
        assert_eq!(row.flops_forward, flops, "{what}: FLOPs");
    }
    assert_eq!(s.totals.params, total_params as u64);
    assert_eq!(s.totals.params, model.net.num_params() as u64);
    s
}

// ---- parameters, shapes, FLOPs ----------------------------------------------------------------

#[test]
fn presets_match_their_built_networks() {
    for (i, p) in PRESETS.iter().enumerate() {
        let s = check_against_forward(&spec(p.spec), i as u64);
        if p.name == "lenet5" {
            // d2l's LeNet
            assert_eq!(s.totals.params, 61_706);
        }
    }
}

#[test]
fn random_networks_match_their_built_networks() {
    let mut rng = Rng::new(7);
    let mut checked = 0;
    while checked < 40 {
        if let Some(s) = random_spec(&mut rng) {
            check_against_forward(&s, checked);
            checked += 1;
        }
    }
}

#[derive(Deserialize)]
struct Fixture {
    models: Vec<FxModel>,
}

#[derive(Deserialize)]
struct FxModel {
    name: String,
    spec: String,
    input: Vec<usize>,
    params: u64,
    layers: Vec<FxLayer>,
}

#[derive(Deserialize)]
struct FxLayer {
    out_shape: Vec<usize>,
    params: u64,
    flops_forward: u64,
    flops_backward: u64,
}

/// PyTorch's `FlopCounterMode` (scripts/gen_summary_fixtures.py) counts convolutions and
/// matrix products, 2 FLOPs per MAC, forward and backward, and nothing else: conv and linear
/// rows must agree exactly, forward and backward (input gradient skipped for the first layer).
#[test]
fn conv_and_linear_flops_match_pytorch() {
    let fx: Fixture = fixture("summary.json");
    for m in &fx.models {
        let spec = ModelSpec::parse(&m.spec, &m.input).unwrap();
        let s = check_against_forward(&spec, 1);
        assert_eq!(s.totals.params, m.params, "{}", m.name);
        assert_eq!(s.layers.len(), m.layers.len(), "{}", m.name);
        for (row, want) in s.layers.iter().zip(&m.layers) {
            let what = format!("{} layer {} `{}`", m.name, row.index, row.layer);
            assert_eq!(row.out_shape, want.out_shape, "{what}");
            assert_eq!(row.params, want.params, "{what}");
            if matches!(row.kind, "conv" | "linear") {
                assert_eq!(row.flops_forward, want.flops_forward, "{what}: forward");
                // PyTorch's counter leaves groups out of the weight gradient (its
                // conv_backward_flop says so): it counts g × the weight-gradient FLOPs
                // (= forward FLOPs), so add the difference before comparing
                let g = match &spec.layers[row.index - 1] {
                    LayerSpec::Conv { groups, .. } => *groups as u64,
                    _ => 1,
                };
                let torch_extra = (g - 1) * row.flops_forward;
                assert_eq!(
                    row.flops_backward + torch_extra,
                    want.flops_backward,
                    "{what}: backward"
                );
            } else {
                assert_eq!(
                    want.flops_forward, 0,
                    "{what}: PyTorch counts only conv/linear"
                );
            }
        }
    }
}

// ---- receptive fields -------------------------------------------------------------------------

/// A random stack of convolutions and average poolings over `nd` spatial axes, sometimes ending
/// in adaptive average pooling to a divisor of the map; `None` when it does not fit.
fn random_window_stack(rng: &mut Rng, nd: usize) -> Option<ModelSpec> {
    let per = |rng: &mut Rng, lo: usize, n: usize| -> Vec<usize> {
        (0..nd).map(|_| lo + rng.below(n)).collect()
    };
    let x = |v: &[usize]| {
        v.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("x")
    };
    let size = if nd == 3 {
        per(rng, 8, 6)
    } else {
        per(rng, 12, 20)
    };
    let mut text = format!(
        "input({},{})",
        1 + rng.below(2),
        size.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    for _ in 0..1 + rng.below(4) {
        if rng.below(3) == 0 {
            let k = per(rng, 1, 3);
            let p: Vec<usize> = k.iter().map(|&k| rng.below(k / 2 + 1)).collect();
            text += &format!(
                " avgpool({},s={},p={},ceil={})",
                x(&k),
                x(&per(rng, 1, 3)),
                x(&p),
                rng.below(3) == 0
            );
        } else {
            let pad = if rng.below(4) == 0 {
                "same".to_string()
            } else {
                x(&per(rng, 0, 4))
            };
            text += &format!(
                " conv({},k={},s={},p={pad},d={})",
                1 + rng.below(3),
                x(&per(rng, 1, 4)),
                x(&per(rng, 1, 3)),
                x(&per(rng, 1, 3))
            );
            if rng.below(2) == 0 {
                text += " relu";
            }
        }
    }
    let s = ModelSpec::parse(&text, &INPUT).unwrap();
    let out = s.out_shape().ok()?;
    if rng.below(3) == 0 {
        // adaptive pooling to a divisor of the map: a sliding window of input/output
        let d: Vec<usize> = out[1..]
            .iter()
            .map(|&n| {
                let divs: Vec<usize> = (1..=n).filter(|d| n % d == 0).collect();
                divs[rng.below(divs.len())]
            })
            .collect();
        text += &format!(" adaptiveavgpool({})", x(&d));
        return Some(ModelSpec::parse(&text, &INPUT).unwrap());
    }
    Some(s)
}

/// Per axis, the lowest and highest input coordinate with a non-zero gradient.
fn footprint(gx: &Tensor, nd: usize) -> Vec<Option<(usize, usize)>> {
    let sp = &gx.shape()[gx.rank() - nd..];
    let plane: usize = sp.iter().product();
    let mut hull = vec![None; nd];
    for (i, v) in gx.data().iter().enumerate() {
        if *v == 0.0 {
            continue;
        }
        let mut rem = i % plane;
        for a in (0..nd).rev() {
            let c = rem % sp[a];
            rem /= sp[a];
            let h: &mut Option<(usize, usize)> = &mut hull[a];
            *h = Some(h.map_or((c, c), |(lo, hi)| (lo.min(c), hi.max(c))));
        }
    }
    hull
}

/// Backpropagates a one-hot gradient at one output cell through positive weights (relu kept
/// active by a positive input) and average pooling: the input pixels with a non-zero gradient
/// span exactly the predicted field [start + o·jump, start + o·jump + size) when it lies inside
/// the input, and never leave the field clipped to the input.
#[test]
fn receptive_fields_match_the_gradient_footprint() {
    let mut rng = Rng::new(11);
    let (mut models, mut exact, mut clipped) = (0, 0, 0);
    while models < 40 {
        let nd = 1 + models % 3;
        let Some(spec) = random_window_stack(&mut rng, nd) else {
            continue;
        };
        models += 1;
        let s = summarize(&spec, "rf", 1).unwrap();
        let rf: Vec<RfAxis> = s.layers.last().unwrap().receptive_field.clone().unwrap();
        let mut model = Model::build(&spec, Init::Default, 3).unwrap();
        for l in model.net.layers.iter_mut() {
            for p in l.params_mut() {
                p.value
                    .data_mut()
                    .iter_mut()
                    .for_each(|v| *v = rng.range(0.5, 1.5));
            }
        }
        let mut shape = vec![1];
        shape.extend(&spec.input);
        let n: usize = shape.iter().product();
        let mut x = Tensor::new(shape.clone(), rng.vec(n, 0.5, 1.5)).unwrap();
        for l in model.net.layers.iter_mut() {
            x = l.forward(x, true).unwrap();
        }
        let out_sp = x.shape()[2..].to_vec();
        let cells: usize = out_sp.iter().product();
        // every cell of small outputs, else a sample including the first and last
        let picks: Vec<usize> = if cells <= 24 {
            (0..cells).collect()
        } else {
            let mut v: Vec<usize> = (0..22).map(|_| rng.below(cells)).collect();
            v.extend([0, cells - 1]);
            v
        };
        for cell in picks {
            let mut gy = Tensor::zeros(x.shape());
            gy.data_mut()[cell] = 1.0;
            let mut g = gy;
            for l in model.net.layers.iter_mut().rev() {
                g = l.backward(g, true).unwrap().unwrap();
            }
            let hull = footprint(&g, nd);
            // the cell's coordinate on each axis
            let mut rem = cell;
            let mut o = vec![0; nd];
            for a in (0..nd).rev() {
                o[a] = rem % out_sp[a];
                rem /= out_sp[a];
            }
            let fits = (0..nd).all(|a| {
                let lo = rf[a].start + (o[a] as u64 * rf[a].jump) as i64;
                lo >= 0 && lo + rf[a].size as i64 <= spec.input[1 + a] as i64
            });
            if hull.iter().any(Option::is_none) {
                // every path from this cell runs through padding: only possible at the border
                assert!(!fits, "{spec}: output cell {o:?} has no gradient");
                clipped += 1;
                continue;
            }
            let mut inside = true;
            for a in 0..nd {
                let lo = rf[a].start + (o[a] as u64 * rf[a].jump) as i64;
                let hi = lo + rf[a].size as i64; // exclusive
                let what = format!("{spec}: axis {a}, output cell {o:?}, field [{lo}, {hi})");
                let (first, last) = hull[a].expect("checked above");
                let (clo, chi) = (lo.max(0), hi.min(spec.input[1 + a] as i64));
                assert!(
                    clo <= first as i64 && (last as i64) < chi,
                    "{what}: gradient at [{first}, {last}]"
                );
                if lo >= 0 && hi <= spec.input[1 + a] as i64 {
                    assert_eq!((first as i64, last as i64 + 1), (lo, hi), "{what}");
                } else {
                    inside = false;
                }
            }
            if inside {
                exact += 1;
            } else {
                clipped += 1;
            }
        }
    }
    assert!(
        exact >= 100 && clipped >= 100,
        "exact {exact}, clipped {clipped}"
    );
}

#[test]
fn receptive_field_of_known_stacks() {
    // seed 001: three stacked 3×3 convolutions see 7×7
    let s = summarize(
        &spec("conv(4,k=3) conv(4,k=3) conv(4,k=3) flatten linear(2)"),
        "m",
        1,
    )
    .unwrap();
    let rf = s.layers[2].receptive_field.clone().unwrap();
    assert_eq!(
        rf,
        vec![
            RfAxis {
                size: 7,
                jump: 1,
                start: 0
            };
            2
        ]
    );
    assert!(s.layers[3].receptive_field.is_none());
    // global pooling: the field of the whole map; adaptive pooling that does not divide ends it
    let s = summarize(&spec("conv(2,k=3,s=2) globalavgpool"), "m", 1).unwrap();
    assert_eq!(
        s.layers[1].receptive_field.clone().unwrap()[0],
        RfAxis {
            size: 3 + 12 * 2,
            jump: 26,
            start: 0
        }
    );
    let s = summarize(&spec("adaptiveavgpool(5) relu"), "m", 1).unwrap();
    assert!(s.layers[0].receptive_field.is_none() && s.layers[1].receptive_field.is_none());
    // 'same' padding with stride 2 pads like TensorFlow: begin = total/2
    let s = summarize(&spec("input(1,8,8) conv(1,k=4,s=2,p=same)"), "m", 1).unwrap();
    assert_eq!(s.layers[0].receptive_field.clone().unwrap()[0].start, -1);
}

#[test]
fn backward_memory_and_totals_rules() {
    let s = summarize(
        &spec("conv(4,k=3) relu maxpool(2) avgpool(2) dropout(0.5) flatten linear(10)"),
        "m",
        8,
    )
    .unwrap();
    let b = |i: usize| s.layers[i].activation_bytes_per_image;
    assert_eq!(b(0), 4 * 28 * 28); // conv keeps its input
    assert_eq!(b(1), 4 * 4 * 26 * 26); // relu its output
    assert_eq!(b(2), 4 * (4 * 26 * 26 + 2 * 4 * 13 * 13)); // max: input, output, indices
    assert_eq!(b(3), 4 * (4 * 13 * 13 + 4 * 6 * 6)); // avg: input and output
    assert_eq!(b(4), 4 * 4 * 6 * 6); // dropout: its mask
    assert_eq!(b(5), 0); // flatten
    assert_eq!(b(6), 4 * 144); // linear: its input
    for r in &s.layers {
        assert_eq!(r.activation_bytes_batch, 8 * r.activation_bytes_per_image);
        let want = match (r.params > 0, r.index == 1) {
            (true, true) => r.flops_forward,
            (true, false) => 2 * r.flops_forward,
            (false, true) => 0,
            (false, false) => r.flops_forward,
        };
        assert_eq!(r.flops_backward, want, "{}", r.layer);
    }
    let t = &s.totals;
    assert_eq!(t.flops_train_step, 8 * (t.flops_forward + t.flops_backward));
    assert_eq!(t.param_bytes, 4 * t.params);
}
