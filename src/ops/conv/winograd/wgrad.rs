//! The weight gradient of the 2-D path, F(4×4, 3×3) run backwards: 36 products of Cout × Cin
//! summed over every tile instead of 9 correlations summed over every output (≈ 4× fewer
//! multiplies).
//!
//! The forward computes, per output tile (4×4) and output channel,
//! `Y = Aᵀ [Σ_ci U[co, ci] ⊙ V[ci]] A` with `U = G w Gᵀ`, `V = Bᵀ d B` (6×6, d the 6×6 input
//! patch, zeros outside the image). It is linear in `U`, so with `dM = A dY Aᵀ` (6×6, dY the
//! output gradient's tile, zeros outside the output) at each of the 36 positions p:
//!
//! ```text
//!   dU[p][co, ci] = Σ_{n, tiles} dM[p][co, tile] · V[p][ci, tile]      (Cout × Cin per p)
//!   dW[co, ci]    = Gᵀ dU[co, ci] G                                    (6×6 → 3×3)
//! ```
//!
//! Steps, channels in the vector lanes ([`wgrad_lanes`]):
//! 1. the input and the output gradient are copied channels-last, `(N, H, W, groups, cg)` with
//!    the channels per group rounded up to 16 (`cg`, `og`), so one tile's 6×6 patch of 16
//!    channels is 36 vector loads;
//! 2. per run of `chunk` tiles (sized so its transforms stay in the caches): the transforms
//!    `V: (chunk, 36, groups·cg)` and `dM: (chunk, 36, groups·og)`, tiles in parallel;
//! 3. `dU: (groups, 36, Cout/g, cg) += Σ_t dM[t] ⊗ V[t]` for the run, one (group, position)
//!    per task;
//! 4. `dW = Gᵀ dU G`.
//!
//! Order of the sums: each `dU` value is owned by one task and summed over the tiles in order,
//! per run in registers and then run after run, so the result does not depend on the thread
//! count. Those blocked sums also keep the rounding error of the long reductions (every tile
//! of every image) small (tests/conv_winograd.rs).

use super::transform::{self, Lanes16, Vector};
use super::wgrad_lanes::{self as wl, W};
use crate::ops::conv::ConvShape;
use crate::ops::scratch;
use rayon::prelude::*;
use std::cell::RefCell;

thread_local! {
    /// The channels-last copies, the transforms of one run, and dU, reused across calls.
    static COPIES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static RUN: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static DU: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Transformed positions per tile (6 × 6).
const P: usize = 36;

/// Bytes of `V` and `dM` per run of tiles: about the L2 cache of a core.
const RUN_BYTES: usize = 2 << 20;

/// The geometry of one problem.
struct Plan<'a> {
    s: &'a ConvShape,
    /// Input and output extents (H, W), (OH, OW), padding before (top, left).
    hw: [usize; 2],
    ohw: [usize; 2],
    pad: [usize; 2],
    /// Tiles per column and row, and in all.
    th: usize,
    tw: usize,
    tiles: usize,
    /// Input and output channels per group rounded up to 16, and per pixel (all groups).
    cg: usize,
    og: usize,
    cp: usize,
    op: usize,
    /// Tiles per run.
    chunk: usize,
}

impl<'a> Plan<'a> {
    fn new(s: &'a ConvShape) -> Self {
        let [_, ah, aw] = &s.window.axes;
        let (th, tw) = (ah.output.div_ceil(4), aw.output.div_ceil(4));
        let (cg, og) = (s.cin_g().next_multiple_of(W), s.cout_g().next_multiple_of(W));
        let (cp, op) = (s.groups * cg, s.groups * og);
        let tiles = s.batch * th * tw;
        let per_tile = P * (cp + op) * 4;
        let chunk = std::env::var("STRIDE_WG_RUN")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(RUN_BYTES)
            .div_ceil(per_tile)
            .max(16)
            .min(tiles.max(1));
        Plan {
            s,
            hw: [ah.input, aw.input],
            ohw: [ah.output, aw.output],
            pad: [ah.pad_begin, aw.pad_begin],
            th,
            tw,
            tiles,
            cg,
            og,
            cp,
            op,
            chunk,
        }
    }

    /// Image, tile row and tile column of tile `t`.
    fn tile(&self, t: usize) -> [usize; 3] {
        let (n, r) = (t / (self.th * self.tw), t % (self.th * self.tw));
        [n, r / self.tw, r % self.tw]
    }
}

