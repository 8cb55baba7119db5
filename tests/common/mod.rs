//! The one set of helpers the integration tests share: tensor literals and random tensors,
//! closeness checks, the random convolution configurations, fixture loading, running the
//! binary, and the usage-error checker that enforces the whole error policy.
#![allow(dead_code)]

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use stride::geometry::{PaddingMode, PaddingSpec};
use stride::ops::conv::{ConvAlgo, ConvParams};
use stride::ops::conv_transpose::ConvTransposeParams;
use stride::rng::Rng;
use stride::Tensor;

/// Every algorithm, the reference first.
pub const ALGOS: [ConvAlgo; 8] = [
    ConvAlgo::Direct,
    ConvAlgo::Im2col,
    ConvAlgo::Toeplitz,
    ConvAlgo::WidthLanes,
    ConvAlgo::ChannelLanes,
    ConvAlgo::BatchLanes,
    ConvAlgo::Winograd,
    ConvAlgo::Auto,
];

/// The algorithms checked against the reference (`Direct`).
pub fn fast_algos() -> impl Iterator<Item = ConvAlgo> {
    ALGOS.into_iter().skip(1)
}

/// The worked example of DS-GA 1008 Deep Learning, homework 2: the 5×5 image A ...
pub const IMAGE_A: [f32; 25] = [
    4., 5., 2., 2., 1., 3., 3., 2., 2., 4., 4., 3., 4., 1., 1., 5., 1., 4., 1., 2., 5., 1., 3., 1.,
    4.,
];
/// ... and the 3×3 kernel B (their correlation is [[109,92,72],[108,85,74],[110,74,79]]).
pub const KERNEL_B: [f32; 9] = [4., 3., 3., 5., 5., 5., 2., 4., 3.];

/// A tensor literal: `t(&[2, 2], &[1., 2., 3., 4.])`.
pub fn t(shape: &[usize], data: &[f32]) -> Tensor {
    Tensor::new(shape.to_vec(), data.to_vec()).unwrap()
}

/// A random tensor with values in [-1, 1).
pub fn rand_tensor(rng: &mut Rng, shape: &[usize]) -> Tensor {
    let n = shape.iter().product();
    Tensor::new(shape.to_vec(), rng.vec(n, -1.0, 1.0)).unwrap()
}

