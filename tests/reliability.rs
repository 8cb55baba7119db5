//! The defects a probe of bad inputs and faults found (issue 16), one test each, driven through
//! the CLI: a closed stdout, tampered checkpoints, huge sizes, hostile parser input, run
//! folders, evaluation and analysis arithmetic. Each case must end in a clean exit (0, or 2 with
//! a one-line message) — never a panic or an abort.

mod common;
mod synth;

use common::{npy_bytes, ok, stride, usage_error, words};
use std::path::Path;
use std::process::{Command, Stdio};

const NET: &str = "conv(4,k=5,s=3) relu flatten linear(10)";

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// A trained one-epoch run in `dir/run` on synthetic data in `dir/data`; extra flags appended.
fn train_run(dir: &Path, extra: &[&str]) -> (String, String) {
    let data = dir.join("data");
    if !data.exists() {
        synth::write_dataset(&data, 40, 20);
    }
    let run = dir.join("run");
    let mut args = vec![
        "train",
        NET,
        "--data",
        data.to_str().unwrap(),
        "--limit",
        "40",
        "--epochs",
        "1",
        "--batch-size",
        "20",
        "--threads",
        "1",
        "--out",
        run.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    ok(&args);
    (s(&data), s(&run))
}

/// Runs stride with its stdout closed before it writes anything.
fn closed_stdout(args: &[&str]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stride"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

fn no_panic(o: &std::process::Output, what: &str) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{what}: {err}"
    );
    assert!(
        o.status.code().is_some(),
        "{what}: killed by a signal: {err}"
    );
    err
}

// ---- 2. a closed stdout ----

#[test]
fn closed_stdout_costs_no_work() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    synth::write_dataset(&data, 40, 20);
    let run = dir.path().join("run");
    let o = closed_stdout(&[
        "train",
        NET,
        "--data",
        &s(&data),
        "--limit",
        "40",
        "--epochs",
        "2",
        "--batch-size",
        "20",
        "--threads",
        "1",
        "--out",
        &s(&run),
    ]);
    no_panic(&o, "train | head");
    assert!(o.status.success(), "{o:?}");
    let loaded = stride::checkpoint::load(&run).unwrap();
    assert_eq!(loaded.meta.epoch, 2, "training must go on to the end");
    for args in [
        &["summary", "lenet5"][..],
        &["conv", "--input", "[[1,2],[3,4]]", "--kernel", "[[1]]"],
        &["predict", &s(&run), &s(&dir.path().join("x.npy"))],
    ] {
        if args[0] == "predict" {
            let t = stride::Tensor::zeros(&[28, 28]);
            stride::io::npy::write(&dir.path().join("x.npy"), &t).unwrap();
        }
        let o = closed_stdout(args);
        let err = no_panic(&o, args[0]);
        assert!(o.status.success(), "{}: {err}", args[0]);
        assert!(
            err.is_empty(),
            "{}: quiet exit expected, got {err}",
            args[0]
        );
    }
}

// ---- 3. checkpoints are validated ----

type Entry = (String, Vec<usize>, Vec<u8>);
type Tamper = Box<dyn Fn(&mut Vec<Entry>, &mut serde_json::Value)>;

/// Rewrites a checkpoint: `f` edits its tensors and its metadata JSON.
fn tamper(path: &Path, f: impl FnOnce(&mut Vec<Entry>, &mut serde_json::Value)) {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut meta: serde_json::Value =
        serde_json::from_str(&header.metadata().as_ref().unwrap()["stride"]).unwrap();
    let mut entries: Vec<Entry> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.shape().to_vec(), v.data().to_vec()))
        .collect();
    f(&mut entries, &mut meta);
    let views: Vec<(String, safetensors::tensor::TensorView)> = entries
        .iter()
        .map(|(n, sh, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, sh.clone(), b)
                    .unwrap(),
            )
        })
        .collect();
    let info = std::collections::HashMap::from([("stride".to_string(), meta.to_string())]);
    let out = safetensors::tensor::serialize(views, Some(info)).unwrap();
    std::fs::write(path, out).unwrap();
}

fn reshape_entry(entries: &mut [Entry], name: &str) {
    let e = entries.iter_mut().find(|e| e.0 == name).unwrap();
    // same number of values, another shape: (a, b, ...) → (numel)
    let n: usize = e.1.iter().product();
    e.1 = vec![n];
}

