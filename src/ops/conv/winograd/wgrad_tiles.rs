//! Step 2 of the Winograd weight gradient ([`super::wgrad`]): the transforms of one run's
//! tiles from its channels-last copies, `V = Bᵀ d B` of the input patches and `dM = A dY Aᵀ`
//! of the output gradient (on a line `Bᵀ d` and `A dY`), 16 channels per vector, tiles in
//! parallel (or in order, for a part of the runs on one thread).

use super::transform::{self, Lanes16, Vector};
use super::wgrad::Plan;
use super::wgrad_lanes::W;
use super::wgrad_runs::Run;
use rayon::prelude::*;

/// Step 2: `V` and (if `with_dm`) `dM` of the run's tiles (run tile i at rows
/// `p·run_tiles + i`) from the copies `xr`, `gr`, tiles in parallel.
#[allow(clippy::too_many_arguments)]
pub(super) fn transform_run(
    pl: &Plan,
    simd: bool,
    run: &Run,
    [xr, gr]: [&[f32]; 2],
    v: &mut [f32],
    dm: &mut [f32],
    with_dm: bool,
    par: bool,
) {
    let out = RunOut {
        v: v.as_mut_ptr(),
        v_len: v.len(),
        m: dm.as_mut_ptr(),
        m_len: dm.len(),
    };
    let job = TileJob {
        pl,
        run,
        xr,
        gr,
        out,
        with_dm,
    };
    let tile = |i| {
        #[cfg(target_arch = "x86_64")]
        if simd {
            // SAFETY: the CPU supports AVX-512 (`simd::avx512`).
            return unsafe { job.tile_avx512(i) };
        }
        let _ = simd;
        job.tile::<Lanes16>(i)
    };
    if par {
        (0..run.tiles(pl))
            .into_par_iter()
            .with_min_len(4)
            .for_each(tile);
    } else {
        (0..run.tiles(pl)).for_each(tile);
    }
}

/// What the tile tasks of one run read and write.
struct TileJob<'a> {
    pl: &'a Plan<'a>,
    run: &'a Run,
    xr: &'a [f32],
    gr: &'a [f32],
    out: RunOut,
    /// Whether to transform the output gradient too (once per run: the depth taps share it).
    with_dm: bool,
}

/// The transforms of one run, shared by the tile tasks, each of which writes only its own
/// rows (`p·chunk + i` for its tile i).
#[derive(Clone, Copy)]
struct RunOut {
    v: *mut f32,
    v_len: usize,
    m: *mut f32,
    m_len: usize,
}
// SAFETY: used only for writes of disjoint rows (see `transform_run`).
unsafe impl Send for RunOut {}
unsafe impl Sync for RunOut {}

/// Writes `x` to `base[at..at + 16]` (`len` values at `base`).
///
/// # Safety
/// `base..base + len` must be valid for writes, and nothing else may access `at..at + 16`
/// meanwhile.
#[inline(always)]
unsafe fn store<T: Vector>(x: T, base: *mut f32, len: usize, at: usize) {
    assert!(at + W <= len);
    x.store(&mut *(base.add(at) as *mut [f32; W]))
}

