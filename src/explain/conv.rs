//! Worked solutions for convolution forward: the output-size formula, the padded input, then
//! for each output cell its window and the dot product with the kernel (as seed 004 solves it
//! by hand); or the im2col matrix times the reshaped kernel; or the Toeplitz matrix times the
//! flattened input. Every number comes from the geometry module and the direct reference.

use super::{fmt_num, fmt_products, Explanation, Step, MAX_TERMS};
use crate::error::{Error, Result};
use crate::geometry::{AxisWindow, PaddingMode};
use crate::ops::conv::{conv, im2col, toeplitz, ConvAlgo, ConvParams, ConvShape};
use crate::tensor::Tensor;

/// Which worked solution to produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ExplainKind {
    /// Window by window, dot product by dot product.
    #[default]
    Direct,
    /// The unfolded column matrix and one matrix product.
    Im2col,
    /// The explicit Toeplitz matrix and one matrix-vector product per image.
    Toeplitz,
}

impl std::str::FromStr for ExplainKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "direct" | "sum" => Ok(ExplainKind::Direct),
            "im2col" => Ok(ExplainKind::Im2col),
            "toeplitz" => Ok(ExplainKind::Toeplitz),
            _ => Err(Error::arg(
                "explain",
                format!("unknown '{s}'; use direct, im2col or toeplitz"),
            )),
        }
    }
}

/// The output-size formula of one axis with the numbers filled in.
pub fn size_formula(name: &str, a: &AxisWindow) -> String {
    format!(
        "{name}: floor(({i} + {pb} + {pe} - {d}·({k}-1) - 1) / {s}) + 1 = {o}",
        i = a.input,
        pb = a.pad_begin,
        pe = a.pad_end,
        d = a.dilation,
        k = a.kernel,
        s = a.stride,
        o = a.output
    )
}

/// Axis names for `nd` spatial axes.
pub fn axis_names(nd: usize) -> &'static [&'static str] {
    &["D", "H", "W"][3 - nd..]
}

/// The input of one image with its padding filled in as `mode` fills it: `(Cin, *padded)`.
pub fn padded_input(s: &ConvShape, x_n: &[f32]) -> Tensor {
    let win = &s.window;
    let [ad, ah, aw] = &win.axes;
    let (pd, ph, pw) = (ad.padded(), ah.padded(), aw.padded());
    let mut out = Vec::with_capacity(s.cin * pd * ph * pw);
    for c in 0..s.cin {
        let plane = &x_n[c * win.in_len()..][..win.in_len()];
        for d in 0..pd {
            for h in 0..ph {
                for w in 0..pw {
                    let src = (
                        ad.padded_source(d, s.mode),
                        ah.padded_source(h, s.mode),
                        aw.padded_source(w, s.mode),
                    );
                    out.push(match src {
                        (Some(d), Some(h), Some(w)) => plane[(d * ah.input + h) * aw.input + w],
                        _ => 0.0,
                    });
                }
            }
        }
    }
    let mut shape = vec![s.cin];
    shape.extend(win.real_axes().iter().map(|a| a.padded()));
    Tensor::new(shape, out).expect("padded shape")
}

fn cell_name(s: &ConvShape, n: usize, oc: usize, o: usize) -> String {
    let [_, ah, aw] = &s.window.axes;
    let idx = [
        o / (ah.output * aw.output),
        (o / aw.output) % ah.output,
        o % aw.output,
    ];
    let spatial: Vec<String> = idx[3 - s.window.nd..]
        .iter()
        .map(|v| (v + 1).to_string())
        .collect();
    let mut parts = vec![];
    if s.batch > 1 {
        parts.push(format!("n={n}"));
    }
    if s.cout > 1 {
        parts.push(format!("c={oc}"));
    }
    let lead = if parts.is_empty() {
        String::new()
    } else {
        format!("{} ", parts.join(", "))
    };
    format!("{lead}({})", spatial.join(", "))
}

