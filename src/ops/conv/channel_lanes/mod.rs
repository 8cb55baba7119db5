//! The channel-lanes kernel (`--algo channel-lanes`, formerly `blocked`): direct convolution
//! with output channels in the vector lanes (the scheme of oneDNN's direct
//! kernels): for ordinary convolutions with at least 16 output channels per group, at any
//! stride, dilation or group count, zero padding, width stride 1 or 2 ([`suits`]).
//!
//! The whole input is first copied into zero-padded planes `(N·groups, Cin/g, Dp, Hp, Wp)`, so
//! an output at padded position `base` (from geometry's `padded_coord`) reads tap `i` of input
//! channel `ic` at `xp[base + delta(ic, tap)]` with no bounds checks (`width_lanes::tap_deltas`).
//! Weights are packed as `(group, block of L = 16 output channels, Cin/g·taps, L)`.
//!
//! Register block: R ≤ 14 consecutive output columns × B ≤ 2 channel blocks (28 of the 32
//! AVX-512 registers). For every (input channel, tap) it loads B weight vectors and broadcasts
//! R input values, for R·B fused multiply-adds: 0.6 loads per FMA, against 1.1 for the
//! width-lanes kernel (which loads one unaligned input vector per 8 FMAs and broadcasts every
//! weight).
//! Lanes past `Cout/g` hold zero weights and are not stored.
//! Long reductions run in weight chunks of 24 KiB that tiles of 8 register blocks share from L1
//! (`chunk_len`), the sums carried from chunk to chunk.

use super::{width_lanes, ConvShape};
use crate::geometry::PaddingMode;
use crate::ops::activation::{forward_inplace, Activation};
use crate::ops::scratch;
#[cfg(target_arch = "x86_64")]
use crate::ops::simd::{const_dispatch, transpose16, transpose_rows};
#[cfg(target_arch = "x86_64")]
use crate::ops::uninit::assume_init;
use rayon::prelude::*;
use std::cell::RefCell;
use std::mem::MaybeUninit;

mod reuse;
mod wgrad;
pub use wgrad::backward_weight;

/// Output channels per vector.
const L: usize = 16;
/// Shortest reduction Cin/g·taps for which `auto` prefers this kernel to the width-lanes
/// kernel: below it the per-block transpose and stores outweigh the FMAs (measured on 1 → 32
/// channels, 3×3 and 5×5, batch 256: width-lanes 1.5–2× faster; at 50 the two tie).
pub const MIN_REDUCTION: usize = 64;
/// Most output columns per register block.
const RMAX: usize = 14;

