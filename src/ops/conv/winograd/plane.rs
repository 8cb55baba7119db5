//! The fast path for 3-tap kernels at stride 1 ([`applies`]), in three shapes:
//! - 2-D: F(4×4, 3×3), 4×4 output tiles, P = 36 transformed positions;
//! - 3-D: the same in every depth slice, the 3 depth taps summed directly: output slice od
//!   reduces over (depth tap kd, input channel) with input slice `od + kd − pad_front`, so the
//!   products reduce over 3·Cin/g "channels" (4× fewer multiplies than the direct sum, not 6.75×
//!   as F(4×4×4, 3×3×3) would, but with 36 positions instead of 216 and the 2-D tiles);
//! - 1-D: F(4, 3), 1×4 output tiles, P = 6 positions (2× fewer multiplies).
//!
//! Tiles: output tile (plane, ty, tx), plane = n·OD + od, covers rows 4ty..4ty+4 (one row in
//! 1-D) and columns 4tx..4tx+4 of that output plane and reads the 6×6 (1×6) input patch from
//! (4ty − pad_top, 4tx − pad_left) of each input slice it needs. Tiles are numbered flat over
//! (plane, ty, tx); 16 consecutive tiles share a vector (one per lane), `TV` vectors (T = 16·TV
//! tiles) make a block, and blocks run in parallel (each writes only its own tiles' outputs, so
//! the result does not depend on the thread count).
//!
//! Per block, with `V: (P, KD·Cin, T)` and `M: (P, OCB, T)` in a per-thread scratch buffer
//! (KD = 3 depth taps in 3-D, else 1; V's channel c = (g·KD + kd)·Cin/g + ic):
//! 1. input transform: for each 16 tiles, depth tap and input channel, the patch rows are read
//!    into lanes (`lanes::patches`, zeros outside the image and for depth taps in the
//!    padding) and transformed, `V[p][c][tile] = (Bᵀ d B)[p]`, p = 6·k_h + k_w (k_w in 1-D);
//! 2. per group and block of OCB output channels, at each position p:
//!    `M[p] (OCB × T) = U[p] (OCB × KD·Cin/g) · V[p] (KD·Cin/g × T)` (`lanes::products`);
//! 3. output transform of those OCB channels, `y = Aᵀ M A + bias`, lanes back to columns
//!    (`lanes::interleave`) and copied into `y`, clipped at the bottom and right edges.
//!
//! The weights are transformed once per call into `U: (groups, Cout/g ÷ OCB, P, KD·Cin/g, OCB)`
//! (zeros past Cout/g), so step 2 reads each block's U contiguously.

use super::lanes::{self, Lanes, L};
use super::transform::{self, Lanes16, Vector};
use crate::ops::conv::ConvShape;
use crate::ops::scratch;
use crate::ops::uninit::SharedOut;
use rayon::prelude::*;
use std::cell::RefCell;

thread_local! {
    /// Per-thread V and M of one block, reused across calls.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// The transformed weights U of the caller's thread, reused across calls (9.4 MB for 256
    /// channels: a fresh zeroed one cost a memset and its page faults on every call).
    static U_BUF: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Transformed positions per tile in the plane (6 × 6); a line has 6.
const P: usize = 36;

/// Whether this path applies: [`super::suits`] (every real axis has 3 taps, stride 1,
/// dilation 1, zero padding) and an input under 2³¹ values. 1-D, 2-D and 3-D problems alike.
pub fn applies(s: &ConvShape) -> bool {
    super::suits(s)
        // the input gathers use 32-bit offsets
        && s.batch * s.cin * s.window.in_len() <= i32::MAX as usize
}

/// Output tiles of the problem: N·OD·⌈OH/4⌉·⌈OW/4⌉ (OH = 1 in 1-D).
pub fn tiles(s: &ConvShape) -> usize {
    let [ad, ah, aw] = &s.window.axes;
    s.batch * ad.output * ah.output.div_ceil(4) * aw.output.div_ceil(4)
}

/// Depth taps summed directly (3 in 3-D, else 1): the products reduce over this × Cin/g.
pub fn depth_taps(s: &ConvShape) -> usize {
    s.window.axes[0].kernel
}

/// A run of tiles in one vector that lie side by side in one tile row: lanes `l0..l1` are
/// tiles (n, ty, tx0 + l − l0).
#[derive(Clone, Copy)]
struct Run {
    l0: usize,
    l1: usize,
    /// Output plane n·OD + od.
    plane: usize,
    ty: usize,
    tx0: usize,
}

/// The geometry of one problem.
struct Plan<'a> {
    s: &'a ConvShape,
    /// Transformed positions per tile: 36 (2-D, 3-D) or 6 (1-D, `line`).
    p: usize,
    line: bool,
    /// Input and output extents (H, W), (OH, OW), padding before (top, left).
    hw: [usize; 2],
    ohw: [usize; 2],
    pad: [usize; 2],
    /// Depth: input and output extents, padding before, taps (KD: 3 in 3-D, else 1).
    id: usize,
    od: usize,
    pad_d: usize,
    kd: usize,
    /// Tiles per column and row, and in all.
    th: usize,
    tw: usize,
    tiles: usize,
    /// Vectors of tiles per block.
    tv: usize,
    /// Output channels per product block, and product blocks per group.
    ocb: usize,
    obs: usize,
}

