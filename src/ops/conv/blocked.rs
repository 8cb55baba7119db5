//! Direct convolution with output channels in the vector lanes (the scheme of oneDNN's direct
//! kernels): for ordinary convolutions with at least 16 output channels per group, at any
//! stride, dilation or group count, zero padding, width stride 1 or 2 ([`suits`]).
//!
//! The whole input is first copied into zero-padded planes `(N·groups, Cin/g, Dp, Hp, Wp)`, so
//! an output at padded position `base` (from geometry's `padded_coord`) reads tap `i` of input
//! channel `ic` at `xp[base + delta(ic, tap)]` with no bounds checks ([`rows::tap_deltas`]).
//! Weights are packed as `(group, block of L = 16 output channels, Cin/g·taps, L)`.
//!
//! Register block: R ≤ 14 consecutive output columns × B ≤ 2 channel blocks (28 of the 32
//! AVX-512 registers). For every (input channel, tap) it loads B weight vectors and broadcasts
//! R input values, for R·B fused multiply-adds: 0.6 loads per FMA, against 1.1 for the
//! row kernel (which loads one unaligned input vector per 8 FMAs and broadcasts every weight).
//! Lanes past `Cout/g` hold zero weights and are not stored.

use super::{rows, ConvShape};
use crate::geometry::PaddingMode;
use crate::ops::scratch;
use rayon::prelude::*;
use std::cell::RefCell;
use std::mem::MaybeUninit;

/// Output channels per vector.
const L: usize = 16;
/// Most output columns per register block.
const RMAX: usize = 14;

thread_local! {
    /// Per-thread padded copy of the input, reused across calls.
    static PADDED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Whether this kernel applies to `s`: zero padding, width stride 1 or 2.
pub fn suits(s: &ConvShape) -> bool {
    s.mode == PaddingMode::Zeros && matches!(s.window.axes[2].stride, 1 | 2)
}

/// Weights `(Cout, Cin/g·taps)` packed as `(group, channel block, Cin/g·taps, L)`; lanes past
/// `Cout/g` are zero.
fn pack_weights(s: &ConvShape, w: &[f32]) -> Vec<f32> {
    let (cout_g, k) = (s.cout_g(), s.k_len());
    let nb = cout_g.div_ceil(L);
    let mut packed = vec![0.0; s.groups * nb * k * L];
    for g in 0..s.groups {
        for oc in 0..cout_g {
            let (b, lane) = (oc / L, oc % L);
            let src = &w[(g * cout_g + oc) * k..][..k];
            for (i, v) in src.iter().enumerate() {
                packed[((g * nb + b) * k + i) * L + lane] = *v;
            }
        }
    }
    packed
}

/// Column blocks of one output row of width `ow`: `(R, starts)`, R = the block width (≤ RMAX,
/// balanced). The last block is shifted left to end at `ow`; it may recompute columns of the
/// previous one (same values), so every block runs at full width.
fn column_blocks(ow: usize) -> (usize, Vec<usize>) {
    let n = ow.div_ceil(RMAX);
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
    assert!(
        suits(s),
        "blocked::forward called on a shape it does not support"
    );
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") {
        return forward_avx512(s, x, w, bias, y);
    }
    y.iter_mut().for_each(|v| {
        v.write(0.0);
    });
    // SAFETY: every value was just initialised; same layout
    let y = unsafe { &mut *(y as *mut [MaybeUninit<f32>] as *mut [f32]) };
    super::im2col::forward(s, x, w, bias, y)
}