thread_local! {
    /// Per-thread padded copy of the input, reused across calls.
    static PADDED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// Per-thread packed weights, reused across calls.
    static PACKED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Whether this kernel applies to `s`: zero padding, width stride 1 or 2.
pub fn suits(s: &ConvShape) -> bool {
    s.mode == PaddingMode::Zeros && matches!(s.window.axes[2].stride, 1 | 2)
}

/// Weights `(Cout, Cin/g·taps)` packed into `packed` as `(group, channel block, Cin/g·taps,
/// L)`, every value written (lanes past `Cout/g` zero): per (group, block) in parallel, a
/// transpose of the block's L weight rows, 16 × 16 at a time through registers. (An
/// element-wise scatter took 0.7 ms on 256 × 1152 weights, single-threaded: 17% of the strided
/// 3×3 layer's forward on 2 threads.)
#[cfg(target_arch = "x86_64")]
fn pack_weights(s: &ConvShape, w: &[f32], packed: &mut [f32]) {
    let (cout_g, k) = (s.cout_g(), s.reduction_len());
    let nb = cout_g.div_ceil(L);
    assert_eq!(packed.len(), s.groups * nb * k * L);
    assert!(
        crate::ops::simd::avx512(),
        "pack_weights runs under AVX-512"
    );
    // for each (group, channel block), in parallel: dst[i·L + lane] = w[(g·Cout/g + b·L + lane)·k + i]
    packed
        .par_chunks_mut(k * L)
        .enumerate()
        .for_each(|(gb, dst)| {
            let (g, b) = (gb / nb, gb % nb);
            let lanes = (cout_g - b * L).min(L);
            let src = &w[(g * cout_g + b * L) * k..][..lanes * k];
            // SAFETY: AVX-512F asserted above; src holds `lanes` rows of k, dst k × L
            unsafe { transpose_rows(src, k, lanes, k, dst, L) }
        });
}

/// Column blocks of one output row of width `ow`: `(R, starts)`, R = the block width (≤ RMAX,
/// balanced). The last block is shifted left to end at `ow`; it may recompute columns of the
/// previous one (same values), so every block runs at full width.
fn column_blocks(ow: usize, rmax: usize) -> (usize, Vec<usize>) {
    let n = ow.div_ceil(rmax);
    let r = ow.div_ceil(n);
    let starts = (0..n).map(|j| (j * r).min(ow - r)).collect();
    (r, starts)
}

/// Forward pass. `x`: (N, Cin, D, H, W), `w`: (Cout, Cin/g, kd, kh, kw), `y`: (N, Cout, od, oh,
/// ow), which need not be initialised: every value is written (so a fresh output needs no
/// zero fill). Requires [`suits`]; without AVX-512 it zero-fills `y` and defers to im2col.
pub fn forward(
    s: &ConvShape,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [MaybeUninit<f32>],
) {
    forward_act(s, x, w, bias, y, None)
}

/// [`forward`], then `act` on each work item's output planes while they are in cache.
pub fn forward_act(
    s: &ConvShape,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [MaybeUninit<f32>],
    act: Option<Activation>,
) {
    assert!(
        suits(s),
        "channel_lanes::forward called on a shape it does not support"
    );
    #[cfg(target_arch = "x86_64")]
    if crate::ops::simd::avx512() {
        return forward_avx512(s, x, w, bias, y, act);
    }
    let y = crate::ops::uninit::zeroed(y);
    super::im2col::forward(s, x, w, bias, y);
    if let Some(act) = act {
        forward_inplace(act, y);
    }
}

#[cfg(target_arch = "x86_64")]
fn forward_avx512(
    s: &ConvShape,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [MaybeUninit<f32>],
    act: Option<Activation>,
) {
    let [ad, ah, aw] = &s.window.axes;
    let dims = [ad.padded(), ah.padded(), aw.padded()];
    let item_len = s.cin_g() * dims.iter().product::<usize>();
    let deltas = width_lanes::tap_deltas(s, dims);
    let (cout_g, out_len) = (s.cout_g(), s.window.out_len());
    let packed_len = s.groups * cout_g.div_ceil(L) * s.reduction_len() * L;
    scratch::with(&PACKED, packed_len, |packed| {
        pack_weights(s, w, packed);
        let packed = &*packed;
        with_padded(s, x, dims, |xp| {
            // for each (image, group) and pair of channel blocks, in parallel: its output planes
            y.par_chunks_mut(cout_g * out_len)
                .enumerate()
                .for_each(|(item, y_g)| {
                    let xpi = &xp[item * item_len..][..item_len];
                    y_g.par_chunks_mut(2 * L * out_len)
                        .enumerate()
                        .for_each(|(pair, y_p)| {
                            let job = Job {
                                s,
                                deltas: &deltas,
                                packed,
                                bias,
                                g: item % s.groups,
                                b0: 2 * pair,
                                dims,
                            };
                            // SAFETY: the CPU supports AVX-512F (checked by the caller).
                            unsafe { job.run(xpi, y_p) };
                            if let Some(act) = act {
                                // SAFETY: the job wrote every value of its planes
                                forward_inplace(act, unsafe { assume_init(y_p) });
                            }
                        })
                })
        })
    })
}

/// Runs `f` on the input as zero-padded planes `(N·groups, Cin/g, Dp, Hp, Wp)` of extents
/// `dims`: the input itself when nothing is padded (its planes are laid out so already), else a
/// padded copy made in parallel.
fn with_padded<R>(s: &ConvShape, x: &[f32], dims: [usize; 3], f: impl FnOnce(&[f32]) -> R) -> R {
    if s.window
        .axes
        .iter()
        .all(|a| a.pad_begin == 0 && a.pad_end == 0)
    {
        return f(x);
    }
    let item_len = s.cin_g() * dims.iter().product::<usize>();
    scratch::with(&PADDED, s.batch * s.groups * item_len, |xp| {
        // for each (image, group), in parallel: its zero-padded input planes
        xp.par_chunks_mut(item_len)
            .enumerate()
            .for_each(|(item, xpi)| width_lanes::pad_item(s, x, item, dims, xpi));
        f(xp)
    })
}

/// One work item: channel blocks `b0, b0+1` of group `g` over one image's padded planes.
struct Job<'a> {
    s: &'a ConvShape,
    deltas: &'a [usize],
    packed: &'a [f32],
    bias: Option<&'a [f32]>,
    g: usize,
    b0: usize,
    dims: [usize; 3],
}

