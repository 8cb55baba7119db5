//! The weight gradient of the fast path, F(4×4, 3×3) (and F(4, 3) in 1-D) run backwards: 36 products of Cout × Cin
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
//! Steps, channels in the vector lanes (`wgrad_lanes`), per run of whole tile rows (sized so
//! that its transforms stay near the L2 cache but hold at least dU's size, `wgrad_runs`):
//! 1. the run's input rows and output-gradient rows are copied channels-last and zero-padded,
//!    `(rows, columns, groups·cg)` with the channels per group rounded up to 16 (`cg`, `og`),
//!    so one tile's 6×6 patch of 16 channels is 36 vector loads and no branch;
//! 2. the transforms `V: (36, run tiles, groups·cg)` and `dM: (36, run tiles, groups·og)`,
//!    tiles in parallel (`wgrad_tiles`);
//! 3. `dU: (groups, 36, Cout/g, cg) (+)= Σ_t dM[p][t] ⊗ V[p][t]` over the run's tiles, one
//!    (group, position) per task, register blocks of 6 output × 64 input channels;
//! 4. after the last run, `dW = Gᵀ dU G`.
//!
//! Threads: while dU is small (the copies of all parts ≤ 8 MiB), the runs are cut into up to 4
//! parts of consecutive runs, each part's steps run on one thread into its own dU, and the
//! parts' dU are added in order before step 4; a bigger dU is summed by all threads, each
//! step of each run in parallel.
//!
//! Measured (1 thread, a loaded machine, `stride bench conv --threads 1`): r3x3-64 ≈ 10 ms
//! against the channel-lanes correlation's 18, r3x3-256 ≈ 11 against 15; its error ≤ 3e-6 of
//! max |dW| on 64 and 256 channels with every tile of 56×56 images summed.
//!
//! 1-D problems: F(4, 3) the same way, 1×4 tiles, 1×6 patches, 6 positions (2× fewer
//! multiplies), `dW = Gᵀ dU`.
//!
//! 3-D problems (3×3×3): the 2-D tiles of every (image, output depth slice) pair, and per
//! depth tap kd its own `dU[kd]` from the input slices `od + kd − pad_front` (each run's `dM`
//! is transformed once, its `V` once per depth tap): 4× fewer multiplies than the direct
//! correlation, as in the forward.
//!
//! Order of the sums: each `dU` value is owned by one task and summed over the tiles in order,
//! per run in registers and then run after run (and part after part: the cut into parts
//! depends only on the problem), so the result does not depend on the thread count. Those blocked sums also keep the rounding error of the long reductions (every tile
//! of every image) small (tests/conv_winograd.rs).

use super::transform::{self, Lanes16, Vector};
use super::wgrad_lanes::{self as wl, W};
use super::wgrad_runs::{copy_rows, Run, Slices};
use super::wgrad_tiles::{load, transform_run};
use crate::ops::conv::ConvShape;
use crate::ops::scratch;
use rayon::prelude::*;
use std::cell::RefCell;

thread_local! {
    /// One run's copies and transforms, and dU, reused across calls.
    static RUN: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static DU: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Transformed positions per tile in the plane (6 × 6); a line has 6.
pub(super) const P: usize = 36;

/// Bytes of `V` and `dM` per run of tiles: about the L2 cache of a core.
const RUN_BYTES: usize = 512 << 10;

/// Most bytes of `V` and `dM` per run, however big dU (36·Cin·Cout/g values) grows with the
/// channels (`--algo winograd` on 1024 channels: dU is 151 MB).
const RUN_BYTES_MAX: usize = 32 << 20;

/// The geometry of one problem.
pub(super) struct Plan<'a> {
    pub(super) s: &'a ConvShape,
    /// 1-D (F(4, 3): 1×4 tiles, 1×6 patches, 6 positions) rather than the plane.
    pub(super) line: bool,
    /// Transformed positions per tile (36, or 6 on a line); tile and patch rows (4 and 6, or
    /// 1 and 1).
    pub(super) p: usize,
    pub(super) tile_h: usize,
    pub(super) patch_h: usize,
    /// Input and output extents (H, W), (OH, OW), padding before (top, left).
    pub(super) hw: [usize; 2],
    pub(super) ohw: [usize; 2],
    pub(super) pad: [usize; 2],
    /// Depth: input and output extents, padding before, taps (KD: 3 in 3-D, else 1).
    pub(super) id: usize,
    pub(super) od: usize,
    pub(super) pad_d: usize,
    pub(super) kd: usize,
    /// Tiles per column and row, and tile rows in all (N·OD·th).
    pub(super) th: usize,
    pub(super) tw: usize,
    pub(super) rows: usize,
    /// Input and output channels per group rounded up to 16, and per pixel (all groups).
    pub(super) cg: usize,
    pub(super) og: usize,
    pub(super) cp: usize,
    pub(super) op: usize,
    /// Row strides of `V` and `dM`: cp and op, plus 16 from 128 on, so that a column block
    /// of rows 4 KiB apart does not fall into a quarter of the L1 cache's sets.
    pub(super) vs: usize,
    pub(super) ms: usize,
    /// Tile rows per run, and tiles per full run.
    pub(super) run_rows: usize,
    pub(super) run_tiles: usize,
}

