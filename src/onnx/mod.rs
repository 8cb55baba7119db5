//! ONNX export and import: a model file ⇄ stride's spec + weights, beside [`crate::checkpoint`].
//!
//! - [`export()`] writes a model as an ONNX file (opset 17, dynamic batch) that ONNX Runtime,
//!   OpenVINO or TensorRT can serve;
//! - [`import()`] maps a sequential CNN exported by `torch.onnx.export` onto stride's layers,
//!   which then run on stride's own kernels;
//! - [`load_model`] opens either a run folder / checkpoint or an `.onnx` file, so every command
//!   that takes a trained model takes both;
//! - [`state`] loads PyTorch `state_dict` tensors (safetensors) into a spec'd network and writes
//!   run folders that `stride train --resume` continues.
//!
//! Files are decoded with hand-written `prost` messages ([`proto`]): no `protoc`, no build
//! script. Hostile input is bounded: the file size ([`MAX_FILE`]), every declared tensor size,
//! node count and nesting depth are checked before anything is allocated from them.

mod export;
mod fold;
mod graph;
mod import;
mod layers;
mod layers_pool;
pub mod proto;
pub mod state;
mod tensors;

pub use export::{export, INPUT_NAME, OPSET, OUTPUT_NAME};
pub use import::{import, Imported};
pub use layers::SUPPORTED;

use crate::checkpoint;
use crate::error::{Error, Result};
use crate::nn::init::Init;
use crate::nn::models::Model;
use std::path::{Path, PathBuf};

/// Largest model file read (1 GiB).
pub const MAX_FILE: u64 = 1 << 30;

impl Imported {
    /// Builds the network and loads the weights into it.
    pub fn into_model(self) -> Result<Model> {
        let mut model = Model::build(&self.spec, Init::Default, 0)?;
        state::set_weights(&mut model, self.weights, "onnx")?;
        Ok(model)
    }
}

/// A trained model opened from a run folder, a checkpoint file or an `.onnx` file.
pub struct LoadedModel {
    pub model: Model,
    /// Display name: the checkpoint's model name, or the `.onnx` file's stem.
    pub name: String,
    /// Where it came from, for headers: `after 3 epoch(s)` or `ONNX from pytorch`.
    pub origin: String,
    /// Notes from the import (what was left out), empty for checkpoints.
    pub notes: Vec<String>,
}

/// True when `path` names an ONNX file (by its `.onnx` extension).
pub fn is_onnx(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}

/// Reads a file of at most [`MAX_FILE`] bytes; `what` names the argument in errors.
pub fn read_limited(path: &Path, what: &str) -> Result<Vec<u8>> {
    let io = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::NotFound => {
            Error::arg(what, format!("{} does not exist", path.display()))
        }
        _ => Error::Io {
            path: path.to_path_buf(),
            source,
        },
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_FILE {
        return Err(Error::TooLarge {
            what: path.display().to_string(),
            msg: format!("{len} bytes is more than the 1 GiB stride reads"),
        });
    }
    std::fs::read(path).map_err(io)
}

/// Opens and maps an `.onnx` file.
pub fn import_file(path: &Path) -> Result<Imported> {
    let bytes = read_limited(path, "model")?;
    import(&bytes).map_err(|e| Error::BadFile {
        path: path.to_path_buf(),
        msg: match e {
            Error::InvalidArgument { msg, .. } => msg,
            other => other.to_string(),
        },
    })
}

/// Opens a trained model: an `.onnx` file, a run folder of `stride train`, or its checkpoint.
///
/// ```
/// // a LeNet-like CNN exported by torch.onnx.export (from the repository's test fixtures)
/// let mut m = stride::onnx::load_model("tests/fixtures/onnx/lenet_relu.onnx".as_ref())?;
/// assert_eq!(m.origin, "ONNX from pytorch");
/// assert!(m.model.spec.to_string().starts_with("input(1,28,28) conv(4,k=5x5,p=2x2) relu"));
/// let x = stride::Tensor::zeros(&[3, 1, 28, 28]);
/// let logits = stride::train::predict(&mut m.model, x)?; // runs on stride's kernels
/// assert_eq!(logits.shape(), &[3, 10]);
/// # Ok::<(), stride::Error>(())
/// ```
pub fn load_model(path: &Path) -> Result<LoadedModel> {
    if is_onnx(path) {
        let imported = import_file(path)?;
        let origin = match imported.producer.as_str() {
            "" => "ONNX".to_string(),
            p => format!("ONNX from {p}"),
        };
        let notes = imported.notes.clone();
        let model = imported.into_model().map_err(|e| Error::BadFile {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })?;
        let name = path
            .file_stem()
            .map_or("model".into(), |s| s.to_string_lossy().into_owned());
        return Ok(LoadedModel {
            model,
            name,
            origin,
            notes,
        });
    }
    let loaded = checkpoint::load(path)?;
    Ok(LoadedModel {
        model: loaded.model,
        name: loaded.meta.model.clone(),
        origin: format!("after {} epoch(s)", loaded.meta.epoch),
        notes: Vec::new(),
    })
}

/// Exports the model at `from` (run folder, checkpoint or `.onnx`) to `to`, atomically and
/// without overwriting an existing file.
pub fn export_file(from: &Path, to: &Path) -> Result<LoadedModel> {
    if to.exists() {
        return Err(Error::arg(
            "output",
            format!(
                "{} already exists; choose another name or remove it first",
                to.display()
            ),
        ));
    }
    let m = load_model(from)?;
    let bytes = export(&m.model, &m.name)?;
    checkpoint::write_atomic(to, &bytes)?;
    Ok(m)
}

/// The default run folder for an imported model: `runs/<stem>-import`.
pub fn default_run_dir(from: &Path) -> PathBuf {
    let stem = from
        .file_stem()
        .map_or("model".into(), |s| s.to_string_lossy().into_owned());
    PathBuf::from("runs").join(format!("{stem}-import"))
}
