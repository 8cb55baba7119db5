//! Models exported by `torch.onnx.export` (tests/fixtures/onnx, made by
//! scripts/gen_onnx_fixtures.py) import and give PyTorch's logits within 1e-5; operators stride
//! cannot run are refused by name; PyTorch safetensors weights load into a spec.

mod common;

use common::{assert_close, fixture, stride, usage_error, TensorJson};
use serde::Deserialize;
use std::path::PathBuf;
use stride::ops::loss::softmax_rows;
use stride::Tensor;

#[derive(Deserialize)]
struct Case {
    input: TensorJson,
    logits: TensorJson,
}

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/onnx")
        .join(name)
}

fn run_onnx(name: &str) -> (Tensor, Tensor, Vec<String>) {
    let case: Case = fixture(&format!("onnx/{name}.json"));
    let mut m = stride::onnx::load_model(&path(&format!("{name}.onnx"))).unwrap();
    let y = stride::train::predict(&mut m.model, case.input.tensor()).unwrap();
    (y, case.logits.tensor(), m.notes)
}

#[test]
fn torch_exports_match_pytorch_logits() {
    for name in ["lenet_relu", "bn_net", "conv1d", "conv3d", "pad_modes"] {
        let (y, want, notes) = run_onnx(name);
        assert!(notes.is_empty(), "{name}: {notes:?}");
        assert_close(&y, &want, 1e-5, name);
    }
}

#[test]
fn view_reshape_matmul_add_and_final_softmax() {
    // x.view(x.size(0), -1) exports Shape → Gather → Unsqueeze → Concat → Reshape; x @ W + b
    // exports MatMul + Add; the final softmax is left out (stride outputs logits)
    let (y, want, notes) = run_onnx("view_matmul");
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("Softmax"));
    let c = y.shape()[1];
    let mut p = vec![0.0; y.numel()];
    softmax_rows(y.data(), c, &mut p);
    assert_close(
        &Tensor::new(y.shape().to_vec(), p).unwrap(),
        &want,
        1e-5,
        "view_matmul",
    );
}

#[test]
fn imported_spec_reads_like_the_pytorch_model() {
    let m = stride::onnx::load_model(&path("bn_net.onnx")).unwrap();
    let spec = m.model.spec.to_string();
    assert!(
        spec.starts_with("input(1,16,16) conv(6,k=3x3,s=2x2,p=1x1,bias=false) sigmoid batchnorm"),
        "{spec}"
    );
    assert!(
        spec.contains("avgpool(3x3,s=2x2,p=1x1,ceil=true,count_include_pad=false)"),
        "{spec}"
    );
    assert!(
        spec.contains("g=2") && spec.contains("d=2x2") && spec.contains("globalavgpool"),
        "{spec}"
    );
}

#[test]
fn unsupported_operators_are_named() {
    let e = usage_error(&["summary", path("lstm.onnx").to_str().unwrap()]);
    assert!(e.contains("`LSTM`") && e.lines().count() == 1, "{e}");
    let e = usage_error(&["summary", path("residual.onnx").to_str().unwrap()]);
    assert!(e.contains("residual") && e.contains("Add"), "{e}");
}

#[test]
fn eval_and_predict_take_an_onnx_file() {
    // predict needs no dataset: a .npy image through the CLI, compared with the library
    let dir = tempfile::tempdir().unwrap();
    let case: Case = fixture("onnx/lenet_relu.json");
    let img = Tensor::new(vec![1, 28, 28], case.input.data[..784].to_vec()).unwrap();
    let img_path = common::npy(dir.path(), "img.npy", &img);
    let out = common::ok(&[
        "predict",
        path("lenet_relu.onnx").to_str().unwrap(),
        &img_path,
        "--top",
        "10",
    ]);
    let row = &case.logits.data[..10];
    let best = (0..10).max_by(|&i, &j| row[i].total_cmp(&row[j])).unwrap();
    let first = out.lines().next().unwrap();
    assert!(first.starts_with(stride::data::CLASSES[best]), "{out}");
    // eval of a missing dataset is a usage error, not a crash
    let e = usage_error(&[
        "eval",
        path("lenet_relu.onnx").to_str().unwrap(),
        "--data",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!e.contains("panicked"));
}

#[test]
fn import_writes_a_run_folder_that_resume_and_eval_take() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = common::ok(&[
        "import",
        path("bn_net.onnx").to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(out.contains("wrote"), "{out}");
    let mut loaded = stride::onnx::load_model(&run).unwrap();
    let case: Case = fixture("onnx/bn_net.json");
    let y = stride::train::predict(&mut loaded.model, case.input.tensor()).unwrap();
    assert_close(&y, &case.logits.tensor(), 1e-5, "bn_net via run folder");
    let s = stride::train::Session::resume(&run, Some(1)).unwrap();
    assert_eq!((s.meta.epoch, s.meta.epochs), (0, 1));
    // never overwritten
    let e = usage_error(&[
        "import",
        path("bn_net.onnx").to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(e.contains("already holds a run"), "{e}");
}

#[derive(Deserialize)]
struct Weights {
    spec: String,
    input: TensorJson,
    logits: TensorJson,
}

#[test]
fn pytorch_safetensors_load_into_a_spec() {
    let w: Weights = fixture("onnx/weights.json");
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let file = path("weights.safetensors");
    common::ok(&[
        "import",
        file.to_str().unwrap(),
        "--spec",
        &w.spec,
        "--out",
        run.to_str().unwrap(),
    ]);
    let mut m = stride::onnx::load_model(&run).unwrap();
    let y = stride::train::predict(&mut m.model, w.input.tensor()).unwrap();
    assert_close(&y, &w.logits.tensor(), 1e-5, "safetensors");
    // a spec that does not match names the tensor
    let e = usage_error(&[
        "import",
        file.to_str().unwrap(),
        "--spec",
        "input(1,8,8) conv(4,k=5,p=2) batchnorm relu maxpool(2) flatten linear(10)",
        "--out",
        dir.path().join("b").to_str().unwrap(),
    ]);
    assert!(
        e.contains("`0.weight`") && e.contains("(4, 1, 3, 3)"),
        "{e}"
    );
    let e = usage_error(&[
        "import",
        file.to_str().unwrap(),
        "--spec",
        "input(1,8,8) conv(4,k=3,p=1) relu maxpool(2) flatten linear(10)",
        "--out",
        dir.path().join("c").to_str().unwrap(),
    ]);
    assert!(e.contains("`4.weight`") && e.contains("missing"), "{e}");
    let e = usage_error(&[
        "import",
        file.to_str().unwrap(),
        "--out",
        dir.path().join("d").to_str().unwrap(),
    ]);
    assert!(e.contains("--spec"), "{e}");
    assert!(!dir.path().join("b").exists() && !dir.path().join("d").exists());
}

#[test]
fn missing_file_is_a_usage_error() {
    let out = stride(&["eval", "/nonexistent/model.onnx"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn an_extra_tensor_is_named() {
    let w: Weights = fixture("onnx/weights.json");
    let mut tensors = stride::onnx::state::read_safetensors(&path("weights.safetensors")).unwrap();
    tensors.insert("9.weight".into(), Tensor::zeros(&[2]));
    let (spec, _, _) = stride::nn::models::resolve(&w.spec).unwrap();
    let mut m = stride::nn::models::Model::build(&spec, Default::default(), 0).unwrap();
    let e = stride::onnx::state::set_weights(&mut m, tensors, "w")
        .unwrap_err()
        .to_string();
    assert!(e.contains("`9.weight` is not part of the spec"), "{e}");
}