#[test]
fn tampered_checkpoints_are_refused_naming_the_field() {
    let cases: Vec<(&str, &[&str], Tamper, &str)> = vec![
        (
            "sgd momentum buffer of the wrong shape",
            &["--optimizer", "sgd", "--lr", "0.1", "--momentum", "0.9"],
            Box::new(|e, _| reshape_entry(e, "optim.0.weight.momentum_buffer")),
            "optim.0.weight.momentum_buffer",
        ),
        (
            "adam moment of the wrong shape",
            &["--optimizer", "adam"],
            Box::new(|e, _| reshape_entry(e, "optim.0.weight.exp_avg")),
            "optim.0.weight.exp_avg",
        ),
        (
            "reversed parameter list",
            &["--optimizer", "adam"],
            Box::new(|_, m| {
                let p = m["params"].as_array_mut().unwrap();
                p.reverse();
            }),
            "params",
        ),
        (
            "short parameter list",
            &["--optimizer", "adam"],
            Box::new(|_, m| {
                m["params"].as_array_mut().unwrap().pop();
            }),
            "params",
        ),
        (
            "unknown optimiser",
            &[],
            Box::new(|_, m| m["optim"]["kind"] = "rmsprop".into()),
            "rmsprop",
        ),
        (
            "unknown schedule",
            &[],
            Box::new(|_, m| m["optim"]["schedule"] = "step".into()),
            "schedule",
        ),
        (
            "negative learning rate",
            &[],
            Box::new(|_, m| m["optim"]["lr"] = (-0.5).into()),
            "lr",
        ),
        (
            "NaN learning rate",
            &[],
            Box::new(|_, m| m["optim"]["lr"] = serde_json::Value::Null),
            "lr",
        ),
    ];
    for (what, flags, f, needle) in cases {
        let dir = tempfile::tempdir().unwrap();
        let (data, run) = train_run(dir.path(), flags);
        tamper(&Path::new(&run).join("checkpoint.safetensors"), f);
        let e = usage_error(&["train", "--resume", &run, "--epochs", "2", "--data", &data]);
        assert!(e.contains(needle), "{what}: {e}");
        assert_eq!(e.trim_end().lines().count(), 1, "{what}: {e}");
    }
}

// ---- 4. sizes ----

#[test]
fn huge_sizes_are_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    synth::write_dataset(&data, 20, 10);
    let out = s(&dir.path().join("out"));
    let d = s(&data);
    let e = usage_error(&["train", "flatten linear(0)", "--data", &d, "--out", &out]);
    assert!(e.contains("linear"), "{e}");
    let e = usage_error(&[
        "train",
        "flatten linear(1000000000000)",
        "--data",
        &d,
        "--out",
        &out,
    ]);
    assert!(e.contains("STRIDE_MAX_MEMORY"), "{e}");
    let e = usage_error(&[
        "conv",
        "--input",
        "[[1,2,3],[4,5,6],[7,8,9]]",
        "--kernel",
        "[[1,0],[0,1]]",
        "--padding",
        "30000",
    ]);
    assert!(e.contains("STRIDE_MAX_MEMORY"), "{e}");
    let e = usage_error(&[
        "conv-transpose",
        "--input",
        "[[1,2,3],[4,5,6],[7,8,9]]",
        "--weight",
        "[[1,0],[0,1]]",
        "--stride",
        "30000",
    ]);
    assert!(e.contains("STRIDE_MAX_MEMORY"), "{e}");
    let e = usage_error(&[
        "pool",
        "adaptive-avg",
        "--input",
        "[[1,2,3],[4,5,6],[7,8,9]]",
        "--output-size",
        "16000,16000",
    ]);
    assert!(e.contains("--output"), "{e}");
    // a .npy header claiming (1, 1, 2^32, 2^32)
    let npy = dir.path().join("huge.npy");
    let bytes = npy_bytes(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 4294967296, 4294967296), }",
        &[0; 64],
    );
    std::fs::write(&npy, bytes).unwrap();
    let e = usage_error(&["conv", "--input", &s(&npy), "--kernel", "[[1]]"]);
    assert!(e.contains("huge.npy"), "{e}");
    // the limit is overridable
    let o = Command::new(env!("CARGO_BIN_EXE_stride"))
        .args(words("conv --input [[1,2],[3,4]] --kernel [[1]]"))
        .env("STRIDE_MAX_MEMORY", "1K")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let o = Command::new(env!("CARGO_BIN_EXE_stride"))
        .args(words(
            "conv --input [[1,2],[3,4]] --kernel [[1]] --padding 20",
        ))
        .env("STRIDE_MAX_MEMORY", "1K")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let o = Command::new(env!("CARGO_BIN_EXE_stride"))
        .args(words("conv --input [[1,2],[3,4]] --kernel [[1]]"))
        .env("STRIDE_MAX_MEMORY", "lots")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("STRIDE_MAX_MEMORY"));
}

