//! A dilated stride-1 2-D convolution as `d²` undilated ones on the input's polyphase parts, so
//! the undilated kernels (Winograd above all) serve dilated layers too.
//!
//! Per axis with dilation `d`, stride 1 and begin padding `p = m·d`: output `o = c + d·i` (its
//! class `c = o mod d`) reads the inputs `o + t·d − p = c + d·(i + t − m)` — all of class `c`.
//! So with `x_c[j] = x[c + d·j]` (`in_c = ⌈(I − c)/d⌉` values), the outputs of class `c` are
//! `y_c[i] = Σ_t x_c[i + t − m]·w[t]`: an undilated convolution with begin padding `m` and the
//! end padding that makes its length `out_c = ⌈(O − c)/d⌉`. The multiplies are exactly the
//! dilated ones; the extra work is one gather of the input and one scatter of the output.
//! The input gradient's adjoint problem (stride 1, padding `d·(k − 1) − p`) decomposes the same
//! way when that padding is also a multiple of `d`.

use super::{forward_uninit, winograd, ConvAlgo, ConvParams, ConvShape};
use crate::error::Result;
use crate::geometry::{PaddingMode, PaddingSpec};
use crate::ops::activation::wide;
use crate::ops::scratch;
use crate::ops::uninit::{as_uninit, SharedOut};
use rayon::prelude::*;
use std::cell::RefCell;
use std::mem::MaybeUninit;

