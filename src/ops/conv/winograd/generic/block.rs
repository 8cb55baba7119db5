//! One block of Winograd tiles, step by step: gather and transform the input patches, the
//! products at each transformed position, the output transform and the clipped write.

use super::{input_1d, output_1d, Cube, OutPtr, Tiles, L, M_OUT, SCRATCH, V};
use crate::ops::conv::ConvShape;
use crate::ops::gemm::{matmul, MatRef};

/// Flat tile index → (image, tile origin per axis in output cells).
fn tile_origin(tiles: &Tiles, t: usize) -> (usize, [usize; 3]) {
    let [_, ch, cw] = tiles.count;
    let per = tiles.per_image();
    let (n, r) = (t / per, t % per);
    let idx = [r / (ch * cw), (r / cw) % ch, r % cw];
    let origin = [0, 1, 2].map(|a| {
        if tiles.wino[a] {
            idx[a] * M_OUT
        } else {
            idx[a]
        }
    });
    (n, origin)
}

/// [`run_block`] compiled for AVX-512 and FMA (the transforms and tile loops vectorised).
///
/// # Safety
/// The CPU must support the features enabled here; callers check [`crate::ops::simd::avx512`].
/// The body itself is safe code.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
pub(super) unsafe fn run_block_avx512(job: &BlockJob, t0: usize, t1: usize) {
    run_block(job, t0, t1)
}

/// Transforms, multiplies and writes tiles `t0..t1` (flat over images and tile positions):
/// the input transform of every tile, then per group the products at each transformed position
/// and the output transform. The steps are `#[inline(always)]`, so the AVX-512 wrapper compiles
/// all of them with its features.
#[inline(always)]
pub(super) fn run_block(job: &BlockJob, t0: usize, t1: usize) {
    let BlockJob {
        s,
        x,
        u,
        bias,
        y,
        tiles,
        threads,
    } = *job;
    let (cout_g, p) = (s.cout_g(), tiles.positions);
    let nt = t1 - t0;
    // V: (positions, Cin, T), M: (positions, Cout/g, T), in a reused per-thread buffer
    let mut scratch = SCRATCH.with(|b| std::mem::take(&mut *b.borrow_mut()));
    if scratch.len() < p * (s.cin + cout_g) * nt {
        scratch.resize(p * (s.cin + cout_g) * nt, 0.0);
    }
    let (v, m) = scratch.split_at_mut(p * s.cin * nt);
    let (mut c, mut tmp) = (Cube::new(tiles.pdims), Cube::new(tiles.pdims));
    let block = Block { s, tiles, t0, nt };
    block.transform_inputs(x, v, &mut c, &mut tmp);
    for g in 0..s.groups {
        block.multiply(g, u, v, m, threads);
        block.transform_outputs(g, m, bias, y, &mut c, &mut tmp);
    }
    SCRATCH.with(|b| *b.borrow_mut() = scratch);
}

/// What every block of one convolution reads and writes: the shape, the input `x`, the
/// transformed kernel `u`, the bias, the output and the tiling, and the threads each block's
/// products may use.
#[derive(Clone, Copy)]
pub(super) struct BlockJob<'a> {
    pub s: &'a ConvShape,
    pub x: &'a [f32],
    pub u: &'a [f32],
    pub bias: Option<&'a [f32]>,
    pub y: OutPtr,
    pub tiles: &'a Tiles,
    pub threads: usize,
}

/// The tiles `t0..t0 + nt` that one call of [`run_block`] computes.
struct Block<'a> {
    s: &'a ConvShape,
    tiles: &'a Tiles,
    t0: usize,
    nt: usize,
}

