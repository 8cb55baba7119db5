//! Checkpoints: one `.safetensors` file holding the model's parameters and buffers under their
//! PyTorch `state_dict` names (`0.weight`, `1.running_mean`), the optimiser's state tensors
//! under `optim.<param>.<state>` (`optim.0.weight.exp_avg`), and a JSON metadata entry
//! (`"stride"`) with the model spec, the epoch, the training configuration, the optimiser step
//! count and the metrics so far — everything `--resume` needs.
//!
//! Writes are atomic (temporary file in the same folder, fsync, rename): killing the process at
//! any moment leaves the previous checkpoint intact.

use crate::error::{Error, Result};
use crate::nn::init::Init;
use crate::nn::models::Model;
use crate::nn::spec::ModelSpec;
use crate::optim::{OptimConfig, Optimizer};
use crate::tensor::{fmt_shape, Tensor};
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// The name of the checkpoint file inside a run folder.
pub const FILE: &str = "checkpoint.safetensors";

/// One row of the metrics table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_acc: f64,
    pub test_loss: f64,
    pub test_acc: f64,
    /// Seconds of the training pass (shuffle, forward, backward, optimiser), without evaluation.
    pub seconds: f64,
    pub images_per_s: f64,
}

/// Everything besides tensors that a checkpoint records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// Always `"stride-checkpoint"`.
    pub format: String,
    pub version: u32,
    /// Display name (`lenet5`, or `custom`).
    pub model: String,
    /// The model spec in canonical text form (starts with `input(...)`).
    pub spec: String,
    /// Epochs completed.
    pub epoch: usize,
    /// Epochs the run was asked for.
    pub epochs: usize,
    pub batch_size: usize,
    pub seed: u64,
    pub init: String,
    pub limit: Option<usize>,
    pub optim: OptimConfig,
    pub optim_steps: u64,
    /// Parameter names in optimiser order.
    pub params: Vec<String>,
    pub history: Vec<EpochMetrics>,
}

impl Meta {
    /// The parsed spec.
    pub fn model_spec(&self) -> Result<ModelSpec> {
        ModelSpec::parse(&self.spec, &crate::nn::models::INPUT)
    }
}

pub use crate::io::atomic::write_atomic;

fn to_bytes(t: &Tensor) -> Vec<u8> {
    t.data().iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Saves model, optimiser state and metadata to `path` (atomically).
pub fn save(path: &Path, model: &Model, optim: &dyn Optimizer, meta: &Meta) -> Result<()> {
    let mut named: Vec<(String, Tensor)> = Vec::new();
    for (n, p) in model.net.named_params() {
        named.push((n, p.value.clone()));
    }
    for (n, b) in model.net.named_buffers() {
        named.push((n, b.clone()));
    }
    for (n, t) in optim.state() {
        named.push((format!("optim.{n}"), t));
    }
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = named
        .iter()
        .map(|(n, t)| (n.clone(), t.shape().to_vec(), to_bytes(t)))
        .collect();
    let views = bytes
        .iter()
        .map(|(n, s, b)| {
            safetensors::tensor::TensorView::new(Dtype::F32, s.clone(), b).map(|v| (n.clone(), v))
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::arg("checkpoint", format!("cannot encode tensors: {e}")))?;
    let json = serde_json::to_string(meta).expect("metadata serialises");
    let info = HashMap::from([("stride".to_string(), json)]);
    let out = safetensors::tensor::serialize(views, Some(info))
        .map_err(|e| Error::arg("checkpoint", format!("cannot encode: {e}")))?;
    write_atomic(path, &out)
}

/// A loaded checkpoint: the model (weights and buffers restored) and the metadata; the
/// optimiser state tensors stay available through [`Loaded::optim_tensor`].
pub struct Loaded {
    pub model: Model,
    pub meta: Meta,
    optim: HashMap<String, Tensor>,
}

impl Loaded {
    /// An optimiser state tensor by its name without the `optim.` prefix.
    pub fn optim_tensor(&self, name: &str) -> Option<Tensor> {
        self.optim.get(name).cloned()
    }

    /// Rebuilds the optimiser with its saved state.
    pub fn optimizer(&self) -> Result<Box<dyn Optimizer>> {
        let mut o = self.meta.optim.build();
        o.load_state(&self.meta.params, self.meta.optim_steps, &|n| {
            self.optim_tensor(n)
        })?;
        Ok(o)
    }
}

/// Resolves a checkpoint argument: the file itself or a run folder containing [`FILE`].
pub fn resolve_path(p: &Path) -> std::path::PathBuf {
    if p.is_dir() {
        p.join(FILE)
    } else {
        p.to_path_buf()
    }
}

/// Parses and checks the metadata: every optimiser field in its range (so a tampered file
/// cannot train with a negative or NaN learning rate or an unknown optimiser); the error names
/// the field. JSON has no NaN, so serde writes it as `null`: reported by name, not by column.
fn parse_meta(json: &str) -> std::result::Result<Meta, String> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("has unreadable stride metadata ({e})"))?;
    for field in ["lr", "momentum", "dampening", "weight_decay", "eps"] {
        let v = &value["optim"][field];
        if !v.is_number() {
            return Err(format!(
                "records optimizer field `{field}` as {v}, not a number; the metadata is corrupt"
            ));
        }
    }
    let meta: Meta = serde_json::from_value(value)
        .map_err(|e| format!("has unreadable stride metadata ({e})"))?;
    if meta.format != "stride-checkpoint" {
        return Err(format!(
            "has format `{}`, not a stride checkpoint",
            meta.format
        ));
    }
    meta.optim.validate().map_err(|e| {
        format!("records invalid optimizer settings (field {e}); the metadata is corrupt")
    })?;
    Ok(meta)
}

