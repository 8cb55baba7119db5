//! Export → import round trips give identical logits, layers ONNX cannot express are refused by
//! name, and malformed or hostile `.onnx` files are refused cleanly (no panic, no huge
//! allocation).

mod common;

use prost::Message;
use stride::nn::init::Init;
use stride::nn::models::{self, Model};
use stride::nn::spec::ModelSpec;
use stride::onnx::proto::*;
use stride::rng::Rng;
use stride::Tensor;

fn model(spec: &str, seed: u64) -> Model {
    let (spec, _, _) = models::resolve(spec).unwrap();
    let mut m = Model::build(&spec, Init::Default, seed).unwrap();
    // non-trivial running statistics
    let mut rng = Rng::new(seed + 7);
    for (_, b) in m.net.named_buffers_mut() {
        for v in b.data_mut() {
            *v = 0.5 + rng.uniform();
        }
    }
    m
}

fn input(m: &Model, n: usize, seed: u64) -> Tensor {
    let mut shape = vec![n];
    shape.extend(&m.spec.input);
    let mut rng = Rng::new(seed);
    let len = shape.iter().product();
    Tensor::new(shape, rng.vec(len, 0.0, 1.0)).unwrap()
}

const SPECS: [&str; 11] = [
    "lenet5",
    "lenet5-relu",
    "convnet",
    "input(2,12) conv1d(4,k=3,p=1:2) relu maxpool(2,ceil=true) flatten linear(5)",
    "input(3,10,9) conv(6,k=3x2,s=2x1,p=same,d=1x2,g=3) batchnorm tanh \
     avgpool(3,s=2,p=1,ceil=true,count_include_pad=false) flatten dropout(0.3) linear(7) sigmoid linear(4)",
    "input(1,6,7,8) conv3d(2,k=3,p=1,bias=false) relu maxpool3d(2) globalavgpool flatten batchnorm linear(3)",
    "input(2,16,16) conv(4,k=3) lppool(2,norm=2) adaptiveavgpool(7) conv(4,k=3,p=full) globalmaxpool flatten linear(3)",
    "input(1,15,15) conv(3,k=3,p=1:0x2:1) maxpool(3,s=2,p=1,d=2,ceil=true) adaptivemaxpool(1) flatten linear(2)",
    "input(1,9,9) avgpool(2,ceil=true) conv(2,k=2,s=2,p=valid) adaptivemaxpool(2) flatten linear(3)",
    "input(2,9,8) conv(3,k=3,p=1:2x2:0,mode=reflect) relu conv(2,k=3,p=2,mode=replicate) flatten linear(3)",
    "input(1,10) conv1d(2,k=3,p=same,mode=circular) tanh conv1d(2,k=2,p=1,d=2,mode=reflect) flatten linear(2)",
];