/// A random convolution: 1-D/2-D/3-D, batched or not, channels, groups (incl. depthwise), bias
/// or not, stride, every padding form and mode, dilation, flip. Geometry is always valid.
pub fn random_conv(rng: &mut Rng) -> (Tensor, Tensor, Option<Tensor>, ConvParams) {
    let nd = 1 + rng.below(3);
    let depthwise = rng.below(6) == 0;
    let mut groups = [1, 1, 2, 3][rng.below(4)];
    let cin = groups * (1 + rng.below(2));
    let cout = if depthwise {
        groups = cin;
        cin * (1 + rng.below(2))
    } else {
        groups * (1 + rng.below(2))
    };
    let batched = rng.below(4) != 0;
    let n = 1 + rng.below(2);
    let mode = [
        PaddingMode::Zeros,
        PaddingMode::Zeros,
        PaddingMode::Reflect,
        PaddingMode::Replicate,
        PaddingMode::Circular,
    ][rng.below(5)];
    let (mut k, mut stride, mut dil, mut inp, mut pads) = (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..nd {
        let kk = 1 + rng.below(if nd == 3 { 2 } else { 3 });
        let d = 1 + rng.below(2);
        let s = 1 + rng.below(3);
        let span = d * (kk - 1) + 1;
        let i = (span + rng.below(if nd == 3 { 3 } else { 5 })).max(2);
        let pmax = if mode == PaddingMode::Reflect {
            i - 1
        } else {
            i
        };
        pads.push((rng.below(3).min(pmax), rng.below(3).min(pmax)));
        k.push(kk);
        stride.push(s);
        dil.push(d);
        inp.push(i);
    }
    let padding = match rng.below(6) {
        0 => PaddingSpec::Valid,
        1 => PaddingSpec::Same,
        2 => PaddingSpec::Full,
        _ => PaddingSpec::Explicit(pads),
    };
    // same / full may need more padding than reflect or circular can give; fall back to zeros
    let mode = match padding {
        PaddingSpec::Same | PaddingSpec::Full => PaddingMode::Zeros,
        _ => mode,
    };
    let mut xs = if batched { vec![n, cin] } else { vec![cin] };
    xs.extend(&inp);
    let mut ws = vec![cout, cin / groups];
    ws.extend(&k);
    let x = rand_tensor(rng, &xs);
    let w = rand_tensor(rng, &ws);
    let b = (rng.below(2) == 0).then(|| rand_tensor(rng, &[cout]));
    let p = ConvParams {
        stride,
        padding,
        dilation: dil,
        groups,
        padding_mode: mode,
        flip: rng.below(4) == 0,
    };
    (x, w, b, p)
}

/// A random transposed convolution (stride, padding incl. begin:end, output padding below the
/// stride or the dilation, dilation, groups, bias or not, batched or not).
pub fn random_transpose(rng: &mut Rng) -> (Tensor, Tensor, Option<Tensor>, ConvTransposeParams) {
    let nd = 1 + rng.below(3);
    let groups = [1, 1, 2, 3][rng.below(4)];
    let cin = groups * (1 + rng.below(2));
    let cout = groups * (1 + rng.below(2));
    let batched = rng.below(4) != 0;
    let n = 1 + rng.below(2);
    let (mut k, mut stride, mut dil, mut inp, mut pads, mut op) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..nd {
        let kk = 1 + rng.below(3);
        let d = 1 + rng.below(2);
        let s = 1 + rng.below(3);
        let i = 1 + rng.below(if nd == 3 { 3 } else { 4 });
        let o = rng.below(s.max(d));
        // keep the output non-empty: (i-1)*s + d*(k-1) + op + 1 > pb + pe
        let room = (i - 1) * s + d * (kk - 1) + o;
        let pb = rng.below(2).min(room / 2);
        let pe = if rng.below(3) == 0 {
            rng.below(2).min(room / 2)
        } else {
            pb
        };
        k.push(kk);
        stride.push(s);
        dil.push(d);
        inp.push(i);
        pads.push((pb, pe));
        op.push(o);
    }
    let mut xs = if batched { vec![n, cin] } else { vec![cin] };
    xs.extend(&inp);
    let mut ws = vec![cin, cout / groups];
    ws.extend(&k);
    let x = rand_tensor(rng, &xs);
    let w = rand_tensor(rng, &ws);
    let b = (rng.below(2) == 0).then(|| rand_tensor(rng, &[cout]));
    let p = ConvTransposeParams {
        stride,
        padding: PaddingSpec::Explicit(pads),
        output_padding: op,
        dilation: dil,
        groups,
    };
    (x, w, b, p)
}

/// A tensor as the fixture scripts write it.
#[derive(Deserialize, Clone, Debug)]
pub struct TensorJson {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl TensorJson {
    pub fn tensor(&self) -> Tensor {
        Tensor::new(self.shape.clone(), self.data.clone()).unwrap()
    }
}

/// Reads `tests/fixtures/<name>`.
pub fn fixture<T: for<'de> Deserialize<'de>>(name: &str) -> T {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Runs the `stride` binary with `args`.
pub fn stride(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stride"))
        .args(args)
        .output()
        .unwrap()
}

/// Stdout of a successful run (panics with stderr otherwise).
pub fn ok(args: &[&str]) -> String {
    let out = stride(args);
    assert!(
        out.status.success(),
        "stride {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Checks a finished run against the error policy for bad usage: exit code 2, one line on
/// stderr containing `needle`, no panic, no `wrote` on stdout. Returns stderr.
pub fn assert_usage_error(out: &Output, what: &str, needle: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{what}: expected exit 2, stderr: {err}"
    );
    assert!(!err.contains("panicked"), "{what} panicked: {err}");
    assert_eq!(err.trim().lines().count(), 1, "{what}: not one line: {err}");
    assert!(
        err.contains(needle),
        "{what}: expected '{needle}' in: {err}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("wrote"),
        "{what}: wrote a file"
    );
    err
}

/// Stderr of `stride args`, which must be a usage error ([`assert_usage_error`]).
pub fn usage_error(args: &[&str]) -> String {
    assert_usage_error(&stride(args), &format!("stride {args:?}"), "")
}

/// [`usage_error`] naming `needle`, and leaving `dir` as it was: no file created, changed or
/// removed there.
pub fn usage_error_in(dir: &Path, args: &[&str], needle: &str) -> String {
    let before = snapshot(dir);
    let err = assert_usage_error(&stride(args), &format!("stride {args:?}"), needle);
    assert_eq!(
        snapshot(dir),
        before,
        "stride {args:?} changed {}",
        dir.display()
    );
    err
}

/// The files of `dir`, sorted.
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// Every file of `dir` with its length and modification time.
fn snapshot(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    files_in(dir)
        .into_iter()
        .map(|p| {
            let m = std::fs::metadata(&p).unwrap();
            (p, m.len(), m.modified().unwrap())
        })
        .collect()
}

/// A `.npy` file (version 1) with `header` as its header dict and `data` after it, for
/// writing files the library would not (other dtypes, hostile headers).
pub fn npy_bytes(header: &str, data: &[u8]) -> Vec<u8> {
    let mut header = header.to_string();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(data);
    bytes
}

/// The text of a `rows × cols` matrix literal with entry `f(r, c)`, for inputs too large to
/// write out: `matrix_literal(2, 2, |r, c| r + c)` is `[[0,1],[1,2]]`.
pub fn matrix_literal(rows: usize, cols: usize, f: impl Fn(usize, usize) -> usize) -> String {
    let row = |r| {
        let v: Vec<String> = (0..cols).map(|c| f(r, c).to_string()).collect();
        format!("[{}]", v.join(","))
    };
    format!("[{}]", (0..rows).map(row).collect::<Vec<_>>().join(","))
}

/// A command line split at spaces (`words("pool max --kernel 2")`), so a test reads as what
/// a user types; for arguments without spaces.
pub fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// Writes `t` as `.npy` in `dir` and returns the path as a string.
pub fn npy(dir: &Path, name: &str, t: &Tensor) -> String {
    let p: PathBuf = dir.join(name);
    stride::io::npy::write(&p, t).unwrap();
    p.to_string_lossy().into_owned()
}

/// Asserts `got ≈ want` entry by entry, `|g - w| ≤ tol·(1 + |w|)` (the PyTorch fixtures'
/// tolerance), naming the first entry that is off.
pub fn assert_close_each(got: &Tensor, want: &Tensor, tol: f32, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    for (i, (&g, &w)) in got.data().iter().zip(want.data()).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}[{i}]: got {g}, PyTorch {w}"
        );
    }
}

/// Asserts `a ≈ b` element-wise with a tolerance relative to the magnitude of `b`.
pub fn assert_close(a: &Tensor, b: &Tensor, rel: f32, what: &str) {
    assert_eq!(a.shape(), b.shape(), "{what}: shapes differ");
    let scale = b.max_abs().max(1.0);
    let err = a.max_abs_diff(b);
    assert!(
        err <= rel * scale,
        "{what}: max error {err} (scale {scale})"
    );
}

/// A random convolution problem: input `(batch, cin_g·groups, *input)`, weight
/// `(cout_g·groups, cin_g, *kernel)` (values uniform in [-1, 1), a bias half the time), with
/// these strides, paddings and dilations: the common tail of the kernels' random-shape
/// generators.
#[allow(dead_code)]
pub struct RandomProblem {
    pub batch: usize,
    pub cin_g: usize,
    pub cout_g: usize,
    pub groups: usize,
    pub input: Vec<usize>,
    pub kernel: Vec<usize>,
    pub stride: Vec<usize>,
    pub pads: Vec<(usize, usize)>,
    pub dil: Vec<usize>,
}

#[allow(dead_code)]
impl RandomProblem {
    /// Draws the tensors (and maybe the bias) for the shapes.
    pub fn draw(self, rng: &mut Rng) -> (Tensor, Tensor, Option<Tensor>, ConvParams) {
        let cout = self.cout_g * self.groups;
        let xs = [&[self.batch, self.cin_g * self.groups][..], &self.input].concat();
        let ws = [&[cout, self.cin_g][..], &self.kernel].concat();
        let x = rand_uniform(rng, &xs);
        let w = rand_uniform(rng, &ws);
        let b = (rng.below(2) == 0).then(|| rand_uniform(rng, &[cout]));
        let p = ConvParams {
            stride: self.stride,
            padding: PaddingSpec::Explicit(self.pads),
            dilation: self.dil,
            groups: self.groups,
            ..ConvParams::default()
        };
        (x, w, b, p)
    }
}

/// Values uniform in [-1, 1).
fn rand_uniform(rng: &mut Rng, shape: &[usize]) -> Tensor {
    Tensor::new(shape.to_vec(), rng.vec(shape.iter().product(), -1.0, 1.0)).unwrap()
}

/// Checks `cases` random problems from `gen` with [`assert_passes_match_direct`] (`algo`
/// within 1e-5 of the scale) and that more than `min_valid` of them were valid.
#[allow(dead_code)]
pub fn check_random_problems(
    seed: u64,
    cases: usize,
    min_valid: usize,
    algo: ConvAlgo,
    mut gen: impl FnMut(&mut Rng) -> (Tensor, Tensor, Option<Tensor>, ConvParams),
) {
    let mut rng = Rng::new(seed);
    let mut checked = 0;
    for case in 0..cases {
        let (x, w, b, p) = gen(&mut rng);
        let what = format!("case {case}");
        if assert_passes_match_direct(&mut rng, (&x, &w, b.as_ref(), &p), algo, 1e-5, &what) {
            checked += 1;
        }
    }
    assert!(checked > min_valid, "only {checked} cases were valid");
}

/// Asserts that `algo` agrees with the direct reference on one convolution — the forward, the
/// input gradient and the weight gradient for a random output gradient — each within `rel` of
/// the reference's scale (see [`assert_close`]). Returns `false` (checking nothing) when the
/// window does not fit the padded input.
#[allow(dead_code)]
pub fn assert_passes_match_direct(
    rng: &mut Rng,
    (x, w, b, p): (&Tensor, &Tensor, Option<&Tensor>, &ConvParams),
    algo: ConvAlgo,
    rel: f32,
    what: &str,
) -> bool {
    use stride::ops::conv::{conv, conv_backward, GradRequest};
    let Ok(reference) = conv(x, w, b, p, ConvAlgo::Direct) else {
        return false;
    };
    let what = format!("{what} {p:?} x{:?} w{:?}", x.shape(), w.shape());
    let y = conv(x, w, b, p, algo).unwrap();
    assert_close(&y, &reference, rel, &format!("{what}: forward"));
    let gy = rand_tensor(rng, reference.shape());
    let want = GradRequest {
        input: true,
        weight: true,
        bias: false,
    };
    let r = conv_backward(x, w, &gy, p, ConvAlgo::Direct, want).unwrap();
    let f = conv_backward(x, w, &gy, p, algo, want).unwrap();
    let (fi, ri) = (f.input.unwrap(), r.input.unwrap());
    assert_close(&fi, &ri, rel, &format!("{what}: input gradient"));
    let (fw, rw) = (f.weight.unwrap(), r.weight.unwrap());
    assert_close(&fw, &rw, rel, &format!("{what}: weight gradient"));
    true
}

/// A random sliding pooling window over `nd` spatial axes: the kind drawn from `kinds`, kernel
/// 1..=`kmax` per axis, stride 1..=3, symmetric padding at most kernel/2 (PyTorch's rule).
#[allow(dead_code)]
pub fn random_pool_window(
    rng: &mut Rng,
    nd: usize,
    kinds: &[stride::ops::pool::PoolKind],
    kmax: usize,
) -> stride::ops::pool::PoolParams {
    let kind = kinds[rng.below(kinds.len())];
    let k: Vec<usize> = (0..nd).map(|_| 1 + rng.below(kmax)).collect();
    let mut p = stride::ops::pool::PoolParams::new(kind, &k);
    p.stride = (0..nd).map(|_| 1 + rng.below(3)).collect();
    p.padding = stride::geometry::PaddingSpec::Explicit(
        k.iter()
            .map(|&kk| {
                let v = rng.below(kk / 2 + 1);
                (v, v)
            })
            .collect(),
    );
    p
}

/// Checks a fast input-gradient form against the direct scatter on `s` with random `w` and
/// `gy`: `fast(gy, w, gx)` must write every value of `gx` (it starts NaN-poisoned, so a value it
/// missed fails) within 1e-5 of the largest magnitude of the reference.
pub fn check_input_grad(
    s: &stride::ops::conv::ConvShape,
    ws: &[usize],
    rng: &mut Rng,
    what: &str,
    fast: impl FnOnce(&[f32], &[f32], &mut [std::mem::MaybeUninit<f32>]),
) {
    let w = rand_tensor(rng, ws);
    let gy = rand_tensor(rng, &s.out_shape());
    let n_in = s.batch * s.cin * s.window.in_len();
    let mut g1 = vec![std::mem::MaybeUninit::new(f32::NAN); n_in];
    let mut g2 = vec![0.0; n_in];
    fast(gy.data(), w.data(), &mut g1);
    // SAFETY: initialised (NaN) above, then overwritten
    let g1: Vec<f32> = g1.iter().map(|v| unsafe { v.assume_init() }).collect();
    stride::ops::conv::direct::backward_input(s, gy.data(), w.data(), &mut g2);
    let top = g2.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
    for (i, (a, b)) in g1.iter().zip(&g2).enumerate() {
        assert!((a - b).abs() <= 1e-5 * top, "{what}: gx[{i}] {a} vs {b}");
    }
}

/// A random strided input-gradient case: 1 to 3 spatial axes, groups 1 or 2, 1 to 3 input
/// channels per group and 1 to `max_cout` output channels per group, and per axis the kernel
/// size, stride and input span that `axis(rng, axis, nd)` draws as `(k, stride, span)`; padding
/// `0..k` on each side, an input of `k + (0..span)` minus the padding (at least one window).
/// Returns `(x shape, w shape, params)`; the caller checks the shape is valid.
pub fn strided_case(
    rng: &mut Rng,
    max_cout: usize,
    axis: impl Fn(&mut Rng, usize, usize) -> (usize, usize, usize),
) -> (Vec<usize>, Vec<usize>, ConvParams) {
    let nd = 1 + rng.below(3);
    let groups = [1, 1, 2][rng.below(3)];
    let (cin, cout) = (
        groups * (1 + rng.below(3)),
        groups * (1 + rng.below(max_cout)),
    );
    let mut xs = vec![1 + rng.below(2), cin];
    let mut ws = vec![cout, cin / groups];
    let (mut stride, mut pads) = (vec![], vec![]);
    for a in 0..nd {
        let (k, s, span) = axis(rng, a, nd);
        let (pb, pe) = (rng.below(k), rng.below(k));
        let i = (k + rng.below(span)).saturating_sub(pb + pe).max(1);
        xs.push(i);
        ws.push(k);
        stride.push(s);
        pads.push((pb, pe));
    }
    let p = ConvParams {
        stride,
        padding: PaddingSpec::Explicit(pads),
        groups,
        ..ConvParams::default()
    };
    (xs, ws, p)
}
