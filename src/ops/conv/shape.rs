//! The convolution problem: PyTorch's parameters ([`ConvParams`]) and the validated sizes every
//! algorithm takes ([`ConvShape`]), with the checks that turn bad shapes into one-line errors
//! naming the argument. Shared with the transposed convolution (`split_input`, `check_bias`,
//! `kernel_window`).

use crate::error::{Error, Result};
use crate::geometry::{PaddingMode, PaddingSpec, Window3, WindowSpec};
use crate::tensor::fmt_shape;

/// Most values in one tensor of a convolution (padded input or output): 2³², 16 GiB of f32.
pub const MAX_ELEMENTS: usize = 1 << 32;

/// Parameters of a convolution (PyTorch names and defaults).
#[derive(Clone, Debug, PartialEq)]
pub struct ConvParams {
    /// Stride per axis (one value applies to all).
    pub stride: Vec<usize>,
    /// Padding (explicit, `valid`, `same`, `full`).
    pub padding: PaddingSpec,
    /// Dilation per axis (one value applies to all).
    pub dilation: Vec<usize>,
    /// Number of groups: input and output channels split into `groups` independent convolutions.
    pub groups: usize,
    /// How the padding is filled.
    pub padding_mode: PaddingMode,
    /// True convolution (kernel flipped on every spatial axis) instead of cross-correlation.
    pub flip: bool,
}

impl Default for ConvParams {
    fn default() -> Self {
        ConvParams {
            stride: vec![1],
            padding: PaddingSpec::default(),
            dilation: vec![1],
            groups: 1,
            padding_mode: PaddingMode::Zeros,
            flip: false,
        }
    }
}

/// A validated convolution problem: sizes, groups and the window, ready for any algorithm.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvShape {
    /// Batch size `N` (1 for unbatched input).
    pub batch: usize,
    /// Whether the input had a batch axis.
    pub batched: bool,
    pub cin: usize,
    pub cout: usize,
    pub groups: usize,
    /// The spatial window (3-D, with leading singleton axes for 1-D and 2-D).
    pub window: Window3,
    pub mode: PaddingMode,
}

impl ConvShape {
    /// Checks the shapes of input, weight and bias against the parameters.
    pub fn new(
        input: &[usize],
        weight: &[usize],
        bias: Option<&[usize]>,
        p: &ConvParams,
    ) -> Result<Self> {
        let (batched, batch, cin, spatial) = split_input(
            input,
            weight,
            "convolution",
            "(Cout, Cin/groups, k1[, k2[, k3]])",
        )?;
        let (cout, cin_g) = (weight[0], weight[1]);
        let groups = p.groups;
        if groups == 0 {
            return Err(Error::arg("groups", "must be at least 1"));
        }
        if cin_g * groups != cin {
            return Err(Error::arg(
                "weight",
                format!(
                    "expects {} input channels (weight[1] = {cin_g} × groups {groups}) but the input has {cin}; \
                     the weight must be (Cout, Cin/groups, ...)",
                    cin_g * groups
                ),
            ));
        }
        if cin % groups != 0 || cout % groups != 0 {
            return Err(Error::arg(
                "groups",
                format!("{groups} does not divide the channels (Cin {cin}, Cout {cout}); pick a common divisor"),
            ));
        }
        if cout == 0 || cin == 0 {
            return Err(Error::arg("weight", "has zero channels"));
        }
        check_bias(bias, cout, "")?;
        let spec = kernel_window(weight, &p.stride, &p.dilation, &p.padding);
        let window = Window3::new(spatial, &spec)?;
        window.check_mode(p.padding_mode)?;
        let shape = ConvShape {
            batch,
            batched,
            cin,
            cout,
            groups,
            window,
            mode: p.padding_mode,
        };
        shape.check_size("padding", "use less padding or a smaller input")?;
        Ok(shape)
    }

    /// Refuses a problem whose padded input `N·Cin·Π(pb + i + pe)` (which the row kernel
    /// builds) or output `N·Cout·out` would hold more than [`MAX_ELEMENTS`] values, or whose
    /// padded input, output and one gradient of the output together pass the memory limit
    /// ([`crate::limits`]); `arg` and `fix` name the argument to change and how.
    pub fn check_size(&self, arg: &str, fix: &str) -> Result<()> {
        let axes = &self.window.axes;
        let dims = |c: usize, lens: [usize; 3]| [self.batch, c, lens[0], lens[1], lens[2]];
        let padded = dims(self.cin, axes.map(|a| a.padded()));
        let out = dims(self.cout, axes.map(|a| a.output));
        let count = |d: &[usize]| {
            d.iter()
                .try_fold(1usize, |n, &l| n.checked_mul(l))
                .filter(|&n| n <= MAX_ELEMENTS)
        };
        if count(&padded).is_none() || count(&out).is_none() {
            return Err(Error::TooLarge {
                what: arg.into(),
                msg: format!(
                    "needs a tensor of more than {MAX_ELEMENTS} values (16 GiB of f32); {fix}"
                ),
            });
        }
        crate::limits::check(arg, crate::limits::f32_bytes(&[&padded, &out, &out]), fix)
    }