/// Whether the weight gradient applies: where the 2-D forward does ([`super::plane::applies`]).
pub fn applies(s: &ConvShape) -> bool {
    super::plane::applies(s)
}

/// Weight gradient. `x`: (N, Cin, H, W), `gy`: (N, Cout, OH, OW), `gw`: (Cout, Cin/g, 3, 3),
/// overwritten. Requires [`applies`].
pub fn backward_weight(s: &ConvShape, x: &[f32], gy: &[f32], gw: &mut [f32]) {
    assert!(
        applies(s),
        "winograd::wgrad::backward_weight on a shape it does not support"
    );
    let pl = Plan::new(s);
    let ([h, w], [oh, ow]) = (pl.hw, pl.ohw);
    let (xl, gl) = (s.batch * h * w * pl.cp, s.batch * oh * ow * pl.op);
    let (vl, ml) = (pl.chunk * P * pl.cp, pl.chunk * P * pl.op + wl::SPARE);
    let dul = s.groups * P * s.cout_g() * pl.cg;
    let simd = crate::ops::simd::avx512();
    scratch::with(&COPIES, xl + gl, |copies| {
        let (xc, gc) = copies.split_at_mut(xl);
        wl::channels_last(x, s.groups, s.cin_g(), pl.cg, h * w, xc);
        wl::channels_last(gy, s.groups, s.cout_g(), pl.og, oh * ow, gc);
        scratch::with(&DU, dul, |du| {
            du.fill(0.0);
            scratch::with(&RUN, vl + ml, |buf| {
                let (v, dm) = buf.split_at_mut(vl);
                // the spare values past the last row are read, never used
                dm[ml - wl::SPARE..].fill(0.0);
                for t0 in (0..pl.tiles).step_by(pl.chunk) {
                    let nt = pl.chunk.min(pl.tiles - t0);
                    transform_run(&pl, simd, xc, gc, t0, nt, v, dm);
                    accumulate_run(&pl, simd, v, dm, nt, du);
                }
            });
            finish(&pl, du, gw);
        });
    });
}

/// Step 2: `V` and `dM` of tiles `t0..t0 + nt`, tiles in parallel.
#[allow(clippy::too_many_arguments)]
fn transform_run(
    pl: &Plan,
    simd: bool,
    xc: &[f32],
    gc: &[f32],
    t0: usize,
    nt: usize,
    v: &mut [f32],
    dm: &mut [f32],
) {
    v[..nt * P * pl.cp]
        .par_chunks_mut(P * pl.cp)
        .zip(dm[..nt * P * pl.op].par_chunks_mut(P * pl.op))
        .enumerate()
        .with_min_len(4)
        .for_each(|(i, (vt, mt))| {
            #[cfg(target_arch = "x86_64")]
            if simd {
                // SAFETY: the CPU supports AVX-512 (`simd::avx512`).
                return unsafe { tile_avx512(pl, xc, gc, t0 + i, vt, mt) };
            }
            let _ = simd;
            tile::<Lanes16>(pl, xc, gc, t0 + i, vt, mt)
        });
}

/// [`tile`] compiled for AVX-512.
///
/// # Safety
/// The CPU must support AVX-512F (callers check [`crate::ops::simd::avx512`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
unsafe fn tile_avx512(pl: &Plan, xc: &[f32], gc: &[f32], t: usize, vt: &mut [f32], mt: &mut [f32]) {
    tile::<super::lanes::Zmm>(pl, xc, gc, t, vt, mt)
}

