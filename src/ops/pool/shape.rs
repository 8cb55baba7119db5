//! Validation of a pooling problem: the number of spatial axes, the input layout, PyTorch's
//! checks (kernel within the padded input, padding at most kernel/2, no dilation for avg/lp,
//! sizes at least 1) and the resulting [`PoolShape`]: plane sizes, windows, reduction.

use super::{PoolKind, PoolParams, Reduce, Windows};
use crate::error::{Error, Result};
use crate::geometry::{PaddingSpec, Window3, WindowSpec};
use crate::tensor::fmt_shape;

/// A validated pooling problem: plane sizes, the windows of every output cell, the reduction.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolShape {
    pub kind: PoolKind,
    /// Leading axes: `[N, C]`, or `[C]` for unbatched input.
    pub lead: Vec<usize>,
    /// Number of planes `N·C`.
    pub planes: usize,
    /// Number of real spatial axes (1 to 3).
    pub nd: usize,
    /// Input plane `[d, h, w]` (leading 1s for fewer axes).
    pub input: [usize; 3],
    /// Output plane `[d, h, w]`.
    pub output: [usize; 3],
    /// The sliding window (sliding kinds only), for explanations.
    pub window: Option<Window3>,
    /// Where every output cell reads.
    pub windows: Windows,
    /// The reduction (unused by k-max).
    pub reduce: Reduce,
}

impl PoolShape {
    /// Checks `p` against an input of shape `x`.
    pub fn new(x: &[usize], p: &PoolParams) -> Result<Self> {
        check_bounds(p)?;
        let nd = spatial_axes(x.len(), p)?;
        let (lead, spatial) = split_input(x, nd, p.kind.name())?;
        let mut input = [1; 3];
        input[3 - nd..].copy_from_slice(spatial);
        let planes: usize = lead.iter().product();
        if input.iter().product::<usize>() > u32::MAX as usize {
            return Err(Error::TooLarge {
                what: "input".into(),
                msg: "a plane has more than 2^32 cells; pool smaller planes".into(),
            });
        }
        let mut window = None;
        let windows = match p.kind {
            k if k.is_sliding() => {
                let w = sliding_window(spatial, p)?;
                window = Some(w);
                Windows::sliding(&w)?
            }
            PoolKind::AdaptiveMax | PoolKind::AdaptiveAvg => {
                let o = need_list("output-size", &p.output_size, nd, p.kind, "--output-size O")?;
                check_cells(planes, &o)?;
                Windows::adaptive(&input, &o)
            }
            PoolKind::GlobalMax | PoolKind::GlobalAvg => Windows::adaptive(&input, &[1; 3][..nd]),
            PoolKind::FractionalMax => {
                let k = need_list("kernel", &p.kernel, nd, p.kind, "--kernel K")?;
                let o = need_list("output-size", &p.output_size, nd, p.kind, "--output-size O")?;
                Windows::fractional(&input, &k, &o, planes, p.samples.as_ref(), p.seed)?
            }
            PoolKind::KMax => Windows::kmax(&input, p.k)?,
            _ => unreachable!("sliding kinds handled above"),
        };
        let reduce = Reduce::of(p, window.map_or(1, |w| w.taps()))?;
        let output = windows.output(&input);
        check_cells(planes, &output)?;
        Ok(PoolShape {
            kind: p.kind,
            lead,
            planes,
            nd,
            input,
            output,
            window,
            windows,
            reduce,
        })
    }

    /// Cells per input plane.
    pub fn in_len(&self) -> usize {
        self.input.iter().product()
    }

    /// Cells per output plane.
    pub fn out_len(&self) -> usize {
        self.output.iter().product()
    }

    /// The output shape as PyTorch returns it (unbatched stays unbatched).
    pub fn out_shape(&self) -> Vec<usize> {
        let mut s = self.lead.clone();
        s.extend_from_slice(&self.output[3 - self.nd..]);
        s
    }
}

/// Largest window size, stride, dilation, padding or output length accepted per axis.
pub const MAX_AXIS: usize = 1 << 20;
/// Largest number of output values.
pub const MAX_CELLS: usize = 1 << 28;

/// Refuses absurd per-axis values before any arithmetic on them can overflow.
pub fn check_bounds(p: &PoolParams) -> Result<()> {
    let pads: Vec<usize> = match &p.padding {
        PaddingSpec::Explicit(v) => v.iter().flat_map(|&(b, e)| [b, e]).collect(),
        _ => vec![],
    };
    let lists = [
        ("kernel", &p.kernel),
        ("stride", &p.stride),
        ("dilation", &p.dilation),
        ("output-size", &p.output_size),
        ("padding", &pads),
    ];
    for (arg, v) in lists {
        if let Some(big) = v.iter().find(|&&v| v > MAX_AXIS) {
            return Err(Error::arg(
                arg,
                format!("{big} is too large (at most {MAX_AXIS} per axis)"),
            ));
        }
    }
    Ok(())
}