impl<'a> Plan<'a> {
    fn new(s: &'a ConvShape) -> Self {
        let [ad, ah, aw] = &s.window.axes;
        let (th, tw) = (ah.output.div_ceil(4), aw.output.div_ceil(4));
        let (cg, og) = (
            s.cin_g().next_multiple_of(W),
            s.cout_g().next_multiple_of(W),
        );
        let (cp, op) = (s.groups * cg, s.groups * og);
        let pad = |c: usize| if c >= 128 { c + W } else { c };
        let (vs, ms) = (pad(cp), pad(op));
        let rows = s.batch * ad.output * th;
        let line = s.window.nd == 1;
        let p = if line { 6 } else { P };
        let per_tile = p * (vs + ms) * 4;
        // runs hold at least dU's size of transforms, so that reading and writing dU once per
        // run costs no more than the transforms' round trip
        let du_bytes = ad.kernel * s.groups * p * s.cout_g() * cg * 4;
        let bytes = RUN_BYTES.max(du_bytes).min(RUN_BYTES_MAX);
        let least = bytes.div_ceil(per_tile * tw).max(1);
        // as many runs as that allows, of equal sizes
        let run_rows = rows.div_ceil(rows.div_ceil(least)).max(1);
        Plan {
            s,
            line,
            p,
            tile_h: if line { 1 } else { 4 },
            patch_h: if line { 1 } else { 6 },
            hw: [ah.input, aw.input],
            ohw: [ah.output, aw.output],
            pad: [ah.pad_begin, aw.pad_begin],
            id: ad.input,
            od: ad.output,
            pad_d: ad.pad_begin,
            kd: ad.kernel,
            th,
            tw,
            rows,
            cg,
            og,
            cp,
            op,
            vs,
            ms,
            run_rows,
            run_tiles: run_rows * tw,
        }
    }
}

/// Whether the weight gradient applies: where the forward does ([`super::plane::applies`]).
pub fn applies(s: &ConvShape) -> bool {
    super::plane::applies(s)
}

/// Weight gradient. `x`: (N, Cin, \[D,\] \[H,\] W), `gy`: (N, Cout, \[OD,\] \[OH,\] OW), `gw`: (Cout,
/// Cin/g, \[3,\] \[3,\] 3), overwritten. Requires [`applies`].
pub fn backward_weight(s: &ConvShape, x: &[f32], gy: &[f32], gw: &mut [f32]) {
    assert!(
        applies(s),
        "winograd::wgrad::backward_weight on a shape it does not support"
    );
    // on a pool thread, so that the many parallel steps below start from inside the pool
    // (each started from outside costs a hand-over and the workers' idle spinning: 30% of
    // r3x3-64's CPU time)
    rayon::scope(|_| run_all(s, x, gy, gw))
}

/// Most runs' parts: the runs are cut into up to this many parts of consecutive runs, each
/// summed into its own dU by one thread (its steps sequential), the parts' dU then added in
/// order. The cut depends only on the problem, so the result does not depend on the thread
/// count. (One dU summed by all threads, each run's steps in parallel, scaled badly: its
/// many short parallel steps. 2 threads, the same minutes: conv1d 8.3–10.7 ms against 4.3 in
/// parts, conv3d 5.1–6.0 against 3.0–3.2, r3x3-64 6.9–7.8 against 5.9.)
const PARTS: usize = 4;

/// Most bytes of the parts' dU copies together (beyond them fewer parts, down to one dU
/// summed by all threads run after run): r3x3-256's dU (9.4 MB) in 4 copies ran 7.2–7.6 ms
/// on 2 threads against 5.5–6.8 with one.
const PARTS_BYTES: usize = 8 << 20;

