//! Argument helpers shared by the subcommands: tensor arguments (inline literal or `.npy`),
//! per-axis lists, and writing results atomically.

use std::path::Path;
use stride::io::{self, Source};
use stride::{Result, Tensor};

/// Parses a count such as `--groups` (clap prefixes the flag and the value to the message).
pub fn count(s: &str) -> std::result::Result<usize, String> {
    s.trim()
        .parse()
        .map_err(|_| "give a whole number such as 1 or 2".to_string())
}

/// Loads a tensor argument. A literal of rank 1 or 2 is one single-channel signal / image /
/// kernel, so it gains leading axes of size 1 (`[[..]]` → `(1, 1, H, W)`); a scalar becomes `(1)`.
pub fn load_tensor(arg: &str, s: &str) -> Result<Tensor> {
    let (t, src) = io::load(arg, s)?;
    Ok(match (src, t.rank()) {
        (Source::Literal, 0) => t.reshape(&[1])?,
        (Source::Literal, 1 | 2) => t.unsqueeze0().unsqueeze0(),
        _ => t,
    })
}

/// Loads a bias: a literal or `.npy` vector (a scalar literal is a 1-vector).
pub fn load_vector(arg: &str, s: &str) -> Result<Tensor> {
    let (t, _) = io::load(arg, s)?;
    Ok(if t.rank() == 0 { t.reshape(&[1])? } else { t })
}

/// Writes a tensor to `path` as `.npy` (atomically).
pub fn save(path: &Path, t: &Tensor) -> Result<()> {
    io::npy::write(path, t)
}