#[cfg(target_arch = "x86_64")]
fn forward_avx512(
    s: &ConvShape,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [MaybeUninit<f32>],
) {
    let [ad, ah, aw] = &s.window.axes;
    let dims = [ad.padded(), ah.padded(), aw.padded()];
    let item_len = s.cin_g() * dims.iter().product::<usize>();
    let deltas = rows::tap_deltas(s, dims);
    let packed = pack_weights(s, w);
    let (cout_g, out_len) = (s.cout_g(), s.window.out_len());
    scratch::with(&PADDED, s.batch * s.groups * item_len, |xp| {
        // for each (image, group), in parallel: its zero-padded input planes
        xp.par_chunks_mut(item_len)
            .enumerate()
            .for_each(|(item, xpi)| rows::pad_item(s, x, item, dims, xpi));
        let xp = &*xp;
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
                            packed: &packed,
                            bias,
                            g: item % s.groups,
                            b0: 2 * pair,
                            dims,
                        };
                        // SAFETY: the CPU supports AVX-512F (checked by the caller).
                        unsafe { job.run(xpi, y_p) }
                    })
            })
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
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn run(&self, xpi: &[f32], y_p: &mut [MaybeUninit<f32>]) {
        use std::arch::x86_64::*;
        let s = self.s;
        let [ad, ah, aw] = &s.window.axes;
        let [_, hp, wp] = self.dims;
        let (cout_g, k, out_len) = (s.cout_g(), s.k_len(), s.window.out_len());
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
        let wb = self.packed[(self.g * nb + self.b0) * k * L..].as_ptr();
        let max_delta = self.deltas.iter().copied().max().unwrap_or(0);
        let (r, starts) = column_blocks(aw.output);
        let sw = aw.stride;
        let mut tmp = [[_mm512_setzero_ps(); L]; 2];
        for od in 0..ad.output {
            for oh in 0..ah.output {
                let row = (ad.padded_coord(od, 0) * hp + ah.padded_coord(oh, 0)) * wp;
                let out_row = (od * ah.output + oh) * aw.output;
                for &ow0 in &starts {
                    let base = row + ow0 * sw;
                    // every broadcast reads xpi[base + delta + c·sw], c < r: in bounds
                    assert!(base + max_delta + (r - 1) * sw < xpi.len());
                    assert!(self.packed.len() >= (self.g * nb + self.b0 + blocks) * k * L);
                    let p = xpi.as_ptr().add(base);
                    dispatch(r, blocks, sw, p, self.deltas, wb, k, init, &mut tmp);
                    // lanes → channel planes: transpose each block's (column, lane) sums to
                    // (lane, column) and store r columns per channel
                    let mask = ((1u32 << r) - 1) as u16;
                    for (b, t) in tmp.iter().enumerate().take(blocks) {
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

/// Transposes a 16×16 block held as 16 row vectors (unpack within 128-bit lanes, then
/// shuffle the 128-bit lanes twice).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn transpose16(m: &[std::arch::x86_64::__m512; L]) -> [std::arch::x86_64::__m512; L] {
    use std::arch::x86_64::*;
    let mut t = [_mm512_setzero_ps(); L];
    for i in 0..8 {
        t[2 * i] = _mm512_unpacklo_ps(m[2 * i], m[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(m[2 * i], m[2 * i + 1]);
    }
    let mut r = [_mm512_setzero_ps(); L];
    for q in 0..4 {
        let (a, b, c, d) = (t[4 * q], t[4 * q + 1], t[4 * q + 2], t[4 * q + 3]);
        r[4 * q] = _mm512_shuffle_ps::<0x44>(a, c);
        r[4 * q + 1] = _mm512_shuffle_ps::<0xEE>(a, c);
        r[4 * q + 2] = _mm512_shuffle_ps::<0x44>(b, d);
        r[4 * q + 3] = _mm512_shuffle_ps::<0xEE>(b, d);
    }
    for h in [0, 8] {
        for i in 0..4 {
            t[h + i] = _mm512_shuffle_f32x4::<0x88>(r[h + i], r[h + i + 4]);
            t[h + i + 4] = _mm512_shuffle_f32x4::<0xDD>(r[h + i], r[h + i + 4]);
        }
    }
    for i in 0..8 {
        r[i] = _mm512_shuffle_f32x4::<0x88>(t[i], t[i + 8]);
        r[i + 8] = _mm512_shuffle_f32x4::<0xDD>(t[i], t[i + 8]);
    }
    r
}

/// Runs the register block for runtime (R, B, SW): a monomorphised [`block`] for each.
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
    init: [std::arch::x86_64::__m512; 2],
    tmp: &mut [[std::arch::x86_64::__m512; L]; 2],
) {
    macro_rules! by_r {
        ($b:literal, $sw:literal) => {
            match r {
                1 => block::<1, $b, $sw>(p, deltas, wb, k, init, tmp),
                2 => block::<2, $b, $sw>(p, deltas, wb, k, init, tmp),
                3 => block::<3, $b, $sw>(p, deltas, wb, k, init, tmp),
                4 => block::<4, $b, $sw>(p, deltas, wb, k, init, tmp),
                5 => block::<5, $b, $sw>(p, deltas, wb, k, init, tmp),
                6 => block::<6, $b, $sw>(p, deltas, wb, k, init, tmp),
                7 => block::<7, $b, $sw>(p, deltas, wb, k, init, tmp),
                8 => block::<8, $b, $sw>(p, deltas, wb, k, init, tmp),
                9 => block::<9, $b, $sw>(p, deltas, wb, k, init, tmp),
                10 => block::<10, $b, $sw>(p, deltas, wb, k, init, tmp),
                11 => block::<11, $b, $sw>(p, deltas, wb, k, init, tmp),
                12 => block::<12, $b, $sw>(p, deltas, wb, k, init, tmp),
                13 => block::<13, $b, $sw>(p, deltas, wb, k, init, tmp),
                _ => block::<14, $b, $sw>(p, deltas, wb, k, init, tmp),
            }
        };
    }
    match (blocks, sw) {
        (1, 1) => by_r!(1, 1),
        (1, _) => by_r!(1, 2),
        (_, 1) => by_r!(2, 1),
        _ => by_r!(2, 2),
    }
}

/// R output columns (input positions `p + c·SW`) × B channel blocks: for each (input channel,
/// tap) `i`, B weight vectors `wb[b·k·L + i·L..]` times the broadcast `p[delta_i + c·SW]`.
/// Writes the sums to `tmp[b][c]` (rows past R untouched).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn block<const R: usize, const B: usize, const SW: usize>(
    p: *const f32,
    deltas: &[usize],
    wb: *const f32,
    k: usize,
    init: [std::arch::x86_64::__m512; 2],
    tmp: &mut [[std::arch::x86_64::__m512; L]; 2],
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); B]; R];
    for a in acc.iter_mut() {
        for (b, v) in a.iter_mut().enumerate() {
            *v = init[b];
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
            tmp[b][c] = *v;
        }
    }
}

/// Most (input channel, tap) pairs per weight-gradient register block.
const JMAX: usize = 12;

/// Weight gradient with output channels in the lanes: `gw[oc, i] = Σ_n Σ_pos gy[n, oc, pos] ·
/// xp[n, base(pos) + delta_i]`. The output gradient is first transposed to
/// `(group, channel block, N, pos, L)`; then per work item (group, pair of channel blocks,
/// chunk of images), for each chunk of ~256 output positions, each run of up to 12 consecutive
/// (input channel, tap) pairs sweeps the chunk with 12 × 2 vector accumulators: two `gy` vector
/// loads and 12 broadcast inputs feed 24 FMAs. The chunk's `gy` stays in L1 for every run, so
/// the output gradient is read from memory once. Image chunks' sums are added at the end. `gw`: (Cout, Cin/g, kd, kh, kw),
/// overwritten. Requires [`suits`]; without AVX-512 it defers to im2col.
pub fn backward_weight(s: &ConvShape, x: &[f32], gy: &[f32], gw: &mut [f32]) {
    assert!(
        suits(s),
        "blocked::backward_weight called on a shape it does not support"
    );
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") {
        return backward_weight_avx512(s, x, gy, gw);
    }
    super::im2col::backward_weight(s, x, gy, gw)
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
    let plane = s.batch * out_len * L;
    // for each (group, channel block), in parallel
    gyt.par_chunks_mut(plane).enumerate().for_each(|(gb, t)| {
        let (g, b) = (gb / nb, gb % nb);
        let lanes = (cout_g - b * L).min(L);
        for n in 0..s.batch {
            let src = &gy[(n * s.cout + g * cout_g + b * L) * out_len..][..lanes * out_len];
            let dst = &mut t[n * out_len * L..][..out_len * L];
            // SAFETY: the caller checked AVX-512F; loads read src[lane·out + pos0 ..+m] with
            // lane < lanes, pos0 + m ≤ out; stores write dst[(pos0 + j)·L ..+L], j < m.
            unsafe { transpose_plane(src, lanes, out_len, dst) };
        }
    });
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn transpose_plane(src: &[f32], lanes: usize, out_len: usize, dst: &mut [f32]) {
    use std::arch::x86_64::*;
    assert!(src.len() >= lanes * out_len && dst.len() >= out_len * L);
    for pos0 in (0..out_len).step_by(L) {
        let m = L.min(out_len - pos0);
        let mask = ((1u32 << m) - 1) as u16;
        let mut rows = [_mm512_setzero_ps(); L];
        for (lane, r) in rows.iter_mut().enumerate().take(lanes) {
            *r = _mm512_maskz_loadu_ps(mask, src.as_ptr().add(lane * out_len + pos0));
        }
        let t = transpose16(&rows);
        for (j, v) in t.iter().enumerate().take(m) {
            _mm512_storeu_ps(dst.as_mut_ptr().add((pos0 + j) * L), *v);
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn backward_weight_avx512(s: &ConvShape, x: &[f32], gy: &[f32], gw: &mut [f32]) {
    let [ad, ah, aw] = &s.window.axes;
    let dims = [ad.padded(), ah.padded(), aw.padded()];
    let item_len = s.cin_g() * dims.iter().product::<usize>();
    let deltas = rows::tap_deltas(s, dims);
    let (cout_g, k, out_len) = (s.cout_g(), s.k_len(), s.window.out_len());
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
    scratch::with(&PADDED, s.batch * s.groups * item_len, |xp| {
        scratch::with(&GY_T, gyt_len, |gyt| {
            xp.par_chunks_mut(item_len)
                .enumerate()
                .for_each(|(item, xpi)| rows::pad_item(s, x, item, dims, xpi));
            transpose_gy(s, gy, gyt);
            let (xp, gyt) = (&*xp, &*gyt);
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
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn run(&self) -> Vec<f32> {
        let s = self.s;
        let [ad, ah, aw] = &s.window.axes;
        let (k, out_len, nb) = (
            self.deltas.len(),
            s.window.out_len(),
            s.cout_g().div_ceil(L),
        );
        let mut acc = vec![0.0f32; k.next_multiple_of(JMAX) * 2 * L];
        let _ = (ad, ah, aw);
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
                    macro_rules! by_j {
                        ($b:literal, $rows:expr) => {
                            match d.len() {
                                1 => self.sweep::<1, $b>(d, xpi, gy0, $rows, a),
                                2 => self.sweep::<2, $b>(d, xpi, gy0, $rows, a),
                                3 => self.sweep::<3, $b>(d, xpi, gy0, $rows, a),
                                4 => self.sweep::<4, $b>(d, xpi, gy0, $rows, a),
                                5 => self.sweep::<5, $b>(d, xpi, gy0, $rows, a),
                                6 => self.sweep::<6, $b>(d, xpi, gy0, $rows, a),
                                7 => self.sweep::<7, $b>(d, xpi, gy0, $rows, a),
                                8 => self.sweep::<8, $b>(d, xpi, gy0, $rows, a),
                                9 => self.sweep::<9, $b>(d, xpi, gy0, $rows, a),
                                10 => self.sweep::<10, $b>(d, xpi, gy0, $rows, a),
                                11 => self.sweep::<11, $b>(d, xpi, gy0, $rows, a),
                                _ => self.sweep::<12, $b>(d, xpi, gy0, $rows, a),
                            }
                        };
                    }
                    if self.blocks == 1 {
                        by_j!(1, rows.clone())
                    } else {
                        by_j!(2, rows.clone())
                    }
                }
            }
        }
        acc
    }

    /// J pairs (offsets `d`) × B blocks: adds Σ over the output positions `rows` (flat
    /// (od, oh, ow) indices) of one image to the accumulators `acc` as (j, b, lane).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_blocks_cover_every_column_at_full_width() {
        for ow in 1..200 {
            let (r, starts) = column_blocks(ow);
            assert!((1..=RMAX).contains(&r));
            let mut seen = vec![false; ow];
            for &s0 in &starts {
                assert!(s0 + r <= ow);
                seen[s0..s0 + r].iter_mut().for_each(|v| *v = true);
            }
            assert!(seen.iter().all(|&v| v), "ow {ow}");
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn transpose16_transposes() {
        use std::arch::x86_64::*;
        if !std::is_x86_feature_detected!("avx512f") {
            return;
        }
        let m: Vec<f32> = (0..256).map(|v| v as f32).collect();
        // SAFETY: AVX-512F checked above; every load reads 16 values of `m`
        unsafe {
            let mut rows = [_mm512_setzero_ps(); L];
            for (i, r) in rows.iter_mut().enumerate() {
                *r = _mm512_loadu_ps(m[i * L..].as_ptr());
            }
            let t = transpose16(&rows);
            for (j, v) in t.iter().enumerate() {
                let mut out = [0.0f32; L];
                _mm512_storeu_ps(out.as_mut_ptr(), *v);
                for (i, o) in out.iter().enumerate() {
                    assert_eq!(*o, m[i * L + j]);
                }
            }
        }
    }
}
