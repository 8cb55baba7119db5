//! The runs of the Winograd weight gradient ([`super::wgrad`]): which tile rows a run covers,
//! and the zero-padded channels-last copies of the input rows and output-gradient rows its
//! tiles read (so that every tile's loads fall inside the copy, without a branch).

use super::wgrad::Plan;
use super::wgrad_lanes as wl;
use rayon::prelude::*;

/// Copy rows `at..at + rows` of a run: plane `n`'s rows from `y0` on (zeros outside the
/// image), for the tile rows from `a` on. A plane is an image in 2-D, an (image, output depth
/// slice) pair n·OD + od in 3-D ([`Slices`] says which source slice it reads).
#[derive(Clone, Copy, Debug)]
pub(super) struct Seg {
    pub(super) n: usize,
    pub(super) a: usize,
    pub(super) y0: isize,
    pub(super) rows: usize,
    pub(super) at: usize,
}

/// One run: tile rows `r0..r1` (flat n·th + ty), i.e. tiles `r0·tw..r1·tw`, and the rows of
/// the input (`xs`) and of the output gradient (`gs`) their tiles read, one segment per image.
/// The copies are zero-padded so that every tile reads inside them: the input copy has
/// `xw = 4·tw + 2` columns (image column x at x + pad_left), the output gradient's `gw = 4·tw`.
pub(super) struct Run {
    pub(super) r0: usize,
    pub(super) r1: usize,
    pub(super) xs: Vec<Seg>,
    pub(super) gs: Vec<Seg>,
}

impl Run {
    pub(super) fn new(pl: &Plan, r0: usize, r1: usize) -> Self {
        let (mut xs, mut gs) = (Vec::new(), Vec::new());
        let (mut xa, mut ga) = (0, 0);
        for n in r0 / pl.th..=(r1 - 1) / pl.th {
            // tile rows a..b of image n: input rows 4a − pad .. 4b − pad + 2, output rows 4a .. 4b
            // (on a line, with tiles of one row: input row and output row a)
            let (a, b) = (
                r0.max(n * pl.th) - n * pl.th,
                r1.min((n + 1) * pl.th) - n * pl.th,
            );
            let (tile_h, halo) = (pl.tile_h, pl.patch_h - pl.tile_h);
            let y0 = (tile_h * a) as isize - pl.pad[0] as isize;
            let rows = tile_h * (b - a);
            xs.push(Seg {
                n,
                a,
                y0,
                rows: rows + halo,
                at: xa,
            });
            gs.push(Seg {
                n,
                a,
                y0: (tile_h * a) as isize,
                rows,
                at: ga,
            });
            xa += rows + halo;
            ga += rows;
        }
        Run { r0, r1, xs, gs }
    }

    /// Rows of the input and output-gradient copies.
    pub(super) fn copy_rows(&self) -> [usize; 2] {
        [&self.xs, &self.gs].map(|v| v.last().map_or(0, |s| s.at + s.rows))
    }

    /// Tiles.
    pub(super) fn tiles(&self, pl: &Plan) -> usize {
        (self.r1 - self.r0) * pl.tw
    }
}

/// Copy rows per task.
const COPY_ROWS: usize = 4;

/// Which slice of a source `(N, C, D, H, W)` plane n·OD + od reads: slice `od + shift` of image
/// `n` (none outside 0..D: zeros). 2-D problems: D = OD = 1, shift 0.
#[derive(Clone, Copy, Debug)]
pub(super) struct Slices {
    pub(super) depth: usize,
    pub(super) planes: usize,
    pub(super) shift: isize,
}

impl Slices {
    /// (image, slice) of plane `b`, if the slice lies in the source.
    fn of(&self, b: usize) -> Option<(usize, usize)> {
        let (n, od) = (b / self.planes, b % self.planes);
        let d = od as isize + self.shift;
        (0..self.depth as isize)
            .contains(&d)
            .then_some((n, d as usize))
    }
}

/// Step 1: the rows `segs` of `src: (N, groups·c_g, D, H, W)` channels-last into `dst: (rows,
/// dw, groups·cg)`, each segment from the slice `slices` names: image column x at column
/// `x0 + x`, zeros in the other columns, in rows outside the image or slice and past c_g in
/// each group. Blocks of rows in parallel (if `par`), each copied one 16-channel block at a
/// time (16 planes read row after row).
#[allow(clippy::too_many_arguments)]
pub(super) fn copy_rows(
    src: &[f32],
    segs: &[Seg],
    slices: Slices,
    cc: [usize; 3],
    hw: [usize; 2],
    x0: usize,
    dst: &mut [f32],
    par: bool,
) {
    let [groups, c_g, cg] = cc;
    let ([h, w], c, cp) = (hw, groups * c_g, groups * cg);
    // one channel of one image: D slices of H·W
    let chan = slices.depth * h * w;
    let rows = segs.last().map_or(0, |s| s.at + s.rows);
    let dw = dst.len() / (rows * cp).max(1);
    assert!(x0 + w <= dw);
    let block = |(b, d): (usize, &mut [f32])| {
        let (mut r, nr) = (0, d.len() / (dw * cp));
        while r < nr {
            // copy row q = image row y of seg (if inside), and the rows after it alike
            let q = b * COPY_ROWS + r;
            let seg = segs.iter().rfind(|s| s.at <= q).expect("rows start at 0");
            let y = seg.y0 + (q - seg.at) as isize;
            let dr = &mut d[r * dw * cp..];
            let slice = slices.of(seg.n);
            let Some((n, ds)) = slice.filter(|_| (0..h as isize).contains(&y)) else {
                dr[..dw * cp].fill(0.0);
                r += 1;
                continue;
            };
            let k = (nr - r).min(seg.at + seg.rows - q).min(h - y as usize);
            let img = &src[n * c * chan..][..c * chan];
            wl::channels_last(
                img,
                chan,
                ds * h * w + y as usize * w,
                [k, w, dw],
                cc,
                &mut dr[x0 * cp..],
            );
            for row in dr.chunks_exact_mut(dw * cp).take(k) {
                row[..x0 * cp].fill(0.0);
                row[(x0 + w) * cp..].fill(0.0);
            }
            r += k;
        }
    };
    let rows = COPY_ROWS * dw * cp;
    if par {
        dst.par_chunks_mut(rows).enumerate().for_each(block);
    } else {
        dst.chunks_mut(rows).enumerate().for_each(block);
    }
}
