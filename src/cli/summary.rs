//! `stride summary`: a network layer by layer (shapes, parameters, MACs, FLOPs forward and
//! backward, activation memory, receptive field) as an aligned text table, a GitHub markdown
//! table or JSON. The numbers come from [`stride::analysis::summary`]; this file only renders.

use clap::{Args, ValueEnum};
use stride::analysis::summary::{summarize, RfAxis, Summary};
use stride::analysis::{bytes, thousands};
use stride::geometry::parse_per_axis;
use stride::nn::models;
use stride::tensor::fmt_shape;
use stride::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned text table.
    Table,
    /// GitHub markdown table.
    Markdown,
    /// Machine-readable JSON (every count a number).
    Json,
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
  stride summary lenet5\n  \
  stride summary lenet5-relu --batch-size 256 --format markdown\n  \
  stride summary 'conv(8,k=3,p=1) relu maxpool(2) flatten linear(10)' --input-shape 3,32,32\n  \
  stride summary @mynet.txt --format json\n  \
  stride summary model.onnx\n\n\
Presets: lenet5, lenet5-relu, convnet.")]
pub struct SummaryArgs {
    /// A preset (lenet5, lenet5-relu, convnet), an inline spec as `stride train` takes it, @file / a path with a spec, a run folder, or an .onnx file.
    #[arg(value_name = "MODEL")]
    model: String,
    /// Input shape of one image, C,H,W (or C,L / C,D,H,W); overrides the spec's input(...) and the default 1,28,28.
    #[arg(long, value_name = "C,H,W")]
    input_shape: Option<String>,
    /// Batch size for the activation memory and the training-step FLOPs.
    #[arg(long, value_name = "N", default_value_t = 1)]
    batch_size: usize,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

/// Largest size accepted per axis of --input-shape, and for the whole image.
const MAX_AXIS: usize = 1 << 20;
const MAX_VALUES: usize = 1 << 31;

/// Parses `C,H,W` (1 to 4 positive sizes).
fn parse_input_shape(s: &str) -> stride::Result<Vec<usize>> {
    let fix = "give 1 to 4 positive sizes C,H,W (C,L or C,D,H,W), e.g. --input-shape 1,28,28";
    let v = parse_per_axis("input-shape", s)
        .map_err(|_| Error::arg("input-shape", format!("cannot read '{s}'; {fix}")))?;
    if !(1..=4).contains(&v.len()) || v.contains(&0) {
        return Err(Error::arg(
            "input-shape",
            format!("'{s}' is not a valid shape; {fix}"),
        ));
    }
    let values = v.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if v.iter().any(|&d| d > MAX_AXIS) || values.is_none_or(|n| n > MAX_VALUES) {
        return Err(Error::arg(
            "input-shape",
            format!("'{s}' is too large; at most {MAX_AXIS} per axis and 2^31 values in all"),
        ));
    }
    Ok(v)
}

/// Resolves the model and summarises it.
fn build(a: &SummaryArgs) -> stride::Result<Summary> {
    let path = std::path::Path::new(&a.model);
    let trained = stride::onnx::is_onnx(path) || path.is_dir();
    let resolved = match trained {
        // an .onnx file or a run folder: its network
        true => stride::onnx::load_model(path).map(|m| (m.model.spec, m.name, ())),
        false => models::resolve(&a.model).map(|(s, n, _)| (s, n, ())),
    };
    let (mut spec, name, _) = resolved.map_err(|e| match e {
        Error::Io { path, source } => Error::arg(
            "model",
            format!(
                "cannot read the spec file {}: {source}; give a preset, an inline spec or an existing file",
                path.display()
            ),
        ),
        other => other,
    })?;
    if a.batch_size == 0 {
        return Err(Error::arg("batch-size", "must be at least 1"));
    }
    let Some(shape) = &a.input_shape else {
        return summarize(&spec, &name, a.batch_size);
    };
    spec.input = parse_input_shape(shape)?;
    summarize(&spec, &name, a.batch_size).map_err(|e| match e {
        Error::InvalidArgument { arg, msg } if arg == "model" => Error::arg(
            "model",
            format!(
                "{msg} (input {} from --input-shape)",
                fmt_shape(&spec.input)
            ),
        ),
        other => other,
    })
}

pub fn run(a: SummaryArgs) -> anyhow::Result<()> {
    let s = build(&a)?;
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&s)?),
        Format::Table => print!("{}", table(&s)),
        Format::Markdown => print!("{}", markdown(&s)),
    }
    Ok(())
}

/// Per-axis values joined: `5×5`, `-2,-2`.
fn rf_cells(rf: Option<&[RfAxis]>) -> [String; 3] {
    let Some(rf) = rf else {
        return ["—".into(), "—".into(), "—".into()];
    };
    let join = |f: fn(&RfAxis) -> String, sep: &str| rf.iter().map(f).collect::<Vec<_>>().join(sep);
    [
        join(|r| r.size.to_string(), "×"),
        join(|r| r.jump.to_string(), "×"),
        join(|r| r.start.to_string(), ","),
    ]
}

