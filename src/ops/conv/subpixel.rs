//! The input gradient of a strided convolution without col2im: the sub-pixel decomposition into
//! `s_d·s_h·s_w` stride-1 problems, each solved by the adjoint forward kernels.
//!
//! Per axis (dilation 1), input `i` receives `gx[i] = Σ gy[o]·w[t]` over `o·s + t - pb = i`. The
//! inputs of one phase `φ = (i + pb) mod s` are `i = s·u + φ - pb`, and they meet only the taps
//! `t = φ + j·s` (`j = 0..k_φ`), at `o = u - j`. So with `x_φ[v] = x[s·(u₀ + v) + φ - pb]` (`u₀`
//! the first `u` inside the input) and the sub-kernel `w_φ[j] = w[φ + j·s]`, phase `φ` is the
//! input gradient of the stride-1 convolution `y[o] = Σ_j x_φ[o + j - u₀]·w_φ[j]` (padding
//! `u₀` before, whatever makes the output length `O` after): the same `gy`, a kernel of about
//! `k/s` taps, no zeros inserted. Every phase runs as its adjoint forward problem
//! ([`adjoint_problem`], so on the direct kernels `auto` picks for it) with the flipped
//! sub-kernel gathered straight from `w`, the phases side by side, and its values are written to
//! their strided places in `gx`. The multiplies are exactly those of the direct scatter; inputs that no window reads
//! (a phase without taps, trailing inputs floor mode drops) get 0.

use super::backward::{adjoint_problem, adjoint_weight_taps, backward_input_uninit};
use super::{forward_uninit, ConvAlgo, ConvParams, ConvShape};
use crate::error::Result;
use crate::geometry::{PaddingMode, PaddingSpec};
use crate::ops::scratch;
use crate::ops::uninit::as_uninit;
use rayon::prelude::*;
use std::cell::RefCell;
use std::mem::MaybeUninit;