thread_local! {
    /// The gathered classes of the input and of the output gradient, reused across calls.
    static GATHER_X: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static GATHER_G: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// The classes' stacked output, before the scatter into the caller's output.
    static CLASS_Y: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// One class along one axis: `(c, in_c, out_c, begin pad m, end pad)`.
type AxisClass = (usize, usize, usize, usize, usize);

/// The `d` classes of axis `a`, or `None` if one has no input or no output, or would need a
/// negative end padding.
fn axis_classes(s: &ConvShape, a: usize) -> Option<Vec<AxisClass>> {
    let ax = &s.window.axes[a];
    let (d, k) = (ax.dilation, ax.kernel);
    let m = ax.pad_begin / d;
    (0..d)
        .map(|c| {
            let in_c = ax.input.checked_sub(c)?.div_ceil(d);
            let out_c = ax.output.checked_sub(c)?.div_ceil(d);
            let pe = (out_c + k - 1).checked_sub(in_c + m)?;
            (in_c > 0 && out_c > 0).then_some((c, in_c, out_c, m, pe))
        })
        .collect()
}

/// Whether the decomposition applies: zero padding, 2-D (or 1-D), stride 1, the same dilation
/// `d ≥ 2` on both axes, begin paddings that are multiples of `d`, every class non-empty.
pub fn applies(s: &ConvShape) -> bool {
    let [ad, ah, aw] = &s.window.axes;
    s.mode == PaddingMode::Zeros
        && ad.input == 1
        && ad.kernel == 1
        && [ah, aw].iter().all(|a| a.stride == 1)
        && aw.dilation >= 2
        && ah.dilation == aw.dilation
        && [ah, aw].iter().all(|a| a.pad_begin % a.dilation == 0)
        && axis_classes(s, 1).is_some()
        && axis_classes(s, 2).is_some()
}

/// The undilated problem of classes `(ch, cw)`.
fn class_problem(s: &ConvShape, h: AxisClass, w: AxisClass) -> Result<ConvShape> {
    let [_, ah, aw] = &s.window.axes;
    let p = ConvParams {
        stride: vec![1, 1],
        padding: PaddingSpec::Explicit(vec![(h.3, h.4), (w.3, w.4)]),
        dilation: vec![1, 1],
        groups: s.groups,
        ..ConvParams::default()
    };
    ConvShape::new(
        &[s.batch, s.cin, h.1, w.1],
        &[s.cout, s.cin / s.groups, ah.kernel, aw.kernel],
        None,
        &p,
    )
}

/// Whether `auto` decomposes `s`: it [`applies`] and its class problems run Winograd (measured:
/// dil3x3, 64 channels on 56×56 at dilation 2, as four 28×28 Winograd problems).
pub fn wins(s: &ConvShape) -> bool {
    applies(s) && representative(s).is_some_and(|p| winograd::wins(&p))
}

/// Whether `auto`'s weight gradient goes through the classes: it [`applies`] and the classes'
/// stacked problem takes the Winograd weight gradient (dil3x3: 12.4–13.6 ms against the
/// channel-lanes correlation's 16.1–17.0 on 1 thread, 6.5–7.8 against 8.4–9.0 on 2, once the
/// gathers ran as vectorised pairs; 2026-12-02, interleaved).
pub fn weight_wins(s: &ConvShape) -> bool {
    applies(s) && representative(s).is_some_and(|p| winograd::wgrad_wins(&p))
}

/// The first class problem with the d² classes stacked along the batch, as [`forward`] runs
/// them when they have one size (they differ by at most one row or column), for `auto` and
/// reports.
pub fn representative(s: &ConvShape) -> Option<ConvShape> {
    let (h, w) = (axis_classes(s, 1)?, axis_classes(s, 2)?);
    let mut stacked = s.clone();
    stacked.batch = s.batch * h.len() * w.len();
    class_problem(&stacked, h[0], w[0]).ok()
}

/// Forward pass through the classes; every value of `y: (N, Cout, OH, OW)` is written (each
/// output cell belongs to exactly one class), so `y` need not be initialised. Classes
/// of the same size (all of them when the sizes divide by `d`) run as one problem with their
/// inputs stacked along the batch — one weight transform, more tiles to share between threads.
/// Requires [`applies`].
pub fn forward(
    s: &ConvShape,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [MaybeUninit<f32>],
) -> Result<()> {
    assert!(
        applies(s),
        "dilated::forward on a shape it does not support"
    );
    for group in &class_groups(s) {
        run_group(s, x, w, bias, group, y)?;
    }
    Ok(())
}

/// The d² classes grouped by problem size (everything but the class index), in class order.
fn class_groups(s: &ConvShape) -> Vec<Vec<(AxisClass, AxisClass)>> {
    let (hs, ws) = (
        axis_classes(s, 1).expect("applies"),
        axis_classes(s, 2).expect("applies"),
    );
    let mut groups: Vec<Vec<(AxisClass, AxisClass)>> = Vec::new();
    for &h in &hs {
        for &wc in &ws {
            let key =
                |(a, b): &(AxisClass, AxisClass)| ((a.1, a.2, a.3, a.4), (b.1, b.2, b.3, b.4));
            match groups.iter_mut().find(|g| key(&g[0]) == key(&(h, wc))) {
                Some(g) => g.push((h, wc)),
                None => groups.push(vec![(h, wc)]),
            }
        }
    }
    groups
}

/// The classes `group` of `planes` planes of `src` (each `ext[0]`×`ext[1]`), stacked: plane
/// `k·planes + q` of the result is class k of plane q, `v_k[j, l] = v[h.0 + d·j, w.0 + d·l]`,
/// a class being `output`'s rows and columns (the output gradient) or else the input's.
#[allow(clippy::too_many_arguments)]
fn gather<R>(
    src: &[f32],
    planes: usize,
    ext: [usize; 2],
    d: usize,
    group: &[(AxisClass, AxisClass)],
    output: bool,
    slot: &'static scratch::Slot,
    then: impl FnOnce(&[f32]) -> R,
) -> R {
    let (h0, w0) = group[0];
    let (rows, cols) = if output { (h0.2, w0.2) } else { (h0.1, w0.1) };
    let plane = ext[0] * ext[1];
    // a reused buffer: a fresh one of this size costs its page faults on every call
    scratch::with(slot, group.len() * planes * rows * cols, |dst| {
        gather_into(src, planes, [plane, ext[1]], d, group, [rows, cols], dst);
        then(dst)
    })
}

/// [`gather`]'s copy into `dst` (every value written): `sizes` = (plane, row) of `src`,
/// `class` = (rows, columns) of a class. Per source plane, in parallel, all its classes: the
/// plane is read from memory once, not once per class (the classes' planes lie `planes`
/// apart in `dst`, so each task writes several disjoint ranges).
fn gather_into(
    src: &[f32],
    planes: usize,
    sizes: [usize; 2],
    d: usize,
    group: &[(AxisClass, AxisClass)],
    class: [usize; 2],
    dst: &mut [f32],
) {
    let ([plane, width], [rows, cols]) = (sizes, class);
    let rc = rows * cols;
    assert!(dst.len() >= group.len() * planes * rc && src.len() >= planes * plane);
    let out = SharedOut::new(dst);
    (0..planes).into_par_iter().for_each(|q| {
        let sp = &src[q * plane..][..plane];
        wide(|| {
            for (k, (h, wc)) in group.iter().enumerate() {
                // SAFETY: plane k·planes + q of dst (in bounds, asserted) is written by this
                // task only
                let dp = unsafe {
                    std::slice::from_raw_parts_mut(out.at((k * planes + q) * rc, rc), rc)
                };
                for (j, row) in dp.chunks_exact_mut(cols).enumerate() {
                    let sr = &sp[(h.0 + d * j) * width..][..width];
                    take_every(d, &sr[wc.0..], row);
                }
            }
        })
    });
}

/// `dst[l] = src[d·l]` for every `l` (`src` holds them all). At `d = 2` as pairs, a loop
/// that vectorises (one permute per 16 values; `step_by` does not), the last odd value alone.
#[inline(always)]
fn take_every(d: usize, src: &[f32], dst: &mut [f32]) {
    if d == 2 {
        let pairs = (src.len() / 2).min(dst.len());
        for (v, p) in dst[..pairs].iter_mut().zip(src.chunks_exact(2)) {
            *v = p[0];
        }
        for (l, v) in dst.iter_mut().enumerate().skip(pairs) {
            *v = src[2 * l];
        }
    } else {
        for (v, x) in dst.iter_mut().zip(src.iter().step_by(d)) {
            *v = *x;
        }
    }
}

/// Weight gradient through the classes: every weight meets every class, so `gw = Σ_groups gw_k`
/// with each group of same-size classes one stacked undilated problem (input and output
/// gradient gathered as the forward gathers its input), summed in group order. `gw` (Cout,
/// Cin/g, kh, kw) is overwritten. Requires [`applies`]; `auto` takes it where [`weight_wins`].
pub fn backward_weight(s: &ConvShape, x: &[f32], gy: &[f32], gw: &mut [f32]) -> Result<()> {
    assert!(
        applies(s),
        "dilated::backward_weight on a shape it does not support"
    );
    let [_, ah, aw] = &s.window.axes;
    let d = aw.dilation;
    let mut part = vec![0.0; gw.len()];
    for (i, group) in class_groups(s).iter().enumerate() {
        let mut stacked = s.clone();
        stacked.batch = s.batch * group.len();
        let ps = class_problem(&stacked, group[0].0, group[0].1)?;
        let dst = if i == 0 { &mut *gw } else { &mut part };
        let (xe, ge) = ([ah.input, aw.input], [ah.output, aw.output]);
        gather(x, s.batch * s.cin, xe, d, group, false, &GATHER_X, |xc| {
            gather(gy, s.batch * s.cout, ge, d, group, true, &GATHER_G, |gc| {
                super::backward::backward_weight_slices(&ps, ConvAlgo::Auto, xc, gc, dst)
            })
        })?;
        if i > 0 {
            gw.iter_mut().zip(&part).for_each(|(g, p)| *g += p);
        }
    }
    Ok(())
}

/// One group of same-size classes: gather, one stacked undilated problem, scatter.
fn run_group(
    s: &ConvShape,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    group: &[(AxisClass, AxisClass)],
    y: &mut [MaybeUninit<f32>],
) -> Result<()> {
    let [_, ah, aw] = &s.window.axes;
    let d = aw.dilation;
    let (h0, w0) = group[0];
    let mut stacked = s.clone();
    stacked.batch = s.batch * group.len();
    let ps = class_problem(&stacked, h0, w0)?;
    let len = ps.batch * ps.cout * ps.window.out_len();
    // gather: image (k·N + n) of the stack is class k of image n,
    // x_k[n, c, j, l] = x[n, c, h.0 + d·j, wc.0 + d·l]; the stack's output into a reused
    // buffer (a fresh one costs its page faults on every call)
    let xe = [ah.input, aw.input];
    gather(x, s.batch * s.cin, xe, d, group, false, &GATHER_X, |xc| {
        scratch::with(&CLASS_Y, len, |yc| {
            forward_uninit(&ps, ConvAlgo::Auto, xc, w, bias, as_uninit(yc))?;
            scatter(s, group, yc, y);
            Ok(())
        })
    })
}

/// `y[n, oc, h.0 + d·i, wc.0 + d·l] = y_k[n, oc, i, l]` for the classes `group` (class k's
/// planes stacked k-major in `yc`), output planes in parallel. At `d = 2`, when a row's two
/// column classes are both in the group, the two class rows are interleaved in one loop
/// (it vectorises; a stride-2 store does not).
fn scatter(
    s: &ConvShape,
    group: &[(AxisClass, AxisClass)],
    yc: &[f32],
    y: &mut [MaybeUninit<f32>],
) {
    let [_, ah, aw] = &s.window.axes;
    let d = aw.dilation;
    let (h0, w0) = group[0];
    let (out_plane, class_plane, cols) = (ah.output * aw.output, h0.2 * w0.2, w0.2);
    let out_planes = s.batch * s.cout;
    y.par_chunks_mut(out_plane)
        .enumerate()
        .for_each(|(q, dst)| {
            let class_row =
                |k: usize, i: usize| &yc[(k * out_planes + q) * class_plane + i * cols..][..cols];
            wide(|| {
                for (k, &(h, wc)) in group.iter().enumerate() {
                    // the partner class: same rows, the other column class (d = 2 only)
                    let partner = (d == 2)
                        .then(|| {
                            group
                                .iter()
                                .position(|&(h2, w2)| h2.0 == h.0 && w2.0 == 1 - wc.0)
                        })
                        .flatten();
                    if partner.is_some() && wc.0 == 1 {
                        continue; // written with its partner
                    }
                    for i in 0..h.2 {
                        let dr = &mut dst[(h.0 + d * i) * aw.output..][..aw.output];
                        match partner {
                            Some(k1) => {
                                let (a, b) = (class_row(k, i), class_row(k1, i));
                                for ((p, &u), &v) in dr.chunks_exact_mut(2).zip(a).zip(b) {
                                    p[0].write(u);
                                    p[1].write(v);
                                }
                            }
                            None => {
                                for (l, &v) in class_row(k, i).iter().enumerate() {
                                    dr[wc.0 + d * l].write(v);
                                }
                            }
                        }
                    }
                }
            })
        });
}