#[test]
fn export_import_gives_identical_logits() {
    for (k, spec) in SPECS.iter().enumerate() {
        let mut m = model(spec, k as u64);
        let x = input(&m, 3, 100 + k as u64);
        let want = m.net.forward(x.clone(), false).unwrap();
        let bytes = stride::onnx::export(&m, "t").unwrap();
        let imported = stride::onnx::import(&bytes).unwrap();
        assert_eq!(imported.producer, "stride");
        let mut back = imported.into_model().unwrap();
        let got = back.net.forward(x, false).unwrap();
        assert_eq!(got.shape(), want.shape(), "{spec}");
        assert_eq!(
            got.data(),
            want.data(),
            "{spec}: logits differ after the round trip"
        );
        // exporting the import again gives the same graph
        let again = stride::onnx::export(&back, "t").unwrap();
        let (a, b) = (
            ModelProto::decode(&bytes[..]).unwrap(),
            ModelProto::decode(&again[..]).unwrap(),
        );
        let ops = |m: &ModelProto| {
            m.graph
                .as_ref()
                .unwrap()
                .node
                .iter()
                .map(|n| n.op_type.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(ops(&a), ops(&b), "{spec}");
    }
}

#[test]
fn export_writes_opset_17_with_a_dynamic_batch() {
    let m = model("lenet5", 0);
    let p = ModelProto::decode(&stride::onnx::export(&m, "lenet5").unwrap()[..]).unwrap();
    assert_eq!(p.opset_import[0].version, 17);
    let g = p.graph.unwrap();
    let dims = |v: &ValueInfoProto| {
        v.r#type
            .clone()
            .unwrap()
            .tensor_type
            .unwrap()
            .shape
            .unwrap()
            .dim
    };
    let i = dims(&g.input[0]);
    assert_eq!(i[0].dim_param.as_deref(), Some("N"));
    assert_eq!(
        i[1..]
            .iter()
            .map(|d| d.dim_value.unwrap())
            .collect::<Vec<_>>(),
        [1, 28, 28]
    );
    assert_eq!(dims(&g.output[0])[1].dim_value, Some(10));
    let ops: Vec<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
    assert_eq!(ops[..4], ["Conv", "Sigmoid", "AveragePool", "Conv"]);
    assert!(ops.contains(&"Gemm") && ops.contains(&"Flatten"));
}

#[test]
fn layers_onnx_cannot_express_are_refused_by_name() {
    for (spec, layer) in [
        (
            "input(1,8,8) minpool(2) flatten linear(2)",
            "layer 1 `minpool",
        ),
        (
            "input(1,8,8) conv(2,k=3) softpool(2) flatten linear(2)",
            "layer 2 `softpool",
        ),
        (
            "input(1,14,14) adaptiveavgpool(5) flatten linear(2)",
            "layer 1 `adaptiveavgpool",
        ),
        (
            "input(1,8,8) lppool(2,norm=3) flatten linear(2)",
            "layer 1 `lppool",
        ),
    ] {
        let m = model(spec, 0);
        let e = stride::onnx::export(&m, "t").unwrap_err().to_string();
        assert!(e.contains(layer), "{spec}: {e}");
    }
}

#[test]
fn export_cli_refuses_to_overwrite_and_names_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.onnx");
    std::fs::write(&out, b"keep me").unwrap();
    let e = common::usage_error(&[
        "export",
        "tests/fixtures/onnx/bn_net.onnx",
        out.to_str().unwrap(),
    ]);
    assert!(e.contains("already exists"), "{e}");
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
    let fresh = dir.path().join("n.onnx");
    common::ok(&[
        "export",
        "tests/fixtures/onnx/bn_net.onnx",
        fresh.to_str().unwrap(),
    ]);
    assert!(stride::onnx::load_model(&fresh).is_ok());
}

// ---- hostile files ----

fn tensor(name: &str, dims: &[i64], raw: Vec<u8>) -> TensorProto {
    TensorProto {
        dims: dims.to_vec(),
        data_type: FLOAT,
        name: name.into(),
        raw_data: raw,
        ..Default::default()
    }
}

fn node(op: &str, inputs: &[&str], out: &str) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![out.into()],
        name: out.into(),
        op_type: op.into(),
        ..Default::default()
    }
}

/// A valid exported model with its graph edited by `edit`.
fn edited(edit: impl FnOnce(&mut GraphProto)) -> Vec<u8> {
    let m = model("input(1,4,4) conv(2,k=3) relu flatten linear(3)", 0);
    let mut p = ModelProto::decode(&stride::onnx::export(&m, "t").unwrap()[..]).unwrap();
    edit(p.graph.as_mut().unwrap());
    p.encode_to_vec()
}

fn refused(bytes: &[u8], want: &str) {
    let e = stride::onnx::import(bytes)
        .and_then(|i| i.into_model())
        .err()
        .expect("must be refused")
        .to_string();
    assert!(e.contains(want), "expected `{want}` in: {e}");
    assert!(!e.contains('\n'), "one line: {e}");
}

