//! Pooling by selection: k-max forward, the scatter that is the backward pass of every kind
//! that records indices (max, min, adaptive/global/fractional max, k-max), and max-unpooling
//! (PyTorch `max_unpool{1,2,3}d`) with its gather backward. Indices are flat offsets into one
//! (n, c) plane, as PyTorch's `return_indices` gives them.

use super::shape::{check_bounds, check_cells};
use super::{spatial_axes, PoolParams};
use crate::error::{Error, Result};
use crate::geometry::{per_axis, unpool_length, PaddingSpec};
use crate::tensor::{fmt_shape, Tensor};
use rayon::prelude::*;
use std::mem::MaybeUninit;

use super::PoolShape;

/// k-max pooling (Kalchbrenner et al. 2014): for every row along the last axis of length `L`,
/// the `k` largest values in their original order. Ties go to the earlier position; NaN counts
/// as largest. `y`, `idx`: rows × k; `idx` is the in-plane index `row_in_plane·L + position`.
pub fn kmax_forward(s: &PoolShape, x: &[f32], y: &mut [f32], idx: &mut [u32]) {
    let (len, k) = (s.input[2], s.output[2]);
    let (in_len, out_len) = (s.in_len(), s.out_len());
    y.par_chunks_mut(out_len)
        .zip(idx.par_chunks_mut(out_len))
        .enumerate()
        .for_each(|(p, (yp, ip))| {
            let xp = &x[p * in_len..][..in_len];
            let mut order: Vec<usize> = Vec::with_capacity(len);
            // for each row of the plane
            for (r, row) in xp.chunks(len).enumerate() {
                order.clear();
                order.extend(0..len);
                // larger first, then earlier first
                let rank = |a: &usize, b: &usize| row[*b].total_cmp(&row[*a]).then(a.cmp(b));
                if k < len {
                    order.select_nth_unstable_by(k - 1, rank);
                }
                let kept = &mut order[..k];
                kept.sort_unstable();
                for (j, &pos) in kept.iter().enumerate() {
                    yp[r * k + j] = row[pos];
                    ip[r * k + j] = (r * len + pos) as u32;
                }
            }
        });
}

/// Backward of every selecting kind into a new buffer: per plane, `gx = 0` then
/// `gx[idx[o]] += gy[o]`. `gy`, `idx`: planes × out_len; returns planes × in_len. Each plane is
/// zeroed just before its scatter (so it is still in cache: one pass over `gx`, not a fill and
/// then a scatter). An index outside its plane is an error (checked as it is met, in parallel).
pub fn scatter(in_len: usize, out_len: usize, idx: &[u32], gy: &[f32]) -> Result<Vec<f32>> {
    let planes = gy.len() / out_len;
    let mut gx = Box::<[f32]>::new_uninit_slice(planes * in_len);
    // about 16 tasks per thread, whole planes each (not one task per small plane)
    let per = planes.div_ceil(rayon::current_num_threads() * 16).max(1);
    gx.par_chunks_mut(per * in_len)
        .zip(
            gy.par_chunks(per * out_len)
                .zip(idx.par_chunks(per * out_len)),
        )
        .try_for_each(|(chunk, (gyc, ic))| {
            let outs = gyc.chunks(out_len).zip(ic.chunks(out_len));
            for (plane, (gyp, ip)) in chunk.chunks_mut(in_len).zip(outs) {
                for v in plane.iter_mut() {
                    v.write(0.0);
                }
                // SAFETY: every value of the plane was written just above, and
                // MaybeUninit<f32> has the layout of f32
                let gxp = unsafe { &mut *(plane as *mut [MaybeUninit<f32>] as *mut [f32]) };
                for (&g, &i) in gyp.iter().zip(ip) {
                    match gxp.get_mut(i as usize) {
                        Some(v) => *v += g,
                        None => return Err(bad_index(i, in_len)),
                    }
                }
            }
            Ok(())
        })?;
    // SAFETY: every plane was written in full above (an error returned before this point)
    Ok(unsafe { gx.assume_init() }.into_vec())
}

fn bad_index(i: u32, plane: usize) -> Error {
    Error::arg(
        "indices",
        format!(
            "index {i} is outside a plane of {plane} cells; the indices must come from the \
             max pooling of the same shape"
        ),
    )
}

fn check_indices(idx: &[u32], plane: usize) -> Result<()> {
    match idx.iter().find(|&&i| i as usize >= plane) {
        Some(&i) => Err(bad_index(i, plane)),
        None => Ok(()),
    }
}

/// Reads indices stored as floats (`.npy` or literal): each must be a whole number >= 0.
pub fn indices_from_tensor(t: &Tensor) -> Result<Vec<u32>> {
    t.data()
        .iter()
        .map(|&v| {
            if v >= 0.0 && v.fract() == 0.0 && v <= u32::MAX as f32 {
                Ok(v as u32)
            } else {
                Err(Error::arg(
                    "indices",
                    format!("{v} is not a flat index; indices are whole numbers >= 0"),
                ))
            }
        })
        .collect()
}

/// A validated max-unpooling: leading axes, pooled (input) and unpooled (output) spatial sizes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnpoolShape {
    pub lead: Vec<usize>,
    pub input: Vec<usize>,
    pub output: Vec<usize>,
}

