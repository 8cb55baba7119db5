//! Where each output cell of a pooling reads: per plane and axis, one [`Span`] per output cell.
//! Sliding windows, adaptive windows (PyTorch's `floor(o·i/O)..ceil((o+1)·i/O)`), global
//! windows (adaptive with O = 1) and fractional windows (Graham's pseudo-random starts) all end
//! up as spans; the positions come from the geometry module. k-max has no windows, only `k`.

use crate::error::{Error, Result};
use crate::geometry::{adaptive_span, check_fractional_fit, fractional_starts, Span, Window3};
use crate::rng::Rng;
use crate::tensor::{fmt_shape, Tensor};
use std::borrow::Cow;

/// The windows of a pooling.
#[derive(Clone, Debug, PartialEq)]
pub enum Windows {
    /// The same spans in every plane (sliding, adaptive, global): per axis `[d, h, w]` one span
    /// per output cell.
    Shared([Vec<Span>; 3]),
    /// Fractional max pooling: every plane has its own window starts, drawn from its samples.
    Fractional {
        kernel: [usize; 3],
        output: [usize; 3],
        /// Per plane, one sample u in [0, 1) per axis `[d, h, w]` (unused axes hold 0).
        samples: Vec<[f32; 3]>,
    },
    /// k-max pooling keeps the `k` largest values of each row along the last axis.
    KMax { k: usize },
}

impl Windows {
    /// Sliding windows; every output cell must see at least one input cell on every axis.
    pub fn sliding(w: &Window3) -> Result<Self> {
        let mut spans: [Vec<Span>; 3] = Default::default();
        for (a, ax) in w.axes.iter().enumerate() {
            spans[a] = (0..ax.output).map(|o| ax.span(o)).collect();
            if let Some(o) = spans[a].iter().position(|s| s.count == 0) {
                return Err(Error::arg(
                    "padding",
                    format!(
                        "the window of output cell {o} on axis {} lies wholly in the padding; \
                         use less padding or dilation",
                        a + w.nd - 3
                    ),
                ));
            }
        }
        Ok(Windows::Shared(spans))
    }

    /// Adaptive windows for output sizes `out` (one per real axis; leading axes are singletons).
    pub fn adaptive(input: &[usize; 3], out: &[usize]) -> Self {
        let mut o3 = [1; 3];
        o3[3 - out.len()..].copy_from_slice(out);
        let spans = std::array::from_fn(|a| {
            (0..o3[a])
                .map(|o| adaptive_span(o, input[a], o3[a]))
                .collect()
        });
        Windows::Shared(spans)
    }

    /// Fractional windows of size `kernel` giving `out` cells per real axis. `samples` is in
    /// PyTorch's `_random_samples` layout `(N, C, nd)` (2-D: `[w, h]`, 3-D: `[d, h, w]`, 1-D: `[l]`);
    /// without it each plane draws one sample per axis from `Rng::new(seed)` in plane order.
    pub fn fractional(
        input: &[usize; 3],
        kernel: &[usize],
        out: &[usize],
        planes: usize,
        samples: Option<&Tensor>,
        seed: u64,
    ) -> Result<Self> {
        let nd = kernel.len();
        let (mut k3, mut o3) = ([1; 3], [1; 3]);
        k3[3 - nd..].copy_from_slice(kernel);
        o3[3 - nd..].copy_from_slice(out);
        for a in 3 - nd..3 {
            check_fractional_fit(a + nd - 3, input[a], k3[a], o3[a])?;
        }
        let samples = match samples {
            Some(t) => torch_samples(t, planes, nd)?,
            None => {
                let mut rng = Rng::new(seed);
                (0..planes)
                    .map(|_| {
                        let mut u = [0.0; 3];
                        for v in &mut u[3 - nd..] {
                            *v = rng.uniform();
                        }
                        u
                    })
                    .collect()
            }
        };
        Ok(Windows::Fractional {
            kernel: k3,
            output: o3,
            samples,
        })
    }

    /// k-max over the last axis of length `input[2]`.
    pub fn kmax(input: &[usize; 3], k: usize) -> Result<Self> {
        if k == 0 {
            return Err(Error::arg(
                "k",
                "k-max pooling needs --k K, the number of values to keep (at least 1)",
            ));
        }
        if k > input[2] {
            return Err(Error::arg(
                "k",
                format!(
                    "{k} is larger than the last axis ({}); use k <= {}",
                    input[2], input[2]
                ),
            ));
        }
        Ok(Windows::KMax { k })
    }

    /// The output plane `[d, h, w]`.
    pub fn output(&self, input: &[usize; 3]) -> [usize; 3] {
        match self {
            Windows::Shared(s) => std::array::from_fn(|a| s[a].len()),
            Windows::Fractional { output, .. } => *output,
            Windows::KMax { k } => [input[0], input[1], *k],
        }
    }

    /// The spans of plane `plane` (`[d, h, w]`, one per output cell); empty for k-max.
    pub fn spans(&self, plane: usize, input: &[usize; 3]) -> Cow<'_, [Vec<Span>; 3]> {
        match self {
            Windows::Shared(s) => Cow::Borrowed(s),
            Windows::Fractional {
                kernel,
                output,
                samples,
            } => Cow::Owned(std::array::from_fn(|a| {
                fractional_starts(samples[plane][a], input[a], output[a], kernel[a])
                    .into_iter()
                    .map(|st| Span::range(st, st + kernel[a]))
                    .collect()
            })),
            Windows::KMax { .. } => Cow::Owned(Default::default()),
        }
    }
}

/// Reads PyTorch-layout samples `(N, C, nd)` into per-plane `[d, h, w]` samples.
fn torch_samples(t: &Tensor, planes: usize, nd: usize) -> Result<Vec<[f32; 3]>> {
    if t.numel() != planes * nd || t.shape().last() != Some(&nd) {
        return Err(Error::arg(
            "samples",
            format!(
                "have shape {} but {planes} planes with {nd} spatial axes need (N, C, {nd})",
                fmt_shape(t.shape())
            ),
        ));
    }
    if let Some(v) = t.data().iter().find(|v| !(0.0..1.0).contains(*v)) {
        return Err(Error::arg(
            "samples",
            format!("{v} is outside [0, 1); fractional pooling samples are uniform in [0, 1)"),
        ));
    }
    Ok(t.data()
        .chunks(nd)
        .map(|s| {
            let mut u = [0.0; 3];
            match nd {
                2 => u[1..].copy_from_slice(&[s[1], s[0]]), // PyTorch 2-D: [w, h]
                _ => u[3 - nd..].copy_from_slice(s),
            }
            u
        })
        .collect())
}