/// Loads a checkpoint file (or a run folder), checking every tensor against the model spec.
pub fn load(path: &Path) -> Result<Loaded> {
    let path = resolve_path(path);
    // a regular file within the memory limit (not /dev/zero)
    let bytes = crate::limits::read_file(&path, None).map_err(|e| match e {
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => Error::arg(
            "checkpoint",
            format!(
                "{} does not exist; pass a run folder of `stride train` or its {FILE}",
                path.display()
            ),
        ),
        e => e,
    })?;
    let bad = |msg: String| Error::BadFile {
        path: path.clone(),
        msg,
    };
    let st = SafeTensors::deserialize(&bytes).map_err(|e| {
        bad(format!(
            "is not a valid checkpoint ({e}); it may be truncated or corrupt — use the run's \
             checkpoint.safetensors written by `stride train`"
        ))
    })?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
    let json = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get("stride"))
        .ok_or_else(|| {
            bad("is a safetensors file but not a stride checkpoint (no `stride` metadata)".into())
        })?;
    let meta = parse_meta(json).map_err(bad)?;
    let spec = meta
        .model_spec()
        .map_err(|e| bad(format!("records a model spec that does not parse: {e}")))?;
    let init: Init = meta.init.parse().unwrap_or_default();
    let mut model = Model::build(&spec, init, 0)?;
    let get = |name: &str, like: &Tensor| -> Result<Vec<f32>> {
        let v = st.tensor(name).map_err(|_| {
            bad(format!(
                "has no tensor `{name}`, which model `{}` needs; the file does not match its spec",
                meta.model
            ))
        })?;
        if v.dtype() != Dtype::F32 || v.shape() != like.shape() {
            return Err(bad(format!(
                "tensor `{name}` is {:?} {} but the model needs F32 {}",
                v.dtype(),
                fmt_shape(v.shape()),
                fmt_shape(like.shape())
            )));
        }
        Ok(v.data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect())
    };
    for (n, p) in model.net.named_params_mut() {
        let data = get(&n, &p.value)?;
        p.value.data_mut().copy_from_slice(&data);
    }
    for (n, b) in model.net.named_buffers_mut() {
        let data = get(&n, b)?;
        b.data_mut().copy_from_slice(&data);
    }
    // the optimiser's parameter order must be the model's, and each state tensor must have
    // its parameter's shape: anything else would be applied to the wrong tensors
    let shapes: HashMap<String, Vec<usize>> = model
        .net
        .named_params()
        .into_iter()
        .map(|(n, p)| (n, p.value.shape().to_vec()))
        .collect();
    let names: Vec<String> = model
        .net
        .named_params()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    if meta.params != names {
        return Err(bad(format!(
            "records the parameter list `params` {:?}, but model `{}` has {:?}; the metadata \
             does not match the tensors",
            meta.params, meta.model, names
        )));
    }
    let mut optim = HashMap::new();
    for (n, v) in st.tensors() {
        if let Some(rest) = n.strip_prefix("optim.") {
            if v.dtype() != Dtype::F32 {
                return Err(bad(format!("optimizer tensor `{n}` is not F32")));
            }
            let param = rest.rsplit_once('.').map_or(rest, |(p, _)| p);
            match shapes.get(param) {
                Some(shape) if shape.as_slice() == v.shape() => {}
                Some(shape) => {
                    return Err(bad(format!(
                        "optimizer tensor `{n}` is {} but parameter `{param}` is {}",
                        fmt_shape(v.shape()),
                        fmt_shape(shape)
                    )))
                }
                None => {
                    return Err(bad(format!(
                        "optimizer tensor `{n}` belongs to no parameter of model `{}`",
                        meta.model
                    )))
                }
            }
            let data = v
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                .collect();
            optim.insert(rest.to_string(), Tensor::new(v.shape().to_vec(), data)?);
        }
    }
    Ok(Loaded { model, meta, optim })
}
