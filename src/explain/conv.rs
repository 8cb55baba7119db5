//! Worked solutions for convolution forward: the output-size formula, the padded input, then
//! for each output cell its window and the dot product with the kernel (as seed 004 solves it
//! by hand); or the im2col matrix times the reshaped kernel; or the Toeplitz matrix times the
//! flattened input. Every number comes from the geometry module and the direct reference.

use super::{axis_names, is_padded, label, padded_plane, position, size_formula, size_rule};
use super::{fmt_num, fmt_products, Explanation, Step, MAX_TERMS};
use crate::error::{Error, Result};
use crate::geometry::PaddingMode;
use crate::ops::conv::{conv, im2col, toeplitz, ConvAlgo, ConvParams, ConvShape};
use crate::tensor::{fmt_shape, Tensor};

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

/// The input of one image with its padding filled in as `mode` fills it: `(Cin, *padded)`.
pub fn padded_input(s: &ConvShape, x_n: &[f32]) -> Tensor {
    let in_len = s.window.in_len();
    let mut shape = vec![s.cin];
    let mut data = vec![];
    for c in 0..s.cin {
        let t = padded_plane(&s.window, s.mode, &x_n[c * in_len..][..in_len], 0.0);
        if c == 0 {
            shape.extend(t.shape());
        }
        data.extend(t.into_data());
    }
    Tensor::new(shape, data).expect("padded shape")
}

/// `c=2 (1,1)`: output cell `o` of image `n`, channel `oc`, 1-based, leading indices only
/// where they vary.
fn cell_name(s: &ConvShape, n: usize, oc: usize, o: usize) -> String {
    let dims = s.window.axes.map(|a| a.output);
    let at = position(o, dims, s.window.nd);
    let lead = label("", &[("n", n, s.batch > 1), ("c", oc, s.cout > 1)], "");
    if lead.is_empty() {
        at
    } else {
        format!("{} {at}", &lead[1..lead.len() - 1])
    }
}

/// The flat in-plane index of a 1-based cell `(i, j)` given on the command line (`--cell`),
/// checked against the output's spatial sizes.
pub fn focus_index(cell: &[usize], dims: &[usize]) -> Result<usize> {
    if cell.len() != dims.len() || cell.iter().zip(dims).any(|(&c, &d)| c == 0 || c > d) {
        let sizes: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
        return Err(Error::arg(
            "cell",
            format!(
                "{:?} is not a cell of the {} output; give {} numbers from 1, such as {}",
                cell,
                sizes.join("×"),
                dims.len(),
                vec!["1"; dims.len()].join(",")
            ),
        ));
    }
    Ok(cell
        .iter()
        .zip(dims)
        .fold(0, |acc, (&c, &d)| acc * d + c - 1))
}

/// Explains `conv(x, w, b)` step by step.
pub fn explain(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    p: &ConvParams,
    kind: ExplainKind,
) -> Result<Explanation> {
    explain_at(x, w, b, p, kind, None)
}

/// [`explain`], with the window-by-window steps limited to one output cell when `cell`
/// (1-based spatial position, `--cell I,J`) is given.
pub fn explain_at(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    p: &ConvParams,
    kind: ExplainKind,
    cell: Option<&[usize]>,
) -> Result<Explanation> {
    let s = ConvShape::new(x.shape(), w.shape(), b.map(|b| b.shape()), p)?;
    let out_dims: Vec<usize> = s.window.real_axes().iter().map(|a| a.output).collect();
    let focus = cell.map(|c| focus_index(c, &out_dims)).transpose()?;
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
    let w_used = super::kernel_used(w, p);
    let mut ex = Explanation {
        title: "Convolution, step by step".into(),
        steps: vec![],
    };

    let mut shapes = Step::new("Output size")
        .line(format!(
            "input {}, weight {} (Cout, Cin/groups, kernel), groups {}",
            fmt_shape(x.shape()),
            fmt_shape(w.shape()),
            s.groups
        ))
        .line(size_rule(false));
    for (name, a) in axis_names(nd).iter().zip(s.window.real_axes()) {
        shapes = shapes.line(size_formula(name, a, false));
    }
    ex.steps
        .push(shapes.line(format!("output shape {}", fmt_shape(y.shape()))));
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
    let padded = is_padded(&s.window);
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
                format!("image {}", n + 1),
                padded_input(&s, &x_flat[n * in_img..][..in_img]),
                nd,
            );
        }
        ex.steps.push(st);
    }
    let fwd = Forward {
        s: &s,
        x: x_flat,
        w: &w_used,
        b,
        y: &y,
    };
    match kind {
        ExplainKind::Direct => direct_steps(fwd, focus, &mut ex),
        ExplainKind::Im2col => im2col_steps(fwd, &mut ex)?,
        ExplainKind::Toeplitz => toeplitz_steps(fwd, &mut ex)?,
    }
    ex.steps.push(Step::new("Result").show("output", y, nd));
    Ok(ex)
}

/// What the explanation steps read: the checked shape, the flat input, the kernel as applied
/// (flipped for `--flip`), the bias and the library's output.
#[derive(Clone, Copy)]
struct Forward<'a> {
    s: &'a ConvShape,
    x: &'a [f32],
    w: &'a Tensor,
    b: Option<&'a Tensor>,
    y: &'a Tensor,
}

/// One step per output cell: the window of each input channel and the dot product.
fn direct_steps(f: Forward, focus: Option<usize>, ex: &mut Explanation) {
    let Forward { s, x, w, b, y } = f;
    let win = &s.window;
    let (in_len, out_len, taps, cin_g) = (win.in_len(), win.out_len(), win.taps(), s.cin_g());
    let kshape: Vec<usize> = win.real_axes().iter().map(|a| a.kernel).collect();
    for n in 0..s.batch {
        for oc in 0..s.cout {
            let g = oc / s.cout_g();
            for o in (0..out_len).filter(|&o| focus.is_none_or(|f| f == o)) {
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
                        format!("window (input channel {})", ic + 1)
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
fn im2col_steps(f: Forward, ex: &mut Explanation) -> Result<()> {
    let Forward { s, x, w, b, y } = f;
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
                (true, true) => format!(" (image {}, group {})", n + 1, g + 1),
                (true, false) => format!(" (image {})", n + 1),
                (false, true) => format!(" (group {})", g + 1),
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
fn toeplitz_steps(f: Forward, ex: &mut Explanation) -> Result<()> {
    let Forward { s, x, w, b, y } = f;
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
            format!(" (image {})", n + 1)
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
