//! The input gradient of a convolution strided 2 along the width, row by row, without col2im
//! (`strided-rows` in reports): for layers with few input channels, such as a 7×7 stem on RGB
//! images, whose sub-pixel phases ([`super::subpixel`]) would be forward problems with 3 output
//! channels that no direct kernel fills.
//!
//! Input-gradient row `(id, ih)` of channel `ic` (group g) sums, over the windows that read it
//! (`readers` of geometry's depth and height axes: tap `kd` at output depth `od`, tap `kh` at
//! output row `oh`), over the group's output channels and the width taps `kw`:
//!
//! `gx[n, ic, id, ih, 2·ow + kw − pw] += w[oc, icg, kd, kh, kw] · gy[n, oc, od, oh, ow]`.
//!
//! Per block of 16·V consecutive output columns `ow` (in the vector lanes), KW × V accumulators
//! `a[kw] = Σ_{(kd, od), (kh, oh), oc} w[oc, icg, kd, kh, kw] · gy[n, oc, od, oh, ow..]` take
//! V gy loads and KW broadcast weights per step for KW·V FMAs; no product meets padding. The
//! stride then spreads them: taps 2j and 2j + 1 interleaved (`a[2j][ow], a[2j+1][ow]` for
//! consecutive `ow`) are 32 consecutive padded columns from `2·ow0 + 2j`, shifted into place
//! in registers (`valignd`) and added into a row buffer in padded columns, whose
//! `pw..pw + W` part is the row of `gx`. Every value of `gx` is written once, by the work item
//! (image, strip of rows) that owns its row, so the result does not depend on the thread count.
//!
//! Applies ([`applies`]) with zero padding, dilation 1, width stride 2, at most [`MAX_KW`] width
//! taps, any depth and height stride, groups, 1-D to 3-D, and AVX-512 (elsewhere the caller
//! takes another form). The reference is the direct scatter ([`super::direct::backward_input`]).

use super::ConvShape;
use crate::geometry::PaddingMode;
use crate::ops::scratch;
use crate::ops::uninit::SharedOut;
use rayon::prelude::*;
use std::cell::RefCell;
use std::mem::MaybeUninit;

/// Output columns per vector.
const L: usize = 16;
/// Most width taps (four interleaved pairs).
pub const MAX_KW: usize = 8;
/// Packed weights per (input channel, kd, kh, output channel): the KW taps, zeros past KW.
const KWP: usize = 8;
/// Values of packed output-gradient rows per work item (512 KiB, in L2): a strip of input rows
/// reads about strip / stride + KH output rows, each packed once per strip.
const PACKED_VALUES: usize = 1 << 17;

