//! Weights by name: loading a PyTorch `state_dict` (saved with `safetensors.torch.save_file`)
//! into a network built from a spec, and writing an imported model as a run folder that
//! `stride train --resume` continues.
//!
//! Names follow `nn.Sequential`: layer position, then the parameter (`0.weight`, `1.bias`,
//! `2.running_mean`). PyTorch's `num_batches_tracked` counters are ignored (stride's batchnorm
//! uses a fixed momentum). A missing, extra or mis-shaped tensor is an error that names it.

use crate::checkpoint::{self, Meta};
use crate::error::{Error, Result};
use crate::nn::models::{Model, ModelDefaults};
use crate::optim::OptimConfig;
use crate::tensor::{fmt_shape, Tensor};
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;
use std::path::Path;

/// Copies `tensors` into the model's parameters and buffers by name; `what` names the source
/// in errors. Every parameter and buffer must be present with the right shape, and nothing else.
///
/// ```
/// use std::collections::HashMap;
/// use stride::nn::{init::Init, models::{resolve, Model}};
/// use stride::Tensor;
/// let (spec, _, _) = resolve("input(4) linear(2)")?;
/// let mut model = Model::build(&spec, Init::Default, 0)?;
/// let mut w = HashMap::from([("0.weight".to_string(), Tensor::zeros(&[2, 4]))]);
/// let err = stride::onnx::state::set_weights(&mut model, w.clone(), "weights").unwrap_err();
/// assert!(err.to_string().contains("`0.bias`"));
/// w.insert("0.bias".into(), Tensor::zeros(&[2]));
/// stride::onnx::state::set_weights(&mut model, w, "weights")?;
/// # Ok::<(), stride::Error>(())
/// ```
pub fn set_weights(
    model: &mut Model,
    mut tensors: HashMap<String, Tensor>,
    what: &str,
) -> Result<()> {
    tensors.retain(|k, _| !k.ends_with("num_batches_tracked"));
    let mut names: Vec<String> = Vec::new();
    let mut fill = |name: String, dst: &mut Tensor| -> Result<()> {
        let src = tensors.remove(&name).ok_or_else(|| {
            Error::arg(
                what,
                format!(
                    "tensor `{name}` ({}) is missing; the spec's layers are named by position as in nn.Sequential",
                    fmt_shape(dst.shape())
                ),
            )
        })?;
        if src.shape() != dst.shape() {
            return Err(Error::arg(
                what,
                format!(
                    "tensor `{name}` has shape {} but the spec needs {}",
                    fmt_shape(src.shape()),
                    fmt_shape(dst.shape())
                ),
            ));
        }
        dst.data_mut().copy_from_slice(src.data());
        names.push(name);
        Ok(())
    };
    for (n, p) in model.net.named_params_mut() {
        fill(n, &mut p.value)?;
    }
    for (n, b) in model.net.named_buffers_mut() {
        fill(n, b)?;
    }
    if let Some(extra) = tensors.keys().min() {
        return Err(Error::arg(
            what,
            format!(
                "tensor `{extra}` is not part of the spec (it has {}); check the spec against the network that saved the weights",
                names.join(", ")
            ),
        ));
    }
    Ok(())
}

/// Reads every tensor of a safetensors file as float32 (F64, F16 and BF16 are converted; integer
/// tensors other than `num_batches_tracked` are refused).
pub fn read_safetensors(path: &Path) -> Result<HashMap<String, Tensor>> {
    let bytes = super::read_limited(path, "weights")?;
    let bad = |msg: String| Error::BadFile {
        path: path.to_path_buf(),
        msg,
    };
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| bad(format!("is not a readable safetensors file ({e})")))?;
    let mut out = HashMap::new();
    for (name, v) in st.tensors() {
        if name.ends_with("num_batches_tracked") {
            continue;
        }
        let d = v.data();
        let data: Vec<f32> = match v.dtype() {
            Dtype::F32 => d
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F64 => d
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
                .collect(),
            Dtype::F16 => d
                .chunks_exact(2)
                .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
                .collect(),
            Dtype::BF16 => d
                .chunks_exact(2)
                .map(|b| f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16))
                .collect(),
            other => {
                return Err(bad(format!(
                    "tensor `{name}` is {other:?}; stride loads floating-point weights"
                )))
            }
        };
        out.insert(name, Tensor::new(v.shape().to_vec(), data)?);
    }
    Ok(out)
}

/// A network from a spec (a preset, an inline spec or `@file`) with PyTorch weights from a
/// safetensors file; returns the model and its display name.
pub fn load_safetensors_model(path: &Path, spec: &str) -> Result<(Model, String)> {
    let (spec, name, _) = crate::nn::models::resolve(spec)?;
    let tensors = read_safetensors(path)?;
    let mut model = Model::build(&spec, Default::default(), 0)?;
    set_weights(&mut model, tensors, &path.display().to_string())?;
    Ok((model, name))
}

/// IEEE half → single (exact).
fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            return f32::from_bits(sign)
                + (f as f32) * 2f32.powi(-24) * if sign != 0 { -1.0 } else { 1.0 }
        }
        (0x1f, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 112) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

/// Writes `model` as a fresh run folder (epoch 0 of 0, Adam lr 1e-3) that `stride train
/// --resume DIR --epochs N` fine-tunes. Refuses a folder that already holds a checkpoint.
pub fn write_run(dir: &Path, model: &Model, name: &str) -> Result<()> {
    let file = dir.join(checkpoint::FILE);
    if file.exists() {
        return Err(Error::arg(
            "out",
            format!(
                "{} already holds a run; choose another --out folder",
                dir.display()
            ),
        ));
    }
    model.classes()?;
    let d = ModelDefaults::default();
    let optim = OptimConfig::new(&d.optimizer, d.lr)?;
    let meta = Meta {
        format: "stride-checkpoint".into(),
        version: 1,
        model: name.into(),
        spec: model.spec.to_string(),
        epoch: 0,
        epochs: 0,
        batch_size: 256,
        seed: 0,
        init: d.init.name().into(),
        limit: None,
        optim: optim.clone(),
        optim_steps: 0,
        params: model.net.param_names(),
        history: Vec::new(),
    };
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    checkpoint::save(&file, model, optim.build().as_ref(), &meta)
}
