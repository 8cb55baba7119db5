//! The gradient flags shared by `stride conv` and `stride conv-transpose`
//! (`--grad-output GY --grad-input GX --grad-weight GW [--grad-bias GB]`): checking the
//! combination, loading `∂E/∂y`, and writing every result file together or none at all.

use super::{args, render};
use clap::Args;
use std::path::{Path, PathBuf};
use stride::io::{self, npy, Source};
use stride::ops::conv::{ConvGrads, GradRequest};
use stride::tensor::fmt_shape;
use stride::{Error, Result, Tensor};

/// Gradient flags.
#[derive(Args, Debug)]
pub struct GradArgs {
    /// Output gradient ∂E/∂y (the output's shape): .npy, inline literal, `ones` or a number (that
    /// constant in every cell). Alone it prints the gradients; with
    /// --grad-input / --grad-weight / --grad-bias it writes those.
    #[arg(long, value_name = "GY", allow_hyphen_values = true)]
    pub grad_output: Option<String>,
    /// Write ∂E/∂x (the input's shape) to this .npy file (needs --grad-output).
    #[arg(long, value_name = "GX.npy")]
    pub grad_input: Option<PathBuf>,
    /// Write ∂E/∂w (the weight's shape) to this .npy file (needs --grad-output).
    #[arg(long, value_name = "GW.npy")]
    pub grad_weight: Option<PathBuf>,
    /// Write ∂E/∂b (Cout) to this .npy file (needs --grad-output; defined without --bias too: the sum of ∂E/∂y).
    #[arg(long, value_name = "GB.npy")]
    pub grad_bias: Option<PathBuf>,
}

impl GradArgs {
    fn any_file(&self) -> bool {
        self.grad_input.is_some() || self.grad_weight.is_some() || self.grad_bias.is_some()
    }

    /// Checks the flag combination: a gradient file needs `--grad-output`.
    pub fn check(&self) -> Result<()> {
        if self.any_file() && self.grad_output.is_none() {
            return Err(Error::arg(
                "grad-output",
                "is required with --grad-input, --grad-weight or --grad-bias; give ∂E/∂y, the gradient \
                 of the loss with respect to the output (.npy or literal, the output's shape)",
            ));
        }
        Ok(())
    }

    /// True when the gradients are printed (`--grad-output` without any gradient file).
    pub fn print_mode(&self) -> bool {
        self.grad_output.is_some() && !self.any_file()
    }

    /// The gradients to compute: those with a file, or all (bias only with a bias) when printing.
    pub fn want(&self, has_bias: bool) -> GradRequest {
        let all = self.print_mode();
        GradRequest {
            input: all || self.grad_input.is_some(),
            weight: all || self.grad_weight.is_some(),
            bias: (all && has_bias) || self.grad_bias.is_some(),
        }
    }

    /// Loads `∂E/∂y` if given. An inline literal with exactly the output's number of values
    /// takes the output's shape (so `'[[1,1],[1,1]]'` serves an unbatched or a batched output);
    /// a `.npy` file must have the output's shape (the library says so if not).
    pub fn load(&self, out_shape: &[usize]) -> Result<Option<Tensor>> {
        let Some(s) = &self.grad_output else {
            return Ok(None);
        };
        if let Some(t) = stride::io::literal::constant(s, out_shape) {
            return Ok(Some(t));
        }
        let (t, src) = io::load("grad-output", s)?;
        let n: usize = out_shape.iter().product();
        Ok(Some(match src {
            Source::Literal if t.numel() == n => t.reshape(out_shape)?,
            // otherwise the --input rules, so a mismatch is reported in the usual shapes
            Source::Literal => args::load_tensor("grad-output", s)?,
            Source::File => t,
        }))
    }

    /// The gradient files to write, with their flags.
    pub fn outputs<'a>(&'a self, g: &'a ConvGrads) -> Vec<(&'static str, &'a Path, &'a Tensor)> {
        let mut v = vec![];
        for (flag, path, t) in [
            ("grad-input", &self.grad_input, &g.input),
            ("grad-weight", &self.grad_weight, &g.weight),
            ("grad-bias", &self.grad_bias, &g.bias),
        ] {
            if let (Some(p), Some(t)) = (path, t) {
                v.push((flag, p.as_path(), t));
            }
        }
        v
    }
}

/// The gradients as matrices (for print mode).
pub fn render_grads(g: &ConvGrads, nd: usize) -> String {
    let mut out = String::new();
    for (name, t, spatial) in [
        ("grad_input", &g.input, nd),
        ("grad_weight", &g.weight, nd),
        ("grad_bias", &g.bias, 1),
    ] {
        if let Some(t) = t {
            out.push_str(&render::tensor(name, t, spatial));
        }
    }
    out
}

/// Writes every `(flag, path, tensor)` as `.npy`, all or none: each goes to a temporary sibling
/// first, and only when all are written are they renamed into place; on failure the temporaries
/// are removed. Returns the lines to report (`wrote PATH (shape)`).
pub fn save_all(outputs: &[(&str, &Path, &Tensor)]) -> Result<Vec<String>> {
    for (i, (flag, path, _)) in outputs.iter().enumerate() {
        if let Some((other, _, _)) = outputs[..i].iter().find(|(_, p, _)| p == path) {
            return Err(Error::arg(
                *flag,
                format!(
                    "{} is also given to --{other}; give each output its own file",
                    path.display()
                ),
            ));
        }
    }
    // a missing directory or no permission is the user's path at fault (exit 2), naming the flag
    let cannot = |flag: &str, path: &Path, source: std::io::Error| {
        use std::io::ErrorKind::{IsADirectory, NotADirectory, NotFound, PermissionDenied};
        if matches!(
            source.kind(),
            NotFound | PermissionDenied | IsADirectory | NotADirectory
        ) {
            Error::arg(
                flag,
                format!(
                    "cannot write {}: {source}; give a file path in an existing, writable directory",
                    path.display()
                ),
            )
        } else {
            Error::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    };
    let mut written: Vec<(PathBuf, &Path)> = vec![];
    let result = (|| {
        for (flag, path, t) in outputs {
            let tmp = npy::temp_path(path);
            args::save(&tmp, t).map_err(|e| match e {
                Error::Io { source, .. } => cannot(flag, path, source),
                e => e,
            })?;
            written.push((tmp, path));
        }
        for ((flag, _, _), (tmp, path)) in outputs.iter().zip(&written) {
            std::fs::rename(tmp, path).map_err(|source| cannot(flag, path, source))?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        for (tmp, _) in &written {
            let _ = std::fs::remove_file(tmp);
        }
        return Err(e);
    }
    Ok(outputs
        .iter()
        .map(|(_, p, t)| format!("wrote {} {}", p.display(), fmt_shape(t.shape())))
        .collect())
}