// ---- 5. parsers ----

#[test]
fn parsers_refuse_hostile_input_cleanly() {
    let deep = format!("{}1{}", "[".repeat(30000), "]".repeat(30000));
    let e = usage_error(&["conv", "--input", &deep, "--kernel", "[[1]]"]);
    assert!(e.contains("deep"), "{e}");
    for big in ["1e39", "-1e39", "1e400"] {
        let e = usage_error(&[
            "conv",
            "--input",
            &format!("[[{big},1]]"),
            "--kernel",
            "[[1]]",
        ]);
        assert!(e.contains("float32"), "{big}: {e}");
    }
    for nan in ["nan", "NaN", "inf", "-Infinity"] {
        let o = stride(&[
            "conv",
            "--input",
            &format!("[[{nan},1]]"),
            "--kernel",
            "[[1]]",
        ]);
        assert_eq!(o.status.code(), Some(0), "{nan}: {o:?}");
    }
    // a .npy header that is not a dict: one line
    let dir = tempfile::tempdir().unwrap();
    let npy = dir.path().join("list.npy");
    let bytes = npy_bytes("[1, 2, 3]", &[]);
    std::fs::write(&npy, bytes).unwrap();
    let e = usage_error(&["conv", "--input", &s(&npy), "--kernel", "[[1]]"]);
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    assert!(e.contains("list.npy"), "{e}");
    // a gzip bomb as IDX data: a header for 10 images followed by gigabytes of zeros
    let data = dir.path().join("data");
    synth::write_dataset(&data, 10, 10);
    let path = data.join("train-images-idx3-ubyte.gz");
    let f = std::fs::File::create(&path).unwrap();
    let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::best());
    use std::io::Write;
    gz.write_all(&stride::data::idx::encode(&[10, 28, 28], &[]))
        .unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..256 {
        gz.write_all(&zeros).unwrap();
    }
    gz.finish().unwrap();
    let e = usage_error(&[
        "train",
        NET,
        "--data",
        &s(&data),
        "--out",
        &s(&dir.path().join("o")),
    ]);
    assert!(e.contains("train-images"), "{e}");
    // /dev/zero as a checkpoint, PNG or spec
    let e = usage_error(&["eval", "/dev/zero", "--data", &s(&data)]);
    assert!(e.contains("/dev/zero"), "{e}");
    let e = usage_error(&["summary", "@/dev/zero"]);
    assert!(e.contains("/dev/zero"), "{e}");
}

// ---- 6. runs ----

#[test]
fn run_folders_are_never_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (data, run) = train_run(dir.path(), &[]);
    let before = std::fs::read(Path::new(&run).join("checkpoint.safetensors")).unwrap();
    // --out over an existing run
    let e = usage_error(&["train", NET, "--data", &data, "--out", &run]);
    assert!(e.contains("--resume"), "{e}");
    assert_eq!(
        before,
        std::fs::read(Path::new(&run).join("checkpoint.safetensors")).unwrap()
    );
    // leftover temp files of a killed run are removed by a resume
    let stale = Path::new(&run).join(".checkpoint.safetensors.tmp-999999");
    std::fs::write(&stale, b"partial").unwrap();
    ok(&["train", "--resume", &run, "--epochs", "2", "--data", &data]);
    assert!(!stale.exists(), "a resume removes stale temp files");
    // bad optimiser settings
    let out = s(&dir.path().join("o2"));
    for (flag, v) in [
        ("--momentum", "nan"),
        ("--momentum=-1", ""),
        ("--weight-decay=-5", ""),
    ] {
        let mut args = vec!["train", NET, "--data", &data, "--out", &out, flag];
        if !v.is_empty() {
            args.push(v);
        }
        let e = usage_error(&args);
        let name = flag.trim_start_matches("--").split('=').next().unwrap();
        assert!(e.contains(name), "{flag} {v}: {e}");
    }
    // an unwritable --out is caught before the first epoch
    let file = dir.path().join("afile");
    std::fs::write(&file, b"x").unwrap();
    let o = stride(&[
        "train",
        NET,
        "--data",
        &data,
        "--out",
        &s(&file.join("sub")),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("epoch  1"),
        "failed after training: {err}"
    );
}

