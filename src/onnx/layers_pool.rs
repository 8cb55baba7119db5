//! The ONNX pooling operators (`MaxPool`, `AveragePool`, `LpPool`, global pooling) mapped onto
//! stride's pooling layers: window, strides, `pads` / `auto_pad`, dilation, ceil mode,
//! `count_include_pad`, LP's even `p`.

use super::import::Walk;
use super::layers::{padding, Mapped};
use super::tensors::Attrs;
use crate::error::Result;
use crate::geometry::PaddingSpec;
use crate::nn::spec::LayerSpec;
use crate::ops::pool::{PoolKind, PoolParams};

pub(super) fn pool(w: &Walk, a: &Attrs, kind: PoolKind) -> Result<Mapped> {
    let nd = w.shape.len().saturating_sub(1);
    let mut known = vec!["auto_pad", "ceil_mode", "kernel_shape", "pads", "strides"];
    known.extend(match kind {
        PoolKind::Max => &["dilations", "storage_order"][..],
        PoolKind::Avg => &["count_include_pad"][..],
        _ => &["p"][..],
    });
    a.only(&known)?;
    if a.ints("kernel_shape")?.is_none() {
        return Err(a.err("has no kernel_shape"));
    }
    let mut p = PoolParams::new(kind, &a.sizes("kernel_shape", nd, 1, 1)?);
    p.stride = a.sizes("strides", nd, 1, 1)?;
    p.padding = match padding(a, nd)? {
        PaddingSpec::Explicit(v) if v.iter().all(|(b, e)| b == e) => PaddingSpec::Explicit(v),
        PaddingSpec::Valid => PaddingSpec::Explicit(vec![(0, 0)]),
        _ => return Err(a.err(
            "has asymmetric or SAME padding; stride's pooling pads both sides alike (as PyTorch)",
        )),
    };
    p.ceil_mode = a.int("ceil_mode", 0)? != 0;
    match kind {
        PoolKind::Max => p.dilation = a.sizes("dilations", nd, 1, 1)?,
        PoolKind::Avg => p.count_include_pad = a.int("count_include_pad", 0)? != 0,
        _ => {
            let n = a.int("p", 2)?;
            if n < 2 || n % 2 != 0 || n > 64 {
                return Err(a.err(format!("p = {n}: ONNX LpPool takes |x|^p, which matches stride's lppool (PyTorch's x^p) only for an even p")));
            }
            p.norm_type = n as f64;
        }
    }
    Ok(Mapped::Layer(
        LayerSpec::Pool {
            dims: None,
            params: p,
        },
        vec![],
    ))
}