impl Job<'_> {
    /// Fills `y_p`, the output planes of blocks b0 (and b0+1), from the padded planes `xpi`:
    /// every value (channels of the blocks, all rows, all columns through the column blocks).
    ///
    /// # Safety
    /// The CPU must support AVX-512F; callers check [`crate::ops::simd::avx512`]. The vector loads
    /// and stores inside are not bounds-checked: the buffers must have the sizes the caller in this
    /// file sets up for them.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn run(&self, xpi: &[f32], y_p: &mut [MaybeUninit<f32>]) {
        use std::arch::x86_64::*;
        let s = self.s;
        let [ad, ah, aw] = &s.window.axes;
        let [_, hp, wp] = self.dims;
        let (cout_g, k, out_len) = (s.cout_g(), s.reduction_len(), s.window.out_len());
        let nb = cout_g.div_ceil(L);
        let blocks = (nb - self.b0).min(2);
        // lanes that hold real channels, and the accumulators' starting values (the bias)
        let lanes = |b: usize| (cout_g - (self.b0 + b) * L).min(L);
        let mut init = [_mm512_setzero_ps(); 2];
        for (b, v) in init.iter_mut().enumerate().take(blocks) {
            if let Some(bias) = self.bias {
                let bb = &bias[self.g * cout_g + (self.b0 + b) * L..][..lanes(b)];
                *v = _mm512_maskz_loadu_ps(((1u32 << lanes(b)) - 1) as u16, bb.as_ptr());
            }
        }
        // the blocks' packed weights: (blocks, k, L) from `wb`
        assert!(self.packed.len() >= (self.g * nb + self.b0 + blocks) * k * L);
        let wb = self.packed[(self.g * nb + self.b0) * k * L..].as_ptr();
        let max_delta = self.deltas.iter().copied().max().unwrap_or(0);
        let sw = aw.stride;
        // the row-reuse block where it applies (see `reuse`), else the plain one
        let row_reuse = blocks == 1 && reuse::applies(sw, aw.dilation, aw.kernel);
        let (r, starts) = column_blocks(aw.output, RMAX);
        // register blocks in order: (output row, column block) → j = row·starts + column
        let nblk = ad.output * ah.output * starts.len();
        let kc = chunk_len(k, blocks, aw.kernel);
        let mut acc = [[[_mm512_setzero_ps(); L]; 2]; TILE];
        for j0 in (0..nblk).step_by(TILE) {
            let tile = j0..(j0 + TILE).min(nblk);
            for c0 in (0..k).step_by(kc) {
                let c1 = (c0 + kc).min(k);
                for j in tile.clone() {
                    let (rw, ow0) = (j / starts.len(), starts[j % starts.len()]);
                    let (od, oh) = (rw / ah.output, rw % ah.output);
                    let row = (ad.padded_coord(od, 0) * hp + ah.padded_coord(oh, 0)) * wp;
                    let base = row + ow0 * sw;
                    // every broadcast reads xpi[base + delta + c·sw], c < r: in bounds
                    assert!(base + max_delta + (r - 1) * sw < xpi.len());
                    let p = xpi.as_ptr().add(base);
                    let a = &mut acc[j - j0];
                    if c0 == 0 {
                        for (b, ab) in a.iter_mut().enumerate() {
                            ab[..r].fill(init[b]);
                        }
                    }
                    let (d, w) = (&self.deltas[c0..c1], wb.add(c0 * L));
                    if row_reuse {
                        reuse::dispatch(r, aw.kernel, p, d, w, &mut a[0]);
                    } else {
                        dispatch(r, blocks, sw, p, d, w, k, a);
                    }
                    if c1 < k {
                        continue;
                    }
                    // lanes → channel planes: transpose each block's (column, lane) sums to
                    // (lane, column) and store r columns per channel
                    let out_row = rw * aw.output;
                    let mask = ((1u32 << r) - 1) as u16;
                    for (b, t) in a.iter().enumerate().take(blocks) {
                        let rows = transpose16(t);
                        for (lane, v) in rows.iter().enumerate().take(lanes(b)) {
                            let o = (b * L + lane) * out_len + out_row + ow0;
                            assert!(o + r <= y_p.len());
                            _mm512_mask_storeu_ps(y_p.as_mut_ptr().add(o).cast::<f32>(), mask, *v);
                        }
                    }
                }
            }
        }
    }
}

