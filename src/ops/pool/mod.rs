//! Pooling, forward and backward, with PyTorch semantics (`torch.nn.functional.max_pool{1,2,3}d`,
//! `avg_pool*`, `lp_pool*`, `adaptive_max_pool*`, `adaptive_avg_pool*`, `fractional_max_pool*`,
//! `max_unpool*`) plus three kinds beyond PyTorch: min, k-max and soft pooling.
//!
//! Layout: input `(N, C, *spatial)` or unbatched `(C, *spatial)` with 1 to 3 spatial axes; every
//! (n, c) plane is pooled on its own. Internally every plane is 3-D (leading singleton axes).
//!
//! This file owns the parameters ([`PoolParams`], [`PoolKind`]) and the dispatch
//! [`pool_forward`] / [`pool_backward`]; [`shape`] validates them into a [`PoolShape`]. The work is done by two
//! families, each one loop with a small strategy:
//! - [`reduce`]: windowed reductions (max, min, avg, lp, soft over sliding, adaptive, global or
//!   fractional windows) through the [`Reduce`] strategy;
//! - [`select`]: selection by index (k-max, the scatter backward of every arg-max kind, and
//!   max-unpooling with its gather backward).
//!
//! Fast paths beside the reference loop: [`rows`] (sliding max/min/avg over 1-D and 2-D planes,
//! vectorised along the width; with AVX-512 also the backward of non-overlapping 2-wide windows
//! as a per-row expansion) and [`separable`] (average pooling in 3-D and adaptive windows).
//!
//! [`activated`] is an activation and the pooling after it in one pass (`pool(f(z))`, forward and
//! backward), for training networks such as LeNet without the activation tensor in between.
//!
//! [`windows`] turns each kind's window rule into spans, asking the geometry module for positions.

pub mod activated;
pub mod reduce;
pub mod rows;
pub mod select;
pub mod separable;
pub mod shape;
pub mod windows;

pub use reduce::{Divisor, Reduce};
pub use select::{max_unpool, max_unpool_backward, unpool_shape};
pub use shape::{spatial_axes, PoolShape};
pub use windows::Windows;

use crate::error::{Error, Result};
use crate::geometry::PaddingSpec;
use crate::ops::conv::check_grad_output;
use crate::tensor::{fmt_shape, Tensor};

/// Which pooling to apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    /// Maximum of each sliding window; padding counts as −∞ (`max_pool*d`).
    Max,
    /// Minimum of each sliding window; padding counts as +∞ (= −max_pool(−x); beyond PyTorch).
    Min,
    /// Mean of each sliding window (`avg_pool*d`).
    Avg,
    /// `(Σ x^p)^(1/p)` over each window, computed as PyTorch's `lp_pool*d` does.
    Lp,
    /// Softmax-weighted mean `Σ softmax(x)_i·x_i` of each window (SoftPool; beyond PyTorch).
    Soft,
    /// Maximum over adaptive windows giving any output size (`adaptive_max_pool*d`).
    AdaptiveMax,
    /// Mean over adaptive windows (`adaptive_avg_pool*d`).
    AdaptiveAvg,
    /// Maximum of each whole plane (= adaptive max with output size 1).
    GlobalMax,
    /// Mean of each whole plane (= adaptive avg with output size 1).
    GlobalAvg,
    /// Maximum over pseudo-random windows (Graham 2014; `fractional_max_pool2d/3d`).
    FractionalMax,
    /// The k largest values along the last axis, in their original order (Kalchbrenner et al.
    /// 2014; beyond PyTorch).
    KMax,
}

impl PoolKind {
    /// Every kind with its CLI name.
    pub const ALL: [(PoolKind, &'static str); 11] = [
        (PoolKind::Max, "max"),
        (PoolKind::Min, "min"),
        (PoolKind::Avg, "avg"),
        (PoolKind::Lp, "lp"),
        (PoolKind::Soft, "soft"),
        (PoolKind::AdaptiveMax, "adaptive-max"),
        (PoolKind::AdaptiveAvg, "adaptive-avg"),
        (PoolKind::GlobalMax, "global-max"),
        (PoolKind::GlobalAvg, "global-avg"),
        (PoolKind::FractionalMax, "fractional-max"),
        (PoolKind::KMax, "kmax"),
    ];

    /// The CLI name (`adaptive-max`).
    pub fn name(self) -> &'static str {
        PoolKind::ALL
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("?", |(_, n)| n)
    }

