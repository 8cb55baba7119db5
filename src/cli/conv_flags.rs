//! The flags `stride conv` and `stride conv-transpose` share (input, weight, bias, stride,
//! padding, dilation, groups, algorithm, output and the gradient flags), flattened into each
//! command, and their common tail: write every result file (all or none), then print.

use super::{args, grad, render};
use clap::Args;
use std::path::PathBuf;
use stride::ops::conv::{ConvAlgo, ConvGrads};
use stride::{Result, Tensor};

/// The shared flags.
#[derive(Args, Debug)]
pub struct ConvFlags {
    /// Input: .npy (N, Cin, *spatial) or (Cin, *spatial), or an inline literal (a 2-D literal is one single-channel image).
    #[arg(long, value_name = "X")]
    pub input: String,
    /// Weight: conv (Cout, Cin/groups, *kernel), conv-transpose (Cin, Cout/groups, *kernel); .npy or inline literal (a 2-D literal is one kernel). Alias: --kernel.
    #[arg(long, visible_alias = "kernel", value_name = "W")]
    pub weight: String,
    /// Bias (Cout): .npy or inline literal such as '[0.5]'.
    #[arg(long, value_name = "B", allow_hyphen_values = true)]
    pub bias: Option<String>,
    /// Stride: one integer, or one per spatial axis (2,1).
    #[arg(
        long,
        value_name = "S",
        default_value = "1",
        allow_hyphen_values = true
    )]
    pub stride: String,
    /// Padding: an integer, one per axis (1,2) or begin:end per axis (0:1,1:0); conv also takes valid, same (ceil(i/s), extra at the end) or full. For conv-transpose, the padding removed from each side of the output.
    #[arg(
        long,
        value_name = "P",
        default_value = "0",
        allow_hyphen_values = true
    )]
    pub padding: String,
    /// Dilation: one integer, or one per spatial axis.
    #[arg(
        long,
        value_name = "D",
        default_value = "1",
        allow_hyphen_values = true
    )]
    pub dilation: String,
    /// Groups: input and output channels split into this many independent convolutions (Cin = depthwise).
    #[arg(
        long,
        value_name = "G",
        default_value_t = 1,
        value_parser = args::count,
        allow_hyphen_values = true
    )]
    pub groups: usize,
    /// Algorithm: auto, direct, im2col, toeplitz, width-lanes (alias rows), channel-lanes (alias
    /// blocked), batch-lanes or winograd (all give the same result to float32 rounding; see the
    /// README's table).
    #[arg(long, value_name = "ALGO", default_value = "auto")]
    pub algo: String,
    /// Write the output to this .npy file instead of printing it.
    #[arg(long, value_name = "Y.npy")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub grad: grad::GradArgs,
}

impl ConvFlags {
    /// The algorithm named by `--algo`.
    pub fn algo(&self) -> Result<ConvAlgo> {
        self.algo.parse()
    }

    /// Loads input, weight and bias.
    pub fn tensors(&self) -> Result<(Tensor, Tensor, Option<Tensor>)> {
        let x = args::load_tensor("input", &self.input)?;
        let w = args::load_tensor("weight", &self.weight)?;
        let b = self
            .bias
            .as_deref()
            .map(|s| args::load_vector("bias", s))
            .transpose()?;
        Ok((x, w, b))
    }

    /// The common tail, once everything is computed: writes the output and gradient files (all
    /// or none), then prints `text` (the explanation, if any), the output and the gradients
    /// where no file takes them and no explanation already shows them, and the `wrote` lines.
    pub fn finish(
        &self,
        text: &str,
        y: &Tensor,
        grads: &ConvGrads,
        nd: usize,
        output_explained: bool,
        grads_explained: bool,
    ) -> Result<()> {
        let print_output = self.output.is_none() && !output_explained;
        if print_output {
            render::printable(y)?;
        }
        let mut files = vec![];
        if let Some(path) = &self.output {
            files.push(("output", path.as_path(), y));
        }
        files.extend(self.grad.outputs(grads));
        let wrote = grad::save_all(&files)?;

        print!("{text}");
        if print_output {
            print!("{}", render::tensor("output", y, nd));
        }
        if self.grad.print_mode() && !grads_explained {
            print!("{}", grad::render_grads(grads, nd));
        }
        for line in wrote {
            println!("{line}");
        }
        Ok(())
    }
}
