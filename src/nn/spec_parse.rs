//! The text parser of network specs ([`super::spec`]): tokens `name` or `name(args)` separated by
//! whitespace, `#` comments. Every error names the token, its position and the known layers.

use super::spec::{per_axis_value, LayerSpec, ModelSpec, KNOWN_LAYERS, POOL_NAMES};
use crate::error::{Error, Result};
use crate::geometry::{PaddingMode, PaddingSpec};
use crate::ops::activation::Activation;
use crate::ops::pool::{PoolKind, PoolParams};

/// One `name(args)` token with where it was found.
struct Token {
    text: String,
    name: String,
    args: Vec<(Option<String>, String)>,
    /// 1-based token number and column.
    index: usize,
    column: usize,
}

/// The window arguments that convolution and sliding pooling layers share.
const WINDOW_ARGS: [&str; 9] = [
    "k",
    "kernel",
    "kernel_size",
    "s",
    "stride",
    "p",
    "padding",
    "d",
    "dilation",
];

impl Token {
    fn err(&self, msg: impl std::fmt::Display) -> Error {
        Error::arg(
            "model",
            format!(
                "layer {} `{}` (column {}): {msg}",
                self.index, self.text, self.column
            ),
        )
    }

    /// The value of `key` (any of its aliases) or positional argument `pos`.
    fn get(&self, keys: &[&str], pos: Option<usize>) -> Option<&str> {
        let named = self
            .args
            .iter()
            .find(|(k, _)| k.as_deref().is_some_and(|k| keys.contains(&k)));
        named
            .or_else(|| pos.and_then(|p| self.args.iter().filter(|(k, _)| k.is_none()).nth(p)))
            .map(|(_, v)| v.as_str())
    }