impl<'a> Plan<'a> {
    fn new(s: &'a ConvShape) -> Self {
        let [ad, ah, aw] = &s.window.axes;
        let (th, tw) = (ah.output.div_ceil(4), aw.output.div_ceil(4));
        let line = s.window.nd == 1;
        // T·KD·Cin·36·4 bytes of V per block: 64 tiles keep it ≤ 1.2 MiB up to 128 channels,
        // beyond that 32 tiles (the register block is 24 accumulators either way)
        let tv = if ad.kernel * s.cin <= 128 { 4 } else { 2 };
        let ocb = 24 / tv;
        Plan {
            s,
            p: if line { 6 } else { P },
            line,
            hw: [ah.input, aw.input],
            ohw: [ah.output, aw.output],
            pad: [ah.pad_begin, aw.pad_begin],
            id: ad.input,
            od: ad.output,
            pad_d: ad.pad_begin,
            kd: ad.kernel,
            th,
            tw,
            tiles: tiles(s),
            tv,
            ocb,
            obs: s.cout_g().div_ceil(ocb),
        }
    }

    /// Tiles per block.
    fn t(&self) -> usize {
        self.tv * L
    }

    /// The runs of the vector whose first tile is `t0` (lanes past the last tile belong to none).
    fn runs(&self, t0: usize) -> Vec<Run> {
        let mut runs: Vec<Run> = Vec::new();
        for l in 0..L.min(self.tiles.saturating_sub(t0)) {
            let t = t0 + l;
            let (plane, r) = (t / (self.th * self.tw), t % (self.th * self.tw));
            let (ty, tx) = (r / self.tw, r % self.tw);
            match runs.last_mut() {
                Some(run) if run.plane == plane && run.ty == ty => run.l1 = l + 1,
                _ => runs.push(Run {
                    l0: l,
                    l1: l + 1,
                    plane,
                    ty,
                    tx0: tx,
                }),
            }
        }
        runs
    }

    /// Reduction "channels" per group, KD·Cin/g, and in all, KD·Cin (V's second extent).
    fn ck(&self) -> usize {
        self.kd * self.s.cin_g()
    }

    fn ck_all(&self) -> usize {
        self.kd * self.s.cin
    }
}

/// `U: (groups, obs, P, KD·Cin/g, OCB)`: `U[g][ob][p][kd·Cin/g + ic][o] = (G w Gᵀ)[p]` of
/// kernel (g·Cout/g + ob·OCB + o, ic) at depth tap kd (`G w` in 1-D); zeros past Cout/g.
/// Output-channel blocks in parallel. Runs `f` on U in a reused buffer: every value is
/// written (the zeros past Cout/g too), so it needs no zero fill.
fn with_transformed_weights<R>(pl: &Plan, w: &[f32], f: impl FnOnce(&[f32]) -> R) -> R {
    let (s, ocb) = (pl.s, pl.ocb);
    let ck = pl.ck();
    scratch::with(&U_BUF, s.groups * pl.obs * pl.p * ck * ocb, |u| {
        let simd = crate::ops::simd::avx512();
        u.par_chunks_mut(pl.p * ck * ocb)
            .enumerate()
            .for_each(|(gb, ub)| {
                #[cfg(target_arch = "x86_64")]
                if simd {
                    // SAFETY: the CPU supports AVX-512 (`simd::avx512`).
                    return unsafe { weight_block_avx512(pl, w, gb, ub) };
                }
                let _ = simd;
                weight_block::<Lanes16>(pl, w, gb, ub)
            });
        f(u)
    })
}

