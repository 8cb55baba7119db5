//! `stride import`: an ONNX model, or PyTorch weights (safetensors) with the spec they belong
//! to, as a run folder that `eval`, `predict` and `train --resume` take.

use clap::Args;
use std::path::PathBuf;
use stride::onnx::{self, state};

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
  stride import model.onnx --out runs/imported\n  \
  stride import weights.safetensors --spec lenet5-relu --out runs/from-torch\n  \
  stride train --resume runs/imported --epochs 2      # fine-tune it\n\n\
safetensors names follow nn.Sequential: 0.weight, 0.bias, 1.running_mean, ...")]
pub struct ImportArgs {
    /// An .onnx file, or a .safetensors state_dict (then --spec is needed).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The network the safetensors weights belong to: a preset, an inline spec or @file.
    #[arg(long, value_name = "SPEC")]
    spec: Option<String>,
    /// Run folder to write (default: runs/<file>-import); an existing run is not overwritten.
    #[arg(long, value_name = "RUN_DIR")]
    out: Option<PathBuf>,
}

pub fn run(a: ImportArgs) -> anyhow::Result<()> {
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| onnx::default_run_dir(&a.file));
    let (model, name, notes) = if onnx::is_onnx(&a.file) {
        if a.spec.is_some() {
            return Err(stride::Error::arg(
                "spec",
                "an .onnx file carries its own network; drop --spec",
            )
            .into());
        }
        let m = onnx::load_model(&a.file)?;
        (m.model, m.name, m.notes)
    } else {
        let Some(spec) = &a.spec else {
            return Err(stride::Error::arg(
                "spec",
                "safetensors weights need the network they belong to; add --spec SPEC (a preset, an inline spec or @file)",
            )
            .into());
        };
        let (model, name) = state::load_safetensors_model(&a.file, spec)?;
        (model, name, vec![])
    };
    for n in notes {
        eprintln!("note: {n}");
    }
    state::write_run(&out, &model, &name)?;
    println!(
        "wrote {} ({} parameters): {}",
        out.display(),
        model.net.num_params(),
        model.spec
    );
    Ok(())
}
