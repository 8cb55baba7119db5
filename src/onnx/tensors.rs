//! Decoding ONNX tensors and attributes with every size checked against the bytes present:
//! a declared shape must have at most [`MAX_RANK`] axes and [`MAX_VALUES`] values, `raw_data`
//! must hold exactly `values × element size` bytes, and external data is refused (a model file
//! must not make stride read other files).

use super::proto::{attr_type, AttributeProto, NodeProto, TensorProto, EXTERNAL, FLOAT, INT64};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Most axes a tensor may declare.
pub const MAX_RANK: usize = 8;
/// Most values one tensor may declare (2^28 floats = 1 GiB).
pub const MAX_VALUES: usize = 1 << 28;
/// Most values one image's activation may have in an imported model (2^24 floats = 64 MiB),
/// so that running it cannot ask for an unbounded allocation.
pub const MAX_ACTIVATION: usize = 1 << 24;
/// Largest size accepted for one axis of a spatial size, kernel, stride or padding.
pub const MAX_AXIS: usize = 1 << 20;

/// A constant: float weights or int64 values (shapes, axes).
#[derive(Clone, Debug)]
pub enum Const {
    F32(Tensor),
    I64(Vec<usize>, Vec<i64>),
}

fn bad(msg: String) -> Error {
    Error::arg("onnx", msg)
}

/// The declared shape of `t`, checked: no negative size, at most [`MAX_RANK`] axes and
/// [`MAX_VALUES`] values.
fn dims(t: &TensorProto) -> Result<(Vec<usize>, usize)> {
    if t.dims.len() > MAX_RANK {
        return Err(bad(format!(
            "tensor `{}` declares {} axes; at most {MAX_RANK} are accepted",
            t.name,
            t.dims.len()
        )));
    }
    let mut shape = Vec::with_capacity(t.dims.len());
    let mut n: usize = 1;
    for &d in &t.dims {
        let d = usize::try_from(d)
            .map_err(|_| bad(format!("tensor `{}` declares a negative size {d}", t.name)))?;
        n = n.checked_mul(d).filter(|&n| n <= MAX_VALUES).ok_or_else(|| {
            bad(format!("tensor `{}` declares shape {:?}, more than 2^28 values; the file is corrupt or too large", t.name, t.dims))
        })?;
        shape.push(d);
    }
    Ok((shape, n))
}

/// Decodes a tensor (initializer or `Constant` value): FLOAT or INT64, inline data only.
pub fn decode(t: &TensorProto) -> Result<Const> {
    if t.data_location == EXTERNAL || !t.external_data.is_empty() {
        return Err(bad(format!(
            "tensor `{}` keeps its data in an external file, which stride does not read; save the model as one file (onnx.save_model(..., save_as_external_data=False))",
            t.name
        )));
    }
    let (shape, n) = dims(t)?;
    let size = match t.data_type {
        FLOAT => 4,
        INT64 => 8,
        other => {
            return Err(bad(format!(
                "tensor `{}` has data type {other}; stride reads float32 (1) weights and int64 (7) shapes only",
                t.name
            )))
        }
    };
    let inline = if t.data_type == FLOAT {
        t.float_data.len()
    } else {
        t.int64_data.len()
    };
    let raw = &t.raw_data;
    if !raw.is_empty() && raw.len() != n * size || raw.is_empty() && inline != n {
        return Err(bad(format!(
            "tensor `{}` declares shape {:?} ({n} values) but holds {} bytes of raw data and {inline} inline values; the file is truncated or corrupt",
            t.name, t.dims, raw.len()
        )));
    }
    Ok(match (t.data_type, raw.is_empty()) {
        (FLOAT, false) => {
            let v = raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            Const::F32(Tensor::new(shape, v)?)
        }
        (FLOAT, true) => Const::F32(Tensor::new(shape, t.float_data.clone())?),
        (_, false) => {
            let v = raw
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
                .collect();
            Const::I64(shape, v)
        }
        (_, true) => Const::I64(shape, t.int64_data.clone()),
    })
}

/// The attributes of one node, looked up by name, with the node named in every error.
pub struct Attrs<'a> {
    pub node: &'a NodeProto,
}