    /// Kinds that pick one input per output cell and record its index (backward scatters there).
    pub fn has_indices(self) -> bool {
        matches!(
            self,
            PoolKind::Max
                | PoolKind::Min
                | PoolKind::AdaptiveMax
                | PoolKind::GlobalMax
                | PoolKind::FractionalMax
                | PoolKind::KMax
        )
    }

    /// Kinds with a sliding window (kernel, stride, padding, ceil mode).
    pub fn is_sliding(self) -> bool {
        matches!(
            self,
            PoolKind::Max | PoolKind::Min | PoolKind::Avg | PoolKind::Lp | PoolKind::Soft
        )
    }
}

impl std::str::FromStr for PoolKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        PoolKind::ALL
            .iter()
            .find(|(_, n)| *n == s)
            .map(|(k, _)| *k)
            .ok_or_else(|| {
                let names: Vec<&str> = PoolKind::ALL.iter().map(|(_, n)| *n).collect();
                Error::arg(
                    "kind",
                    format!("unknown pooling '{s}'; use {}", names.join(", ")),
                )
            })
    }
}

/// Parameters of a pooling (PyTorch names and defaults). Fields a kind does not use are ignored.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolParams {
    pub kind: PoolKind,
    /// Window size per axis (one value applies to all); sliding and fractional kinds.
    pub kernel: Vec<usize>,
    /// Stride per axis; empty = the kernel size (PyTorch's default).
    pub stride: Vec<usize>,
    /// Padding; at most half the kernel (PyTorch). Max pads with −∞, min with +∞, avg with 0.
    pub padding: PaddingSpec,
    /// Dilation per axis (max, min, soft).
    pub dilation: Vec<usize>,
    /// Output length uses `ceil` instead of `floor`; the last window must start in the input or
    /// the begin padding.
    pub ceil_mode: bool,
    /// Average pooling divides by the window size including padding (PyTorch's default `true`).
    pub count_include_pad: bool,
    /// Average pooling divides by this instead.
    pub divisor_override: Option<usize>,
    /// The `p` of LP pooling (`norm_type`); p = 1 is sum pooling, large p tends to max.
    pub norm_type: f64,
    /// Output size per axis (adaptive and fractional kinds; max-unpool's target size).
    pub output_size: Vec<usize>,
    /// How many values k-max pooling keeps.
    pub k: usize,
    /// Seed of fractional max pooling's samples when `samples` is not given.
    pub seed: u64,
    /// Fractional max pooling's samples u in [0, 1) in PyTorch's `_random_samples` layout
    /// `(N, C, nd)` (2-D: `[w, h]`; 3-D: `[d, h, w]`); `None` = drawn from `seed`.
    pub samples: Option<Tensor>,
    /// Number of spatial axes; `None` = the length of the per-axis lists when one has several
    /// values, else the input's rank − 2.
    pub spatial_axes: Option<usize>,
}

impl PoolParams {
    /// PyTorch's defaults for `kind` with the given window size (empty for kinds without one).
    pub fn new(kind: PoolKind, kernel: &[usize]) -> Self {
        PoolParams {
            kind,
            kernel: kernel.to_vec(),
            stride: vec![],
            padding: PaddingSpec::default(),
            dilation: vec![1],
            ceil_mode: false,
            count_include_pad: true,
            divisor_override: None,
            norm_type: 2.0,
            output_size: vec![],
            k: 0,
            seed: 0,
            samples: None,
            spatial_axes: None,
        }
    }

    /// The stride actually used: the given one, or the kernel size.
    pub fn stride_or_kernel(&self) -> &[usize] {
        if self.stride.is_empty() {
            &self.kernel
        } else {
            &self.stride
        }
    }
}

/// The result of a forward pass: the output and, for kinds that select (max, min, adaptive and
/// global max, fractional max, k-max), the flat index of each selected value within its input
/// plane (PyTorch's `return_indices`), which the backward pass needs.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolOutput {
    pub y: Tensor,
    pub indices: Option<Vec<u32>>,
}

impl PoolOutput {
    /// The indices as a float tensor shaped like `y` (exact up to 2^24 cells per plane).
    pub fn indices_tensor(&self) -> Option<Tensor> {
        let idx = self.indices.as_ref()?;
        Tensor::new(
            self.y.shape().to_vec(),
            idx.iter().map(|&i| i as f32).collect(),
        )
        .ok()
    }
}