/// [`weight_block`] compiled for AVX-512.
///
/// # Safety
/// The CPU must support AVX-512F (callers check [`crate::ops::simd::avx512`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
unsafe fn weight_block_avx512(pl: &Plan, w: &[f32], gb: usize, ub: &mut [f32]) {
    weight_block::<lanes::Zmm>(pl, w, gb, ub)
}

/// Block `gb = g·obs + ob` of `U`, one input channel and depth tap at a time with the block's
/// output channels in the lanes (so each position's OCB values are one contiguous store).
/// Every value of `ub` is written: lanes past the block's `n` real channels hold zero taps,
/// so their transforms are zeros, stored with the rest.
#[inline(always)]
fn weight_block<T: Vector>(pl: &Plan, w: &[f32], gb: usize, ub: &mut [f32]) {
    let (s, ocb) = (pl.s, pl.ocb);
    let (cin_g, cout_g, ck) = (s.cin_g(), s.cout_g(), pl.ck());
    let (g, ob) = (gb / pl.obs, gb % pl.obs);
    let n = ocb.min(cout_g - ob * ocb);
    // taps of one kernel slice (3×3, or 3 in 1-D); a kernel is (KD, slice)
    let kk = if pl.line { 3 } else { 9 };
    // the block's kernels: (n, Cin/g·KD·kk)
    let wb = &w[(g * cout_g + ob * ocb) * ck * kk..][..n * ck * kk];
    let mut taps = [[0.0f32; L]; 9];
    for ic in 0..cin_g {
        for kd in 0..pl.kd {
            for (o, wo) in wb.chunks_exact(ck * kk).enumerate() {
                for (t, v) in wo[(ic * pl.kd + kd) * kk..][..kk].iter().enumerate() {
                    taps[t][o] = *v;
                }
            }
            let k = |t: usize| T::load(&taps[t]);
            let row = kd * cin_g + ic;
            if pl.line {
                let u = transform::kernel([k(0), k(1), k(2)]);
                for (p, up) in u.iter().enumerate() {
                    up.store_first(&mut ub[(p * ck + row) * ocb..][..ocb], ocb);
                }
            } else {
                let u = transform::kernel_2d([
                    [k(0), k(1), k(2)],
                    [k(3), k(4), k(5)],
                    [k(6), k(7), k(8)],
                ]);
                for (p, up) in u.iter().enumerate() {
                    up.store_first(&mut ub[(p * ck + row) * ocb..][..ocb], ocb);
                }
            }
        }
    }
}

/// Forward pass. `x`: (N, Cin, \[D,\] \[H,\] W), `w`: (Cout, Cin/g, \[3,\] \[3,\] 3), `y`: (N, Cout,
/// \[OD,\] \[OH,\] OW), every value written. Requires [`applies`].
pub fn forward(s: &ConvShape, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    forward_uninit(s, x, w, bias, crate::ops::uninit::as_uninit(y))
}

/// [`forward`] into an output that need not be initialised (every value is written, so a
/// fresh output needs no zero fill: ~7% of the r3x3-64 forward).
pub fn forward_uninit(
    s: &ConvShape,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [std::mem::MaybeUninit<f32>],
) {
    assert!(
        applies(s),
        "winograd::plane::forward on a shape it does not support"
    );
    let pl = Plan::new(s);
    with_transformed_weights(&pl, w, |u| forward_blocks(&pl, x, u, bias, y))
}

