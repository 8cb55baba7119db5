//! `stride train / eval / predict / bench train` end to end on a tiny synthetic dataset, and
//! each class of bad input (exit code 2, one-line message, nothing half-written).

mod common;
mod synth;

use common::{ok, stride, usage_error};
use std::path::Path;

const NET: &str = "conv(4,k=5,s=3) relu flatten linear(10)";

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn write_png(path: &Path, w: u32, h: u32, color: png::ColorType, px: &[u8]) {
    let f = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(f, w, h);
    enc.set_color(color);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header().unwrap().write_image_data(px).unwrap();
}

#[test]
fn train_eval_predict_resume() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    synth::write_dataset(&data, 60, 40);
    let run = dir.path().join("run");
    let out = ok(&[
        "train",
        NET,
        "--data",
        &s(&data),
        "--limit",
        "50",
        "--epochs",
        "1",
        "--batch-size",
        "25",
        "--out",
        &s(&run),
        "--threads",
        "1",
    ]);
    assert!(out.contains("50 training / 40 test images"), "{out}");
    assert!(out.contains("epoch  1: train loss"), "{out}");
    for f in ["checkpoint.safetensors", "metrics.csv", "chart.png"] {
        assert!(run.join(f).is_file(), "{f} missing");
    }

    let out = ok(&["eval", &s(&run), "--data", &s(&data)]);
    assert!(
        out.contains("test accuracy") && out.contains("Ankle boot") && out.contains("T-shirt/top"),
        "{out}"
    );

    // a 28×28 grayscale PNG: three classes with probabilities
    let img = dir.path().join("x.png");
    let (px, _) = synth::images(1, 5);
    write_png(&img, 28, 28, png::ColorType::Grayscale, &px);
    let out = ok(&["predict", &s(&run.join("checkpoint.safetensors")), &s(&img)]);
    assert_eq!(out.lines().count(), 3, "{out}");
    let p: f64 = out
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap()
        .parse()
        .unwrap();
    assert!((0.0..=1.0).contains(&p));

    // a larger RGB PNG is converted and resized, with a note
    let rgb = dir.path().join("big.png");
    write_png(&rgb, 56, 56, png::ColorType::Rgb, &vec![10u8; 56 * 56 * 3]);
    let o = stride(&["predict", &s(&run), &s(&rgb), "--top", "5"]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("resized 56×56 → 28×28") && err.contains("grayscale"),
        "{err}"
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 5);

    // .npy input
    let npy = dir.path().join("x.npy");
    let t =
        stride::Tensor::new(vec![28, 28], px.iter().map(|&v| v as f32 / 255.0).collect()).unwrap();
    stride::io::npy::write(&npy, &t).unwrap();
    assert_eq!(
        ok(&["predict", &s(&run), &s(&npy), "--top", "1"])
            .lines()
            .count(),
        1
    );

    // resume to 2 epochs
    let out = ok(&[
        "train",
        "--resume",
        &s(&run),
        "--epochs",
        "2",
        "--data",
        &s(&data),
    ]);
    assert!(
        out.contains("resuming after epoch 1") && out.contains("epoch  2:"),
        "{out}"
    );
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    let out = ok(&["train", "--resume", &s(&run), "--data", &s(&data)]);
    assert!(out.contains("already trained"), "{out}");
}

#[test]
fn bench_train_reports_images_per_second() {
    let out = ok(&[
        "bench",
        "train",
        "flatten linear(10)",
        "--batch-size",
        "8",
        "--steps",
        "2",
        "--layers",
    ]);
    assert!(
        out.contains("images/s")
            && out.contains("Linear(in_features=784")
            && out.contains("peak memory"),
        "{out}"
    );
}

#[test]
fn bad_input_is_exit_2_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    synth::write_dataset(&data, 30, 20);
    let d = s(&data);
    let out = s(&dir.path().join("out"));
    let train = |m: &str| usage_error(&["train", m, "--data", &d, "--epochs", "1", "--out", &out]);
    let e = train("lenet6");
    assert!(e.contains("unknown model 'lenet6'"), "{e}");
    let e = train("conv(6,k=5) relu maxpol(2)");
    assert!(
        e.contains("unknown layer `maxpol`") && e.contains("column 18"),
        "{e}"
    );
    let e = train("conv(6,k=5) linear(10)");
    assert!(e.contains("flatten"), "{e}");
    let e = usage_error(&[
        "train",
        NET,
        "--data",
        &s(&dir.path().join("none")),
        "--out",
        &out,
    ]);
    assert!(e.contains("apt-get install dataset-fashion-mnist"), "{e}");
    let e = usage_error(&[
        "train",
        NET,
        "--data",
        &d,
        "--optimizer",
        "rmsprop",
        "--out",
        &out,
    ]);
    assert!(e.contains("unknown optimizer 'rmsprop'"), "{e}");
    let e = usage_error(&[
        "train",
        NET,
        "--data",
        &d,
        "--lr-schedule",
        "step",
        "--out",
        &out,
    ]);
    assert!(e.contains("unknown schedule 'step'"), "{e}");
    let e = usage_error(&["train", NET, "--data", &d, "--threads", "0", "--out", &out]);
    assert!(e.contains("threads"), "{e}");
    let e = usage_error(&["train", NET, "--data", &d, "--init", "zeros", "--out", &out]);
    assert!(e.contains("unknown initialisation"), "{e}");
    let e = usage_error(&["train", NET, "--resume", &out]);
    assert!(
        e.contains("cannot be used with") || e.contains("resume"),
        "{e}"
    );
    assert!(!Path::new(&out).exists(), "no run folder for failed runs");

    // corrupt checkpoint
    let bad = dir.path().join("bad.safetensors");
    std::fs::write(&bad, b"not a checkpoint at all").unwrap();
    let e = usage_error(&["eval", &s(&bad), "--data", &d]);
    assert!(e.contains("not a valid checkpoint"), "{e}");
    let e = usage_error(&["predict", &s(&bad), "x.png"]);
    assert!(e.contains("not a valid checkpoint"), "{e}");

    // bad images
    let run = dir.path().join("run");
    ok(&[
        "train",
        NET,
        "--data",
        &d,
        "--epochs",
        "1",
        "--batch-size",
        "10",
        "--out",
        &s(&run),
    ]);
    let txt = dir.path().join("img.txt");
    std::fs::write(&txt, b"x").unwrap();
    let e = usage_error(&["predict", &s(&run), &s(&txt)]);
    assert!(e.contains("not an image file stride reads"), "{e}");
    let jpg = dir.path().join("img.jpg");
    std::fs::write(&jpg, b"x").unwrap();
    let e = usage_error(&["predict", &s(&run), &s(&jpg)]);
    assert!(e.contains("not a readable image"), "{e}");
    let fake = dir.path().join("fake.png");
    std::fs::write(&fake, b"not a png").unwrap();
    let e = usage_error(&["predict", &s(&run), &s(&fake)]);
    assert!(e.contains("not a readable image"), "{e}");
    let npy = dir.path().join("rgb.npy");
    stride::io::npy::write(&npy, &stride::Tensor::zeros(&[3, 28, 28])).unwrap();
    let e = usage_error(&["predict", &s(&run), &s(&npy)]);
    assert!(e.contains("one grayscale image"), "{e}");
}