/// Pooling forward: `y` and, for selecting kinds, the argmax indices.
/// PyTorch: `F.max_pool2d(x, k, s, p, d, ceil_mode, return_indices=True)` and friends.
///
/// ```
/// use stride::ops::pool::{pool_forward, PoolKind, PoolParams};
/// use stride::Tensor;
/// // 2×2 max pooling, stride 2 (PyTorch's default stride = kernel) on a (1, 1, 4, 4) input
/// let x = Tensor::new(vec![1, 1, 4, 4], (0..16).map(|v| v as f32).collect())?;
/// let y = pool_forward(&x, &PoolParams::new(PoolKind::Max, &[2]))?.y;
/// assert_eq!(y.data(), &[5.0, 7.0, 13.0, 15.0]);
/// # Ok::<(), stride::Error>(())
/// ```
pub fn pool_forward(x: &Tensor, p: &PoolParams) -> Result<PoolOutput> {
    let s = PoolShape::new(x.shape(), p)?;
    if rows::applies(&s) {
        // the fast path writes every output once: no zero fill first
        let (y, indices) = rows::forward_new(&s, x.data(), p.kind.has_indices());
        let y = Tensor::new(s.out_shape(), y)?;
        return Ok(PoolOutput { y, indices });
    }
    let mut y = Tensor::zeros(&s.out_shape());
    let mut indices = p.kind.has_indices().then(|| vec![0u32; y.numel()]);
    match p.kind {
        PoolKind::KMax => {
            let idx = indices.as_deref_mut().unwrap_or_default();
            select::kmax_forward(&s, x.data(), y.data_mut(), idx);
        }
        _ => reduce::forward(&s, x.data(), y.data_mut(), indices.as_deref_mut()),
    }
    Ok(PoolOutput { y, indices })
}

/// Pooling backward: the gradient with respect to `x` given `gy = dL/dy`; `out` is what
/// [`pool_forward`] returned for the same `x` and `p`.
pub fn pool_backward(x: &Tensor, out: &PoolOutput, gy: &Tensor, p: &PoolParams) -> Result<Tensor> {
    let s = PoolShape::new(x.shape(), p)?;
    let want = s.out_shape();
    if out.y.shape() != want.as_slice() {
        return Err(Error::arg(
            "output",
            format!(
                "has shape {} but this pooling gives {}; pass the forward result of the same input",
                fmt_shape(out.y.shape()),
                fmt_shape(&want)
            ),
        ));
    }
    check_grad_output(gy.shape(), &want)?;
    if p.kind.has_indices() {
        let idx = out.indices.as_deref().unwrap_or_default();
        return pool_backward_indices(x.shape(), idx, gy, p);
    }
    // non-overlapping 2-wide average windows: each gradient row written once (AVX-512)
    #[cfg(target_arch = "x86_64")]
    if let Some(gx) = rows::expand::backward_avg(&s, gy.data()) {
        return Tensor::new(x.shape().to_vec(), gx);
    }
    let mut gx = Tensor::zeros(x.shape());
    reduce::backward(&s, x.data(), out.y.data(), gy.data(), gx.data_mut());
    Ok(gx)
}

/// Backward of the selecting kinds (max, min, adaptive/global/fractional max, k-max) from the
/// forward's indices alone: the gradient with respect to an input of shape `x_shape`. What
/// [`pool_backward`] does for them, without the output (a layer need not keep a copy of it).
pub fn pool_backward_indices(
    x_shape: &[usize],
    idx: &[u32],
    gy: &Tensor,
    p: &PoolParams,
) -> Result<Tensor> {
    let s = PoolShape::new(x_shape, p)?;
    let want = s.out_shape();
    check_grad_output(gy.shape(), &want)?;
    if !p.kind.has_indices() || idx.len() != gy.numel() {
        return Err(Error::arg(
            "indices",
            format!(
                "{} pooling backward needs the forward pass's indices",
                p.kind.name()
            ),
        ));
    }
    // non-overlapping 2-wide windows: each gradient row written once (AVX-512)
    #[cfg(target_arch = "x86_64")]
    if let Some(gx) = rows::expand::backward(&s, idx, gy.data()) {
        return Tensor::new(x_shape.to_vec(), gx);
    }
    let gx = select::scatter(s.in_len(), s.out_len(), idx, gy.data())?;
    Tensor::new(x_shape.to_vec(), gx)
}