/// [`forward_uninit`]'s tile blocks, in parallel, with the transformed weights `u`.
fn forward_blocks(
    pl: &Plan,
    x: &[f32],
    u: &[f32],
    bias: Option<&[f32]>,
    y: &mut [std::mem::MaybeUninit<f32>],
) {
    let out = SharedOut::uninit(y);
    let simd = crate::ops::simd::avx512();
    let len = pl.p * (pl.ck_all() + pl.ocb) * pl.t();
    (0..pl.tiles.div_ceil(pl.t()))
        .into_par_iter()
        .for_each(|b| {
            scratch::with(&SCRATCH, len, |buf| {
                let job = Block {
                    pl,
                    t0: b * pl.t(),
                    x,
                    u,
                    bias,
                    y: out,
                };
                #[cfg(target_arch = "x86_64")]
                if simd {
                    // SAFETY: the CPU supports AVX-512 (`simd::avx512`).
                    return unsafe { job.run_avx512(buf) };
                }
                let _ = simd;
                job.run::<false>(buf)
            })
        });
}

/// One block of tiles `t0..t0 + T` and what it reads and writes.
struct Block<'a> {
    pl: &'a Plan<'a>,
    t0: usize,
    x: &'a [f32],
    u: &'a [f32],
    bias: Option<&'a [f32]>,
    y: SharedOut,
}

