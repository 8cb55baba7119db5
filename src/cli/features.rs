//! `stride features`: PNG pictures of a trained model's input, feature maps and kernels (see
//! `stride::viz::features`), written into a folder that must not already hold such pictures.

use super::train::load_data;
use clap::Args;
use std::path::{Path, PathBuf};
use stride::checkpoint;
use stride::data::{image, CLASSES, DEFAULT_DIR};
use stride::nn::models::Model;
use stride::viz::features::{features, Input};
use stride::Error;

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
  stride features runs/lenet5 --image 0 --out pictures          # a test image: input, maps, kernels\n  \
  stride features runs/lenet5 --image 2,5 --out sweater-coat    # two images side by side\n  \
  stride features runs/lenet5 --input shoe.png --layers 1,3 --out shoe")]
pub struct FeaturesArgs {
    /// A run folder of `stride train` (or its checkpoint.safetensors), or an `.onnx` model.
    #[arg(value_name = "RUN")]
    run: PathBuf,
    /// Test-set images to show (0-based index, as PyTorch's dataset[i]); several side by side:
    /// --image 2,5 or --image 2 --image 5. Default: image 0 when no --input is given.
    #[arg(long, value_name = "N", value_delimiter = ',')]
    image: Vec<usize>,
    /// An image file to show instead (PNG, JPEG, BMP or .npy; converted to the model's input).
    #[arg(long, value_name = "FILE")]
    input: Vec<PathBuf>,
    /// Invert --input images (Fashion-MNIST items are light on a black background).
    #[arg(long)]
    invert: bool,
    /// Layers to picture, 1-based as in `stride summary` (default: every conv and pooling layer).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    layers: Option<Vec<usize>>,
    /// Folder for the PNG files (created if missing; pictures already there are never overwritten).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Folder with the MNIST-format IDX files (for --image).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DIR)]
    data: PathBuf,
}

/// Loads the model of a run folder, a checkpoint file or an `.onnx` file.
pub fn load_model(path: &Path) -> stride::Result<Model> {
    Ok(stride::onnx::load_model(path)?.model)
}

pub fn run(a: FeaturesArgs) -> anyhow::Result<()> {
    let mut model = load_model(&a.run)?;
    let input_shape = model.spec.input.clone();
    let mut inputs = vec![];
    let images = if a.image.is_empty() && a.input.is_empty() {
        vec![0]
    } else {
        a.image.clone()
    };
    if !images.is_empty() {
        let (_, test) = load_data(&a.data, Some(1))?;
        for &i in &images {
            if i >= test.n {
                return Err(Error::arg(
                    "image",
                    format!(
                        "{i} is past the test set's {} images; give 0 to {}",
                        test.n,
                        test.n - 1
                    ),
                )
                .into());
            }
            let class = CLASSES.get(test.labels[i] as usize).copied().unwrap_or("?");
            inputs.push(Input {
                label: format!("test {i}: {class}"),
                x: test.image(i).reshape(&input_shape)?,
            });
        }
    }
    for path in &a.input {
        let [1, h, w] = input_shape[..] else {
            return Err(Error::arg(
                "input",
                format!(
                    "the model takes {}; --input handles one grayscale image (1, H, W)",
                    stride::tensor::fmt_shape(&input_shape)
                ),
            )
            .into());
        };
        let (mut x, notes) = image::load(path, h, w)?;
        for n in notes {
            eprintln!("note: {}: {n}", path.display());
        }
        if a.invert {
            x.data_mut().iter_mut().for_each(|v| *v = 1.0 - *v);
        }
        let name = path
            .file_name()
            .map_or("image".into(), |s| s.to_string_lossy().into_owned());
        inputs.push(Input { label: name, x });
    }
    let pics = features(&mut model, &inputs, a.layers.as_deref())?;
    // render everything before writing anything
    let pngs = pics
        .iter()
        .map(|p| p.png())
        .collect::<stride::Result<Vec<_>>>()?;
    if let Some(p) = pics
        .iter()
        .map(|p| a.out.join(&p.file))
        .find(|p| p.exists())
    {
        return Err(Error::arg(
            "out",
            format!(
                "{} already exists; give a new folder so earlier pictures are kept",
                p.display()
            ),
        )
        .into());
    }
    std::fs::create_dir_all(&a.out).map_err(|e| {
        Error::arg(
            "out",
            format!(
                "cannot create {}: {e}; give a writable folder",
                a.out.display()
            ),
        )
    })?;
    for (p, png) in pics.iter().zip(&pngs) {
        let path = a.out.join(&p.file);
        checkpoint::write_atomic(&path, png)?;
        let lay = p.grid.layout();
        println!(
            "wrote {} ({}×{}): {}",
            path.display(),
            lay.width,
            lay.height,
            p.about
        );
    }
    Ok(())
}