thread_local! {
    /// The phases' input gradients, side by side, on the caller's thread; reused across calls
    /// (fresh ones cost their page faults on every call).
    static PHASES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// A phase's flipped sub-kernel, per thread.
    static SUB_W: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// One phase along one axis (the three axes `[d, h, w]`, leading singleton ones included).
#[derive(Clone, Copy, Debug)]
struct AxisPhase {
    /// The phase `φ`: the first tap.
    phi: usize,
    /// Taps of the sub-kernel.
    k: usize,
    /// First `u` inside the input (the sub-problem's begin padding).
    u0: usize,
    /// Inputs of this phase some window reads.
    n: usize,
    /// The sub-problem's end padding.
    pe: usize,
}

/// The `s` phases of axis `a` of `s` (a phase may have no taps or no inputs).
fn axis_phases(s: &ConvShape, a: usize) -> Vec<AxisPhase> {
    let ax = &s.window.axes[a];
    let (i, k, st, pb, o) = (ax.input, ax.kernel, ax.stride, ax.pad_begin, ax.output);
    (0..st)
        .map(|phi| {
            let kp = if phi < k { (k - 1 - phi) / st + 1 } else { 0 };
            let u0 = if pb > phi { (pb - phi).div_ceil(st) } else { 0 };
            let u_end = (i + pb).saturating_sub(phi).div_ceil(st);
            // the sub-problem reads u0 + v for v < o + kp - 1 - u0 (its padded length)
            let reach = (o + kp).saturating_sub(1);
            let n = u_end.min(reach).saturating_sub(u0);
            let pe = reach.saturating_sub(u0 + n);
            AxisPhase {
                phi,
                k: kp,
                u0,
                n,
                pe,
            }
        })
        .collect()
}

/// Whether the decomposition applies: zero padding, dilation 1, some stride above 1.
pub fn applies(s: &ConvShape) -> bool {
    let axes = s.window.real_axes();
    s.mode == PaddingMode::Zeros
        && axes.iter().all(|a| a.dilation == 1)
        && axes.iter().any(|a| a.stride > 1)
}

/// The input gradient `gx: (N, Cin, D, H, W)` (overwritten) from `gy: (N, Cout, od, oh, ow)`
/// and `w` as the forward used it; requires [`applies`].
pub fn backward_input(
    s: &ConvShape,
    gy: &[f32],
    w: &[f32],
    gx: &mut [MaybeUninit<f32>],
) -> Result<()> {
    let phases: [Vec<AxisPhase>; 3] = std::array::from_fn(|a| axis_phases(s, a));
    let mut list = Vec::new();
    for pd in &phases[0] {
        for ph in &phases[1] {
            for pw in &phases[2] {
                // a phase without taps or without inputs read: those gradients stay 0
                if [pd, ph, pw].iter().all(|q| q.k > 0 && q.n > 0) {
                    list.push([*pd, *ph, *pw]);
                }
            }
        }
    }
    // the phases are small problems: solve them side by side, then place them plane by plane
    let lens: Vec<usize> = list.iter().map(|p| s.batch * s.cin * sub_len(p)).collect();
    scratch::with(&PHASES, lens.iter().sum(), |buf| {
        let mut parts: Vec<&mut [f32]> = Vec::with_capacity(list.len());
        let mut rest = buf;
        for &len in &lens {
            let (part, tail) = rest.split_at_mut(len);
            parts.push(part);
            rest = tail;
        }
        list.par_iter()
            .zip(parts.par_iter_mut())
            .try_for_each(|(p, part)| solve(s, p, gy, w, as_uninit(part)))?;
        let in_len = s.window.in_len();
        let placements = placements(s, &list);
        gx.par_chunks_mut(in_len)
            .enumerate()
            .for_each(|(plane, dst)| {
                // inputs of phases without taps, and inputs no window reads, stay 0 (the plane
                // is in cache: zeroing it here costs no pass over memory)
                let dst = crate::ops::uninit::zeroed(dst);
                let src = |i: usize| &parts[i][plane * sub_len(&list[i])..][..sub_len(&list[i])];
                for pl in &placements {
                    match *pl {
                        Placement::One(i) => place(s, &list[i], src(i), dst),
                        Placement::Pair(even, odd) => {
                            place_pair(s, &list[even], src(even), src(odd), dst)
                        }
                    }
                }
            });
        Ok(())
    })
}

/// How the phases' planes go into the input gradient: one at a time (strided stores), or two
/// width phases at once whose columns interleave to fill every row.
enum Placement {
    One(usize),
    /// (the phase of the even columns, the phase of the odd columns)
    Pair(usize, usize),
}

/// The placements of `list`: at width stride 2, two phases with the same depth and height
/// phases whose columns start at 0 and 1 and fill the row (`2·n = W`) become one pair, written
/// by an interleaving loop that vectorises (a stride-2 store does not).
fn placements(s: &ConvShape, list: &[[AxisPhase; 3]]) -> Vec<Placement> {
    let aw = &s.window.axes[2];
    let first_col = |p: &[AxisPhase; 3]| (aw.stride * p[2].u0 + p[2].phi).checked_sub(aw.pad_begin);
    let mut used = vec![false; list.len()];
    let mut out = Vec::new();
    for i in 0..list.len() {
        if used[i] {
            continue;
        }
        used[i] = true;
        let partner = (aw.stride == 2 && 2 * list[i][2].n == aw.input)
            .then(|| {
                (0..list.len()).find(|&j| {
                    !used[j]
                        && list[j][0].phi == list[i][0].phi
                        && list[j][1].phi == list[i][1].phi
                        && list[j][2].n == list[i][2].n
                        && matches!(
                            (first_col(&list[i]), first_col(&list[j])),
                            (Some(0), Some(1)) | (Some(1), Some(0))
                        )
                })
            })
            .flatten();
        match partner {
            Some(j) => {
                used[j] = true;
                if first_col(&list[i]) == Some(0) {
                    out.push(Placement::Pair(i, j));
                } else {
                    out.push(Placement::Pair(j, i));
                }
            }
            None => out.push(Placement::One(i)),
        }
    }
    out
}

/// [`place`] for a [`Placement::Pair`]: the rows of `even` (columns 0, 2, …) and `odd`
/// (columns 1, 3, …), which share their depth and height phases, interleaved into `dst`.
fn place_pair(s: &ConvShape, p: &[AxisPhase; 3], even: &[f32], odd: &[f32], dst: &mut [f32]) {
    let ax = &s.window.axes;
    let at = |a: usize, v: usize| ax[a].stride * (p[a].u0 + v) + p[a].phi - ax[a].pad_begin;
    let n = p[2].n;
    let rows = even.chunks_exact(n).zip(odd.chunks_exact(n));
    let mut rows = rows;
    for vd in 0..p[0].n {
        for vh in 0..p[1].n {
            let (e, o) = rows.next().expect("phase size");
            let row = (at(0, vd) * ax[1].input + at(1, vh)) * ax[2].input;
            let dr = &mut dst[row..][..2 * n];
            for ((d, &u), &v) in dr.chunks_exact_mut(2).zip(e).zip(o) {
                d[0] = u;
                d[1] = v;
            }
        }
    }
}

/// Values per plane of a phase's sub-problem.
fn sub_len(p: &[AxisPhase; 3]) -> usize {
    p[0].n * p[1].n * p[2].n
}

/// Writes one plane of a phase's input gradient to its strided places in the plane `dst`:
/// `(vd, vh, vw)` → `s·(u0 + v) + φ - pb` per axis.
fn place(s: &ConvShape, p: &[AxisPhase; 3], src: &[f32], dst: &mut [f32]) {
    let ax = &s.window.axes;
    let at = |a: usize, v: usize| ax[a].stride * (p[a].u0 + v) + p[a].phi - ax[a].pad_begin;
    let mut src = src.iter();
    for vd in 0..p[0].n {
        for vh in 0..p[1].n {
            let row = (at(0, vd) * ax[1].input + at(1, vh)) * ax[2].input;
            for vw in 0..p[2].n {
                dst[row + at(2, vw)] = *src.next().expect("phase size");
            }
        }
    }
}

/// Solves one phase combination: its input gradient `(N, Cin, n_d, n_h, n_w)` into `out`
/// (every value written). The phase is the input gradient of a stride-1 problem with the
/// sub-kernel `w_φ[.., jd, jh, jw] = w[.., φd + jd·sd, φh + jh·sh, φw + jw·sw]`, so the adjoint
/// forward problem with that sub-kernel flipped and its channels swapped; the flipped
/// sub-kernel is gathered from `w` in one parallel pass (not cut out, then flipped).
fn solve(
    s: &ConvShape,
    p: &[AxisPhase; 3],
    gy: &[f32],
    w: &[f32],
    out: &mut [MaybeUninit<f32>],
) -> Result<()> {
    let (cin_g, taps, nd) = (s.cin_g(), s.window.taps(), s.window.nd);
    let ks: [usize; 3] = std::array::from_fn(|a| s.window.axes[a].kernel);
    let st: [usize; 3] = std::array::from_fn(|a| s.window.axes[a].stride);
    // the kernel tap of each sub-kernel tap (jd, jh, jw), in the sub-kernel's order
    let mut tap_of = Vec::with_capacity(p[0].k * p[1].k * p[2].k);
    for jd in 0..p[0].k {
        for jh in 0..p[1].k {
            for jw in 0..p[2].k {
                let (td, th, tw) = (
                    p[0].phi + jd * st[0],
                    p[1].phi + jh * st[1],
                    p[2].phi + jw * st[2],
                );
                tap_of.push((td * ks[1] + th) * ks[2] + tw);
            }
        }
    }
    let sub_taps = tap_of.len();
    let mut x_shape = vec![s.batch, s.cin];
    x_shape.extend(p[3 - nd..].iter().map(|q| q.n));
    let mut w_shape = vec![s.cout, cin_g];
    w_shape.extend(p[3 - nd..].iter().map(|q| q.k));
    let params = ConvParams {
        stride: vec![1],
        padding: PaddingSpec::Explicit(p[3 - nd..].iter().map(|q| (q.u0, q.pe)).collect()),
        dilation: vec![1],
        groups: s.groups,
        padding_mode: PaddingMode::Zeros,
        flip: false,
    };
    let t = ConvShape::new(&x_shape, &w_shape, None, &params)?;
    debug_assert_eq!(
        t.window.out_len(),
        s.window.out_len(),
        "phase output length"
    );
    scratch::with(&SUB_W, s.cout * cin_g * sub_taps, |wp| {
        let Some(adj) = adjoint_problem(&t) else {
            // the sub-kernel as it is, for the algorithm's own input-gradient form
            for (f, dst) in w.chunks_exact(taps).zip(wp.chunks_exact_mut(sub_taps)) {
                for (d, &tap) in dst.iter_mut().zip(&tap_of) {
                    *d = f[tap];
                }
            }
            return backward_input_uninit(&t, ConvAlgo::Auto, gy, wp, out);
        };
        adjoint_weight_taps(s, w, &tap_of, wp);
        forward_uninit(&adj, ConvAlgo::Auto, gy, wp, None, out)
    })
}
