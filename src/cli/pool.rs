//! `stride pool KIND`: pooling forward (printed or written as `.npy`), optionally its input
//! gradient, the argmax indices, and the worked steps (--explain). No maths here: flags become
//! `PoolParams`, the library computes, `render` prints.

use super::{args, grad, render};
use anyhow::bail;
use clap::builder::BoolishValueParser;
use clap::Args;
use std::path::{Path, PathBuf};
use stride::explain::pool::{explain_at, explain_unpool};
use stride::explain::pool_grad::explain_backward;
use stride::geometry::{parse_per_axis, PaddingSpec};
use stride::ops::pool::select::indices_from_tensor;
use stride::ops::pool::{
    max_unpool, max_unpool_backward, pool_backward, pool_forward, spatial_axes, PoolKind,
    PoolParams,
};
use stride::{Error, Tensor};

const KINDS: [&str; 12] = [
    "max",
    "min",
    "avg",
    "lp",
    "soft",
    "adaptive-max",
    "adaptive-avg",
    "global-max",
    "global-avg",
    "kmax",
    "fractional-max",
    "max-unpool",
];

#[derive(Args, Debug)]
#[command(
    after_help = "Kinds beyond PyTorch: min (padding counts as +inf), kmax (the k largest values \
along the last axis, kept in their original order; Kalchbrenner et al. 2014), soft (softmax-weighted \
mean of each window, padding skipped; Stergiou et al. 2021). fractional-max also works in 1-D; lp also takes --padding (zeros) and --count-include-pad.\n\n\
The number of spatial axes comes from the length of the per-axis lists (--kernel, --stride, --padding, \
--dilation, --output-size) when one has several values, else from the input's rank - 2 (batched); \
a rank-2 .npy is (C, L). Flags a kind does not use are refused.\n\n\
Examples:\n  \
stride pool max --input '[[109,92,72],[108,85,74],[110,74,79]]' --kernel 2 --stride 1 --explain\n  \
stride pool avg --input x.npy --kernel 3 --stride 2 --padding 1 --ceil-mode --count-include-pad false --output y.npy\n  \
stride pool adaptive-avg --input x.npy --output-size 3,4 --output y.npy\n  \
stride pool max --input x.npy --kernel 2 --output y.npy --indices i.npy\n  \
stride pool max-unpool --input y.npy --indices i.npy --kernel 2 --output x_up.npy\n  \
stride pool max --input x.npy --kernel 2 --grad-output gy.npy --grad-input gx.npy"
)]
pub struct PoolArgs {
    /// Which pooling.
    #[arg(value_name = "KIND", value_parser = KINDS)]
    kind: String,
    /// Input: .npy (N, C, *spatial) or (C, *spatial), or an inline literal (a 2-D literal is one single-channel image).
    #[arg(long, value_name = "X")]
    input: String,
    /// Window size: one integer, or one per spatial axis (2,3).
    #[arg(long, value_name = "K")]
    kernel: Option<String>,
    /// Stride: one integer or one per axis; defaults to the kernel size (PyTorch).
    #[arg(long, value_name = "S")]
    stride: Option<String>,
    /// Padding: an integer, one per axis (1,2) or begin:end per axis; at most kernel/2. Max pads with -inf, min with +inf, avg and lp with 0.
    #[arg(long, value_name = "P", allow_hyphen_values = true)]
    padding: Option<String>,
    /// Dilation (max, min, soft): one integer or one per axis.
    #[arg(long, value_name = "D")]
    dilation: Option<String>,
    /// Use ceil instead of floor for the output size (the last window must start inside the input or the begin padding).
    #[arg(long)]
    ceil_mode: bool,
    /// Average pooling: count the padding in each window's divisor (default true, as PyTorch).
    #[arg(long, value_name = "true|false", value_parser = BoolishValueParser::new())]
    count_include_pad: Option<bool>,
    /// Average pooling: divide every window sum by this number instead.
    #[arg(long, value_name = "N")]
    divisor_override: Option<usize>,
    /// LP pooling's p (default 2): (sum x^p)^(1/p); p = 1 is sum pooling, large p tends to max.
    #[arg(long, value_name = "p", allow_hyphen_values = true)]
    norm_type: Option<f64>,
    /// Output size (adaptive, fractional-max; max-unpool's target size): one integer or one per axis.
    #[arg(long, value_name = "O")]
    output_size: Option<String>,
    /// k-max pooling: how many values to keep along the last axis.
    #[arg(long, value_name = "K")]
    k: Option<usize>,
    /// Fractional max pooling: seed of the pseudo-random window starts (default 0; reproducible).
    #[arg(long, value_name = "SEED")]
    seed: Option<u64>,
    /// Fractional max pooling: the samples u in [0, 1) themselves, PyTorch's _random_samples (N, C, nd) as .npy or literal.
    #[arg(long, value_name = "U")]
    samples: Option<String>,
    /// max, min, adaptive-max, global-max, fractional-max, kmax: write the argmax indices (flat in each input plane, as floats) to this .npy. max-unpool: read them from this .npy or literal.
    #[arg(long, value_name = "I.npy")]
    indices: Option<String>,
    /// Write the output to this .npy file instead of printing it.
    #[arg(long, value_name = "Y.npy")]
    output: Option<PathBuf>,
    /// Gradient of the loss with respect to the output: .npy, literal, `ones` or a number (that
    /// constant everywhere). Alone it prints ∂E/∂x; with --grad-input it writes it.
    #[arg(long, value_name = "GY", allow_hyphen_values = true)]
    grad_output: Option<String>,
    /// Write the gradient with respect to the input to this .npy file; needs --grad-output.
    #[arg(long, value_name = "GX.npy", requires = "grad_output")]
    grad_input: Option<PathBuf>,
    /// Print the worked computation: each window and its result; with --grad-output, where each
    /// output's gradient goes.
    #[arg(long)]
    explain: bool,
    /// With --explain: only output cell I,J (1-based), for large inputs.
    #[arg(long, value_name = "I,J", requires = "explain")]
    cell: Option<String>,
}