/// Header and rows (input, layers, total) as cells; column 1 is text, the rest numbers.
fn cells(s: &Summary) -> Vec<Vec<String>> {
    let n = s.batch_size;
    let mut rows = vec![[
        "#",
        "layer",
        "output",
        "params",
        "MACs",
        "FLOPs fwd",
        "FLOPs bwd",
        "memory/image",
        &format!("memory ×{n}"),
        "RF size",
        "RF jump",
        "RF start",
    ]
    .iter()
    .map(|h| h.to_string())
    .collect::<Vec<_>>()];
    let nd = s.input_shape.len().saturating_sub(1);
    let input_rf = (nd > 0).then(|| {
        vec![
            RfAxis {
                size: 1,
                jump: 1,
                start: 0
            };
            nd
        ]
    });
    let mut input = vec!["0".into(), "input".into(), fmt_shape(&s.input_shape)];
    input.extend(std::iter::repeat_n(String::new(), 6));
    input.extend(rf_cells(input_rf.as_deref()));
    rows.push(input);
    for r in &s.layers {
        let mut row = vec![
            r.index.to_string(),
            r.layer.clone(),
            fmt_shape(&r.out_shape),
            thousands(r.params),
            thousands(r.macs),
            thousands(r.flops_forward),
            thousands(r.flops_backward),
            bytes(r.activation_bytes_per_image),
            bytes(r.activation_bytes_batch),
        ];
        row.extend(rf_cells(r.receptive_field.as_deref()));
        rows.push(row);
    }
    let t = &s.totals;
    let mut total = vec![
        String::new(),
        "total".into(),
        String::new(),
        thousands(t.params),
        thousands(t.macs),
        thousands(t.flops_forward),
        thousands(t.flops_backward),
        bytes(t.activation_bytes_per_image),
        bytes(t.activation_bytes_batch),
    ];
    total.extend(std::iter::repeat_n(String::new(), 3));
    rows.push(total);
    rows
}

/// The lines under the table: totals in words, then the counting rules.
fn notes(s: &Summary, bullet: &str) -> Vec<String> {
    let t = &s.totals;
    let mut out = vec![
        format!(
            "parameters: {} ({} as f32)",
            thousands(t.params),
            bytes(t.param_bytes)
        ),
        format!(
            "per image: forward {} MACs = {} FLOPs; backward ≈ {} FLOPs{}",
            thousands(t.macs),
            thousands(t.flops_forward),
            thousands(t.flops_backward),
            // the first layer's input gradient is never computed: nothing before it needs one
            match s.layers.first() {
                Some(first) if s.layers.len() == 1 && first.params > 0 => {
                    " (= forward: a one-layer network computes only its weight gradient; the first layer needs no \
                     input gradient, since nothing before it learns)"
                }
                Some(first) if first.params > 0 => {
                    " (layer 1 computes no input gradient, since nothing before it learns: its backward equals its forward)"
                }
                _ => "",
            }
        ),
        format!(
            "training step on a batch of {}: {} FLOPs; activation memory kept for backward {} ({} per image)",
            s.batch_size,
            thousands(t.flops_train_step),
            bytes(t.activation_bytes_batch),
            bytes(t.activation_bytes_per_image)
        ),
    ];
    if let Some((row, rf)) = s.last_receptive_field() {
        let [size, jump, start] = rf_cells(Some(rf));
        out.push(format!(
            "receptive field after layer {} ({}): {size} input pixels, jump {jump}, start {start}",
            row.index, row.layer
        ));
    }
    out.push(String::new());
    out.push("How it is counted:".into());
    out.extend(
        s.rules
            .iter()
            .map(|r| format!("{bullet}{}: {}", r.what, r.rule)),
    );
    out
}

fn title(s: &Summary) -> String {
    format!(
        "{}: input {}, {} layer{}, batch size {}",
        s.model,
        fmt_shape(&s.input_shape),
        s.layers.len(),
        if s.layers.len() == 1 { "" } else { "s" },
        s.batch_size
    )
}

/// Aligned text: column 1 left-aligned, the others right-aligned; a rule above and below the
/// layer rows.
fn table(s: &Summary) -> String {
    let rows = cells(s);
    let ncol = rows[0].len();
    let width: Vec<usize> = (0..ncol)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let line = |r: &[String]| {
        let parts: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(c, v)| {
                let pad = " ".repeat(width[c] - v.chars().count());
                if c == 1 {
                    format!("{v}{pad}")
                } else {
                    format!("{pad}{v}")
                }
            })
            .collect();
        parts.join("  ").trim_end().to_string()
    };
    let rule = "-".repeat(width.iter().sum::<usize>() + 2 * (ncol - 1));
    let mut out = vec![title(s), String::new(), line(&rows[0]), rule.clone()];
    out.extend(rows[1..rows.len() - 1].iter().map(|r| line(r)));
    out.push(rule);
    out.push(line(&rows[rows.len() - 1]));
    out.push(String::new());
    out.extend(notes(s, "  - "));
    out.join("\n") + "\n"
}

/// A GitHub table; `|` in cells escaped.
fn markdown(s: &Summary) -> String {
    let rows = cells(s);
    let row = |r: &[String]| {
        let v: Vec<String> = r.iter().map(|c| c.replace('|', "\\|")).collect();
        format!("| {} |", v.join(" | "))
    };
    let align: Vec<&str> = (0..rows[0].len())
        .map(|c| if c == 1 { ":---" } else { "---:" })
        .collect();
    let mut out = vec![
        format!("**{}**", title(s)),
        String::new(),
        row(&rows[0]),
        format!("| {} |", align.join(" | ")),
    ];
    out.extend(rows[1..].iter().map(|r| row(r)));
    out.push(String::new());
    out.extend(notes(s, "- ").into_iter().map(|l| match l.as_str() {
        "How it is counted:" => format!("**{l}**\n"),
        _ if l.starts_with("- ") || l.is_empty() => l,
        _ => format!("{l}  "),
    }));
    out.join("\n") + "\n"
}
