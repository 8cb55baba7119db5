//! The input gradient of a convolution as a full convolution, for a front-end to show: the
//! output gradient spread out and padded, the flipped kernel, and each input entry's window.

use super::{check_shown, check_terms};
use crate::error::Result;
use crate::ops::conv::{check_grad_output, ConvParams, ConvShape};
use crate::tensor::Tensor;

/// The input gradient as a full convolution (seed 004 (d)): `∂E/∂y` spread out by the stride
/// and padded by `d·(k−1)` zeros (`spread`, `(N, Cout, *spread)`), correlated with the flipped
/// kernel (`flipped`, the weight's shape). `windows[i]` lists, for input entry `i`, the cells of
/// `spread` its window covers (over every output channel of its group), and `taps[i]` the
/// flipped-kernel entries they meet, pairwise. Positions come from `AxisWindow::padded_coord`
/// (entry `o` sits at `o·s + (k−1)·d`) and `padded_index` (pixel `i` at `i + pb`).
#[derive(Clone, Debug)]
pub struct FullConv {
    pub spread: Tensor,
    pub flipped: Tensor,
    pub windows: Vec<Vec<usize>>,
    pub taps: Vec<Vec<usize>>,
}

/// Builds the full-convolution view of the input gradient of `conv(x, w)` for `gy`.
pub fn full_conv(x: &Tensor, w: &Tensor, gy: &Tensor, p: &ConvParams) -> Result<FullConv> {
    let s = ConvShape::new(x.shape(), w.shape(), None, p)?;
    check_grad_output(gy.shape(), &s.out_shape())?;
    check_terms("input", s.macs() as usize)?;
    let axes = s.window.axes;
    let sp: [usize; 3] = axes.map(|a| a.spread_len());
    let sp_len: usize = sp.iter().product();
    check_shown("stride", s.batch * s.cout * sp_len)?;
    let at3 = |c: [usize; 3], dims: [usize; 3]| (c[0] * dims[1] + c[1]) * dims[2] + c[2];
    let split = |i: usize, dims: [usize; 3]| {
        [
            i / (dims[1] * dims[2]),
            (i / dims[2]) % dims[1],
            i % dims[2],
        ]
    };
    let outs = axes.map(|a| a.output);
    let ins = axes.map(|a| a.input);
    let ks = axes.map(|a| a.kernel);
    let (out_len, in_len, taps) = (s.window.out_len(), s.window.in_len(), s.window.taps());
    // for each output entry: its place in the spread plane
    let mut spread = vec![0.0; s.batch * s.cout * sp_len];
    for (plane, g) in gy.data().chunks(out_len).enumerate() {
        for (o, &v) in g.iter().enumerate() {
            let oc = split(o, outs);
            let c = [0, 1, 2].map(|a| axes[a].padded_coord(oc[a], ks[a] - 1));
            spread[plane * sp_len + at3(c, sp)] = v;
        }
    }
    let (mut windows, mut tap_lists) = (vec![], vec![]);
    // for each input entry: the window at its padded position, over its group's output channels
    for n in 0..s.batch {
        for ic in 0..s.cin {
            let (g, icg) = (ic / s.cin_g(), ic % s.cin_g());
            for i in 0..in_len {
                let pc = split(i, ins);
                let c = [0, 1, 2].map(|a| axes[a].padded_index(pc[a]));
                let (mut win, mut tl) = (vec![], vec![]);
                for oc in g * s.cout_g()..(g + 1) * s.cout_g() {
                    for t in 0..taps {
                        let tc = split(t, ks);
                        let at = [0, 1, 2].map(|a| c[a] + tc[a] * axes[a].dilation);
                        if (0..3).any(|a| at[a] >= sp[a]) {
                            continue; // beyond the last entry: zeros
                        }
                        win.push((n * s.cout + oc) * sp_len + at3(at, sp));
                        tl.push((oc * s.cin_g() + icg) * taps + t);
                    }
                }
                windows.push(win);
                tap_lists.push(tl);
            }
        }
    }
    let mut shape = vec![s.cout];
    shape.extend(s.window.real_axes().iter().map(|a| a.spread_len()));
    if s.batched {
        shape.insert(0, s.batch);
    }
    Ok(FullConv {
        spread: Tensor::new(shape, spread)?,
        // with `flip` the kernel slid is already flipped; flipping it back gives the weight
        flipped: if p.flip { w.clone() } else { w.flip_spatial() },
        windows,
        taps: tap_lists,
    })
}