/// The flags each kind uses; any other given flag is an error rather than silently ignored
/// (flags at their neutral value — padding 0, dilation 1, count-include-pad true — are allowed).
fn uses(kind: &str, flag: &str) -> bool {
    let list: &[&str] = match kind {
        "max" | "min" => &[
            "kernel",
            "stride",
            "padding",
            "ceil-mode",
            "dilation",
            "indices",
        ],
        "soft" => &["kernel", "stride", "padding", "ceil-mode", "dilation"],
        "avg" => &[
            "kernel",
            "stride",
            "padding",
            "ceil-mode",
            "count-include-pad",
            "divisor-override",
        ],
        "lp" => &[
            "kernel",
            "stride",
            "padding",
            "ceil-mode",
            "count-include-pad",
            "norm-type",
        ],
        "adaptive-max" => &["output-size", "indices"],
        "adaptive-avg" => &["output-size"],
        "global-max" => &["indices"],
        "kmax" => &["k", "indices"],
        "fractional-max" => &["kernel", "output-size", "seed", "samples", "indices"],
        "max-unpool" => &["kernel", "stride", "padding", "output-size", "indices"],
        _ => &[],
    };
    list.contains(&flag)
}

fn check_flags(a: &PoolArgs) -> anyhow::Result<()> {
    let neutral_pad = a
        .padding
        .as_deref()
        .is_none_or(|p| p.split([',', ':']).all(|v| v.trim() == "0"));
    let neutral_dil = a
        .dilation
        .as_deref()
        .is_none_or(|d| d.split(',').all(|v| v.trim() == "1"));
    let given = [
        ("kernel", a.kernel.is_some()),
        ("stride", a.stride.is_some()),
        ("padding", !neutral_pad),
        ("dilation", !neutral_dil),
        ("ceil-mode", a.ceil_mode),
        ("count-include-pad", a.count_include_pad == Some(false)),
        ("divisor-override", a.divisor_override.is_some()),
        ("norm-type", a.norm_type.is_some()),
        ("output-size", a.output_size.is_some()),
        ("k", a.k.is_some()),
        ("seed", a.seed.is_some()),
        ("samples", a.samples.is_some()),
        ("indices", a.indices.is_some()),
    ];
    for (flag, set) in given {
        if set && !uses(&a.kind, flag) {
            return Err(Error::arg(
                flag,
                format!("does not apply to {} pooling; drop --{flag}", a.kind),
            )
            .into());
        }
    }
    Ok(())
}

/// Builds the library parameters from the flags.
fn params(a: &PoolArgs, kind: PoolKind) -> stride::Result<PoolParams> {
    let list = |name: &str, v: &Option<String>| {
        v.as_deref().map_or(Ok(vec![]), |s| parse_per_axis(name, s))
    };
    // LP pooling with p = ∞ is max pooling (the limit of (Σ x^p)^(1/p) over non-negative x)
    let kind = match (kind, a.norm_type) {
        (PoolKind::Lp, Some(n)) if n == f64::INFINITY => PoolKind::Max,
        _ => kind,
    };
    let mut p = PoolParams::new(kind, &list("kernel", &a.kernel)?);
    p.stride = list("stride", &a.stride)?;
    if let Some(s) = &a.padding {
        p.padding = s.parse::<PaddingSpec>()?;
    }
    if a.dilation.is_some() {
        p.dilation = list("dilation", &a.dilation)?;
    }
    p.ceil_mode = a.ceil_mode;
    p.count_include_pad = a.count_include_pad.unwrap_or(true);
    p.divisor_override = a.divisor_override;
    p.norm_type = a.norm_type.unwrap_or(2.0);
    p.output_size = list("output-size", &a.output_size)?;
    p.k = a.k.unwrap_or(0);
    p.seed = a.seed.unwrap_or(0);
    p.samples = match &a.samples {
        Some(s) => Some(stride::io::load("samples", s)?.0),
        None => None,
    };
    Ok(p)
}

