//! Weight gradient of the channel-lanes kernel: output channels in the vector lanes, each
//! work item transposing the output gradient of its channel blocks to (position, lane) one
//! position chunk at a time, into a buffer that stays in L1.

use super::{width_lanes, with_padded, ConvShape, L};
#[cfg(target_arch = "x86_64")]
use crate::ops::simd::{const_dispatch, transpose16};
use rayon::prelude::*;

/// Most (input channel, tap) pairs per weight-gradient register block.
const JMAX: usize = 12;

/// Weight gradient with output channels in the lanes: `gw[oc, i] = Σ_n Σ_pos gy[n, oc, pos] ·
/// xp[n, base(pos) + delta_i]`. The output gradient is first transposed to
/// `(group, channel block, N, pos, L)`; then per work item (group, pair of channel blocks,
/// chunk of images), for each chunk of ~256 output positions, each run of up to 12 consecutive
/// (input channel, tap) pairs sweeps the chunk with 12 × 2 vector accumulators: two `gy` vector
/// loads and 12 broadcast inputs feed 24 FMAs. The chunk's `gy` stays in L1 for every run, so
/// the output gradient is read from memory once. Image chunks' sums are added at the end. `gw`: (Cout, Cin/g, kd, kh, kw),
/// overwritten. Requires [`super::suits`]; without AVX-512 it defers to im2col.
pub fn backward_weight(s: &ConvShape, x: &[f32], gy: &[f32], gw: &mut [f32]) {
    assert!(
        super::suits(s),
        "channel_lanes::backward_weight called on a shape it does not support"
    );
    #[cfg(target_arch = "x86_64")]
    if crate::ops::simd::avx512() {
        return backward_weight_avx512(s, x, gy, gw);
    }
    crate::ops::conv::im2col::backward_weight(s, x, gy, gw)
}

#[cfg(target_arch = "x86_64")]
fn backward_weight_avx512(s: &ConvShape, x: &[f32], gy: &[f32], gw: &mut [f32]) {
    let [ad, ah, aw] = &s.window.axes;
    let dims = [ad.padded(), ah.padded(), aw.padded()];
    let item_len = s.cin_g() * dims.iter().product::<usize>();
    let deltas = width_lanes::tap_deltas(s, dims);
    let (cout_g, k) = (s.cout_g(), s.reduction_len());
    let nb = cout_g.div_ceil(L);
    let pairs = nb.div_ceil(2);
    // images per work item: about two items per thread and (group, pair)
    let threads = rayon::current_num_threads();
    let per_chunk = s
        .batch
        .div_ceil((2 * threads).div_ceil(s.groups * pairs))
        .max(1);
    let chunks = s.batch.div_ceil(per_chunk);
    with_padded(s, x, dims, |xp| {
        // for each (group, pair of channel blocks, chunk of images), in parallel: the sums
        // of every (input channel, tap) pair, as (i, b, lane)
        let sums: Vec<Vec<f32>> = (0..s.groups * pairs * chunks)
            .into_par_iter()
            .map(|unit| {
                let (gp, c) = (unit / chunks, unit % chunks);
                let (g, pair) = (gp / pairs, gp % pairs);
                let job = WgradJob {
                    s,
                    xp,
                    gy,
                    item_len,
                    dims,
                    g,
                    b0: 2 * pair,
                    blocks: (nb - 2 * pair).min(2),
                    deltas: &deltas,
                    images: c * per_chunk..((c + 1) * per_chunk).min(s.batch),
                };
                // SAFETY: the CPU supports AVX-512F (checked by the caller).
                unsafe { job.run() }
            })
            .collect();
        // for each group and channel block, in parallel: its rows of gw, the sums of its
        // pair's image chunks, (i, lane) → (lane, i) through registers
        gw.par_chunks_mut(cout_g * k)
            .enumerate()
            .for_each(|(g, gw_g)| {
                gw_g.par_chunks_mut(L * k)
                    .enumerate()
                    .for_each(|(blk, rows)| {
                        let unit0 = (g * pairs + blk / 2) * chunks;
                        let parts = &sums[unit0..unit0 + chunks];
                        // SAFETY: the CPU supports AVX-512F (checked by the caller)
                        unsafe { unpack_sums(parts, blk % 2, k, rows) };
                    })
            });
    })
}

