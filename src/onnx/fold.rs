//! Constant folding of small int64 computations that exporters leave in graphs: PyTorch writes
//! the `pads` of a reflect / replicate `Pad` as `ConstantOfShape → Concat → Reshape → Slice →
//! Transpose → Reshape → Cast` on constants. Every result is bounded by [`MAX_FOLD`] values.

use super::import::{Val, Walk};
use super::proto::INT64;
use super::tensors::{decode, Attrs, Const};
use crate::error::Result;
use crate::tensor::Tensor;

/// Most values a folded constant may have.
const MAX_FOLD: usize = 1 << 16;

/// Operators folded when every input is a constant.
pub(super) const FOLDABLE: [&str; 6] = [
    "ConstantOfShape",
    "Concat",
    "Reshape",
    "Slice",
    "Transpose",
    "Cast",
];

/// Row-major strides of `dims`.
fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

/// The int64 constant named `name`, when it is one.
fn ints<'a>(w: &'a Walk, name: &str) -> Option<(&'a [usize], &'a [i64])> {
    match w.konst(name) {
        Some(Const::I64(d, v)) => Some((d, v)),
        _ => None,
    }
}

/// Folds the node when it is foldable and all its inputs are int64 constants; `None` otherwise.
pub(super) fn fold(w: &Walk, a: &Attrs) -> Result<Option<Const>> {
    let n = a.node;
    let op = n.op_type.as_str();
    let inputs: Vec<&String> = n.input.iter().filter(|s| !s.is_empty()).collect();
    if !FOLDABLE.contains(&op) || inputs.is_empty() || inputs.iter().any(|i| ints(w, i).is_none()) {
        return Ok(None);
    }
    let (dims, v) = ints(w, inputs[0]).expect("checked");
    check_axes(a, dims)?;
    let too_big = || {
        a.err(format!(
            "computes a constant of more than {MAX_FOLD} values"
        ))
    };
    let out = match op {
        "ConstantOfShape" => {
            a.only(&["value"])?;
            let shape: Vec<usize> = v
                .iter()
                .map(|&d| usize::try_from(d).map_err(|_| a.err("has a negative size")))
                .collect::<Result<_>>()?;
            let len = shape
                .iter()
                .try_fold(1usize, |p, &d| p.checked_mul(d))
                .filter(|&l| l <= MAX_FOLD)
                .ok_or_else(too_big)?;
            match a.tensor("value")?.map(decode).transpose()? {
                Some(Const::I64(_, x)) => {
                    Const::I64(shape, vec![x.first().copied().unwrap_or(0); len])
                }
                Some(Const::F32(t)) => Const::F32(Tensor::new(
                    shape,
                    vec![t.data().first().copied().unwrap_or(0.0); len],
                )?),
                None => Const::F32(Tensor::new(shape, vec![0.0; len])?),
            }
        }
        "Concat" => {
            a.only(&["axis"])?;
            let mut all = Vec::new();
            for i in &inputs {
                let (d, x) = ints(w, i).expect("checked");
                if d.len() > 1 {
                    return Ok(None);
                }
                all.extend_from_slice(x);
            }
            if all.len() > MAX_FOLD {
                return Err(too_big());
            }
            Const::I64(vec![all.len()], all)
        }
        "Reshape" => {
            a.only(&["allowzero"])?;
            let (_, target) =
                ints(w, inputs.get(1).ok_or_else(|| a.err("has no shape"))?).expect("checked");
            let mut shape: Vec<i64> = target
                .iter()
                .enumerate()
                .map(|(k, &t)| {
                    if t == 0 {
                        dims.get(k).map_or(0, |&d| d as i64)
                    } else {
                        t
                    }
                })
                .collect();
            let known = shape
                .iter()
                .filter(|&&d| d != -1)
                .try_fold(1i64, |p, &d| p.checked_mul(d))
                .ok_or_else(|| a.err("reshapes to a size that overflows"))?;
            if let Some(k) = shape.iter().position(|&d| d == -1) {
                shape[k] = if known > 0 { v.len() as i64 / known } else { 0 };
            }
            let shape: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
            if shape.iter().product::<usize>() != v.len() {
                return Err(a.err("reshapes a constant to a different number of values"));
            }
            Const::I64(shape, v.to_vec())
        }
        "Transpose" => {
            a.only(&["perm"])?;
            let r = dims.len();
            let perm: Vec<usize> = match a.ints("perm")? {
                Some(p) => p.iter().map(|&x| x as usize).collect(),
                None => (0..r).rev().collect(),
            };
            let mut seen = perm.clone();
            seen.sort_unstable();
            if seen != (0..r).collect::<Vec<_>>() {
                return Err(a.err("has an invalid perm"));
            }
            let od: Vec<usize> = perm.iter().map(|&p| dims[p]).collect();
            let (is, os) = (strides(dims), strides(&od));
            let out = (0..v.len())
                .map(|k| {
                    v[(0..r)
                        .map(|j| (k / os[j]) % od[j].max(1) * is[perm[j]])
                        .sum::<usize>()]
                })
                .collect();
            Const::I64(od, out)
        }
        "Slice" => slice(w, a, dims, v, &inputs)?,
        _ => {
            a.only(&["to", "saturate"])?;
            if a.int("to", INT64 as i64)? != INT64 as i64 {
                return Ok(None);
            }
            Const::I64(dims.to_vec(), v.to_vec())
        }
    };
    Ok(Some(out))
}