impl Block<'_> {
    /// Image and origin of the `lanes` tiles from `l0` (one per vector lane).
    #[inline(always)]
    fn origins(&self, l0: usize, lanes: usize) -> Vec<(usize, [usize; 3])> {
        (0..lanes)
            .map(|l| tile_origin(self.tiles, self.t0 + l0 + l))
            .collect()
    }

    /// Input transform: for each group of L tiles (one per lane) and input channel, gathers the
    /// patches, transforms them, and stores `V[pos][ic][tile]`.
    #[inline(always)]
    fn transform_inputs(&self, x: &[f32], v: &mut [f32], c: &mut Cube, tmp: &mut Cube) {
        let (s, tiles, nt) = (self.s, self.tiles, self.nt);
        let p = tiles.positions;
        for l0 in (0..nt).step_by(L) {
            let lanes = L.min(nt - l0);
            let origins = self.origins(l0, lanes);
            for ic in 0..s.cin {
                c.dims = tiles.pdims;
                c.v.clear();
                c.v.resize(p, [0.0; L]);
                self.gather(x, ic, &origins, c);
                c.along_all(tiles.wino, 6, tmp, input_1d);
                for (pos, val) in c.v[..p].iter().enumerate() {
                    let dst = &mut v[(pos * s.cin + ic) * nt + l0..][..lanes];
                    if let Ok(full) = <&mut V>::try_from(&mut *dst) {
                        *full = *val; // fixed-size copy: no memmove call
                    } else {
                        dst.copy_from_slice(&val[..lanes]);
                    }
                }
            }
        }
    }

    /// Gathers the input patches of channel `ic` at `origins` into the lanes of `c`; taps in
    /// the padding read 0.
    #[inline(always)]
    fn gather(&self, x: &[f32], ic: usize, origins: &[(usize, [usize; 3])], c: &mut Cube) {
        let (s, tiles) = (self.s, self.tiles);
        let axes = &s.window.axes;
        let in_len = s.window.in_len();
        for (l, &(n, origin)) in origins.iter().enumerate() {
            let x_plane = &x[(n * s.cin + ic) * in_len..][..in_len];
            for i in 0..tiles.pdims[0] {
                let Some(d) = axes[0].source(origin[0], i) else {
                    continue;
                };
                // the patch's columns lie inside the input except near the edges
                let (pw, aw) = (tiles.pdims[2], &axes[2]);
                let first = aw.input_coord(origin[2], 0);
                let inside = first >= 0 && first as usize + pw <= aw.input;
                for j in 0..tiles.pdims[1] {
                    let Some(h) = axes[1].source(origin[1], j) else {
                        continue;
                    };
                    let x_row = &x_plane[(d * axes[1].input + h) * aw.input..][..aw.input];
                    let cell = (i * tiles.pdims[1] + j) * pw;
                    if inside {
                        let src = &x_row[first as usize..first as usize + pw];
                        for (k, &v) in src.iter().enumerate() {
                            c.v[cell + k][l] = v;
                        }
                    } else {
                        for k in 0..pw {
                            if let Some(wc) = aw.source(origin[2], k) {
                                c.v[cell + k][l] = x_row[wc];
                            }
                        }
                    }
                }
            }
        }
    }

    /// Group `g`'s products: `M[pos] (Cout/g × T) = U[pos][g] (Cout/g × Cin/g) · V[pos][g]
    /// (Cin/g × T)` at every transformed position.
    #[inline(always)]
    fn multiply(&self, g: usize, u: &[f32], v: &[f32], m: &mut [f32], threads: usize) {
        let (s, nt) = (self.s, self.nt);
        let (cin_g, cout_g) = (s.cin_g(), s.cout_g());
        for pos in 0..self.tiles.positions {
            let u_p = MatRef::row_major(
                &u[(pos * s.cout + g * cout_g) * cin_g..][..cout_g * cin_g],
                cout_g,
                cin_g,
            );
            let v_p = MatRef::row_major(
                &v[(pos * s.cin + g * cin_g) * nt..][..cin_g * nt],
                cin_g,
                nt,
            );
            matmul(
                &mut m[pos * cout_g * nt..][..cout_g * nt],
                nt,
                u_p,
                v_p,
                false,
                threads,
            );
        }
    }

    /// Output transform of group `g`: for each group of L tiles and output channel of the
    /// group, transforms `M` back and writes the tiles (plus the bias).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn transform_outputs(
        &self,
        g: usize,
        m: &[f32],
        bias: Option<&[f32]>,
        y: OutPtr,
        c: &mut Cube,
        tmp: &mut Cube,
    ) {
        let (s, tiles, nt) = (self.s, self.tiles, self.nt);
        let (cout_g, p) = (s.cout_g(), tiles.positions);
        for l0 in (0..nt).step_by(L) {
            let lanes = L.min(nt - l0);
            let origins = self.origins(l0, lanes);
            for ocg in 0..cout_g {
                let oc = g * cout_g + ocg;
                c.dims = tiles.pdims;
                c.v.resize(p, [0.0; L]);
                for pos in 0..p {
                    let src = &m[(pos * cout_g + ocg) * nt + l0..][..lanes];
                    if let Ok(full) = <&V>::try_from(src) {
                        c.v[pos] = *full;
                    } else {
                        c.v[pos][..lanes].copy_from_slice(src);
                    }
                }
                c.along_all(tiles.wino, 4, tmp, output_1d);
                let b = bias.map_or(0.0, |b| b[oc]);
                for (l, &(n, origin)) in origins.iter().enumerate() {
                    self.write_tile(c, l, (n * s.cout + oc) * s.window.out_len(), origin, b, y);
                }
            }
        }
    }

    /// Writes lane `l` of the transformed tile `c` (+ `b`) at `origin` of the output plane
    /// starting at `plane`, clipped at the output's edge.
    #[inline(always)]
    fn write_tile(&self, c: &Cube, l: usize, plane: usize, origin: [usize; 3], b: f32, y: OutPtr) {
        let axes = &self.s.window.axes;
        let odims = self.tiles.wino.map(|w| if w { M_OUT } else { 1 });
        for i in 0..odims[0].min(axes[0].output - origin[0]) {
            for j in 0..odims[1].min(axes[1].output - origin[1]) {
                let row =
                    ((origin[0] + i) * axes[1].output + origin[1] + j) * axes[2].output + origin[2];
                for k in 0..odims[2].min(axes[2].output - origin[2]) {
                    y.write(
                        plane + row + k,
                        c.v[(i * odims[1] + j) * odims[2] + k][l] + b,
                    );
                }
            }
        }
    }
}
