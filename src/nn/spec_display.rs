//! The canonical text of a spec: `Display` for [`LayerSpec`] and [`ModelSpec`], which parses
//! back to the same spec (`ModelSpec::parse(&spec.to_string())` is the identity).

use super::spec::{pool_name, LayerSpec, ModelSpec};
use crate::geometry::{PaddingMode, PaddingSpec};
use crate::ops::pool::PoolKind as PoolOpKind;
use std::fmt;

fn axes(v: &[usize]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join("x")
}

fn dims_suffix(d: &Option<usize>) -> String {
    d.map_or(String::new(), |d| format!("{d}d"))
}

/// The canonical text of a layer (parses back to the same spec).
impl fmt::Display for LayerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayerSpec::Conv {
                dims,
                out,
                kernel,
                stride,
                padding,
                dilation,
                groups,
                bias,
                mode,
            } => {
                write!(f, "conv{}({out},k={}", dims_suffix(dims), axes(kernel))?;
                if stride.iter().any(|&s| s != 1) {
                    write!(f, ",s={}", axes(stride))?;
                }
                match padding {
                    PaddingSpec::Explicit(p) if p.iter().all(|&(a, b)| a == 0 && b == 0) => {}
                    PaddingSpec::Explicit(p) => {
                        let sym: Vec<usize> = p.iter().map(|&(a, _)| a).collect();
                        if p.iter().all(|&(a, b)| a == b) {
                            write!(f, ",p={}", axes(&sym))?;
                        } else {
                            let parts: Vec<String> =
                                p.iter().map(|(a, b)| format!("{a}:{b}")).collect();
                            write!(f, ",p={}", parts.join("x"))?;
                        }
                    }
                    PaddingSpec::Same => write!(f, ",p=same")?,
                    PaddingSpec::Valid => {}
                    PaddingSpec::Full => write!(f, ",p=full")?,
                }
                if dilation.iter().any(|&d| d != 1) {
                    write!(f, ",d={}", axes(dilation))?;
                }
                if *groups != 1 {
                    write!(f, ",g={groups}")?;
                }
                if !bias {
                    write!(f, ",bias=false")?;
                }
                if *mode != PaddingMode::Zeros {
                    write!(f, ",mode={}", format!("{mode:?}").to_lowercase())?;
                }
                write!(f, ")")
            }
            LayerSpec::Pool { dims, params: p } => {
                let name = pool_name(p.kind);
                write!(f, "{name}{}(", dims_suffix(dims))?;
                let mut args: Vec<String> = Vec::new();
                if p.kind.is_sliding() {
                    args.push(axes(&p.kernel));
                    if !p.stride.is_empty() {
                        args.push(format!("s={}", axes(&p.stride)));
                    }
                    if let PaddingSpec::Explicit(pad) = &p.padding {
                        if pad.iter().any(|&(a, _)| a != 0) {
                            let v: Vec<usize> = pad.iter().map(|&(a, _)| a).collect();
                            args.push(format!("p={}", axes(&v)));
                        }
                    }
                    if p.dilation.iter().any(|&d| d != 1) {
                        args.push(format!("d={}", axes(&p.dilation)));
                    }
                    if p.ceil_mode {
                        args.push("ceil=true".into());
                    }
                    if !p.count_include_pad {
                        args.push("count_include_pad=false".into());
                    }
                    if p.kind == PoolOpKind::Lp {
                        args.push(format!("norm={}", p.norm_type));
                    }
                } else if !p.output_size.is_empty() {
                    args.push(axes(&p.output_size));
                }
                write!(f, "{})", args.join(","))
            }
            LayerSpec::Linear { out, bias } => {
                write!(f, "linear({out}{})", if *bias { "" } else { ",bias=false" })
            }
            LayerSpec::Flatten => write!(f, "flatten"),
            LayerSpec::Act(a) => write!(f, "{}", a.torch_name().to_lowercase()),
            LayerSpec::Dropout { p } => write!(f, "dropout({p})"),
            LayerSpec::BatchNorm { dims } => write!(f, "batchnorm{}", dims_suffix(dims)),
        }
    }
}

impl fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "input({})",
            self.input
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(",")
        )?;
        for l in &self.layers {
            write!(f, " {l}")?;
        }
        Ok(())
    }
}