    /// Rejects keys and positional arguments the layer does not take.
    fn check_args(&self, keys: &[&str], positional: usize) -> Result<()> {
        let mut pos = 0;
        for (k, v) in &self.args {
            match k {
                Some(k) if !keys.contains(&k.as_str()) => {
                    return Err(self.err(format!(
                        "unknown argument `{k}`; this layer takes {}",
                        if keys.is_empty() {
                            "no named arguments".to_string()
                        } else {
                            keys.join(", ")
                        }
                    )))
                }
                None => {
                    pos += 1;
                    if pos > positional {
                        return Err(self.err(format!(
                            "unexpected value `{v}`; this layer takes {positional} positional argument(s)"
                        )));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn usize(&self, keys: &[&str], pos: Option<usize>, default: Option<usize>) -> Result<usize> {
        match self.get(keys, pos) {
            Some(v) => v
                .parse()
                .map_err(|_| self.err(format!("`{}` must be a whole number, not `{v}`", keys[0]))),
            None => default.ok_or_else(|| self.err(format!("missing `{}`", keys[0]))),
        }
    }

    fn list(&self, keys: &[&str], pos: Option<usize>) -> Result<Option<Vec<usize>>> {
        self.get(keys, pos)
            .map(|v| {
                per_axis_value(keys[0], v).map_err(|_| {
                    self.err(format!(
                        "`{}` must be a number or one per axis like 3x5, not `{v}`",
                        keys[0]
                    ))
                })
            })
            .transpose()
    }

    fn bool(&self, keys: &[&str], default: bool) -> Result<bool> {
        match self.get(keys, None) {
            None => Ok(default),
            Some("true" | "True" | "1") => Ok(true),
            Some("false" | "False" | "0") => Ok(false),
            Some(v) => Err(self.err(format!("`{}` must be true or false, not `{v}`", keys[0]))),
        }
    }
}

/// Splits the text into tokens.
fn tokenize(text: &str) -> Result<Vec<Token>> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        let start = i;
        let index = tokens.len() + 1;
        while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '-')
        {
            i += 1;
        }
        let name: String = chars[start..i].iter().collect::<String>().to_lowercase();
        let mut args = Vec::new();
        if name.is_empty() {
            return Err(Error::arg(
                "model",
                format!(
                    "layer {index} (column {}): unexpected `{c}`; write layers like conv(6,k=5) relu. Known layers: {KNOWN_LAYERS}",
                    start + 1
                ),
            ));
        }
        if i < chars.len() && chars[i] == '(' {
            let close = chars[i..].iter().position(|&c| c == ')').map(|p| i + p);
            let Some(close) = close else {
                return Err(Error::arg(
                    "model",
                    format!(
                        "layer {index} `{}` (column {}): missing `)`",
                        chars[start..].iter().collect::<String>().trim_end(),
                        start + 1
                    ),
                ));
            };
            let inner: String = chars[i + 1..close].iter().collect();
            for part in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                args.push(match part.split_once('=') {
                    Some((k, v)) => (Some(k.trim().to_lowercase()), v.trim().to_string()),
                    None => (None, part.to_string()),
                });
            }
            i = close + 1;
        }
        tokens.push(Token {
            text: chars[start..i].iter().collect(),
            name,
            args,
            index,
            column: start + 1,
        });
    }
    Ok(tokens)
}

/// Splits `conv2d` into (`conv`, Some(2)).
fn split_dims(name: &str) -> (&str, Option<usize>) {
    for (suffix, d) in [("1d", 1), ("2d", 2), ("3d", 3)] {
        if let Some(base) = name.strip_suffix(suffix) {
            return (base, Some(d));
        }
    }
    (name, None)
}

fn layer(t: &Token) -> Result<LayerSpec> {
    let (base, dims) = split_dims(&t.name);
    let no_args = |l: LayerSpec| -> Result<LayerSpec> {
        t.check_args(&[], 0)?;
        Ok(l)
    };
    match (base, dims) {
        ("conv", _) => {
            let extra = [
                "g",
                "groups",
                "bias",
                "out",
                "out_channels",
                "mode",
                "padding_mode",
            ];
            t.check_args(&[&WINDOW_ARGS[..], &extra].concat(), 2)?;
            let padding = match t.get(&["p", "padding"], None) {
                None => PaddingSpec::default(),
                Some(v) => v.replace('x', ",").parse().map_err(|_| {
                    t.err(format!(
                        "padding `{v}` must be a number, one per axis (2x1), same or valid"
                    ))
                })?,
            };
            Ok(LayerSpec::Conv {
                dims,
                out: t.usize(&["out", "out_channels"], Some(0), None)?,
                kernel: t
                    .list(&["k", "kernel", "kernel_size"], Some(1))?
                    .ok_or_else(|| t.err("missing the kernel size, e.g. conv(16,k=5)"))?,
                stride: t.list(&["s", "stride"], None)?.unwrap_or(vec![1]),
                padding,
                dilation: t.list(&["d", "dilation"], None)?.unwrap_or(vec![1]),
                groups: t.usize(&["g", "groups"], None, Some(1))?,
                bias: t.bool(&["bias"], true)?,
                mode: match t.get(&["mode", "padding_mode"], None) {
                    None => PaddingMode::Zeros,
                    Some(v) => v.parse().map_err(|_| {
                        t.err(format!(
                            "padding mode `{v}` must be zeros, reflect, replicate or circular"
                        ))
                    })?,
                },
            })
        }
        (b, _) if POOL_NAMES.iter().any(|(n, _)| *n == b) => pool(t, base, dims),
        ("linear" | "fc" | "dense", None) => {
            t.check_args(&["out", "out_features", "bias"], 1)?;
            let out = t.usize(&["out", "out_features"], Some(0), None)?;
            if out == 0 {
                return Err(t.err("linear needs at least 1 output feature, e.g. linear(10)"));
            }
            Ok(LayerSpec::Linear {
                out,
                bias: t.bool(&["bias"], true)?,
            })
        }
        ("batchnorm" | "bn", _) => no_args(LayerSpec::BatchNorm { dims }),
        ("flatten", None) => no_args(LayerSpec::Flatten),
        ("relu", None) => no_args(LayerSpec::Act(Activation::Relu)),
        ("sigmoid", None) => no_args(LayerSpec::Act(Activation::Sigmoid)),
        ("tanh", None) => no_args(LayerSpec::Act(Activation::Tanh)),
        ("dropout", None) => {
            t.check_args(&["p"], 1)?;
            let p = match t.get(&["p"], Some(0)) {
                None => 0.5,
                Some(v) => v
                    .parse::<f32>()
                    .ok()
                    .filter(|p| (0.0..1.0).contains(p))
                    .ok_or_else(|| {
                        t.err(format!("dropout probability must be in [0, 1), not `{v}`"))
                    })?,
            };
            Ok(LayerSpec::Dropout { p })
        }
        _ => Err(t.err(format!(
            "unknown layer `{}`; known layers: {KNOWN_LAYERS}",
            t.name
        ))),
    }
}

/// A pooling layer: sliding kinds take `k` (first value), `s`, `p`, `d`, `ceil`,
/// `count_include_pad`, `norm` (lp); adaptive kinds the output size; global kinds nothing.
fn pool(t: &Token, base: &str, dims: Option<usize>) -> Result<LayerSpec> {
    let kind = POOL_NAMES
        .iter()
        .find(|(n, _)| *n == base)
        .expect("known")
        .1;
    let mut p = PoolParams::new(kind, &[]);
    if kind.is_sliding() {
        let extra = [
            "ceil",
            "ceil_mode",
            "count_include_pad",
            "norm",
            "norm_type",
        ];
        t.check_args(&[&WINDOW_ARGS[..], &extra].concat(), 1)?;
        p.kernel = t
            .list(&["k", "kernel", "kernel_size"], Some(0))?
            .ok_or_else(|| t.err("missing the window size, e.g. maxpool(2)"))?;
        p.stride = t.list(&["s", "stride"], None)?.unwrap_or_default();
        let pad = t.list(&["p", "padding"], None)?.unwrap_or(vec![0]);
        p.padding = PaddingSpec::Explicit(pad.iter().map(|&v| (v, v)).collect());
        p.dilation = t.list(&["d", "dilation"], None)?.unwrap_or(vec![1]);
        p.ceil_mode = t.bool(&["ceil", "ceil_mode"], false)?;
        p.count_include_pad = t.bool(&["count_include_pad"], true)?;
        if let Some(v) = t.get(&["norm", "norm_type"], None) {
            p.norm_type = v
                .parse()
                .ok()
                .filter(|n: &f64| *n > 0.0)
                .ok_or_else(|| t.err(format!("`norm` must be a positive number, not `{v}`")))?;
        }
    } else if matches!(kind, PoolKind::AdaptiveAvg | PoolKind::AdaptiveMax) {
        t.check_args(&["o", "output_size"], 1)?;
        p.output_size = t
            .list(&["o", "output_size"], Some(0))?
            .ok_or_else(|| t.err("missing the output size, e.g. adaptiveavgpool(1)"))?;
    } else {
        t.check_args(&[], 0)?;
    }
    Ok(LayerSpec::Pool { dims, params: p })
}

/// Parses a whole spec (see [`super::spec`]).
pub fn parse(text: &str, default_input: &[usize]) -> Result<ModelSpec> {
    let tokens = tokenize(text)?;
    let mut input = default_input.to_vec();
    let mut layers = Vec::new();
    for t in &tokens {
        if t.name == "input" {
            if t.index != 1 {
                return Err(t.err("`input(...)` may only come first"));
            }
            t.check_args(&[], 4)?;
            input = t
                .args
                .iter()
                .map(|(_, v)| v.parse::<usize>().ok().filter(|&d| d > 0))
                .collect::<Option<Vec<_>>>()
                .filter(|v| (1..=4).contains(&v.len()))
                .ok_or_else(|| t.err("input takes 1 to 4 positive sizes, e.g. input(1,28,28)"))?;
            continue;
        }
        layers.push(layer(t)?);
    }
    if layers.is_empty() {
        return Err(Error::arg(
            "model",
            format!("the spec has no layers; e.g. `conv(6,k=5) relu flatten linear(10)`. Known layers: {KNOWN_LAYERS}"),
        ));
    }
    Ok(ModelSpec { input, layers })
}