/// Refuses output paths whose folder does not exist, before anything is written.
fn check_writable(paths: &[(&str, Option<&Path>)]) -> stride::Result<()> {
    for (flag, path) in paths {
        let Some(path) = path else { continue };
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        if dir.is_some_and(|d| !d.is_dir()) || path.is_dir() {
            return Err(Error::arg(
                *flag,
                format!(
                    "cannot write {}: its folder does not exist or it is a folder; give a file path in an existing folder",
                    path.display()
                ),
            ));
        }
    }
    Ok(())
}

pub fn run(a: PoolArgs) -> anyhow::Result<()> {
    check_flags(&a)?;
    let unpool = a.kind == "max-unpool";
    let kind = if unpool {
        PoolKind::Max
    } else {
        a.kind.parse()?
    };
    let p = params(&a, kind)?;
    let write_indices = a.indices.as_deref().filter(|_| !unpool).map(Path::new);
    check_writable(&[
        ("output", a.output.as_deref()),
        ("indices", write_indices),
        ("grad-input", a.grad_input.as_deref()),
    ])?;
    let x = args::load_tensor("input", &a.input)?;
    let nd = spatial_axes(x.rank(), &p)?;
    let cell = a
        .cell
        .as_deref()
        .map(|c| parse_per_axis("cell", c))
        .transpose()?;
    // ∂E/∂y in the output's shape: a constant, or a tensor (a literal with the output's
    // number of values takes its shape, as for conv)
    let load_gy = |out_shape: &[usize]| -> stride::Result<Option<Tensor>> {
        let Some(s) = a.grad_output.as_deref() else {
            return Ok(None);
        };
        if let Some(t) = stride::io::literal::constant(s, out_shape) {
            return Ok(Some(t));
        }
        let t = args::load_tensor("grad-output", s)?;
        Ok(Some(if t.numel() == out_shape.iter().product::<usize>() {
            t.reshape(out_shape)?
        } else {
            t
        }))
    };

    // compute everything first: nothing is written unless every step succeeded
    let (y, idx, gx, ex) = if unpool {
        let Some(src) = &a.indices else {
            bail!(Error::arg(
                "indices",
                "max-unpool needs --indices I.npy, the indices of the max pooling it inverts"
            ));
        };
        let idx = indices_from_tensor(&args::load_tensor("indices", src)?)?;
        let y = max_unpool(&x, &idx, &p)?;
        let gy = load_gy(y.shape())?;
        let gx = gy
            .as_ref()
            .map(|gy| max_unpool_backward(&x, &idx, gy, &p))
            .transpose()?;
        let ex = a
            .explain
            .then(|| explain_unpool(&x, &idx, &p))
            .transpose()?;
        (y, None, gx, ex)
    } else {
        let out = pool_forward(&x, &p)?;
        let gy = load_gy(out.y.shape())?;
        let gx = gy
            .as_ref()
            .map(|gy| pool_backward(&x, &out, gy, &p))
            .transpose()?;
        let mut ex = a
            .explain
            .then(|| explain_at(&x, &p, cell.as_deref()))
            .transpose()?;
        if let (Some(ex), Some(gy)) = (&mut ex, &gy) {
            let back = explain_backward(&x, &p, gy, cell.as_deref())?;
            ex.steps.extend(back.steps);
        }
        let idx = out.indices_tensor();
        (out.y, idx, gx, ex)
    };

    // every file or none (the writer shared with conv)
    let mut files: Vec<(&str, &Path, &Tensor)> = vec![];
    if let Some(path) = &a.output {
        files.push(("output", path, &y));
    }
    if let (Some(path), Some(idx)) = (write_indices, &idx) {
        files.push(("indices", path, idx));
    }
    if let (Some(path), Some(gx)) = (&a.grad_input, &gx) {
        files.push(("grad-input", path, gx));
    }
    let wrote = grad::save_all(&files)?;

    if let Some(ex) = &ex {
        print!("{}", render::explanation(ex));
    }
    if a.output.is_none() && ex.is_none() {
        render::printable(&y)?;
        print!("{}", render::tensor("output", &y, nd));
    }
    if let (None, Some(gx)) = (&a.grad_input, &gx) {
        if ex.is_none() {
            print!("{}", render::tensor("grad_input", gx, nd));
        }
    }
    for line in wrote {
        println!("{line}");
    }
    Ok(())
}