/// Explains `conv(x, w, b)` step by step.
pub fn explain(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    p: &ConvParams,
    kind: ExplainKind,
) -> Result<Explanation> {
    let s = ConvShape::new(x.shape(), w.shape(), b.map(|b| b.shape()), p)?;
    let terms = s.batch * s.cout * s.window.out_len() * s.reduction_len();
    if terms > MAX_TERMS {
        return Err(Error::TooLarge {
            what: "explain".into(),
            msg: format!(
                "this convolution has {terms} multiply-adds, too many to narrate (limit {MAX_TERMS}); \
                 use a smaller input or drop --explain"
            ),
        });
    }
    let nd = s.window.nd;
    let y = conv(x, w, b, p, ConvAlgo::Direct)?;
    let w_used = if p.flip { w.flip_spatial() } else { w.clone() };
    let mut ex = Explanation {
        title: "Convolution, step by step".into(),
        steps: vec![],
    };

    let mut shapes = Step::new("Output size")
        .line(format!(
            "input {:?}, weight {:?} (Cout, Cin/groups, kernel), groups {}",
            x.shape(),
            w.shape(),
            s.groups
        ))
        .line("per axis: out = floor((in + pad_begin + pad_end - dilation·(kernel-1) - 1) / stride) + 1");
    for (name, a) in axis_names(nd).iter().zip(s.window.real_axes()) {
        shapes = shapes.line(size_formula(name, a));
    }
    ex.steps
        .push(shapes.line(format!("output shape {:?}", y.shape())));
    ex.steps.push(
        Step::new("Input and kernel")
            .show("input", x.clone(), nd)
            .show("kernel", w.clone(), nd),
    );

    if p.flip {
        ex.steps.push(
            Step::new("Flip the kernel (true convolution)")
                .line(
                    "convolution = cross-correlation with the kernel flipped on every spatial axis",
                )
                .show("flipped kernel", w_used.clone(), nd),
        );
    }
    let padded = s
        .window
        .real_axes()
        .iter()
        .any(|a| a.pad_begin + a.pad_end > 0);
    let in_img = s.cin * s.window.in_len();
    let x_flat = x.data();
    if padded {
        let mode = match s.mode {
            PaddingMode::Zeros => "zeros",
            PaddingMode::Reflect => "reflect",
            PaddingMode::Replicate => "replicate",
            PaddingMode::Circular => "circular",
        };
        let mut st = Step::new(format!("Padded input ({mode} padding)"));
        for n in 0..s.batch {
            st = st.show(
                format!("image {n}"),
                padded_input(&s, &x_flat[n * in_img..][..in_img]),
                nd,
            );
        }
        ex.steps.push(st);
    }
    match kind {
        ExplainKind::Direct => direct_steps(&s, x_flat, &w_used, b, &y, &mut ex),
        ExplainKind::Im2col => im2col_steps(&s, x_flat, &w_used, b, &y, &mut ex)?,
        ExplainKind::Toeplitz => toeplitz_steps(&s, x_flat, &w_used, b, &y, &mut ex)?,
    }
    ex.steps.push(Step::new("Result").show("output", y, nd));
    Ok(ex)
}

/// One step per output cell: the window of each input channel and the dot product.
fn direct_steps(
    s: &ConvShape,
    x: &[f32],
    w: &Tensor,
    b: Option<&Tensor>,
    y: &Tensor,
    ex: &mut Explanation,
) {
    let win = &s.window;
    let (in_len, out_len, taps, cin_g) = (win.in_len(), win.out_len(), win.taps(), s.cin_g());
    let kshape: Vec<usize> = win.real_axes().iter().map(|a| a.kernel).collect();
    for n in 0..s.batch {
        for oc in 0..s.cout {
            let g = oc / s.cout_g();
            for o in 0..out_len {
                let mut st = Step::new(format!("Output cell {}", cell_name(s, n, oc, o)));
                let mut all_terms = vec![];
                for icg in 0..cin_g {
                    let ic = g * cin_g + icg;
                    let x_plane = &x[(n * s.cin + ic) * in_len..][..in_len];
                    let w_taps = &w.data()[(oc * cin_g + icg) * taps..][..taps];
                    let window: Vec<f32> = (0..taps)
                        .map(|t| win.source(o, t, s.mode).map_or(0.0, |src| x_plane[src]))
                        .collect();
                    all_terms.extend(window.iter().zip(w_taps).map(|(&a, &b)| (a, b)));
                    let label = if s.cin > 1 {
                        format!("window (input channel {ic})")
                    } else {
                        "window".into()
                    };
                    st = st.show(
                        label,
                        Tensor::new(kshape.clone(), window).expect("window"),
                        s.window.nd,
                    );
                }
                let value = y.data()[(n * s.cout + oc) * out_len + o];
                let bias = b.map(|b| b.data()[oc]);
                let bias_txt = bias.map_or(String::new(), |v| format!(" + bias {}", fmt_num(v)));
                st = st.conclude(format!(
                    "⟨window, kernel⟩ = {}{bias_txt} = {}",
                    fmt_products(&all_terms),
                    fmt_num(value)
                ));
                ex.steps.push(st);
            }
        }
    }
}