/// Refuses outputs of more than [`MAX_CELLS`] values (`planes · Π sizes`), or past the memory
/// limit, before allocating.
pub fn check_cells(planes: usize, sizes: &[usize]) -> Result<()> {
    let cells = sizes.iter().try_fold(planes, |a, &o| a.checked_mul(o));
    if cells.is_none_or(|c| c > MAX_CELLS) {
        return Err(Error::TooLarge {
            what: "output-size".into(),
            msg: format!(
                "the output would have more than {MAX_CELLS} values; use a smaller output size"
            ),
        });
    }
    // the output and its argmax indices (4 bytes each)
    crate::limits::check(
        "output-size",
        cells.and_then(|c| (c as u128).checked_mul(8)),
        "use a smaller output size",
    )
}

/// Number of spatial axes: the common length of the per-axis lists that have several values,
/// else the input's rank − 2 (a rank-2 input is one unbatched 1-D signal per channel).
pub fn spatial_axes(rank: usize, p: &PoolParams) -> Result<usize> {
    if let Some(nd) = p.spatial_axes {
        return Ok(nd);
    }
    let pad_len = match &p.padding {
        PaddingSpec::Explicit(v) => v.len(),
        _ => 1,
    };
    let lists = [
        ("kernel", p.kernel.len()),
        ("stride", p.stride.len()),
        ("padding", pad_len),
        ("dilation", p.dilation.len()),
        ("output-size", p.output_size.len()),
    ];
    let mut nd: Option<(&str, usize)> = None;
    for (name, len) in lists.into_iter().filter(|(_, l)| *l > 1) {
        match nd {
            Some((first, n)) if n != len => {
                return Err(Error::arg(
                    name,
                    format!("has {len} values but {first} has {n}; give one value, or one per spatial axis for both"),
                ))
            }
            _ => nd = Some((name, len)),
        }
    }
    Ok(match nd {
        Some((_, n)) => n,
        None => rank.saturating_sub(2).max(1),
    })
}

/// Splits an input shape into leading axes (`[N, C]` or `[C]`) and `nd` spatial axes.
fn split_input<'a>(x: &'a [usize], nd: usize, kind: &str) -> Result<(Vec<usize>, &'a [usize])> {
    let names = ["L", "H, W", "D, H, W"];
    if !(1..=3).contains(&nd) || !(nd + 1..=nd + 2).contains(&x.len()) {
        let shapes = if (1..=3).contains(&nd) {
            format!("(N, C, {s}) or (C, {s})", s = names[nd - 1])
        } else {
            "1 to 3 spatial axes".into()
        };
        return Err(Error::arg(
            "input",
            format!(
                "has shape {}, but {nd}-D {kind} pooling takes {shapes}",
                fmt_shape(x)
            ),
        ));
    }
    let lead = x[..x.len() - nd].to_vec();
    if x.contains(&0) {
        return Err(Error::arg(
            "input",
            format!("has shape {} with an empty axis", fmt_shape(x)),
        ));
    }
    Ok((lead, &x[x.len() - nd..]))
}

/// A per-axis list the kind requires, broadcast to `nd` axes; every value must be at least 1.
fn need_list(arg: &str, v: &[usize], nd: usize, kind: PoolKind, flag: &str) -> Result<Vec<usize>> {
    if v.is_empty() {
        return Err(Error::arg(
            arg,
            format!("{} pooling needs {flag}; add it", kind.name()),
        ));
    }
    let v = crate::geometry::per_axis(arg, v, nd)?;
    if v.contains(&0) {
        return Err(Error::arg(arg, "must be at least 1 on every axis"));
    }
    Ok(v)
}

/// The sliding window of max/min/avg/lp/soft, with PyTorch's checks.
fn sliding_window(spatial: &[usize], p: &PoolParams) -> Result<Window3> {
    let nd = spatial.len();
    let kind = p.kind;
    let kernel = need_list(
        "kernel",
        &p.kernel,
        nd,
        kind,
        "--kernel K (the window size)",
    )?;
    let stride = if p.stride.is_empty() {
        kernel.clone()
    } else {
        p.stride.clone()
    };
    if matches!(kind, PoolKind::Avg | PoolKind::Lp) && p.dilation.iter().any(|&d| d != 1) {
        return Err(Error::arg(
            "dilation",
            format!(
                "{} pooling has no dilation (as in PyTorch); drop it",
                kind.name()
            ),
        ));
    }
    let spec = WindowSpec {
        kernel: kernel.clone(),
        stride,
        dilation: p.dilation.clone(),
        padding: p.padding.clone(),
        ceil_mode: p.ceil_mode,
    };
    let w = Window3::new(spatial, &spec)?;
    // PyTorch: padding may be at most half the kernel (so no window lies wholly in the padding).
    for (a, ax) in w.real_axes().iter().enumerate() {
        let pad = ax.pad_begin.max(ax.pad_end);
        if pad > ax.kernel / 2 {
            return Err(Error::arg(
                "padding",
                format!(
                    "{pad} is more than half the kernel {} on axis {a} (PyTorch requires padding <= kernel/2); \
                     use padding <= {} or a larger kernel",
                    ax.kernel,
                    ax.kernel / 2
                ),
            ));
        }
    }
    Ok(w)
}