#[test]
fn gradient_files_get_single_temp_names() {
    // an unwritable second output: the first must not be left behind, nor any doubled temp
    let dir = tempfile::tempdir().unwrap();
    let gx = dir.path().join("gx.npy");
    ok(&[
        "conv",
        "--input",
        "[[1,2],[3,4]]",
        "--kernel",
        "[[1]]",
        "--grad-output",
        "[[1,1],[1,1]]",
        "--grad-input",
        &s(&gx),
    ]);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["gx.npy".to_string()]);
    // writing to a temporary name writes it in place, without a second temp suffix
    let tmp = stride::io::npy::temp_path(&dir.path().join("y.npy"));
    assert_eq!(stride::io::npy::temp_path(&tmp), tmp, "doubled temp name");
    stride::io::npy::write(&tmp, &stride::Tensor::zeros(&[2])).unwrap();
    assert!(tmp.exists());
}

// ---- 7. evaluation ----

#[test]
fn eval_needs_only_the_test_split_and_predict_checks_images() {
    let dir = tempfile::tempdir().unwrap();
    let (data, run) = train_run(dir.path(), &[]);
    for f in ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"] {
        std::fs::remove_file(Path::new(&data).join(f)).unwrap();
    }
    let out = ok(&["eval", &run, "--data", &data]);
    assert!(out.contains("test accuracy"), "{out}");
    let empty = dir.path().join("empty.npy");
    stride::io::npy::write(&empty, &stride::Tensor::zeros(&[0, 28])).unwrap();
    let e = usage_error(&["predict", &run, &s(&empty)]);
    assert!(e.contains("empty"), "{e}");
    let nan = dir.path().join("nan.npy");
    let mut t = stride::Tensor::zeros(&[28, 28]);
    t.data_mut()[3] = f32::NAN;
    stride::io::npy::write(&nan, &t).unwrap();
    let o = stride(&["predict", &run, &s(&nan)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("NaN"), "{err}");
}

// ---- 8. analysis arithmetic ----

#[test]
fn analysis_does_not_wrap_on_huge_sizes() {
    for args in [
        &[
            "shape",
            "--input",
            "4000000000,4000000000,4000000000",
            "--kernel",
            "3",
            "--filters",
            "4000000000",
        ][..],
        &[
            "receptive-field",
            "--kernels",
            "3,3,3",
            "--channels",
            "10000000000",
        ],
        &[
            "receptive-field",
            "--kernels",
            "1000000000,1000000000,1000000000",
            "--strides",
            "1000000000,1000000000,1000000000",
        ],
    ] {
        let o = stride(args);
        let out = String::from_utf8_lossy(&o.stdout);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            matches!(o.status.code(), Some(0 | 2)),
            "{args:?}: {out} {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(
            !out.contains("NaN") && !out.contains(" 0 MACs") && !out.contains("inf"),
            "{args:?}: {out}"
        );
    }
}

#[test]
fn evaluation_keeps_nothing_for_backward() {
    let spec = stride::nn::spec::ModelSpec::parse(
        "conv(4,k=3) relu maxpool(2) batchnorm relu relu relu flatten linear(10) dropout(0.5)",
        &[1, 28, 28],
    )
    .unwrap();
    let mut m =
        stride::nn::models::Model::build(&spec, stride::nn::init::Init::default(), 0).unwrap();
    let x = stride::Tensor::zeros(&[8, 1, 28, 28]);
    let y = stride::train::predict(&mut m, x.clone()).unwrap();
    assert_eq!(m.net.cached(), 0, "inference kept values for backward");
    // the same numbers as an eval-mode forward, which does keep them
    assert_eq!(y, m.net.forward(x, false).unwrap());
    assert!(m.net.cached() > 0);
}
