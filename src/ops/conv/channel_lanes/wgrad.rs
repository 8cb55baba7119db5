//! Weight gradient of the channel-lanes kernel: output channels in the vector lanes, the
//! output gradient transposed to `(group, channel block, N, pos, L)` first.

#[cfg(target_arch = "x86_64")]
use super::transpose_rows;
use super::{width_lanes, with_padded, ConvShape, L};
use crate::ops::scratch;
#[cfg(target_arch = "x86_64")]
use crate::ops::simd::const_dispatch;
use rayon::prelude::*;
use std::cell::RefCell;

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

thread_local! {
    /// Per-thread transposed output gradient, reused across calls.
    static GY_T: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// `gy: (N, Cout, out)` → `(group, channel block, N, out, L)`, lanes past Cout/g zero: 16
/// positions × 16 channels at a time through [`transpose16`].
#[cfg(target_arch = "x86_64")]
fn transpose_gy(s: &ConvShape, gy: &[f32], gyt: &mut [f32]) {
    let (cout_g, out_len) = (s.cout_g(), s.window.out_len());
    let nb = cout_g.div_ceil(L);
    // for each (group, channel block, image), in parallel (one block alone still splits)
    gyt.par_chunks_mut(out_len * L)
        .enumerate()
        .for_each(|(gbn, dst)| {
            let (g, b, n) = (gbn / (nb * s.batch), gbn / s.batch % nb, gbn % s.batch);
            let lanes = (cout_g - b * L).min(L);
            let src = &gy[(n * s.cout + g * cout_g + b * L) * out_len..][..lanes * out_len];
            // SAFETY: the caller checked AVX-512F; loads read src[lane·out + pos0 ..+m] with
            // lane < lanes, pos0 + m ≤ out; stores write dst[(pos0 + j)·L ..+L], j < m.
            unsafe { transpose_rows(src, lanes, out_len, dst) };
        });
}

#[cfg(target_arch = "x86_64")]
fn backward_weight_avx512(s: &ConvShape, x: &[f32], gy: &[f32], gw: &mut [f32]) {
    let [ad, ah, aw] = &s.window.axes;
    let dims = [ad.padded(), ah.padded(), aw.padded()];
    let item_len = s.cin_g() * dims.iter().product::<usize>();
    let deltas = width_lanes::tap_deltas(s, dims);
    let (cout_g, k, out_len) = (s.cout_g(), s.reduction_len(), s.window.out_len());
    let nb = cout_g.div_ceil(L);
    let pairs = nb.div_ceil(2);
    // images per work item: about two items per thread and (group, pair)
    let threads = rayon::current_num_threads();
    let per_chunk = s
        .batch
        .div_ceil((2 * threads).div_ceil(s.groups * pairs))
        .max(1);
    let chunks = s.batch.div_ceil(per_chunk);
    let gyt_len = s.groups * nb * s.batch * out_len * L;
    with_padded(s, x, dims, |xp| {
        scratch::with(&GY_T, gyt_len, |gyt| {
            transpose_gy(s, gy, gyt);
            let gyt = &*gyt;
            // for each (group, pair of channel blocks, chunk of images), in parallel: the sums
            // of every run of pairs, as (run, j, b, lane)
            let sums: Vec<(usize, Vec<f32>)> = (0..s.groups * pairs * chunks)
                .into_par_iter()
                .map(|unit| {
                    let (gp, c) = (unit / chunks, unit % chunks);
                    let (g, pair) = (gp / pairs, gp % pairs);
                    let job = WgradJob {
                        s,
                        xp,
                        gyt,
                        item_len,
                        dims,
                        g,
                        b0: 2 * pair,
                        blocks: (nb - 2 * pair).min(2),
                        deltas: &deltas,
                        images: c * per_chunk..((c + 1) * per_chunk).min(s.batch),
                    };
                    // SAFETY: the CPU supports AVX-512F (checked by the caller).
                    (gp, unsafe { job.run() })
                })
                .collect();
            // sums of (group, pair): (run, j, b, lane) → gw[g·Cout/g + (b0 + b)·L + lane, pair i]
            gw.fill(0.0);
            for (gp, acc) in sums {
                let (g, pair) = (gp / pairs, gp % pairs);
                for i in 0..k {
                    for b in 0..2 {
                        let blk = 2 * pair + b;
                        if blk >= nb {
                            continue;
                        }
                        let lanes = (cout_g - blk * L).min(L);
                        for lane in 0..lanes {
                            let oc = g * cout_g + blk * L + lane;
                            gw[oc * k + i] += acc[(i * 2 + b) * L + lane];
                        }
                    }
                }
            }
        })
    })
}

/// Output positions swept per run of pairs before the next run takes over: the output
/// gradient of this many positions (× 32 channels) stays in L1 while every run reads it.
const POS_CHUNK: usize = 256;

/// One weight-gradient work item: blocks `b0..b0+blocks` of group `g`, every (input channel,
/// tap) pair in runs of JMAX, over the images `images`.
struct WgradJob<'a> {
    s: &'a ConvShape,
    xp: &'a [f32],
    gyt: &'a [f32],
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
        let (k, out_len, nb) = (
            self.deltas.len(),
            s.window.out_len(),
            s.cout_g().div_ceil(L),
        );
        let mut acc = vec![0.0f32; k.next_multiple_of(JMAX) * 2 * L];
        for n in self.images.clone() {
            let xpi = &self.xp[(n * s.groups + self.g) * self.item_len..][..self.item_len];
            // gy of block b0 + b for image n: (out, L), blocks one (N, out, L) apart
            let gy0 = &self.gyt[((self.g * nb + self.b0) * s.batch + n) * out_len * L..];
            assert!(gy0.len() >= (self.blocks - 1) * s.batch * out_len * L + out_len * L);
            for p0 in (0..out_len).step_by(POS_CHUNK) {
                let rows = p0..(p0 + POS_CHUNK).min(out_len);
                for i0 in (0..k).step_by(JMAX) {
                    let d = &self.deltas[i0..(i0 + JMAX).min(k)];
                    let a = &mut acc[i0 * 2 * L..][..JMAX * 2 * L];
                    let rows = rows.clone();
                    if self.blocks == 1 {
                        const_dispatch!(d.len(), J => self.sweep::<J, 1>(d, xpi, gy0, rows, a))
                    } else {
                        const_dispatch!(d.len(), J => self.sweep::<J, 2>(d, xpi, gy0, rows, a))
                    }
                }
            }
        }
        acc
    }

    /// J pairs (offsets `d`) × B blocks: adds Σ over the output positions `rows` (flat
    /// (od, oh, ow) indices) of one image to the accumulators `acc` as (j, b, lane).
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
        gy0: &[f32],
        rows: std::ops::Range<usize>,
        acc: &mut [f32],
    ) {
        use std::arch::x86_64::*;
        let s = self.s;
        let [_, ah, aw] = &s.window.axes;
        let [_, hp, wp] = self.dims;
        let block_step = s.batch * s.window.out_len() * L;
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
            // reads xpi[row + ow·sw + delta] and gy0[(r·ow + ow)·L + b·block_step ..+L]
            assert!(row + (c1 - 1) * sw + max_delta < xpi.len());
            assert!((B - 1) * block_step + (r * aw.output + c1) * L <= gy0.len());
            let mut p = xpi.as_ptr().add(row + c0 * sw);
            let mut gp = gy0.as_ptr().add((r * aw.output + c0) * L);
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
