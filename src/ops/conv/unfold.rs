//! im2col and its adjoint col2im: the column matrix `cols: (Cin/g · kd·kh·kw, out cells)` of
//! one image-group (row = (input channel, kernel tap), column = output cell), and the scatter of
//! such a matrix back onto the input.
//!
//! Fast path: first copy the input planes into a padded scratch `(Cin/g, Dp, Hp, Wp)` whose
//! padding is filled as the padding mode says (geometry's `map_coord`); then every row of `cols`
//! is, per output row, a plain strided copy from the padded plane at padded coordinate
//! `o·s + t·d` (geometry's `padded_coord`) — no bounds logic in the inner loop. col2im is the
//! exact adjoint: scatter-add into a zeroed padded plane, then fold the padding back onto the
//! pixels it copied (dropped for zero padding).
//! The references ask the geometry for every (row, column) and are what the tests compare with.

use super::ConvShape;
use crate::ops::scratch;
use std::cell::RefCell;

thread_local! {
    /// Per-thread padded planes, reused across calls.
    static PADDED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Values in one image-group's padded planes: `Cin/g · Dp · Hp · Wp`.
pub fn padded_len(s: &ConvShape) -> usize {
    s.cin_g() * s.window.axes.iter().map(|a| a.padded()).product::<usize>()
}

/// Copies `x_g: (Cin/g, D, H, W)` into `xp: (Cin/g, Dp, Hp, Wp)`, padding filled per the mode.
pub fn pad_planes(s: &ConvShape, x_g: &[f32], xp: &mut [f32]) {
    let [ad, ah, aw] = &s.window.axes;
    let (dp, hp, wp) = (ad.padded(), ah.padded(), aw.padded());
    let in_len = s.window.in_len();
    // source column of every padded column (None = zero)
    let cols: Vec<Option<usize>> = (0..wp).map(|c| aw.padded_source(c, s.mode)).collect();
    for icg in 0..s.cin_g() {
        let x_plane = &x_g[icg * in_len..][..in_len];
        for d in 0..dp {
            let sd = ad.padded_source(d, s.mode);
            for h in 0..hp {
                let sh = ah.padded_source(h, s.mode);
                let dst = &mut xp[((icg * dp + d) * hp + h) * wp..][..wp];
                let (Some(sd), Some(sh)) = (sd, sh) else {
                    dst.fill(0.0);
                    continue;
                };
                let src = &x_plane[(sd * ah.input + sh) * aw.input..][..aw.input];
                // the interior is one contiguous copy; the borders follow the mode
                let (pb, n) = (aw.pad_begin, aw.input);
                dst[pb..pb + n].copy_from_slice(src);
                for c in (0..pb).chain(pb + n..wp) {
                    dst[c] = cols[c].map_or(0.0, |sc| src[sc]);
                }
            }
        }
    }
}

/// The adjoint of [`pad_planes`]: adds every padded cell of `gp: (Cin/g, Dp, Hp, Wp)` to the
/// input pixel it copies in `gx_g: (Cin/g, D, H, W)` (cells of zero padding are dropped).
pub fn unpad_planes_add(s: &ConvShape, gp: &[f32], gx_g: &mut [f32]) {
    let [ad, ah, aw] = &s.window.axes;
    let (dp, hp, wp) = (ad.padded(), ah.padded(), aw.padded());
    let in_len = s.window.in_len();
    let cols: Vec<Option<usize>> = (0..wp).map(|c| aw.padded_source(c, s.mode)).collect();
    for icg in 0..s.cin_g() {
        let gx_plane = &mut gx_g[icg * in_len..][..in_len];
        for d in 0..dp {
            let Some(sd) = ad.padded_source(d, s.mode) else {
                continue;
            };
            for h in 0..hp {
                let Some(sh) = ah.padded_source(h, s.mode) else {
                    continue;
                };
                let src = &gp[((icg * dp + d) * hp + h) * wp..][..wp];
                let dst = &mut gx_plane[(sd * ah.input + sh) * aw.input..][..aw.input];
                let (pb, n) = (aw.pad_begin, aw.input);
                for (dv, sv) in dst.iter_mut().zip(&src[pb..pb + n]) {
                    *dv += sv;
                }
                for c in (0..pb).chain(pb + n..wp) {
                    if let Some(sc) = cols[c] {
                        dst[sc] += src[c];
                    }
                }
            }
        }
    }
}

/// Calls `f(row, j0, src0, n)` for every run of one row of `cols` over output cells `o0..o1`:
/// `cols[row][j0 + j] ↔ xp[src0 + j·sw]` for `j < n` (one run per output row (od, oh)).
#[inline(always)]
fn for_each_run(
    s: &ConvShape,
    o0: usize,
    o1: usize,
    mut f: impl FnMut(usize, usize, usize, usize),
) {
    let [ad, ah, aw] = &s.window.axes;
    let (dp, hp, wp) = (ad.padded(), ah.padded(), aw.padded());
    let (ow_n, oh_n) = (aw.output, ah.output);
    // the output row and column where the tile starts
    let (od0, oh0, ow0) = (o0 / (oh_n * ow_n), (o0 / ow_n) % oh_n, o0 % ow_n);
    let mut row = 0;
    // for each input channel and kernel tap (td, th, tw): one row of cols
    for icg in 0..s.cin_g() {
        for td in 0..ad.kernel {
            for th in 0..ah.kernel {
                for tw in 0..aw.kernel {
                    // for each output row (od, oh) overlapping the tile
                    let (mut od, mut oh, mut ow, mut j0) = (od0, oh0, ow0, 0);
                    while j0 < o1 - o0 {
                        let n = (ow_n - ow).min(o1 - o0 - j0);
                        let src0 = ((icg * dp + ad.padded_coord(od, td)) * hp
                            + ah.padded_coord(oh, th))
                            * wp
                            + aw.padded_coord(ow, tw);
                        f(row, j0, src0, n);
                        j0 += n;
                        ow = 0;
                        oh += 1;
                        if oh == oh_n {
                            oh = 0;
                            od += 1;
                        }
                    }
                    row += 1;
                }
            }
        }
    }
}

/// im2col from padded planes `xp` (see [`pad_planes`]) into `cols` with row stride `ld`.
pub fn unfold_padded(s: &ConvShape, xp: &[f32], o0: usize, o1: usize, cols: &mut [f32], ld: usize) {
    #[cfg(target_arch = "x86_64")]
    if crate::ops::simd::avx512() {
        // SAFETY: the CPU supports the features the function is compiled for.
        return unsafe { unfold_padded_avx512(s, xp, o0, o1, cols, ld) };
    }
    unfold_padded_body(s, xp, o0, o1, cols, ld)
}

/// [`unfold_padded`] compiled for AVX-512 (the copy loops vectorised 16 wide).
///
/// # Safety
/// The CPU must support the features enabled here; callers check [`crate::ops::simd::avx512`].
/// The body itself is safe code.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2")]
unsafe fn unfold_padded_avx512(
    s: &ConvShape,
    xp: &[f32],
    o0: usize,
    o1: usize,
    cols: &mut [f32],
    ld: usize,
) {
    unfold_padded_body(s, xp, o0, o1, cols, ld)
}

#[inline(always)]
fn unfold_padded_body(
    s: &ConvShape,
    xp: &[f32],
    o0: usize,
    o1: usize,
    cols: &mut [f32],
    ld: usize,
) {
    let sw = s.window.axes[2].stride;
    for_each_run(s, o0, o1, |row, j0, src0, n| {
        let dst = &mut cols[row * ld + j0..][..n];
        if sw == 1 {
            let src = &xp[src0..src0 + n];
            for (d, v) in dst.iter_mut().zip(src) {
                *d = *v;
            }
        } else {
            for (j, d) in dst.iter_mut().enumerate() {
                *d = xp[src0 + j * sw];
            }
        }
    });
}

/// col2im into padded planes: `gp[src] += cols[row][j]` for every entry (the adjoint of
/// [`unfold_padded`]).
pub fn fold_padded(s: &ConvShape, cols: &[f32], o0: usize, o1: usize, gp: &mut [f32], ld: usize) {
    #[cfg(target_arch = "x86_64")]
    if crate::ops::simd::avx512() {
        // SAFETY: the CPU supports the features the function is compiled for.
        return unsafe { fold_padded_avx512(s, cols, o0, o1, gp, ld) };
    }
    fold_padded_body(s, cols, o0, o1, gp, ld)
}

/// [`fold_padded`] compiled for AVX-512 (the add loops vectorised 16 wide).
///
/// # Safety
/// The CPU must support the features enabled here; callers check [`crate::ops::simd::avx512`].
/// The body itself is safe code.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2")]
unsafe fn fold_padded_avx512(
    s: &ConvShape,
    cols: &[f32],
    o0: usize,
    o1: usize,
    gp: &mut [f32],
    ld: usize,
) {
    fold_padded_body(s, cols, o0, o1, gp, ld)
}

#[inline(always)]
fn fold_padded_body(s: &ConvShape, cols: &[f32], o0: usize, o1: usize, gp: &mut [f32], ld: usize) {
    let sw = s.window.axes[2].stride;
    for_each_run(s, o0, o1, |row, j0, src0, n| {
        let src = &cols[row * ld + j0..][..n];
        if sw == 1 {
            for (d, v) in gp[src0..src0 + n].iter_mut().zip(src) {
                *d += v;
            }
        } else {
            for (j, v) in src.iter().enumerate() {
                gp[src0 + j * sw] += v;
            }
        }
    });
}

/// Unfolds output cells `o0..o1` of one image-group `x_g: (Cin/g, D, H, W)` into
/// `cols: (Cin/g·taps, o1 - o0)`, row-major. Padding taps read 0 (or the mode's copy).
pub fn unfold(s: &ConvShape, x_g: &[f32], o0: usize, o1: usize, cols: &mut [f32]) {
    unfold_strided(s, x_g, o0, o1, cols, o1 - o0)
}

/// As [`unfold`], with row stride `ld >= o1 - o0` in `cols`.
pub fn unfold_strided(
    s: &ConvShape,
    x_g: &[f32],
    o0: usize,
    o1: usize,
    cols: &mut [f32],
    ld: usize,
) {
    scratch::with(&PADDED, padded_len(s), |xp| {
        pad_planes(s, x_g, xp);
        unfold_padded(s, xp, o0, o1, cols, ld);
    })
}

/// The adjoint of [`unfold`] (col2im): adds each entry of `cols: (Cin/g·taps, o1 - o0)` to the
/// input pixel it was read from in `gx_g: (Cin/g, D, H, W)`. Entries read from zero padding are
/// dropped; entries read from a copied pixel (reflect, replicate, circular) go to that pixel.
pub fn fold(s: &ConvShape, cols: &[f32], o0: usize, o1: usize, gx_g: &mut [f32]) {
    scratch::with(&PADDED, padded_len(s), |gp| {
        gp.fill(0.0);
        fold_padded(s, cols, o0, o1, gp, o1 - o0);
        unpad_planes_add(s, gp, gx_g);
    })
}

/// The reference unfold: every (row, output cell) asks the geometry for its source pixel.
pub fn unfold_reference(
    s: &ConvShape,
    x_g: &[f32],
    o0: usize,
    o1: usize,
    cols: &mut [f32],
    ld: usize,
) {
    let win = &s.window;
    let (in_len, taps, width) = (win.in_len(), win.taps(), o1 - o0);
    // for each input channel and kernel tap: one row of cols
    for icg in 0..s.cin_g() {
        let x_plane = &x_g[icg * in_len..][..in_len];
        for tap in 0..taps {
            let row = &mut cols[(icg * taps + tap) * ld..][..width];
            // for each output cell of the tile
            for (j, o) in (o0..o1).enumerate() {
                row[j] = win.source(o, tap, s.mode).map_or(0.0, |src| x_plane[src]);
            }
        }
    }
}

/// The reference col2im: every entry asks the geometry where it came from.
pub fn fold_reference(s: &ConvShape, cols: &[f32], o0: usize, o1: usize, gx_g: &mut [f32]) {
    let win = &s.window;
    let (in_len, taps, width) = (win.in_len(), win.taps(), o1 - o0);
    for icg in 0..s.cin_g() {
        let gx_plane = &mut gx_g[icg * in_len..][..in_len];
        for tap in 0..taps {
            let row = &cols[(icg * taps + tap) * width..][..width];
            for (j, o) in (o0..o1).enumerate() {
                if let Some(src) = win.source(o, tap, s.mode) {
                    gx_plane[src] += row[j];
                }
            }
        }
    }
}