    /// Input channels per group.
    pub fn cin_g(&self) -> usize {
        self.cin / self.groups
    }

    /// Output channels per group.
    pub fn cout_g(&self) -> usize {
        self.cout / self.groups
    }

    /// The reduction length `Cin/g · kd·kh·kw`: the products summed into one output value (rows
    /// of the im2col matrix, columns of the reshaped weight).
    pub fn reduction_len(&self) -> usize {
        self.cin_g() * self.window.taps()
    }

    /// Input shape (with or without the batch axis, as given).
    pub fn in_shape(&self) -> Vec<usize> {
        let mut s = vec![self.cin];
        s.extend(self.window.real_axes().iter().map(|a| a.input));
        if self.batched {
            s.insert(0, self.batch);
        }
        s
    }

    /// Output shape as PyTorch returns it (with or without the batch axis).
    pub fn out_shape(&self) -> Vec<usize> {
        let mut s = vec![self.cout];
        s.extend(self.window.output_shape());
        if self.batched {
            s.insert(0, self.batch);
        }
        s
    }

    /// Multiply-accumulates of the direct sum ([`conv_macs`]).
    pub fn macs(&self) -> u64 {
        conv_macs(self.batch, self.cout, self.cin_g(), &self.window)
    }
}

/// Multiply-accumulates of a convolution as the direct sum: `N·Cout·out` output values, each a
/// sum of `Cin/g·taps` products. The one count that analysis, the model summary and the
/// benchmarks report (FLOPs = 2 · MACs); saturating, so a huge layer cannot overflow it. Pooling
/// counts its window reads with `cin_g = 1`.
pub fn conv_macs(batch: usize, cout: usize, cin_g: usize, window: &Window3) -> u64 {
    [batch, cout, window.out_len(), cin_g, window.taps()]
        .iter()
        .fold(1u64, |n, &v| n.saturating_mul(v as u64))
}

/// Checks the weight's rank (1 to 3 kernel axes, layout described by `layout`) and the input's
/// rank against it, and splits the input shape into (batched, N, C, spatial sizes). Shared by
/// convolution and transposed convolution.
pub(crate) fn split_input<'a>(
    input: &'a [usize],
    weight: &[usize],
    op: &str,
    layout: &str,
) -> Result<(bool, usize, usize, &'a [usize])> {
    if !(3..=5).contains(&weight.len()) {
        return Err(Error::arg(
            "weight",
            format!(
                "has shape {}; a {op} weight is {layout} with 1 to 3 kernel axes",
                fmt_shape(weight)
            ),
        ));
    }
    let nd = weight.len() - 2;
    match input.len() {
        r if r == nd + 2 => Ok((true, input[0], input[1], &input[2..])),
        r if r == nd + 1 => Ok((false, 1, input[0], &input[1..])),
        _ => Err(Error::arg(
            "input",
            format!(
                "has shape {}, but a {nd}-D {op} (weight {}) takes (N, Cin, {s}) or (Cin, {s})",
                fmt_shape(input),
                fmt_shape(weight),
                s = spatial_names(nd)
            ),
        )),
    }
}

/// Checks a bias shape against `cout`, one value per output channel; `how` says how Cout follows
/// from the weight (empty when it is weight[0]). Shared by convolution and its transpose.
pub(crate) fn check_bias(bias: Option<&[usize]>, cout: usize, how: &str) -> Result<()> {
    match bias {
        Some(b) if b != [cout] => Err(Error::arg(
            "bias",
            format!(
                "has shape {} but must be ({cout}), one value per output channel{how}",
                fmt_shape(b)
            ),
        )),
        _ => Ok(()),
    }
}

/// The window of the kernel `weight[2..]` (weight `(C, C', *k)`) at the given stride, dilation
/// and padding; convolutions have no ceil mode.
pub(crate) fn kernel_window(
    weight: &[usize],
    stride: &[usize],
    dilation: &[usize],
    padding: &PaddingSpec,
) -> WindowSpec {
    WindowSpec {
        kernel: weight[2..].to_vec(),
        stride: stride.to_vec(),
        dilation: dilation.to_vec(),
        padding: padding.clone(),
        ceil_mode: false,
    }
}

fn spatial_names(nd: usize) -> &'static str {
    ["L", "H, W", "D, H, W"][nd - 1]
}