impl Block<'_> {
    /// [`Block::run`] compiled for AVX-512.
    ///
    /// # Safety
    /// The CPU must support AVX-512F (callers check [`crate::ops::simd::avx512`]).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    unsafe fn run_avx512(&self, buf: &mut [f32]) {
        self.run::<true>(buf)
    }

    /// The three steps on `buf` (V then M). `SIMD`: use the AVX-512 steps of [`lanes`].
    #[inline(always)]
    fn run<const SIMD: bool>(&self, buf: &mut [f32]) {
        let (pl, s) = (self.pl, self.pl.s);
        let t = pl.t();
        let (ck, ck_all, np) = (pl.ck(), pl.ck_all(), pl.p);
        let (v, m) = buf.split_at_mut(np * ck_all * t);
        let runs: Vec<Vec<Run>> = (0..pl.tv).map(|gi| pl.runs(self.t0 + gi * L)).collect();
        self.transform_inputs::<SIMD>(&runs, v);
        let cout_g = s.cout_g();
        for g in 0..s.groups {
            for ob in 0..pl.obs {
                let ub = &self.u[(g * pl.obs + ob) * np * ck * pl.ocb..][..np * ck * pl.ocb];
                for p in 0..np {
                    let up = &ub[p * ck * pl.ocb..][..ck * pl.ocb];
                    let vp = &v[(p * ck_all + g * ck) * t..][..ck * t];
                    let mp = &mut m[p * pl.ocb * t..][..pl.ocb * t];
                    if pl.tv == 4 {
                        lanes::products::<SIMD, 4, 6>(up, vp, t, ck, mp, t);
                    } else {
                        lanes::products::<SIMD, 2, 12>(up, vp, t, ck, mp, t);
                    }
                }
                for o in 0..pl.ocb.min(cout_g - ob * pl.ocb) {
                    let oc = g * cout_g + ob * pl.ocb + o;
                    self.transform_outputs::<SIMD>(&runs, m, o, oc);
                }
            }
        }
    }

    /// Step 1: `V[p][(g·KD + kd)·Cin/g + ic][gi·16 + l]` for every vector gi of the block,
    /// depth tap kd and input channel (group g, ic within it).
    #[inline(always)]
    fn transform_inputs<const SIMD: bool>(&self, runs: &[Vec<Run>], v: &mut [f32]) {
        let (pl, s) = (self.pl, self.pl.s);
        let [h, w] = pl.hw;
        let (t, ck_all, cin_g) = (pl.t(), pl.ck_all(), s.cin_g());
        // one input slice (H, W), one channel (D, H, W)
        let (slice, chan) = (h * w, pl.id * h * w);
        assert_eq!(self.x.len(), s.batch * s.cin * chan);
        let rows = if pl.line { 1 } else { 6 };
        for (gi, runs) in runs.iter().enumerate() {
            for kd in 0..pl.kd {
                // the runs whose input slice od + kd − pad_front lies in the input (the others
                // read zeros: no view)
                let views: Vec<lanes::RunView> = runs
                    .iter()
                    .filter_map(|r| {
                        let (n, od) = (r.plane / pl.od, r.plane % pl.od);
                        let d = (od + kd).checked_sub(pl.pad_d).filter(|&d| d < pl.id)?;
                        let y0 = (4 * r.ty) as isize - pl.pad[0] as isize;
                        let c0 = (4 * r.tx0) as isize - pl.pad[1] as isize;
                        let at = n * s.cin * chan + d * slice;
                        Some(lanes::RunView::new(r.l0, r.l1, y0, c0, at, w))
                    })
                    .collect();
                let mut d = [[[0.0f32; L]; 6]; 6];
                for ic in 0..s.cin {
                    // SAFETY: the views were made for this input (N, Cin, D, H, W) (asserted
                    // above).
                    unsafe {
                        lanes::patches::<SIMD>(
                            self.x.as_ptr().add(ic * chan),
                            &views,
                            pl.hw,
                            &mut d[..rows],
                        )
                    };
                    let c = ((ic / cin_g) * pl.kd + kd) * cin_g + ic % cin_g;
                    let vi = &mut v[c * t + gi * L..];
                    #[cfg(target_arch = "x86_64")]
                    if SIMD {
                        input_tile::<lanes::Zmm>(pl.line, &d, vi, ck_all * t);
                        continue;
                    }
                    input_tile::<Lanes16>(pl.line, &d, vi, ck_all * t);
                }
            }
        }
    }

    /// Step 3 for channel `o` of the product block (output channel `oc`): `y = Aᵀ M A + b`
    /// for every vector of the block, written row by row.
    #[inline(always)]
    fn transform_outputs<const SIMD: bool>(
        &self,
        runs: &[Vec<Run>],
        m: &[f32],
        o: usize,
        oc: usize,
    ) {
        let (pl, s) = (self.pl, self.pl.s);
        let [oh, ow] = pl.ohw;
        let t = pl.t();
        let b = self.bias.map_or(0.0, |b| b[oc]);
        let rows = if pl.line { 1 } else { 4 };
        let mut yt = [[[0.0f32; L]; 4]; 4];
        let mut cols = [0.0f32; 4 * L];
        for (gi, runs) in runs.iter().enumerate() {
            let mo = &m[o * t + gi * L..];
            #[cfg(target_arch = "x86_64")]
            if SIMD {
                output_tile::<lanes::Zmm>(pl.line, mo, pl.ocb * t, b, &mut yt);
            } else {
                output_tile::<Lanes16>(pl.line, mo, pl.ocb * t, b, &mut yt);
            }
            #[cfg(not(target_arch = "x86_64"))]
            output_tile::<Lanes16>(pl.line, mo, pl.ocb * t, b, &mut yt);
            for (i, yi) in yt[..rows].iter().enumerate() {
                // one run of 16 whole tiles: straight into y
                if let [run] = runs[..] {
                    let (oy, ox) = (4 * run.ty + i, 4 * run.tx0);
                    if run.l0 == 0 && run.l1 == L && oy < oh && ox + 4 * L <= ow {
                        let (n, od) = (run.plane / pl.od, run.plane % pl.od);
                        let at = (((n * s.cout + oc) * pl.od + od) * oh + oy) * ow + ox;
                        // SAFETY: in bounds (`at` asserts); only this block writes its tiles' cells.
                        let dst = unsafe { &mut *(self.y.at(at, 4 * L) as *mut [f32; 4 * L]) };
                        lanes::interleave::<SIMD>(yi, dst);
                        continue;
                    }
                }
                lanes::interleave::<SIMD>(yi, &mut cols);
                for run in runs {
                    let oy = 4 * run.ty + i;
                    if oy >= oh {
                        continue;
                    }
                    let ox = 4 * run.tx0;
                    let len = (4 * (run.l1 - run.l0)).min(ow - ox);
                    let (n, od) = (run.plane / pl.od, run.plane % pl.od);
                    let at = (((n * s.cout + oc) * pl.od + od) * oh + oy) * ow + ox;
                    // SAFETY: in bounds (`at` asserts); only this block writes its tiles' cells.
                    unsafe {
                        lanes::store_run::<SIMD>(&cols[4 * run.l0..], self.y.at(at, len), len)
                    };
                }
            }
        }
    }
}