/// Tile `t`: `vt[p·cp + c] = (Bᵀ d B)[p]` of input channel slot c (`d` its 6×6 patch) and
/// `mt[p·op + c] = (A dY Aᵀ)[p]` of output channel slot c (`dY` its 4×4 output gradient), 16
/// channels per vector.
#[inline(always)]
fn tile<T: Vector>(pl: &Plan, xc: &[f32], gc: &[f32], t: usize, vt: &mut [f32], mt: &mut [f32]) {
    let [n, ty, tx] = pl.tile(t);
    let ([h, w], [oh, ow]) = (pl.hw, pl.ohw);
    // pixel offsets of the patch rows and columns inside the image (None outside)
    let at = |o: usize, pad: usize, len: usize, i: usize| {
        (o + i).checked_sub(pad).filter(|&v| v < len)
    };
    let rows: [Option<usize>; 6] = std::array::from_fn(|r| {
        at(4 * ty, pl.pad[0], h, r).map(|y| (n * h + y) * w)
    });
    let cols: [Option<usize>; 6] = std::array::from_fn(|j| at(4 * tx, pl.pad[1], w, j));
    let zero = T::splat(0.0);
    let load = |src: &[f32], i: usize| T::load(src[i..][..W].try_into().unwrap());
    for c in (0..pl.cp).step_by(W) {
        // along the width: e[r] = Bᵀ d[r]; then along the height
        let e: [[T; 6]; 6] = std::array::from_fn(|r| {
            transform::input(std::array::from_fn(|j| match (rows[r], cols[j]) {
                (Some(y), Some(x)) => load(xc, (y + x) * pl.cp + c),
                _ => zero,
            }))
        });
        for k2 in 0..6 {
            let col = transform::input(std::array::from_fn(|r| e[r][k2]));
            for (k1, v) in col.iter().enumerate() {
                v.store((&mut vt[(6 * k1 + k2) * pl.cp + c..][..W]).try_into().unwrap());
            }
        }
    }
    let rows: [Option<usize>; 4] = std::array::from_fn(|i| {
        Some(4 * ty + i)
            .filter(|&y| y < oh)
            .map(|y| (n * oh + y) * ow)
    });
    let cols: [Option<usize>; 4] = std::array::from_fn(|j| Some(4 * tx + j).filter(|&x| x < ow));
    for c in (0..pl.op).step_by(W) {
        // along the width: f[i] = A dY[i]; then along the height
        let f: [[T; 6]; 4] = std::array::from_fn(|i| {
            transform::output_adjoint(std::array::from_fn(|j| match (rows[i], cols[j]) {
                (Some(y), Some(x)) => load(gc, (y + x) * pl.op + c),
                _ => zero,
            }))
        });
        for k2 in 0..6 {
            let col = transform::output_adjoint(std::array::from_fn(|i| f[i][k2]));
            for (k1, m) in col.iter().enumerate() {
                m.store((&mut mt[(6 * k1 + k2) * pl.op + c..][..W]).try_into().unwrap());
            }
        }
    }
}

/// Step 3: `dU[g][p] += Σ_t dM[t][p][g] ⊗ V[t][p][g]` over the run's `nt` tiles, one (group,
/// position) per task.
fn accumulate_run(pl: &Plan, simd: bool, v: &[f32], dm: &[f32], nt: usize, du: &mut [f32]) {
    let (cout_g, cg) = (pl.s.cout_g(), pl.cg);
    du.par_chunks_mut(cout_g * cg)
        .enumerate()
        .for_each(|(gp, dup)| {
            let (g, p) = (gp / P, gp % P);
            let vp = &v[p * pl.cp + g * cg..];
            let mp = &dm[p * pl.op + g * pl.og..];
            let (vs, ms) = (P * pl.cp, P * pl.op);
            #[cfg(target_arch = "x86_64")]
            if simd {
                // SAFETY: the CPU supports AVX-512 (`simd::avx512`).
                return unsafe { accumulate_avx512(mp, ms, vp, vs, nt, dup, cout_g, cg) };
            }
            let _ = simd;
            wl::accumulate::<false>(mp, ms, vp, vs, nt, dup, cout_g, cg)
        });
}

/// [`wl::accumulate`] compiled for AVX-512.
///
/// # Safety
/// The CPU must support AVX-512F (callers check [`crate::ops::simd::avx512`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn accumulate_avx512(
    dm: &[f32],
    dms: usize,
    v: &[f32],
    vs: usize,
    tiles: usize,
    du: &mut [f32],
    rows: usize,
    cg: usize,
) {
    wl::accumulate::<true>(dm, dms, v, vs, tiles, du, rows, cg)
}

/// Step 4: `gw[oc, ci] = Gᵀ dU[g][·][co, ci] G` (36 values → 3×3), output channels in parallel.
fn finish(pl: &Plan, du: &[f32], gw: &mut [f32]) {
    let (cin_g, cout_g, cg) = (pl.s.cin_g(), pl.s.cout_g(), pl.cg);
    assert_eq!(gw.len(), pl.s.cout * cin_g * 9);
    gw.par_chunks_mut(cin_g * 9)
        .enumerate()
        .for_each(|(oc, row)| {
            let (g, co) = (oc / cout_g, oc % cout_g);
            for (ci, taps) in row.chunks_exact_mut(9).enumerate() {
                let u = std::array::from_fn(|p| du[((g * P + p) * cout_g + co) * cg + ci]);
                let k = transform::kernel_2d_adjoint::<f32>(u);
                for (t, v) in taps.iter_mut().enumerate() {
                    *v = k[t / 3][t % 3];
                }
            }
        });
}