thread_local! {
    /// Per-thread row buffers (per row of a strip and input channel), reused across calls.
    static ROWS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// Per-thread packed output-gradient rows, reused across calls.
    static GY_ROWS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Whether this kernel applies to `s`: zero padding, dilation 1, width stride 2, at most
/// [`MAX_KW`] width taps, AVX-512.
pub fn applies(s: &ConvShape) -> bool {
    let aw = &s.window.axes[2];
    s.mode == PaddingMode::Zeros
        && s.window.axes.iter().all(|a| a.dilation == 1)
        && aw.stride == 2
        && aw.kernel <= MAX_KW
        && crate::ops::simd::avx512()
}

/// Vectors of output columns per register block for `kw` width taps: KW·V ≤ 16 accumulators,
/// V ≤ 4. (With 21, 7 taps × 3 vectors, the compiler spilled accumulators to the stack in the
/// inner loop.)
fn vectors_for(kw: usize) -> usize {
    (16 / kw).clamp(1, 4)
}

/// The register blocks of a row of `nv` output-column vectors: (first vector, vectors), as
/// even as `vectors_for(kw)` allows.
fn blocks(nv: usize, kw: usize) -> Vec<(usize, usize)> {
    let nb = nv.div_ceil(vectors_for(kw));
    let (base, extra) = (nv / nb, nv % nb);
    let mut v0 = 0;
    (0..nb)
        .map(|b| {
            let v = base + usize::from(b < extra);
            v0 += v;
            (v0 - v, v)
        })
        .collect()
}

/// Weights `(Cout, Cin/g, KD, KH, KW)` as `(groups, Cin/g, KD, KH, Cout/g, KWP)`: the width taps
/// of one (input channel, kd, kh) for consecutive output channels are consecutive runs of 8.
fn pack_weights(s: &ConvShape, w: &[f32]) -> Vec<f32> {
    let [ad, ah, aw] = &s.window.axes;
    let (cin_g, cout_g, kw) = (s.cin_g(), s.cout_g(), aw.kernel);
    let rows = ad.kernel * ah.kernel;
    let mut wp = vec![0.0; s.groups * cin_g * rows * cout_g * KWP];
    for (f, taps) in w.chunks_exact(rows * kw).enumerate() {
        // f = (g·Cout/g + ocg)·Cin/g + icg
        let (oc, icg) = (f / cin_g, f % cin_g);
        let (g, ocg) = (oc / cout_g, oc % cout_g);
        for (r, row) in taps.chunks_exact(kw).enumerate() {
            let at = (((g * cin_g + icg) * rows + r) * cout_g + ocg) * KWP;
            wp[at..at + kw].copy_from_slice(row);
        }
    }
    wp
}

/// Input gradient `gx: (N, Cin, D, H, W)` (every value written) from `gy: (N, Cout, OD, OH,
/// OW)` and `w: (Cout, Cin/g, KD, KH, KW)`. Requires [`applies`].
pub fn backward_input(s: &ConvShape, gy: &[f32], w: &[f32], gx: &mut [MaybeUninit<f32>]) {
    assert!(applies(s), "strided_rows on a shape it does not support");
    let [ad, ah, aw] = &s.window.axes;
    let (cin_g, cout_g, kw) = (s.cin_g(), s.cout_g(), aw.kernel);
    assert_eq!(gy.len(), s.batch * s.cout * s.window.out_len());
    assert_eq!(gx.len(), s.batch * s.cin * s.window.in_len());
    let wp = pack_weights(s, w);
    let taps_dh = ad.kernel * ah.kernel;
    let rows = ad.input * ah.input;
    let nv = aw.output.div_ceil(L);
    // a packed output-gradient row: OW columns and zeros up to whole vectors
    let owp = nv * L;
    let blocks = blocks(nv, kw);
    // the row buffer in padded columns: every block's 2·V + 1 vectors, and the row itself
    let row_len = (2 * owp + L).max(aw.pad_begin + aw.input);
    // input rows per work item: their packed output rows within PACKED_VALUES
    let strip_len = (PACKED_VALUES * ah.stride / (cout_g * owp).max(1)).clamp(4, 64);
    let strips = rows.div_ceil(strip_len);
    let out = SharedOut::uninit(gx);
    // for each (image, strip of rows), in parallel: those rows of every input channel
    (0..s.batch * strips).into_par_iter().for_each(|item| {
        let (n, strip) = (item / strips, item % strips);
        let strip_rows = strip * strip_len..((strip + 1) * strip_len).min(rows);
        // the output-gradient rows (od, oh) the strip's rows read, and per row its windows as
        // (index into those rows, packed-weight row kd·KH + kh)
        let mut needed: Vec<(usize, usize)> = Vec::new();
        let mut taps: Vec<Vec<(usize, usize)>> = Vec::new();
        for r in strip_rows.clone() {
            let (id, ih) = (r / ah.input, r % ah.input);
            let mut row_taps = Vec::new();
            for (td, od) in ad.readers(id) {
                for (th, oh) in ah.readers(ih) {
                    let k = match needed.iter().position(|&q| q == (od, oh)) {
                        Some(k) => k,
                        None => {
                            needed.push((od, oh));
                            needed.len() - 1
                        }
                    };
                    row_taps.push((k, td * ah.kernel + th));
                }
            }
            taps.push(row_taps);
        }
        let nr = strip_rows.len();
        scratch::with(&ROWS, nr * s.cin * row_len, |buf| {
            buf.fill(0.0);
            scratch::with(&GY_ROWS, needed.len() * cout_g * owp, |packed| {
                for g in 0..s.groups {
                    // the group's needed rows as (row, Cout/g, OWp): consecutive channels of a
                    // row 4·OWp bytes apart (in gy they are a whole plane apart, and 64 planes of
                    // the stem's 112 × 112 fell into 4 sets of the L1 cache)
                    for (k, &(od, oh)) in needed.iter().enumerate() {
                        for ocg in 0..cout_g {
                            let src = (((n * s.cout + g * cout_g + ocg) * ad.output + od)
                                * ah.output
                                + oh)
                                * aw.output;
                            let dst = &mut packed[(k * cout_g + ocg) * owp..][..owp];
                            dst[..aw.output].copy_from_slice(&gy[src..src + aw.output]);
                            dst[aw.output..].fill(0.0);
                        }
                    }
                    for (ri, row_taps) in taps.iter().enumerate() {
                        for &(v0, v) in &blocks {
                            let ow0 = v0 * L;
                            for icg in 0..cin_g {
                                let ic = g * cin_g + icg;
                                let wr = &wp[(g * cin_g + icg) * taps_dh * cout_g * KWP..]
                                    [..taps_dh * cout_g * KWP];
                                let row = &mut buf[(ri * s.cin + ic) * row_len..][..row_len];
                                // SAFETY: AVX-512F (`applies`); the gy loads stay in `packed`
                                // (row k < needed, channel < Cout/g, columns ow0 + 16·V ≤ OWp),
                                // the weights read in `wr` (KD·KH rows × Cout/g × 8), and the
                                // row's stores end at 2·ow0 + 16·(2V + 1) ≤ 2·OWp + 16 ≤ row_len.
                                unsafe {
                                    let job = Job {
                                        gy: packed.as_ptr().add(ow0),
                                        taps: row_taps,
                                        row_step: cout_g * owp,
                                        chan_step: owp,
                                        wp: wr.as_ptr(),
                                        cout_g,
                                        row: row.as_mut_ptr().add(2 * ow0),
                                    };
                                    dispatch(&job, v, kw)
                                }
                            }
                        }
                    }
                }
            });
            // the rows of every channel: padded columns pw..pw + W (a row no window reads,
            // floor mode's trailing inputs, stays 0)
            for (ri, r) in strip_rows.clone().enumerate() {
                for ic in 0..s.cin {
                    let at = ((n * s.cin + ic) * rows + r) * aw.input;
                    let src = &buf[(ri * s.cin + ic) * row_len + aw.pad_begin..][..aw.input];
                    // SAFETY: in bounds (`at` asserts); only this item writes row r of image n.
                    unsafe {
                        std::ptr::copy_nonoverlapping(src.as_ptr(), out.at(at, aw.input), aw.input)
                    };
                }
            }
        })
    });
}

/// One register block's inputs: the output gradient at (group's first channel, block's first
/// column), the reading windows, and where the block's row goes.
struct Job<'a> {
    /// The packed output-gradient rows `(row, Cout/g, OWp)` at the block's first column.
    gy: *const f32,
    /// (packed row, packed-weight row kd·KH + kh) per reading window.
    taps: &'a [(usize, usize)],
    /// Steps between packed rows and between channels of a row.
    row_step: usize,
    chan_step: usize,
    /// Packed weights of the input channel: (KD·KH, Cout/g, KWP).
    wp: *const f32,
    cout_g: usize,
    /// The row buffer at padded column 2·ow0.
    row: *mut f32,
}