/// The input transform of 16 patches, position p written to `v[p·ps..][..16]`: `Bᵀ d B`
/// ([`input_2d`]), or `Bᵀ d` of row 0 on a `line`.
#[inline(always)]
fn input_tile<T: Vector>(line: bool, d: &[[Lanes; 6]; 6], v: &mut [f32], ps: usize) {
    if !line {
        return input_2d::<T>(d, v, ps);
    }
    let l = |j: usize| T::load(&d[0][j]);
    let e = transform::input([l(0), l(1), l(2), l(3), l(4), l(5)]);
    for (k, c) in e.iter().enumerate() {
        let dst: &mut Lanes = (&mut v[k * ps..][..L]).try_into().unwrap();
        c.store(dst);
    }
}

/// The output transform of 16 tiles, position p read from `m[p·ps..][..16]`: `Aᵀ M A + b`
/// ([`output_2d`]), or `Aᵀ m + b` into row 0 on a `line`.
#[inline(always)]
fn output_tile<T: Vector>(line: bool, m: &[f32], ps: usize, b: f32, y: &mut [[Lanes; 4]; 4]) {
    if !line {
        return output_2d::<T>(m, ps, b, y);
    }
    let load = |p: usize| T::load((&m[p * ps..][..L]).try_into().unwrap());
    let row = transform::output([load(0), load(1), load(2), load(3), load(4), load(5)]);
    let bias = T::splat(b);
    for (j, c) in row.iter().enumerate() {
        (*c + bias).store(&mut y[0][j]);
    }
}

/// `Bᵀ d B` of 16 patches: `d[r][j]` (row r, column j) → position p = 6·k_h + k_w, written to
/// `v[p·ps..][..16]`.
#[inline(always)]
fn input_2d<T: Vector>(d: &[[Lanes; 6]; 6], v: &mut [f32], ps: usize) {
    // along the width: e[r][k] = Σ_j Bᵀ[k][j] d[r][j]; then along the height
    let mut e = [[T::splat(0.0); 6]; 6];
    for (dr, er) in d.iter().zip(e.iter_mut()) {
        let l = |j: usize| T::load(&dr[j]);
        *er = transform::input([l(0), l(1), l(2), l(3), l(4), l(5)]);
    }
    for k in 0..6 {
        let col = transform::input([e[0][k], e[1][k], e[2][k], e[3][k], e[4][k], e[5][k]]);
        for (k1, c) in col.iter().enumerate() {
            let dst: &mut Lanes = (&mut v[(k1 * 6 + k) * ps..][..L]).try_into().unwrap();
            c.store(dst);
        }
    }
}

/// `Aᵀ M A + b` of 16 tiles, position p read from `m[p·ps..][..16]`: rows `y[i][j]`, i, j < 4.
#[inline(always)]
fn output_2d<T: Vector>(m: &[f32], ps: usize, b: f32, y: &mut [[Lanes; 4]; 4]) {
    let load = |p: usize| T::load((&m[p * ps..][..L]).try_into().unwrap());
    // along the width: z[k1][j] = Σ_k Aᵀ[j][k] m[6·k1 + k]; then along the height
    let mut z = [[T::splat(0.0); 4]; 6];
    for (k1, zk) in z.iter_mut().enumerate() {
        let p = 6 * k1;
        *zk = transform::output([
            load(p),
            load(p + 1),
            load(p + 2),
            load(p + 3),
            load(p + 4),
            load(p + 5),
        ]);
    }
    let bias = T::splat(b);
    for j in 0..4 {
        let col = transform::output([z[0][j], z[1][j], z[2][j], z[3][j], z[4][j], z[5][j]]);
        for (i, c) in col.iter().enumerate() {
            (*c + bias).store(&mut y[i][j]);
        }
    }
}