/// Register blocks that share one pass over a chunk of the weights.
const TILE: usize = 8;
/// Bytes of packed weights a chunk may hold: with the input rows it reads and the tile's sums
/// it stays in the 48 KiB L1 cache.
const CHUNK_BYTES: usize = 24 << 10;

/// Steps (input channel, tap) per weight chunk: all `k` when the blocks' weights fit
/// [`CHUNK_BYTES`], else as many whole kernel rows (`taps_row` steps each, so the row-reuse
/// block sees whole rows) as fit. Chunking keeps the weights in L1 while the TILE register
/// blocks of a tile run over them, instead of streaming every weight from L2 for each block
/// (the strided 3×3 layer, 128 → 256 channels: 15% of its forward time, 1 thread, A/B).
fn chunk_len(k: usize, blocks: usize, taps_row: usize) -> usize {
    let fit = CHUNK_BYTES / (blocks * L * 4);
    if k <= fit {
        k
    } else {
        (fit / taps_row).max(1) * taps_row
    }
}

/// Runs the register block for runtime (R, B, SW): a monomorphised [`block`] for each.
///
/// # Safety
/// The CPU must support AVX-512F; callers check [`crate::ops::simd::avx512`]. The vector loads
/// and stores inside are not bounds-checked: the buffers must have the sizes the caller in this
/// file sets up for them.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn dispatch(
    r: usize,
    blocks: usize,
    sw: usize,
    p: *const f32,
    deltas: &[usize],
    wb: *const f32,
    k: usize,
    sums: &mut [[std::arch::x86_64::__m512; L]; 2],
) {
    match (blocks, sw) {
        (1, 1) => const_dispatch!(r, R => block::<R, 1, 1>(p, deltas, wb, k, sums)),
        (1, _) => const_dispatch!(r, R => block::<R, 1, 2>(p, deltas, wb, k, sums)),
        (_, 1) => const_dispatch!(r, R => block::<R, 2, 1>(p, deltas, wb, k, sums)),
        _ => const_dispatch!(r, R => block::<R, 2, 2>(p, deltas, wb, k, sums)),
    }
}

/// R output columns (input positions `p + c·SW`) × B channel blocks: for each (input channel,
/// tap) `i`, B weight vectors `wb[b·k·L + i·L..]` times the broadcast `p[delta_i + c·SW]`,
/// added to the sums `sums[b][c]` (rows past R untouched).
///
/// # Safety
/// The CPU must support AVX-512F; callers check [`crate::ops::simd::avx512`]. The vector loads
/// and stores inside are not bounds-checked: the buffers must have the sizes the caller in this
/// file sets up for them.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn block<const R: usize, const B: usize, const SW: usize>(
    p: *const f32,
    deltas: &[usize],
    wb: *const f32,
    k: usize,
    sums: &mut [[std::arch::x86_64::__m512; L]; 2],
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); B]; R];
    for (c, a) in acc.iter_mut().enumerate() {
        for (b, v) in a.iter_mut().enumerate() {
            *v = sums[b][c];
        }
    }
    for (i, &delta) in deltas.iter().enumerate() {
        let mut wv = [_mm512_setzero_ps(); B];
        for (b, v) in wv.iter_mut().enumerate() {
            *v = _mm512_loadu_ps(wb.add((b * k + i) * L));
        }
        let q = p.add(delta);
        for (c, a) in acc.iter_mut().enumerate() {
            let xv = _mm512_set1_ps(*q.add(c * SW));
            for b in 0..B {
                a[b] = _mm512_fmadd_ps(wv[b], xv, a[b]);
            }
        }
    }
    for (c, a) in acc.iter().enumerate() {
        for (b, v) in a.iter().enumerate() {
            sums[b][c] = *v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_blocks_cover_every_column_at_full_width() {
        for (ow, rmax) in (1..200).flat_map(|ow| [(ow, RMAX), (ow, 8), (ow, 12)]) {
            let (r, starts) = column_blocks(ow, rmax);
            assert!((1..=rmax).contains(&r));
            let mut seen = vec![false; ow];
            for &s0 in &starts {
                assert!(s0 + r <= ow);
                seen[s0..s0 + r].iter_mut().for_each(|v| *v = true);
            }
            assert!(seen.iter().all(|&v| v), "ow {ow}");
        }
    }
}