/// `rows[lane·k + i] = Σ_parts part[(i·2 + b)·L + lane]` for the `rows.len() / k` lanes of
/// block `b` of a pair: the image chunks' sums added and transposed to gw's (channel, i) rows.
///
/// # Safety
/// The CPU must support AVX-512F; `parts` hold at least `k·2·L` values each.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn unpack_sums(parts: &[Vec<f32>], b: usize, k: usize, rows: &mut [f32]) {
    use std::arch::x86_64::*;
    let lanes = rows.len() / k;
    assert!(parts.iter().all(|p| p.len() >= k * 2 * L));
    for i0 in (0..k).step_by(L) {
        let m = L.min(k - i0);
        let mut t = [_mm512_setzero_ps(); L];
        for (j, v) in t.iter_mut().enumerate().take(m) {
            for p in parts {
                *v = _mm512_add_ps(*v, _mm512_loadu_ps(p.as_ptr().add(((i0 + j) * 2 + b) * L)));
            }
        }
        let mask = ((1u32 << m) - 1) as u16;
        for (lane, v) in transpose16(&t).iter().enumerate().take(lanes) {
            _mm512_mask_storeu_ps(rows.as_mut_ptr().add(lane * k + i0), mask, *v);
        }
    }
}

/// Output positions swept per run of pairs before the next run takes over: the output
/// gradient of this many positions (× 32 channels), transposed into an L1 buffer, stays there
/// while every run reads it.
const POS_CHUNK: usize = 256;

/// One weight-gradient work item: blocks `b0..b0+blocks` of group `g`, every (input channel,
/// tap) pair in runs of JMAX, over the images `images`.
struct WgradJob<'a> {
    s: &'a ConvShape,
    xp: &'a [f32],
    /// The output gradient `(N, Cout, out)`.
    gy: &'a [f32],
    item_len: usize,
    dims: [usize; 3],
    g: usize,
    b0: usize,
    blocks: usize,
    deltas: &'a [usize],
    images: std::ops::Range<usize>,
}