/// [`backward_weight`]'s steps.
fn run_all(s: &ConvShape, x: &[f32], gy: &[f32], gw: &mut [f32]) {
    let pl = Plan::new(s);
    let ([h, w], [oh, ow]) = (pl.hw, pl.ohw);
    assert_eq!(x.len(), s.batch * s.cin * pl.id * h * w);
    assert_eq!(gy.len(), s.batch * s.cout * pl.od * oh * ow);
    // one dU per depth tap
    let dul = pl.kd * s.groups * pl.p * s.cout_g() * pl.cg;
    let simd = crate::ops::simd::avx512();
    let runs: Vec<[usize; 2]> = (0..pl.rows)
        .step_by(pl.run_rows)
        .map(|r0| [r0, (r0 + pl.run_rows).min(pl.rows)])
        .collect();
    let parts = runs.len().min(PARTS).min((PARTS_BYTES / (dul * 4)).max(1));
    if parts <= 1 {
        return scratch::with(&DU, dul, |du| {
            run_part(&pl, simd, x, gy, &runs, du, true);
            finish(&pl, simd, du, gw);
        });
    }
    let per = runs.len().div_ceil(parts);
    let mut dus: Vec<Vec<f32>> = runs
        .par_chunks(per)
        .map(|part| {
            let mut du = vec![0.0; dul];
            run_part(&pl, simd, x, gy, part, &mut du, false);
            du
        })
        .collect();
    let (sum, rest) = dus.split_first_mut().expect("at least one part");
    sum.par_chunks_mut(1 << 14)
        .enumerate()
        .for_each(|(b, chunk)| {
            for other in rest.iter() {
                for (a, v) in chunk.iter_mut().zip(&other[b << 14..]) {
                    *a += *v;
                }
            }
        });
    finish(&pl, simd, sum, gw);
}

/// Steps 1–3 for the `runs` (tile rows r0..r1), summed into `du` (the first run stores). `par`:
/// each step in parallel (else all on this thread, for a part of [`run_all`]).
#[allow(clippy::too_many_arguments)]
fn run_part(
    pl: &Plan,
    simd: bool,
    x: &[f32],
    gy: &[f32],
    runs: &[[usize; 2]],
    du: &mut [f32],
    par: bool,
) {
    let s = pl.s;
    // a run copies 4 rows per tile row and 2 more per image (1 and none on a line)
    let (xw, gw_) = (4 * pl.tw + 2, 4 * pl.tw);
    let halo = pl.patch_h - pl.tile_h;
    let xl = (pl.tile_h * pl.run_rows + halo * (pl.run_rows.div_ceil(pl.th) + 1)) * xw * pl.cp;
    let gl = pl.tile_h * pl.run_rows * gw_ * pl.op;
    let (vl, ml) = (
        pl.run_tiles * pl.p * pl.vs,
        pl.run_tiles * pl.p * pl.ms + wl::SPARE,
    );
    let dul1 = s.groups * pl.p * s.cout_g() * pl.cg;
    scratch::with(&RUN, xl + gl + vl + ml, |buf| {
        let (xr, rest) = buf.split_at_mut(xl);
        let (gr, rest) = rest.split_at_mut(gl);
        let (v, dm) = rest.split_at_mut(vl);
        // the spare values past the last row are read, never used
        dm[ml - wl::SPARE..].fill(0.0);
        for (i, &[r0, r1]) in runs.iter().enumerate() {
            let run = Run::new(pl, r0, r1);
            let [xn, gn] = run.copy_rows();
            let (ci, co) = ([s.groups, s.cin_g(), pl.cg], [s.groups, s.cout_g(), pl.og]);
            let slices = |depth, shift| Slices {
                depth,
                planes: pl.od,
                shift,
            };
            let gd = &mut gr[..gn * gw_ * pl.op];
            copy_rows(gy, &run.gs, slices(pl.od, 0), co, pl.ohw, 0, gd, par);
            // per depth tap, the input slices od + kd − pad_front (dM only with the first)
            for kd in 0..pl.kd {
                let shift = kd as isize - pl.pad_d as isize;
                let xd = &mut xr[..xn * xw * pl.cp];
                copy_rows(
                    x,
                    &run.xs,
                    slices(pl.id, shift),
                    ci,
                    pl.hw,
                    pl.pad[1],
                    xd,
                    par,
                );
                transform_run(pl, simd, &run, [xr, gr], v, dm, kd == 0, par);
                let du_kd = &mut du[kd * dul1..][..dul1];
                accumulate_run(pl, simd, [v, dm], run.tiles(pl), du_kd, i > 0, par);
            }
        }
    });
}