impl UnpoolShape {
    /// The output shape (unbatched stays unbatched).
    pub fn out_shape(&self) -> Vec<usize> {
        [self.lead.as_slice(), self.output.as_slice()].concat()
    }
    fn lens(&self) -> (usize, usize) {
        (self.input.iter().product(), self.output.iter().product())
    }
}

/// Checks a max-unpooling of pooled input `x` with `p.kernel`, `p.stride`, `p.padding` and
/// optional `p.output_size` (per spatial axis). Default output length per axis:
/// `(i - 1)·s - 2p + k`; a given size must lie strictly within `default ± s` (PyTorch).
pub fn unpool_shape(x: &[usize], p: &PoolParams) -> Result<UnpoolShape> {
    check_bounds(p)?;
    let nd = spatial_axes(x.len(), p)?;
    if !(1..=3).contains(&nd) || !(nd + 1..=nd + 2).contains(&x.len()) || x.contains(&0) {
        return Err(Error::arg(
            "input",
            format!(
                "has shape {}, but {nd}-D max-unpooling takes (N, C, *spatial) or (C, *spatial) with {nd} spatial axes",
                fmt_shape(x)
            ),
        ));
    }
    if p.kernel.is_empty() {
        return Err(Error::arg(
            "kernel",
            "max-unpool needs --kernel K, the window of the max pooling it inverts",
        ));
    }
    let kernel = per_axis("kernel", &p.kernel, nd)?;
    let stride = per_axis("stride", p.stride_or_kernel(), nd)?;
    let pads = match &p.padding {
        PaddingSpec::Explicit(v) => per_axis("padding", v, nd)?,
        PaddingSpec::Valid => vec![(0, 0); nd],
        _ => {
            return Err(Error::arg(
                "padding",
                "max-unpool takes the explicit padding of the max pooling it inverts (an integer or one per axis)",
            ))
        }
    };
    if kernel.contains(&0) || stride.contains(&0) {
        return Err(Error::arg("kernel", "kernel and stride must be at least 1"));
    }
    let (lead, input) = x.split_at(x.len() - nd);
    let mut output = Vec::with_capacity(nd);
    for a in 0..nd {
        let default = unpool_length(input[a], kernel[a], stride[a], pads[a]).ok_or_else(|| {
            Error::arg(
                "padding",
                format!("leaves no output on axis {a} ((i-1)·s - 2p + k <= 0); use less padding"),
            )
        })?;
        output.push(default);
    }
    if !p.output_size.is_empty() {
        let want = per_axis("output-size", &p.output_size, nd)?;
        for a in 0..nd {
            let (lo, hi) = (output[a].saturating_sub(stride[a]), output[a] + stride[a]);
            if want[a] <= lo || want[a] >= hi || want[a] == 0 {
                return Err(Error::arg(
                    "output-size",
                    format!(
                        "{} on axis {a} is not reachable: with this kernel, stride and padding the size must lie \
                         strictly between {lo} and {hi}; omit --output-size for {}",
                        want[a], output[a]
                    ),
                ));
            }
        }
        output = want;
    }
    check_cells(lead.iter().product(), &output)?;
    Ok(UnpoolShape {
        lead: lead.to_vec(),
        input: input.to_vec(),
        output,
    })
}

/// Max-unpooling: `y = 0` of the unpooled shape, then `y[plane][idx[o]] = x[plane][o]` (in order,
/// a later duplicate overwrites). PyTorch: `F.max_unpool2d(x, indices, k, s, p, output_size)`.
pub fn max_unpool(x: &Tensor, indices: &[u32], p: &PoolParams) -> Result<Tensor> {
    let s = unpool_shape(x.shape(), p)?;
    let (in_len, out_len) = s.lens();
    check_len(indices, x)?;
    check_indices(indices, out_len)?;
    let mut y = Tensor::zeros(&s.out_shape());
    y.data_mut()
        .par_chunks_mut(out_len)
        .zip(x.data().par_chunks(in_len).zip(indices.par_chunks(in_len)))
        .for_each(|(yp, (xp, ip))| {
            for (&v, &i) in xp.iter().zip(ip) {
                yp[i as usize] = v;
            }
        });
    Ok(y)
}

/// Backward of max-unpooling: `gx[plane][o] = gy[plane][idx[o]]`.
pub fn max_unpool_backward(
    x: &Tensor,
    indices: &[u32],
    gy: &Tensor,
    p: &PoolParams,
) -> Result<Tensor> {
    let s = unpool_shape(x.shape(), p)?;
    let (in_len, out_len) = s.lens();
    check_len(indices, x)?;
    check_indices(indices, out_len)?;
    crate::ops::conv::check_grad_output(gy.shape(), &s.out_shape())?;
    let mut gx = Tensor::zeros(x.shape());
    gx.data_mut()
        .par_chunks_mut(in_len)
        .zip(
            gy.data()
                .par_chunks(out_len)
                .zip(indices.par_chunks(in_len)),
        )
        .for_each(|(gxp, (gyp, ip))| {
            for (g, &i) in gxp.iter_mut().zip(ip) {
                *g = gyp[i as usize];
            }
        });
    Ok(gx)
}

fn check_len(indices: &[u32], x: &Tensor) -> Result<()> {
    if indices.len() != x.numel() {
        return Err(Error::arg(
            "indices",
            format!(
                "has {} values but the input has {}; give one index per input value (same shape)",
                indices.len(),
                x.numel()
            ),
        ));
    }
    Ok(())
}