/// The unfolded column matrix per image and group, and the product with the reshaped kernel.
fn im2col_steps(
    s: &ConvShape,
    x: &[f32],
    w: &Tensor,
    b: Option<&Tensor>,
    y: &Tensor,
    ex: &mut Explanation,
) -> Result<()> {
    let (in_len, out_len, k) = (s.window.in_len(), s.window.out_len(), s.reduction_len());
    let (cin_g, cout_g) = (s.cin_g(), s.cout_g());
    ex.steps.push(Step::new("im2col").line(format!(
        "each column holds one window, unrolled (rows = input channel × kernel tap = {k}, columns = output cells = {out_len}); \
         the kernel becomes a {cout_g} × {k} matrix, and output = kernel matrix · columns"
    )));
    for n in 0..s.batch {
        for g in 0..s.groups {
            let x_g = &x[(n * s.cin + g * cin_g) * in_len..][..cin_g * in_len];
            let mut cols = vec![0.0; k * out_len];
            im2col::unfold(s, x_g, 0, out_len, &mut cols);
            let w_g = Tensor::new(
                vec![cout_g, k],
                w.data()[g * cout_g * k..][..cout_g * k].to_vec(),
            )?;
            let y_g: Vec<f32> = (0..cout_g)
                .flat_map(|oc| {
                    y.data()[(n * s.cout + g * cout_g + oc) * out_len..][..out_len].to_vec()
                })
                .collect();
            let tag = match (s.batch > 1, s.groups > 1) {
                (true, true) => format!(" (image {n}, group {g})"),
                (true, false) => format!(" (image {n})"),
                (false, true) => format!(" (group {g})"),
                _ => String::new(),
            };
            let mut st = Step::new(format!("Matrix product{tag}"))
                .show("columns", Tensor::new(vec![k, out_len], cols)?, 2)
                .show("kernel matrix", w_g, 2);
            if let Some(b) = b {
                st = st.line(format!(
                    "plus bias {} (one per row)",
                    b.data()[g * cout_g..][..cout_g]
                        .iter()
                        .map(|v| fmt_num(*v))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            ex.steps.push(st.show(
                "kernel matrix · columns",
                Tensor::new(vec![cout_g, out_len], y_g)?,
                2,
            ));
        }
    }
    Ok(())
}

/// The explicit Toeplitz matrix and `y = T·x (+ b)` per image.
fn toeplitz_steps(
    s: &ConvShape,
    x: &[f32],
    w: &Tensor,
    b: Option<&Tensor>,
    y: &Tensor,
    ex: &mut Explanation,
) -> Result<()> {
    let t = toeplitz::matrix(s, w.data())?;
    let (rows, cols) = toeplitz::dims(s);
    ex.steps.push(
        Step::new("Toeplitz matrix")
            .line(format!(
                "flatten the input to a vector of {cols} (channel, position); each of the {rows} rows of T places the kernel \
                 where one output cell's window reads (zeros elsewhere); then y = T · x{}",
                if b.is_some() { " + b" } else { "" }
            ))
            .show("T", t, 2),
    );
    for n in 0..s.batch {
        let xv = Tensor::new(vec![cols, 1], x[n * cols..][..cols].to_vec())?;
        let yv = Tensor::new(vec![rows, 1], y.data()[n * rows..][..rows].to_vec())?;
        let tag = if s.batch > 1 {
            format!(" (image {n})")
        } else {
            String::new()
        };
        ex.steps.push(
            Step::new(format!("Matrix-vector product{tag}"))
                .show("x (flattened)", xv, 2)
                .show(if b.is_some() { "T · x + b" } else { "T · x" }, yv, 2),
        );
    }
    Ok(())
}
