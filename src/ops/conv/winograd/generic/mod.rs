//! The generic Winograd path: F(4, 3) along every 3-tap axis of a 1-D, 2-D or 3-D problem
//! (the 2-D 3×3 case has its own fast path, [`super::plane`]). Tiles sit in the 16 lanes of
//! a vector; each input patch is gathered lane by lane.
//!
//! - kernel transform `U = G w` (3 → 6 values per axis), once per call;
//! - input transform `V = Bᵀ d` (6 → 6) on each 6-wide input tile (overlapping by 2);
//! - per transformed position p: `M[p] (Cout/g × T) = U[p] (Cout/g × Cin/g) · V[p] (Cin/g × T)`,
//!   one GEMM per position over a block of T tiles;
//! - output transform `y = Aᵀ M` (6 → 4) per axis, clipped at the output's edge.
//!
//! The 1-D transforms are those of [`super::transform`] (the interpolation points there).

use super::transform;
use crate::ops::conv::ConvShape;
#[cfg(target_arch = "x86_64")]
use block::run_block_avx512;
use block::{run_block, BlockJob};
use rayon::prelude::*;
use std::cell::RefCell;

mod block;

thread_local! {
    /// Per-thread transformed inputs and products, reused across calls.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Output values per tile along a transformed axis.
const M_OUT: usize = 4;
/// Input values per tile along a transformed axis.
const T_IN: usize = 6;
/// Scratch memory per block of tiles (transformed inputs and products): 4 MiB (measured best
/// of 1, 2, 4 MiB on the 3×3 shapes).
const BLOCK_BYTES: usize = 4 << 20;

/// Tiles transformed together, one per SIMD lane.
const L: usize = 16;
/// A vector of one value per lane.
type V = [f32; L];

// The 1-D transforms below apply to one line of lane vectors: they read `src[b + t·st]` and
// write `dst[bo + t·so]`, lane by lane so the compiler turns each into vector arithmetic.
// They are passed as generic parameters (not fn pointers) so they inline into the AVX-512 caller.

/// `Bᵀ d`: input transform of 6 values ([`transform::input`]).
#[inline(always)]
fn input_1d(src: &[V], b: usize, st: usize, dst: &mut [V], bo: usize, so: usize) {
    let d: [V; 6] = std::array::from_fn(|t| src[b + t * st]);
    for j in 0..L {
        let r = transform::input(d.map(|v| v[j]));
        for (k, rk) in r.iter().enumerate() {
            dst[bo + k * so][j] = *rk;
        }
    }
}

/// `Aᵀ m`: output transform of 6 values into 4 ([`transform::output`]).
#[inline(always)]
fn output_1d(src: &[V], b: usize, st: usize, dst: &mut [V], bo: usize, so: usize) {
    let m: [V; 6] = std::array::from_fn(|t| src[b + t * st]);
    for j in 0..L {
        let r = transform::output(m.map(|v| v[j]));
        for (k, rk) in r.iter().enumerate() {
            dst[bo + k * so][j] = *rk;
        }
    }
}

/// `G g`: kernel transform of 3 taps into 6 values ([`transform::kernel`]).
#[inline(always)]
fn kernel_1d(src: &[V], b: usize, st: usize, dst: &mut [V], bo: usize, so: usize) {
    let g: [V; 3] = std::array::from_fn(|t| src[b + t * st]);
    for j in 0..L {
        let r = transform::kernel(g.map(|v| v[j]));
        for (k, rk) in r.iter().enumerate() {
            dst[bo + k * so][j] = *rk;
        }
    }
}

/// A small row-major array of up to 6×6×6 lane vectors with its three extents.
struct Cube {
    v: Vec<V>,
    dims: [usize; 3],
}

impl Cube {
    fn new(dims: [usize; 3]) -> Self {
        Cube {
            v: vec![[0.0; L]; dims.iter().product()],
            dims,
        }
    }

    /// Applies a 1-D transform (`n_out` values per line) along axis `a`, into `out`.
    #[inline(always)]
    fn along<F: Fn(&[V], usize, usize, &mut [V], usize, usize)>(
        &self,
        a: usize,
        n_out: usize,
        f: F,
        out: &mut Cube,
    ) {
        let mut dims = self.dims;
        dims[a] = n_out;
        out.dims = dims;
        out.v.resize(dims.iter().product(), [0.0; L]);
        let st_in = [self.dims[1] * self.dims[2], self.dims[2], 1];
        let st_out = [dims[1] * dims[2], dims[2], 1];
        let (b, c) = ((a + 1) % 3, (a + 2) % 3);
        // for each line along axis a
        for i in 0..self.dims[b] {
            for j in 0..self.dims[c] {
                f(
                    &self.v,
                    i * st_in[b] + j * st_in[c],
                    st_in[a],
                    &mut out.v,
                    i * st_out[b] + j * st_out[c],
                    st_out[a],
                );
            }
        }
    }

    /// Applies `f` along every transformed axis (ping-ponging with `tmp`).
    #[inline(always)]
    fn along_all<F: Fn(&[V], usize, usize, &mut [V], usize, usize) + Copy>(
        &mut self,
        wino: [bool; 3],
        n_out: usize,
        tmp: &mut Cube,
        f: F,
    ) {
        for (a, &w) in wino.iter().enumerate() {
            if w {
                self.along(a, n_out, f, tmp);
                std::mem::swap(self, tmp);
            }
        }
    }
}

/// Tile geometry: which axes transform, tiles per axis, positions per tile.
struct Tiles {
    /// Per axis (d, h, w): whether it is a 3-tap (transformed) axis.
    wino: [bool; 3],
    /// Tiles per axis.
    count: [usize; 3],
    /// Transformed positions per tile (6 per transformed axis).
    positions: usize,
    /// Extents of a transformed tile.
    pdims: [usize; 3],
}

impl Tiles {
    fn new(s: &ConvShape) -> Self {
        let wino = s.window.axes.map(|a| a.kernel == 3);
        let count = [0, 1, 2].map(|i| {
            if wino[i] {
                s.window.axes[i].output.div_ceil(M_OUT)
            } else {
                s.window.axes[i].output
            }
        });
        let pdims = wino.map(|w| if w { T_IN } else { 1 });
        Tiles {
            wino,
            count,
            positions: pdims.iter().product(),
            pdims,
        }
    }

    fn per_image(&self) -> usize {
        self.count.iter().product()
    }
}

/// Transformed weights `U: (positions, Cout, Cin/g)`.
fn transform_weights(s: &ConvShape, w: &[f32], tiles: &Tiles) -> Vec<f32> {
    let (cin_g, taps, p) = (s.cin_g(), s.window.taps(), tiles.positions);
    let kdims = s.window.axes.map(|a| a.kernel);
    let mut u = vec![0.0; p * s.cout * cin_g];
    let (mut c, mut tmp) = (Cube::new(kdims), Cube::new(kdims));
    // kernels (oc, icg) in flat order, L at a time (one per lane)
    let kernels = s.cout * cin_g;
    for k0 in (0..kernels).step_by(L) {
        let lanes = L.min(kernels - k0);
        c.dims = kdims;
        c.v.clear();
        c.v.resize(taps, [0.0; L]);
        for l in 0..lanes {
            for (t, &wv) in w[(k0 + l) * taps..][..taps].iter().enumerate() {
                c.v[t][l] = wv;
            }
        }
        c.along_all(tiles.wino, 6, &mut tmp, kernel_1d);
        for (pos, v) in c.v[..p].iter().enumerate() {
            // U is (positions, Cout, Cin/g) and kernel k0 + l is (oc, icg) flat: contiguous
            u[pos * kernels + k0..][..lanes].copy_from_slice(&v[..lanes]);
        }
    }
    u
}

/// Forward pass. `x`: (N, Cin, D, H, W), `w`: (Cout, Cin/g, 3, 3, 3 or 1…), `y`: (N, Cout, od, oh, ow).
pub(super) fn forward(s: &ConvShape, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    let tiles = Tiles::new(s);
    let u = transform_weights(s, w, &tiles);
    let total = s.batch * tiles.per_image();
    let p = tiles.positions;
    let per_tile_bytes = p * (s.cin + s.cout) * 4;
    let threads = rayon::current_num_threads();
    let block = (BLOCK_BYTES / per_tile_bytes).clamp(1, total.div_ceil(threads).max(1));
    let blocks = total.div_ceil(block);
    let inner = if blocks >= threads { 1 } else { threads };
    // Blocks cover disjoint sets of output tiles, so they write disjoint cells of y: each
    // writes through a raw pointer (no two threads ever hold the same cell).
    let out = OutPtr {
        ptr: y.as_mut_ptr(),
        len: y.len(),
    };
    let job = BlockJob {
        s,
        x,
        u: &u,
        bias,
        y: out,
        tiles: &tiles,
        threads: inner,
    };
    (0..blocks).into_par_iter().for_each(|bi| {
        let t0 = bi * block;
        let t1 = (t0 + block).min(total);
        #[cfg(target_arch = "x86_64")]
        if crate::ops::simd::avx512() {
            // SAFETY: the CPU supports the features the function is compiled for.
            unsafe { run_block_avx512(&job, t0, t1) };
            return;
        }
        run_block(&job, t0, t1);
    });
}

/// The output buffer, shared by blocks that write disjoint cells.
#[derive(Clone, Copy)]
struct OutPtr {
    ptr: *mut f32,
    len: usize,
}
// SAFETY: used only for writes to disjoint cells (see `forward`).
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}
impl OutPtr {
    /// Writes `v` at `i` (bounds-checked).
    fn write(self, i: usize, v: f32) {
        assert!(i < self.len);
        // SAFETY: in bounds; no other thread writes cell i (disjoint tiles).
        unsafe { self.ptr.add(i).write(v) }
    }
}