#[test]
fn malformed_and_hostile_files_are_refused() {
    refused(
        b"definitely not a protobuf \xff\xff\xff",
        "not a readable ONNX model",
    );
    let good = edited(|_| {});
    refused(&good[..good.len() / 2], "not a readable ONNX model");
    refused(
        &edited(|g| g.initializer[0].dims = vec![1 << 40, 1 << 40]),
        "more than 2^28 values",
    );
    refused(
        &edited(|g| g.initializer[0].dims = vec![-1, 4]),
        "negative size",
    );
    refused(
        &edited(|g| g.initializer[0].raw_data.truncate(3)),
        "truncated or corrupt",
    );
    refused(
        &edited(|g| {
            g.initializer[0].data_location = EXTERNAL;
            g.initializer[0].raw_data.clear();
        }),
        "external file",
    );
    // a cycle: the first node reads the output of a later one
    refused(
        &edited(|g| g.node[0].input[0] = g.node[1].output[0].clone()),
        "cyclic, unsorted or incomplete",
    );
    refused(
        &edited(|g| g.node[1].input = vec!["nowhere".into()]),
        "`nowhere`",
    );
    refused(&edited(|g| g.node[1].input.clear()), "has 0 inputs");
    refused(
        &edited(|g| g.node[1] = node("LSTM", &["0.conv"], "1.relu")),
        "`LSTM`",
    );
    refused(
        &edited(|g| g.node[0].domain = "com.microsoft".into()),
        "domain",
    );
    refused(
        &edited(|g| g.node.push(node("Add", &["0.conv", "logits"], "x"))),
        "residual",
    );
    refused(
        &edited(|g| g.initializer.push(tensor("0.weight", &[1], vec![0; 4]))),
        "defined twice",
    );
    // a Gemm weight that does not fit the activation is refused before anything is built
    refused(
        &edited(|g| {
            let w = g
                .initializer
                .iter_mut()
                .find(|t| t.name == "3.weight")
                .unwrap();
            w.dims = vec![3, 1];
            w.raw_data.truncate(12);
        }),
        "does not fit input",
    );
    refused(
        &edited(|g| {
            g.input[0]
                .r#type
                .as_mut()
                .unwrap()
                .tensor_type
                .as_mut()
                .unwrap()
                .shape
                .as_mut()
                .unwrap()
                .dim[2]
                .dim_value = Some(1 << 40)
        }),
        "no fixed size",
    );
    refused(
        &edited(|g| g.node[0].attribute[0].ints = vec![3, 3, 3]),
        "`kernel_shape` has 3 values",
    );
    refused(&edited(|g| g.output.clear()), "0 outputs");
    // huge padding: the activation would be (2, 4098, 4098) per image
    refused(
        &edited(|g| g.node[0].attribute[2].ints = vec![1 << 11; 4]),
        "more than 2^24 values per image",
    );
    // a Pad that no Conv reads; a folded constant beyond the bound
    let int64 = |name: &str, v: &[i64]| TensorProto {
        dims: vec![v.len() as i64],
        data_type: INT64,
        name: name.into(),
        int64_data: v.to_vec(),
        ..Default::default()
    };
    refused(
        &edited(|g| {
            g.initializer.push(int64("pads", &[0, 0, 1, 1, 0, 0, 1, 1]));
            g.node.insert(1, node("Pad", &["0.conv", "pads"], "padded"));
            g.node[2].input[0] = "padded".into();
        }),
        "only right before the Conv",
    );
    refused(
        &edited(|g| {
            g.initializer.push(int64("big", &[1 << 20, 1 << 20]));
            g.node.insert(0, node("ConstantOfShape", &["big"], "huge"));
        }),
        "more than 65536 values",
    );
}

#[test]
fn random_corruption_never_panics() {
    let good = stride::onnx::export(
        &model(
            "input(1,6,6) conv(2,k=3) batchnorm relu maxpool(2) flatten linear(3)",
            1,
        ),
        "t",
    )
    .unwrap();
    let mut rng = Rng::new(42);
    for _ in 0..2000 {
        let mut b = good.clone();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(b.len());
            b[i] = rng.below(256) as u8;
        }
        if rng.uniform() < 0.2 {
            b.truncate(rng.below(b.len()));
        }
        // Ok or a clean error; building is bounded by the checks
        if let Ok(i) = stride::onnx::import(&b) {
            let _ = i.into_model();
        }
    }
}

#[test]
fn cli_refuses_a_corrupt_file_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.onnx");
    std::fs::write(&p, b"\x08\x07\x12garbage").unwrap();
    for cmd in ["eval", "summary"] {
        let e = common::usage_error(&[cmd, p.to_str().unwrap()]);
        assert_eq!(e.lines().count(), 1, "{e}");
    }
    let _ = ModelSpec::parse("linear(2)", &[4]).unwrap();
}

#[test]
fn extreme_attribute_and_shape_values_never_panic() {
    let spec =
        "input(1,6,6) conv(2,k=3,p=1,mode=reflect) batchnorm relu maxpool(2) flatten linear(3)";
    let good =
        ModelProto::decode(&stride::onnx::export(&model(spec, 2), "t").unwrap()[..]).unwrap();
    let extremes = [i64::MIN, -3, -1, 0, 1, 2, 1 << 40, i64::MAX];
    let mut rng = Rng::new(7);
    for _ in 0..3000 {
        let mut m = good.clone();
        let g = m.graph.as_mut().unwrap();
        let k = rng.below(g.node.len());
        let pick = |rng: &mut Rng| extremes[rng.below(extremes.len())];
        if let Some(at) = g.node[k].attribute.first_mut() {
            for v in at.ints.iter_mut() {
                *v = pick(&mut rng);
            }
            at.i = pick(&mut rng);
        }
        let t = rng.below(g.initializer.len());
        if let Some(d) = g.initializer[t].dims.first_mut() {
            *d = pick(&mut rng);
        }
        if let Ok(i) = stride::onnx::import(&m.encode_to_vec()) {
            let _ = i.into_model();
        }
    }
}