/// [`block`] for the runtime (V, KW): one monomorphised copy per pair.
///
/// # Safety
/// As [`block`].
#[cfg(target_arch = "x86_64")]
unsafe fn dispatch(job: &Job, v: usize, kw: usize) {
    macro_rules! by_kw {
        ($v:literal) => {
            match kw {
                1 => block::<$v, 1>(job),
                2 => block::<$v, 2>(job),
                3 => block::<$v, 3>(job),
                4 => block::<$v, 4>(job),
                5 => block::<$v, 5>(job),
                6 => block::<$v, 6>(job),
                7 => block::<$v, 7>(job),
                8 => block::<$v, 8>(job),
                _ => unreachable!("width taps above MAX_KW"),
            }
        };
    }
    match v {
        1 => by_kw!(1),
        2 => by_kw!(2),
        3 => by_kw!(3),
        4 => by_kw!(4),
        _ => unreachable!("a register block above 4 vectors"),
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn dispatch(_: &Job, _: usize, _: usize) {
    unreachable!("strided_rows runs under AVX-512 only (`applies`)")
}

/// The block: V vectors of output columns × KW taps of accumulators over every reading window
/// and output channel, then spread into the row buffer (module docs).
///
/// # Safety
/// The CPU must support AVX-512F; the job's pointers must cover what it reads and writes (see
/// the caller).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn block<const V: usize, const KW: usize>(job: &Job) {
    use std::arch::x86_64::*;
    let z = _mm512_setzero_ps();
    // acc[t·V + v]: tap t, vector v (one flat array of constant indices stays in registers;
    // an array of arrays was spilled to the stack)
    let mut acc = [z; 24];
    for &(k, w_row) in job.taps {
        let mut g = job.gy.add(k * job.row_step);
        let mut wr = job.wp.add(w_row * job.cout_g * KWP);
        for _ in 0..job.cout_g {
            let mut xv = [z; 4];
            for (v, x) in xv.iter_mut().enumerate().take(V) {
                *x = _mm512_loadu_ps(g.add(v * L));
            }
            for t in 0..KW {
                let b = _mm512_set1_ps(*wr.add(t));
                for v in 0..V {
                    acc[t * V + v] = _mm512_fmadd_ps(b, xv[v], acc[t * V + v]);
                }
            }
            g = g.add(job.chan_step);
            wr = wr.add(KWP);
        }
    }
    // taps 2j, 2j + 1 interleaved: lanes (a0 b0 … a7 b7) and (a8 b8 … a15 b15)
    let lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    let hi = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    // the block's 2·V + 1 vectors of padded columns from 2·ow0 (at most 9)
    let mut out = [z; 9];
    for v in 0..V {
        for j in 0..KW.div_ceil(2) {
            let a = acc[2 * j * V + v];
            let b = if 2 * j + 1 < KW {
                acc[(2 * j + 1) * V + v]
            } else {
                z
            };
            let p0 = _mm512_permutex2var_ps(a, lo, b);
            let p1 = _mm512_permutex2var_ps(a, hi, b);
            // (p0, p1) start 2j columns into vector 2v: shift across vectors 2v..2v + 2
            let [s0, s1, s2] = shift_pair(p0, p1, j);
            out[2 * v] = _mm512_add_ps(out[2 * v], s0);
            out[2 * v + 1] = _mm512_add_ps(out[2 * v + 1], s1);
            out[2 * v + 2] = _mm512_add_ps(out[2 * v + 2], s2);
        }
    }
    for (i, o) in out.iter().enumerate().take(2 * V + 1) {
        let p = job.row.add(i * L);
        _mm512_storeu_ps(p, _mm512_add_ps(_mm512_loadu_ps(p), *o));
    }
}

/// 32 values `(p0, p1)` moved 2j lanes later across three vectors: `[0…0 p0[..16−2j]]`,
/// `[p0[16−2j..] p1[..16−2j]]`, `[p1[16−2j..] 0…0]` (`valignd` of neighbouring vectors).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn shift_pair(
    p0: std::arch::x86_64::__m512,
    p1: std::arch::x86_64::__m512,
    j: usize,
) -> [std::arch::x86_64::__m512; 3] {
    use std::arch::x86_64::*;
    let (a, b, z) = (
        _mm512_castps_si512(p0),
        _mm512_castps_si512(p1),
        _mm512_setzero_si512(),
    );
    // valignd(hi, lo, k): lanes k..k + 16 of the 32 lanes (lo, hi)
    macro_rules! spread {
        ($k:literal) => {
            [
                _mm512_alignr_epi32::<$k>(a, z),
                _mm512_alignr_epi32::<$k>(b, a),
                _mm512_alignr_epi32::<$k>(z, b),
            ]
        };
    }
    let r = match j {
        0 => return [p0, p1, _mm512_setzero_ps()],
        1 => spread!(14),
        2 => spread!(12),
        _ => spread!(10),
    };
    r.map(|v| _mm512_castsi512_ps(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_cover_the_row_evenly() {
        for kw in 1..=MAX_KW {
            for nv in 1..40 {
                let b = blocks(nv, kw);
                assert_eq!(b.iter().map(|&(_, v)| v).sum::<usize>(), nv);
                assert!(b.iter().all(|&(_, v)| (1..=vectors_for(kw)).contains(&v)));
                assert!(b.windows(2).all(|p| p[0].0 + p[0].1 == p[1].0));
            }
        }
    }
}
