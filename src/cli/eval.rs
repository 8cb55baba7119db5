//! `stride eval`: test accuracy of a checkpoint, overall and per class.

use super::train::set_threads;
use clap::Args;
use std::path::PathBuf;
use stride::data::{Dataset, Split, CLASSES, DEFAULT_DIR};
use stride::train::evaluate;

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  stride eval runs/lenet5-20250101-120000\n  stride eval model.onnx"
)]
pub struct EvalArgs {
    /// A run folder, its checkpoint.safetensors, or an .onnx file.
    #[arg(value_name = "CHECKPOINT")]
    checkpoint: PathBuf,
    /// Folder with the MNIST-format IDX files.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DIR)]
    data: PathBuf,
    #[arg(long, value_name = "B", default_value_t = 1000)]
    batch_size: usize,
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "T")]
    threads: Option<usize>,
}

pub fn run(a: EvalArgs) -> anyhow::Result<()> {
    set_threads(a.threads)?;
    let mut loaded = stride::onnx::load_model(&a.checkpoint)?;
    for n in &loaded.notes {
        eprintln!("note: {n}");
    }
    // only the test split: evaluation never reads the training files
    let test = Dataset::load(&a.data, Split::Test, CLASSES.len())?;
    let input = &loaded.model.spec.input;
    if input[..] != [1, test.h, test.w] {
        return Err(stride::Error::arg(
            "model",
            format!(
                "{} takes input {} but the images in {} are (1, {}, {})",
                loaded.name,
                stride::tensor::fmt_shape(input),
                a.data.display(),
                test.h,
                test.w
            ),
        )
        .into());
    }
    let ev = evaluate(&mut loaded.model, &test, a.batch_size)?;
    println!(
        "{} {}: test accuracy {:.4} ({} images), loss {:.4}",
        loaded.name, loaded.origin, ev.acc, test.n, ev.loss
    );
    println!("{:<12} {:>8} {:>8}", "class", "accuracy", "images");
    for (c, &(ok, total)) in ev.per_class.iter().enumerate() {
        let name = CLASSES.get(c).copied().unwrap_or("?");
        let acc = if total > 0 {
            ok as f64 / total as f64
        } else {
            0.0
        };
        println!("{name:<12} {acc:>8.4} {total:>8}");
    }
    Ok(())
}