impl WgradJob<'_> {
    /// The sums as `(pair i, b, lane)` with b < 2: for each image and chunk of output rows,
    /// every run of pairs sweeps the chunk, its accumulators kept in memory between chunks.
    ///
    /// # Safety
    /// The CPU must support AVX-512F; callers check [`crate::ops::simd::avx512`]. The vector loads
    /// and stores inside are not bounds-checked: the buffers must have the sizes the caller in this
    /// file sets up for them.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn run(&self) -> Vec<f32> {
        let s = self.s;
        let (k, out_len) = (self.deltas.len(), s.window.out_len());
        let mut acc = vec![0.0f32; k.next_multiple_of(JMAX) * 2 * L];
        // the chunk's output gradient of block b0 + b: (position, lane) at b·POS_CHUNK·L
        let mut chunk = vec![0.0f32; 2 * POS_CHUNK * L];
        let cout_g = s.cout_g();
        for n in self.images.clone() {
            let xpi = &self.xp[(n * s.groups + self.g) * self.item_len..][..self.item_len];
            for p0 in (0..out_len).step_by(POS_CHUNK) {
                let rows = p0..(p0 + POS_CHUNK).min(out_len);
                for b in 0..self.blocks {
                    let blk = self.b0 + b;
                    let lanes = (cout_g - blk * L).min(L);
                    let oc0 = n * s.cout + self.g * cout_g + blk * L;
                    let src = &self.gy[oc0 * out_len + p0..];
                    let dst = &mut chunk[b * POS_CHUNK * L..][..POS_CHUNK * L];
                    crate::ops::simd::transpose_rows(src, out_len, lanes, rows.len(), dst, L);
                }
                for i0 in (0..k).step_by(JMAX) {
                    let d = &self.deltas[i0..(i0 + JMAX).min(k)];
                    let a = &mut acc[i0 * 2 * L..][..JMAX * 2 * L];
                    let rows = rows.clone();
                    if self.blocks == 1 {
                        const_dispatch!(d.len(), J => self.sweep::<J, 1>(d, xpi, &chunk, rows, a))
                    } else {
                        const_dispatch!(d.len(), J => self.sweep::<J, 2>(d, xpi, &chunk, rows, a))
                    }
                }
            }
        }
        acc
    }

    /// J pairs (offsets `d`) × B blocks: adds Σ over the output positions `rows` (flat
    /// (od, oh, ow) indices) of one image to the accumulators `acc` as (j, b, lane); `gyc`
    /// holds the positions' output gradient from `rows.start` on, block b at b·POS_CHUNK·L.
    ///
    /// # Safety
    /// The CPU must support AVX-512F; callers check [`crate::ops::simd::avx512`]. The vector loads
    /// and stores inside are not bounds-checked: the buffers must have the sizes the caller in this
    /// file sets up for them.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn sweep<const J: usize, const B: usize>(
        &self,
        d: &[usize],
        xpi: &[f32],
        gyc: &[f32],
        rows: std::ops::Range<usize>,
        acc: &mut [f32],
    ) {
        use std::arch::x86_64::*;
        let s = self.s;
        let [_, ah, aw] = &s.window.axes;
        let [_, hp, wp] = self.dims;
        let block_step = POS_CHUNK * L;
        let mut dj = [0usize; J];
        dj.copy_from_slice(d);
        let max_delta = dj.iter().copied().max().unwrap_or(0);
        let sw = aw.stride;
        assert!(acc.len() >= J * 2 * L);
        let mut a = [[_mm512_setzero_ps(); B]; J];
        for (j, aj) in a.iter_mut().enumerate() {
            for (b, v) in aj.iter_mut().enumerate() {
                *v = _mm512_loadu_ps(acc.as_ptr().add((j * 2 + b) * L));
            }
        }
        // for each output row that the positions touch, columns c0..c1 of it
        for r in rows.start / aw.output..rows.end.div_ceil(aw.output) {
            let c0 = rows.start.saturating_sub(r * aw.output);
            let c1 = (rows.end - r * aw.output).min(aw.output);
            let (od, oh) = (r / ah.output, r % ah.output);
            let axes = &s.window.axes;
            let row = (axes[0].padded_coord(od, 0) * hp + ah.padded_coord(oh, 0)) * wp;
            // reads xpi[row + ow·sw + delta] and gyc[(r·ow + ow − start)·L + b·block_step ..+L]
            let at = r * aw.output + c0 - rows.start;
            assert!(row + (c1 - 1) * sw + max_delta < xpi.len());
            assert!((B - 1) * block_step + (at + c1 - c0) * L <= gyc.len());
            let mut p = xpi.as_ptr().add(row + c0 * sw);
            let mut gp = gyc.as_ptr().add(at * L);
            for _ in c0..c1 {
                let mut gv = [_mm512_setzero_ps(); B];
                for (b, v) in gv.iter_mut().enumerate() {
                    *v = _mm512_loadu_ps(gp.add(b * block_step));
                }
                for (aj, &o) in a.iter_mut().zip(&dj) {
                    let xv = _mm512_set1_ps(*p.add(o));
                    for b in 0..B {
                        aj[b] = _mm512_fmadd_ps(gv[b], xv, aj[b]);
                    }
                }
                p = p.add(sw);
                gp = gp.add(L);
            }
        }
        for (j, aj) in a.iter().enumerate() {
            for (b, v) in aj.iter().enumerate() {
                _mm512_storeu_ps(acc.as_mut_ptr().add((j * 2 + b) * L), *v);
            }
        }
    }
}
