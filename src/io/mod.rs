//! Reading and writing tensors: `.npy` files and inline matrix literals for pen-and-paper use.

pub mod atomic;
pub mod literal;
pub mod npy;
mod npy_header;

use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::path::Path;

/// Where a tensor argument came from: an inline literal keeps its own (pen-and-paper) shape rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Literal,
    File,
}

/// Loads a tensor argument: an inline literal (starts with `[` or is a number) or a `.npy` path.
/// `arg` names the argument in error messages.
pub fn load(arg: &str, s: &str) -> Result<(Tensor, Source)> {
    let t = s.trim_start();
    if t.starts_with('[') || t.parse::<f64>().is_ok() {
        Ok((literal::parse(arg, s)?, Source::Literal))
    } else {
        let t = npy::read(Path::new(s)).map_err(|e| match e {
            Error::Io { path, source } => Error::arg(
                arg,
                format!(
                    "cannot read {} ({source}); give an existing .npy file or an inline literal like '[[1,2],[3,4]]'",
                    path.display()
                ),
            ),
            Error::BadFile { path, msg } => Error::arg(arg, format!("{}: {msg}", path.display())),
            other => other,
        })?;
        Ok((t, Source::File))
    }
}