impl<'a> Attrs<'a> {
    pub fn new(node: &'a NodeProto) -> Self {
        Attrs { node }
    }

    /// `node `name` (Op)` for messages.
    pub fn who(&self) -> String {
        let n = &self.node;
        if n.name.is_empty() {
            format!(
                "node `{}` ({})",
                n.output.first().map_or("?", |s| s.as_str()),
                n.op_type
            )
        } else {
            format!("node `{}` ({})", n.name, n.op_type)
        }
    }

    pub fn err(&self, msg: impl std::fmt::Display) -> Error {
        bad(format!("{}: {msg}", self.who()))
    }

    /// Checks the number of inputs (`lo..=hi`; trailing empty names count as absent).
    pub fn arity(&self, lo: usize, hi: usize) -> Result<()> {
        let n = self
            .node
            .input
            .iter()
            .rposition(|s| !s.is_empty())
            .map_or(0, |p| p + 1);
        if !(lo..=hi).contains(&n) || self.node.input.first().is_none_or(|s| s.is_empty()) && lo > 0
        {
            return Err(self.err(format!("has {n} inputs; it takes {lo} to {hi}")));
        }
        Ok(())
    }

    /// Refuses attributes outside `known` (an attribute stride ignored could change the result).
    pub fn only(&self, known: &[&str]) -> Result<()> {
        for a in &self.node.attribute {
            if !a.ref_attr_name.is_empty() {
                return Err(self.err(format!(
                    "attribute `{}` refers to a function attribute; stride runs plain graphs",
                    a.name
                )));
            }
            if !known.contains(&a.name.as_str()) {
                return Err(self.err(format!(
                    "attribute `{}` is not supported (stride reads {})",
                    a.name,
                    known.join(", ")
                )));
            }
        }
        Ok(())
    }

    fn get(&self, name: &str, ty: i32) -> Result<Option<&'a AttributeProto>> {
        match self.node.attribute.iter().find(|a| a.name == name) {
            Some(a) if a.r#type != ty && a.r#type != 0 => Err(self.err(format!(
                "attribute `{name}` has the wrong type {}",
                a.r#type
            ))),
            other => Ok(other),
        }
    }

    pub fn int(&self, name: &str, default: i64) -> Result<i64> {
        Ok(self.get(name, attr_type::INT)?.map_or(default, |a| a.i))
    }

    pub fn float(&self, name: &str, default: f32) -> Result<f32> {
        Ok(self.get(name, attr_type::FLOAT)?.map_or(default, |a| a.f))
    }

    pub fn string(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .get(name, attr_type::STRING)?
            .map(|a| String::from_utf8_lossy(&a.s).into_owned()))
    }

    pub fn tensor(&self, name: &str) -> Result<Option<&'a TensorProto>> {
        Ok(self
            .get(name, attr_type::TENSOR)?
            .and_then(|a| a.t.as_ref()))
    }

    pub fn ints(&self, name: &str) -> Result<Option<Vec<i64>>> {
        Ok(self.get(name, attr_type::INTS)?.map(|a| a.ints.clone()))
    }

    pub fn floats(&self, name: &str) -> Result<Option<Vec<f32>>> {
        Ok(self.get(name, attr_type::FLOATS)?.map(|a| a.floats.clone()))
    }

    /// A per-axis size list (kernel, strides, pads, dilations): `n` values in `lo..=MAX_AXIS`,
    /// or `default` repeated when absent.
    pub fn sizes(&self, name: &str, n: usize, lo: usize, default: usize) -> Result<Vec<usize>> {
        let Some(v) = self.ints(name)? else {
            return Ok(vec![default; n]);
        };
        if v.len() != n {
            return Err(self.err(format!(
                "`{name}` has {} values but the input needs {n}",
                v.len()
            )));
        }
        v.iter()
            .map(|&x| {
                usize::try_from(x)
                    .ok()
                    .filter(|x| (lo..=MAX_AXIS).contains(x))
                    .ok_or_else(|| {
                        self.err(format!(
                            "`{name}` value {x} is out of range {lo}..={MAX_AXIS}"
                        ))
                    })
            })
            .collect()
    }
}
