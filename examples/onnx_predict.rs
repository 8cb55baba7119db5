//! Loading a model and predicting with stride as a library: an `.onnx` file (for instance one
//! exported by `torch.onnx.export`), a run folder of `stride train`, or a spec with random
//! weights; optionally exporting it to ONNX and writing its logits.
//!
//! ```text
//! cargo run --release --example onnx_predict                       # the LeNet fixture from PyTorch
//! cargo run --release --example onnx_predict -- model.onnx images.npy --logits logits.npy
//! cargo run --release --example onnx_predict -- 'conv(4,k=3) relu flatten linear(10)' --export m.onnx
//! ```
//!
//! `images.npy` is a float32 batch `(N, C, H, W)` with pixels in [0, 1]; without it the first
//! four Fashion-MNIST test images are used when the dataset is installed, else a random batch.
//! `scripts/check_onnx_export.py` uses this program to compare stride with ONNX Runtime.

use std::path::{Path, PathBuf};
use stride::data::{Dataset, Split, CLASSES, DEFAULT_DIR};
use stride::nn::models::{self, Model};
use stride::rng::Rng;
use stride::Tensor;

const DEFAULT_MODEL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/onnx/lenet_relu.onnx"
);

/// The model: an .onnx file or a run folder through `load_model`, else a spec (seeded weights).
fn open(arg: &str, seed: u64) -> stride::Result<(Model, String)> {
    let p = Path::new(arg);
    if p.exists() {
        let m = stride::onnx::load_model(p)?;
        for n in &m.notes {
            eprintln!("note: {n}");
        }
        return Ok((m.model, format!("{} ({})", m.name, m.origin)));
    }
    let (spec, name, defaults) = models::resolve(arg)?;
    Ok((
        Model::build(&spec, defaults.init, seed)?,
        format!("{name} (random weights, seed {seed})"),
    ))
}

/// A batch of four images for the model's input shape.
fn sample(model: &Model, seed: u64) -> stride::Result<Tensor> {
    let input = model.spec.input.clone();
    if input == [1, 28, 28] {
        if let Ok(te) = Dataset::load(Path::new(DEFAULT_DIR), Split::Test, 10) {
            return Ok(te.batch(&[0, 1, 2, 3]).0);
        }
    }
    let mut shape = vec![4];
    shape.extend(input);
    let n = shape.iter().product();
    Tensor::new(shape, Rng::new(seed).vec(n, 0.0, 1.0))
}

fn main() -> stride::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut flag = |name: &str| -> Option<String> {
        let i = args.iter().position(|a| a == name)?;
        let v = args.get(i + 1).cloned();
        args.drain(i..(i + 2).min(args.len()));
        v
    };
    let export = flag("--export").map(PathBuf::from);
    let logits_out = flag("--logits").map(PathBuf::from);
    let seed: u64 = flag("--seed").and_then(|s| s.parse().ok()).unwrap_or(0);
    let model_arg = args.first().cloned().unwrap_or(DEFAULT_MODEL.into());
    let (mut model, about) = open(&model_arg, seed)?;
    println!("{about}: {}", model.spec);

    let x = match args.get(1) {
        Some(p) => stride::io::npy::read(Path::new(p))?,
        None => sample(&model, seed)?,
    };
    let logits = stride::train::predict(&mut model, x)?;
    let classes = logits.shape()[1];
    for (i, row) in logits.data().chunks(classes).enumerate() {
        let best = (0..classes)
            .max_by(|&a, &b| row[a].total_cmp(&row[b]))
            .unwrap_or(0);
        let name = if classes == 10 {
            CLASSES[best].to_string()
        } else {
            format!("class {best}")
        };
        println!("image {i}: {name} (logit {:.3})", row[best]);
    }
    if let Some(p) = logits_out {
        stride::io::npy::write(&p, &logits)?;
        println!("wrote {}", p.display());
    }
    if let Some(p) = export {
        stride::checkpoint::write_atomic(&p, &stride::onnx::export(&model, "model")?)?;
        println!("wrote {}", p.display());
    }
    Ok(())
}
