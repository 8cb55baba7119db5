//! `stride export`: a trained model as an ONNX file for ONNX Runtime, OpenVINO or TensorRT.

use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
  stride export runs/lenet5-20250101-120000 lenet5.onnx\n  \
  python -c \"import onnxruntime as ort; print(ort.InferenceSession('lenet5.onnx').get_inputs()[0].shape)\"\n\n\
The file has one input `input` (N, C, H, W) float32 pixels in [0, 1] and one output `logits` (N, classes).")]
pub struct ExportArgs {
    /// A run folder of `stride train`, its checkpoint file, or an .onnx file.
    #[arg(value_name = "RUN_DIR")]
    run: PathBuf,
    /// The ONNX file to write (opset 17); an existing file is not overwritten.
    #[arg(value_name = "OUT.onnx")]
    out: PathBuf,
}

pub fn run(a: ExportArgs) -> anyhow::Result<()> {
    let m = stride::onnx::export_file(&a.run, &a.out)?;
    println!(
        "wrote {} (ONNX opset {}, input `{}` (N, {}), output `{}` (N, {}), {} parameters)",
        a.out.display(),
        stride::onnx::OPSET,
        stride::onnx::INPUT_NAME,
        m.model
            .spec
            .input
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        stride::onnx::OUTPUT_NAME,
        m.model.classes()?,
        m.model.net.num_params()
    );
    Ok(())
}