/// A constant with a zero-length axis may declare any other axis huge (its product is still
/// 0): the per-axis index lists of Slice and Transpose are bounded like the values.
fn check_axes(a: &Attrs, dims: &[usize]) -> Result<()> {
    if dims.iter().any(|&d| d > MAX_FOLD) {
        return Err(a.err(format!(
            "folds a constant with an axis longer than {MAX_FOLD}"
        )));
    }
    Ok(())
}

/// `Slice(data, starts, ends, axes, steps)` on an int64 constant (negative steps included).
fn slice(w: &Walk, a: &Attrs, dims: &[usize], v: &[i64], inputs: &[&String]) -> Result<Const> {
    a.only(&[])?;
    let get = |k: usize| {
        inputs
            .get(k)
            .and_then(|n| ints(w, n))
            .map(|(_, x)| x.to_vec())
    };
    let (starts, ends) = (get(1).unwrap_or_default(), get(2).unwrap_or_default());
    let r = dims.len() as i64;
    let axes: Vec<i64> = get(3).unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = get(4).unwrap_or_else(|| vec![1; starts.len()]);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err(a.err("has starts, ends, axes and steps of different lengths"));
    }
    // per axis, the kept indices (ONNX clamping rules)
    let mut keep: Vec<Vec<usize>> = dims.iter().map(|&d| (0..d).collect()).collect();
    for k in 0..starts.len() {
        let ax = if axes[k] < 0 { axes[k] + r } else { axes[k] };
        let Some(&d) = usize::try_from(ax).ok().and_then(|x| dims.get(x)) else {
            return Err(a.err("slices an axis out of range"));
        };
        let (d, step) = (d as i64, steps[k]);
        if step == 0 {
            return Err(a.err("has a zero step"));
        }
        let norm = |x: i64| if x < 0 { x.saturating_add(d) } else { x };
        let (lo, hi) = if step > 0 { (0, d) } else { (-1, d - 1) };
        let (mut s, e) = (norm(starts[k]).clamp(lo, hi), norm(ends[k]).clamp(lo, hi));
        let mut idx = Vec::new();
        while (step > 0 && s < e) || (step < 0 && s > e) {
            idx.push(s as usize);
            match s.checked_add(step) {
                Some(next) => s = next,
                None => break,
            }
        }
        keep[ax as usize] = idx;
    }
    let od: Vec<usize> = keep.iter().map(Vec::len).collect();
    let (is, os) = (strides(dims), strides(&od));
    let len: usize = od.iter().product();
    let out = (0..len)
        .map(|k| {
            v[(0..dims.len())
                .map(|j| keep[j][(k / os[j]) % od[j]] * is[j])
                .sum::<usize>()]
        })
        .collect();
    Ok(Const::I64(od, out))
}

/// A shape vector input: a computed shape or an int64 constant of at most one axis.
pub(super) fn shape_vec(w: &Walk, a: &Attrs, name: &str) -> Result<Vec<Option<i64>>> {
    match w.vals.get(name) {
        Some(Val::Shape(v)) => Ok(v.clone()),
        Some(Val::Const(Const::I64(d, v))) if d.len() <= 1 => Ok(v.iter().map(|&x| Some(x)).collect()),
        _ => Err(a.err(format!(
            "works on `{name}`, which is not a shape; stride evaluates {} on shapes only (as in x.view(x.size(0), -1))",
            a.node.op_type
        ))),
    }
}

/// Evaluates one shape operator symbolically (`None` is the open batch size).
pub(super) fn shape_op(w: &Walk, a: &Attrs) -> Result<Vec<Option<i64>>> {
    let inputs = &a.node.input;
    let v = match a.node.op_type.as_str() {
        "Shape" => {
            a.only(&["start", "end"])?;
            a.arity(1, 1)?;
            let Some(Val::Act { shape, .. }) = w.vals.get(&inputs[0]) else {
                return Err(a.err("takes the shape of something that is not an activation"));
            };
            let full: Vec<Option<i64>> = std::iter::once(None)
                .chain(shape.iter().map(|&d| Some(d as i64)))
                .collect();
            let r = full.len() as i64;
            let norm = |i: i64| (if i < 0 { i.saturating_add(r) } else { i }).clamp(0, r) as usize;
            let (s, e) = (norm(a.int("start", 0)?), norm(a.int("end", r)?));
            full[s..e.max(s)].to_vec()
        }
        "Gather" => {
            a.only(&["axis"])?;
            a.arity(2, 2)?;
            let data = shape_vec(w, a, &inputs[0])?;
            let idx = shape_vec(w, a, &inputs[1])?;
            if a.int("axis", 0)? != 0 {
                return Err(a.err("gathers along an axis other than 0"));
            }
            let n = data.len() as i64;
            idx.iter()
                .map(|i| match i {
                    Some(i) if (-n..n).contains(i) => {
                        Ok(data[(if *i < 0 { i + n } else { *i }) as usize])
                    }
                    _ => Err(a.err("has an index out of range")),
                })
                .collect::<Result<_>>()?
        }
        "Unsqueeze" | "Squeeze" | "Cast" => {
            a.only(&["axes", "to", "saturate"])?;
            a.arity(1, 2)?;
            shape_vec(w, a, &inputs[0])?
        }
        _ => {
            a.only(&["axis"])?;
            let mut v = Vec::new();
            for i in inputs {
                v.extend(shape_vec(w, a, i)?);
            }
            v
        }
    };
    if v.len() > 8 {
        return Err(a.err("builds a shape with more than 8 axes"));
    }
    Ok(v)
}
