//! `stride predict`: the most likely classes of one image under a checkpoint.

use clap::Args;
use std::path::PathBuf;
use stride::data::{image, CLASSES};
use stride::ops::loss::softmax_rows;
use stride::train::predict;

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  stride predict runs/lenet5-20250101-120000 shoe.png\n  stride predict model.safetensors image.npy --top 5"
)]
pub struct PredictArgs {
    /// A run folder, its checkpoint.safetensors, or an .onnx file.
    #[arg(value_name = "CHECKPOINT")]
    checkpoint: PathBuf,
    /// An image: PNG, JPEG or BMP (converted to grayscale and resized to the model's input) or a .npy array in [0, 1].
    #[arg(value_name = "IMAGE")]
    image: PathBuf,
    /// How many classes to show.
    #[arg(long, value_name = "K", default_value_t = 3)]
    top: usize,
    /// Invert the image (Fashion-MNIST items are light on a black background).
    #[arg(long)]
    invert: bool,
}

pub fn run(a: PredictArgs) -> anyhow::Result<()> {
    let mut loaded = stride::onnx::load_model(&a.checkpoint)?;
    for n in &loaded.notes {
        eprintln!("note: {n}");
    }
    let input = loaded.model.spec.input.clone();
    let [1, h, w] = input[..] else {
        return Err(stride::Error::arg(
            "checkpoint",
            format!(
                "the model takes input {}; predict handles one grayscale image (1, H, W)",
                stride::tensor::fmt_shape(&input)
            ),
        )
        .into());
    };
    let (mut x, notes) = image::load(&a.image, h, w)?;
    for n in notes {
        eprintln!("note: {n}");
    }
    if a.invert {
        x.data_mut().iter_mut().for_each(|v| *v = 1.0 - *v);
    } else if image::light_background(&x) {
        eprintln!("note: the image has a light background; Fashion-MNIST items are light on black — try --invert");
    }
    let logits = predict(&mut loaded.model, x.unsqueeze0())?;
    let classes = logits.shape()[1];
    let mut p = vec![0.0; classes];
    softmax_rows(logits.data(), classes, &mut p);
    let mut order: Vec<usize> = (0..classes).collect();
    order.sort_by(|&i, &j| p[j].total_cmp(&p[i]));
    for &c in order.iter().take(a.top.max(1)) {
        let name = CLASSES
            .get(c)
            .map_or(format!("class {c}"), |s| s.to_string());
        println!("{name:<12} {:.4}", p[c]);
    }
    Ok(())
}