impl TileJob<'_> {
    /// [`TileJob::tile`] compiled for AVX-512.
    ///
    /// # Safety
    /// The CPU must support AVX-512F (callers check [`crate::ops::simd::avx512`]).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    unsafe fn tile_avx512(&self, i: usize) {
        self.tile::<super::lanes::Zmm>(i)
    }

    /// Run tile i: `V[(p·run_tiles + i)·vs + c] = (Bᵀ d B)[p]` of input channel slot c (`d` its
    /// 6×6 patch) and `dM[(p·run_tiles + i)·ms + c] = (A dY Aᵀ)[p]` of output channel slot c
    /// (`dY` its 4×4 output gradient), 16 channels per vector. (Plain loops, no closures around
    /// the vector arithmetic: a closure does not inherit the caller's target features, so its
    /// intrinsics would not be inlined.)
    #[inline(always)]
    #[allow(clippy::needless_range_loop)]
    fn tile<T: Vector>(&self, i: usize) {
        let (pl, run, out) = (self.pl, self.run, self.out);
        let (r, tx) = (run.r0 + i / pl.tw, i % pl.tw);
        let (n, ty) = (r / pl.th, r % pl.th);
        let (xs, gs) = (run.xs[n - run.xs[0].n], run.gs[n - run.gs[0].n]);
        // the patch's first value (row 4ty − pad, column 4tx − pad) and the rows of the copy
        let (xw, gw) = (4 * pl.tw + 2, 4 * pl.tw);
        let x0 = ((xs.at + pl.tile_h * (ty - xs.a)) * xw + 4 * tx) * pl.cp;
        let g0 = ((gs.at + pl.tile_h * (ty - gs.a)) * gw + 4 * tx) * pl.op;
        if pl.line {
            return self.line_tile::<T>(i, x0, g0);
        }
        for c in (0..pl.cp).step_by(W) {
            // along the width: e[r] = Bᵀ d[r]; then along the height
            let mut e = [[T::splat(0.0); 6]; 6];
            for (r, er) in e.iter_mut().enumerate() {
                let mut d = [T::splat(0.0); 6];
                for (j, dj) in d.iter_mut().enumerate() {
                    *dj = load(self.xr, x0 + (r * xw + j) * pl.cp + c);
                }
                *er = transform::input(d);
            }
            for k2 in 0..6 {
                let col =
                    transform::input([e[0][k2], e[1][k2], e[2][k2], e[3][k2], e[4][k2], e[5][k2]]);
                for (k1, v) in col.iter().enumerate() {
                    let at = ((6 * k1 + k2) * pl.run_tiles + i) * pl.vs + c;
                    // SAFETY: row p·run_tiles + i belongs to this tile's task (`RunOut`).
                    unsafe { store(*v, out.v, out.v_len, at) };
                }
            }
        }
        if !self.with_dm {
            return;
        }
        for c in (0..pl.op).step_by(W) {
            // along the width: f[i] = A dY[i]; then along the height
            let mut f = [[T::splat(0.0); 6]; 4];
            for (i, fi) in f.iter_mut().enumerate() {
                let mut d = [T::splat(0.0); 4];
                for (j, dj) in d.iter_mut().enumerate() {
                    *dj = load(self.gr, g0 + (i * gw + j) * pl.op + c);
                }
                *fi = transform::output_adjoint(d);
            }
            for k2 in 0..6 {
                let col = transform::output_adjoint([f[0][k2], f[1][k2], f[2][k2], f[3][k2]]);
                for (k1, m) in col.iter().enumerate() {
                    let at = ((6 * k1 + k2) * pl.run_tiles + i) * pl.ms + c;
                    // SAFETY: as above.
                    unsafe { store(*m, out.m, out.m_len, at) };
                }
            }
        }
    }
}

impl TileJob<'_> {
    /// [`TileJob::tile`] on a line: `V[k] = (Bᵀ d)[k]` of the 1×6 patch at `x0` of the input
    /// copy, `dM[k] = (A dY)[k]` of the 1×4 output gradient at `g0`.
    #[inline(always)]
    #[allow(clippy::needless_range_loop)]
    fn line_tile<T: Vector>(&self, i: usize, x0: usize, g0: usize) {
        let (pl, out) = (self.pl, self.out);
        for c in (0..pl.cp).step_by(W) {
            let mut d = [T::splat(0.0); 6];
            for j in 0..6 {
                d[j] = load(self.xr, x0 + j * pl.cp + c);
            }
            for (k, v) in transform::input(d).iter().enumerate() {
                let at = (k * pl.run_tiles + i) * pl.vs + c;
                // SAFETY: row k·run_tiles + i belongs to this tile's task (`RunOut`).
                unsafe { store(*v, out.v, out.v_len, at) };
            }
        }
        if !self.with_dm {
            return;
        }
        for c in (0..pl.op).step_by(W) {
            let mut d = [T::splat(0.0); 4];
            for j in 0..4 {
                d[j] = load(self.gr, g0 + j * pl.op + c);
            }
            for (k, m) in transform::output_adjoint(d).iter().enumerate() {
                let at = (k * pl.run_tiles + i) * pl.ms + c;
                // SAFETY: as above.
                unsafe { store(*m, out.m, out.m_len, at) };
            }
        }
    }
}

/// The 16 values `src[i..i + 16]`.
#[inline(always)]
pub(super) fn load<T: Vector>(src: &[f32], i: usize) -> T {
    T::load(src[i..][..W].try_into().unwrap())
}