/// Step 3: `dU[g][p] (+)= Σ_t dM[t][p][g] ⊗ V[t][p][g]` over the run's `nt` tiles (stored by
/// the first run, added by the others), one (group, position) per task (in parallel if
/// `par`).
fn accumulate_run(
    pl: &Plan,
    simd: bool,
    run: [&[f32]; 2],
    nt: usize,
    du: &mut [f32],
    add: bool,
    par: bool,
) {
    let ([v, dm], cout_g, cg) = (run, pl.s.cout_g(), pl.cg);
    let task = |(gp, dup): (usize, &mut [f32])| {
        let (g, p) = (gp / pl.p, gp % pl.p);
        let a = wl::Operands {
            dm: &dm[p * pl.run_tiles * pl.ms + g * pl.og..],
            dms: pl.ms,
            v: &v[p * pl.run_tiles * pl.vs + g * cg..],
            vs: pl.vs,
            tiles: nt,
        };
        #[cfg(target_arch = "x86_64")]
        if simd {
            // SAFETY: the CPU supports AVX-512 (`simd::avx512`).
            return unsafe { accumulate_avx512(a, dup, cout_g, cg, add) };
        }
        let _ = simd;
        wl::accumulate::<false>(a, dup, cout_g, cg, add)
    };
    if par {
        du.par_chunks_mut(cout_g * cg).enumerate().for_each(task);
    } else {
        du.chunks_mut(cout_g * cg).enumerate().for_each(task);
    }
}

/// [`wl::accumulate`] compiled for AVX-512.
///
/// # Safety
/// The CPU must support AVX-512F (callers check [`crate::ops::simd::avx512`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
unsafe fn accumulate_avx512(a: wl::Operands, du: &mut [f32], rows: usize, cg: usize, add: bool) {
    wl::accumulate::<true>(a, du, rows, cg, add)
}

/// Step 4: `gw[oc, ci, kd] = Gᵀ dU[kd][g][·][co, ci] G` (36 values → 3×3), output channels in
/// parallel, 16 input channels at a time (in the lanes).
fn finish(pl: &Plan, simd: bool, du: &[f32], gw: &mut [f32]) {
    let cin_g = pl.s.cin_g();
    // taps per kernel: KD·9, or 3 on a line
    let taps = if pl.line { 3 } else { pl.kd * 9 };
    assert_eq!(gw.len(), pl.s.cout * cin_g * taps);
    gw.par_chunks_mut(cin_g * taps)
        .enumerate()
        .for_each(|(oc, row)| {
            #[cfg(target_arch = "x86_64")]
            if simd {
                // SAFETY: the CPU supports AVX-512 (`simd::avx512`).
                return unsafe { finish_avx512(pl, du, oc, row) };
            }
            let _ = simd;
            finish_row::<Lanes16>(pl, du, oc, row)
        });
}

/// [`finish_row`] compiled for AVX-512.
///
/// # Safety
/// The CPU must support AVX-512F (callers check [`crate::ops::simd::avx512`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
unsafe fn finish_avx512(pl: &Plan, du: &[f32], oc: usize, row: &mut [f32]) {
    finish_row::<super::lanes::Zmm>(pl, du, oc, row)
}

/// Output channel `oc`'s kernels `row: (Cin/g, KD, 3, 3)` from `dU: (KD, groups, 36, Cout/g,
/// cg)`.
#[inline(always)]
fn finish_row<T: Vector>(pl: &Plan, du: &[f32], oc: usize, row: &mut [f32]) {
    let (cin_g, cout_g, cg) = (pl.s.cin_g(), pl.s.cout_g(), pl.cg);
    let (g, co) = (oc / cout_g, oc % cout_g);
    let dul1 = pl.s.groups * pl.p * cout_g * cg;
    if pl.line {
        // 6 positions → 3 taps, `row: (Cin/g, 3)`
        for c0 in (0..cin_g).step_by(W) {
            let mut u = [T::splat(0.0); 6];
            for (p, up) in u.iter_mut().enumerate() {
                *up = load(du, ((g * 6 + p) * cout_g + co) * cg + c0);
            }
            let mut taps = [[0.0f32; W]; 3];
            for (t, tap) in taps.iter_mut().enumerate() {
                transform::kernel_adjoint(u)[t].store(tap);
            }
            for (l, out) in row[c0 * 3..].chunks_exact_mut(3).take(W).enumerate() {
                for (t, o) in out.iter_mut().enumerate() {
                    *o = taps[t][l];
                }
            }
        }
        return;
    }
    for kd in 0..pl.kd {
        for c0 in (0..cin_g).step_by(W) {
            let mut u = [T::splat(0.0); P];
            for (p, up) in u.iter_mut().enumerate() {
                *up = load(du, kd * dul1 + ((g * P + p) * cout_g + co) * cg + c0);
            }
            let k = transform::kernel_2d_adjoint(u);
            let mut taps = [[0.0f32; W]; 9];
            for (t, tap) in taps.iter_mut().enumerate() {
                k[t / 3][t % 3].store(tap);
            }
            let per_ci = pl.kd * 9;
            for (l, out) in row[c0 * per_ci..]
                .chunks_exact_mut(per_ci)
                .take(W)
                .enumerate()
            {
                for (t, o) in out[kd * 9..][..9].iter_mut().enumerate() {
                    *o = taps[t][l];
                }
            }
        }
    }
}
