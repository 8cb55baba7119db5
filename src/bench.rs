//! Benchmarks as a library: the timing protocol of the course's `bench/common.py` (so stride and
//! PyTorch are timed alike), the standard shapes file, FLOP counts, and the timed passes of each
//! shape ([`time_conv`], [`time_pool`], [`time_gemm`]) that `stride bench` prints, the machine's
//! measured FMA peak ([`fma_peak`]) and the process's peak memory ([`peak_rss_bytes`]).
//!
//! Protocol: warm up until ≥ 0.3 s and ≥ 2 calls; calibrate K = ceil(0.2 s / t_call) calls per
//! run; 7 runs of K back-to-back calls; report the median per-call time (and min, max).

use crate::error::{Error, Result};
use crate::geometry::PaddingSpec;
use crate::ops::conv::{
    auto_algos, conv, conv_backward, conv_macs, ConvAlgo, ConvParams, ConvShape, GradRequest,
};
use crate::ops::pool::{pool_backward, pool_forward, PoolKind, PoolParams};
use crate::rng::Rng;
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

/// Timing of one operation.
#[derive(Clone, Debug, Serialize)]
pub struct Timing {
    pub median_s: f64,
    pub min_s: f64,
    pub max_s: f64,
    pub calls_per_run: usize,
    pub runs: usize,
    /// CPU time (all threads) per call over the timed runs, from /proc/self/task/*/schedstat:
    /// unlike wall time, it barely moves when other processes compete for the cores.
    pub cpu_s: Option<f64>,
}

/// Total CPU time of this process's threads in seconds (Linux; `None` elsewhere).
pub fn process_cpu_s() -> Option<f64> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let text = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total as f64 * 1e-9)
}

/// Times `f` with the shared protocol. The whole timing runs on a worker of the rayon pool
/// ([`crate::ops::on_pool`]), as PyTorch's calls run on one of its OpenMP threads: called from
/// outside the pool, every call would also time putting this thread to sleep and waking it.
pub fn time(f: impl FnMut() + Send) -> Timing {
    crate::ops::on_pool(|| time_here(f))
}

/// [`time`] on the calling thread.
fn time_here(mut f: impl FnMut()) -> Timing {
    const RUNS: usize = 7;
    let (warmup_s, run_s) = (0.3, 0.2);
    let t0 = Instant::now();
    let mut calls = 0;
    while calls < 2 || t0.elapsed().as_secs_f64() < warmup_s {
        f();
        calls += 1;
    }
    let per = t0.elapsed().as_secs_f64() / calls as f64;
    let k = ((run_s / per).ceil() as usize).max(1);
    let cpu0 = process_cpu_s();
    let mut samples: Vec<f64> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..k {
                f();
            }
            t.elapsed().as_secs_f64() / k as f64
        })
        .collect();
    let cpu_s = cpu0
        .zip(process_cpu_s())
        .map(|(a, b)| (b - a) / (RUNS * k) as f64);
    samples.sort_by(|a, b| a.total_cmp(b));
    Timing {
        median_s: samples[RUNS / 2],
        min_s: samples[0],
        max_s: samples[RUNS - 1],
        calls_per_run: k,
        runs: RUNS,
        cpu_s,
    }
}

/// One convolution shape of `shapes.json`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConvBenchShape {
    #[serde(rename = "name")]
    pub name: String,
    pub n: usize,
    pub cin: usize,
    pub cout: usize,
    #[serde(rename = "in")]
    pub input: Vec<usize>,
    #[serde(rename = "k")]
    pub kernel: Vec<usize>,
    #[serde(rename = "stride")]
    pub stride: Vec<usize>,
    #[serde(rename = "pad")]
    pub pad: Vec<usize>,
    #[serde(rename = "dil")]
    pub dilation: Vec<usize>,
    #[serde(rename = "groups")]
    pub groups: usize,
}

/// One pooling shape of `shapes.json`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct PoolBenchShape {
    pub name: String,
    pub kind: String,
    #[serde(rename = "N")]
    pub n: usize,
    #[serde(rename = "C")]
    pub c: usize,
    #[serde(rename = "in")]
    pub input: Vec<usize>,
    pub k: Vec<usize>,
    pub stride: Vec<usize>,
    pub pad: Vec<usize>,
}

/// The shapes file.
#[derive(Clone, Debug, Deserialize)]
pub struct Shapes {
    pub conv: Vec<ConvBenchShape>,
    #[serde(default)]
    pub pool: Vec<PoolBenchShape>,
}

impl Shapes {
    /// Reads a shapes file (the format of `bench/shapes.json`).
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::arg(
                "shapes",
                format!("cannot read {} ({e}); pass --shapes FILE", path.display()),
            )
        })?;
        serde_json::from_str(&text).map_err(|e| {
            Error::arg(
                "shapes",
                format!("{}: not a shapes file ({e})", path.display()),
            )
        })
    }
}

impl ConvBenchShape {
    /// The window over the input (PyTorch formula, via geometry).
    fn window(&self) -> Result<crate::geometry::Window3> {
        let spec = crate::geometry::WindowSpec {
            kernel: self.kernel.clone(),
            stride: self.stride.clone(),
            dilation: self.dilation.clone(),
            padding: crate::geometry::PaddingSpec::Explicit(
                self.pad.iter().map(|&p| (p, p)).collect(),
            ),
            ceil_mode: false,
        };
        crate::geometry::Window3::new(&self.input, &spec)
    }

    /// Output spatial sizes.
    pub fn out_dims(&self) -> Result<Vec<usize>> {
        Ok(self.window()?.output_shape())
    }

    /// `2 · MACs` of the direct convolution ([`conv_macs`]), the count used for every pass.
    pub fn flops(&self) -> Result<f64> {
        let macs = conv_macs(self.n, self.cout, self.cin / self.groups, &self.window()?);
        Ok(2.0 * macs as f64)
    }
}

impl ConvBenchShape {
    /// The convolution parameters of this shape (symmetric explicit padding).
    pub fn params(&self) -> ConvParams {
        ConvParams {
            stride: self.stride.clone(),
            padding: PaddingSpec::Explicit(self.pad.iter().map(|&p| (p, p)).collect()),
            dilation: self.dilation.clone(),
            groups: self.groups,
            ..Default::default()
        }
    }
}

/// One timed pass of one shape.
#[derive(Clone, Debug)]
pub struct PassTiming {
    /// The pass: `fwd`, `bwd_input`, `bwd_weight` (convolution) or `fwd`, `bwd` (pooling).
    pub op: &'static str,
    /// The kernel that ran (convolution only; for `auto`, the one it picked).
    pub algo: String,
    pub timing: Timing,
}

/// A boxed pass to time.
type Pass<'a> = (&'static str, Box<dyn Fn() + Sync + 'a>);

/// Times forward, input gradient and weight gradient of `c` under `algo` on random data
/// (seed 0), each with [`time`]. The FLOPs of every pass are [`ConvBenchShape::flops`].
pub fn time_conv(c: &ConvBenchShape, algo: ConvAlgo) -> Result<Vec<PassTiming>> {
    let mut rng = Rng::new(0);
    let mut xs = vec![c.n, c.cin];
    xs.extend(&c.input);
    let mut ws = vec![c.cout, c.cin / c.groups];
    ws.extend(&c.kernel);
    let x = Tensor::new(xs.clone(), rng.vec(xs.iter().product(), -1.0, 1.0))?;
    let w = Tensor::new(ws.clone(), rng.vec(ws.iter().product(), -1.0, 1.0))?;
    let p = c.params();
    let shape = ConvShape::new(x.shape(), w.shape(), None, &p)?;
    let names = if algo == ConvAlgo::Auto {
        auto_algos(&shape)
    } else {
        [0, 1, 2].map(|_| algo.name().to_string())
    };
    let gy = Tensor::new(
        shape.out_shape(),
        rng.vec(shape.out_shape().iter().product(), -1.0, 1.0),
    )?;
    let grad = |want: GradRequest| conv_backward(&x, &w, &gy, &p, algo, want).expect("valid shape");
    let only = |input: bool| GradRequest {
        input,
        weight: !input,
        bias: false,
    };
    let passes: [Pass; 3] = [
        (
            "fwd",
            Box::new(|| {
                drop(black_box(
                    conv(&x, &w, None, &p, algo).expect("valid shape"),
                ))
            }),
        ),
        ("bwd_input", Box::new(|| drop(black_box(grad(only(true)))))),
        (
            "bwd_weight",
            Box::new(|| drop(black_box(grad(only(false))))),
        ),
    ];
    Ok(passes
        .iter()
        .zip(names)
        .map(|((op, f), algo)| PassTiming {
            op,
            algo,
            timing: time(f),
        })
        .collect())
}

/// Times pooling forward (with indices for max) and backward of `ps` on random data (seed 0).
pub fn time_pool(ps: &PoolBenchShape) -> Result<Vec<PassTiming>> {
    let kind = match ps.kind.as_str() {
        "max" => PoolKind::Max,
        "avg" => PoolKind::Avg,
        other => {
            return Err(Error::arg(
                "shapes",
                format!("unknown pool kind '{other}' in the shapes file; use max or avg"),
            ))
        }
    };
    let mut p = PoolParams::new(kind, &ps.k);
    p.stride = ps.stride.clone();
    p.padding = PaddingSpec::Explicit(ps.pad.iter().map(|&v| (v, v)).collect());
    let mut rng = Rng::new(0);
    let mut xs = vec![ps.n, ps.c];
    xs.extend(&ps.input);
    let x = Tensor::new(xs.clone(), rng.vec(xs.iter().product(), -1.0, 1.0))?;
    let out = pool_forward(&x, &p)?;
    let gy = Tensor::new(out.y.shape().to_vec(), rng.vec(out.y.numel(), -1.0, 1.0))?;
    let passes: [Pass; 2] = [
        (
            "fwd",
            Box::new(|| drop(black_box(pool_forward(&x, &p).expect("valid shape")))),
        ),
        (
            "bwd",
            Box::new(|| {
                drop(black_box(
                    pool_backward(&x, &out, &gy, &p).expect("valid shape"),
                ))
            }),
        ),
    ];
    Ok(passes
        .iter()
        .map(|(op, f)| PassTiming {
            op,
            algo: String::new(),
            timing: time(f),
        })
        .collect())
}

/// Times the square SGEMM `n×n · n×n` on `threads` threads (random data, seed 1); FLOPs `2n³`.
pub fn time_gemm(n: usize, threads: usize) -> Timing {
    use crate::ops::gemm::{matmul, MatRef};
    let mut rng = Rng::new(1);
    let (x, w) = (rng.vec(n * n, -1.0, 1.0), rng.vec(n * n, -1.0, 1.0));
    let mut y = vec![0.0; n * n];
    time(|| {
        matmul(
            &mut y,
            n,
            MatRef::row_major(&x, n, n),
            MatRef::row_major(&w, n, n),
            false,
            threads,
        )
    })
}

/// Independent accumulators of the FMA peak kernel (enough to cover the FMA latency on two
/// ports), and FMA steps per accumulator per call: ~3 ms per call, long enough that thread
/// wake-up and the core's AVX-512 frequency change (tens of µs at a lower rate) do not count
/// (20,000 steps, 60 µs, under-read the peak by ~15%: the 3×3 kernels showed 110–118%).
const PEAK_ACC: usize = 12;
const PEAK_ITERS: usize = 500_000;

/// The machine's measured f32 FMA peak: every thread of the current rayon pool runs
/// `PEAK_ACC` (12) independent chains of 16-lane fused multiply-adds (AVX-512 where
/// [`crate::ops::simd::avx512`] allows, else the portable build's vectors) at once, timed with
/// the shared protocol. Returns GFLOP/s (2 FLOPs per FMA lane), the ceiling against which
/// `stride bench` shows each shape's share.
pub fn fma_peak() -> f64 {
    let threads = rayon::current_num_threads();
    let t = time(|| {
        rayon::broadcast(|_| black_box(fma_chains(black_box(PEAK_ITERS))));
    });
    let flops = (threads * PEAK_ITERS * PEAK_ACC * 16 * 2) as f64;
    flops / t.median_s / 1e9
}

/// [`PEAK_ACC`] chains `acc = acc·a + b` of `iters` steps on 16 lanes; returns their sum.
fn fma_chains(iters: usize) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if crate::ops::simd::avx512() {
        // SAFETY: the CPU has AVX-512F and FMA (checked just above).
        return unsafe { fma_chains_avx512(iters) };
    }
    let (a, b) = (black_box(0.999_999f32), black_box(1e-7f32));
    let mut acc = [[0.0f32; 16]; PEAK_ACC];
    for _ in 0..iters {
        for v in acc.iter_mut() {
            for l in v.iter_mut() {
                *l = *l * a + b;
            }
        }
    }
    acc.iter().flatten().sum()
}

/// [`fma_chains`] on AVX-512 registers.
///
/// # Safety
/// The CPU must support AVX-512F and FMA; callers check [`crate::ops::simd::avx512`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn fma_chains_avx512(iters: usize) -> f32 {
    use std::arch::x86_64::*;
    let (a, b) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
    let mut acc = [_mm512_setzero_ps(); PEAK_ACC];
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = _mm512_fmadd_ps(*v, a, b);
        }
    }
    let mut s = acc[0];
    for v in &acc[1..] {
        s = _mm512_add_ps(s, *v);
    }
    _mm512_reduce_add_ps(s)
}

/// The peak resident memory of this process in bytes (`VmHWM` of /proc/self/status, else
/// `getrusage`'s `ru_maxrss`); `None` where neither says.
pub fn peak_rss_bytes() -> Option<u64> {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        let kb = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
        if let Some(kb) = kb {
            return Some(kb * 1024);
        }
    }
    #[cfg(unix)]
    {
        // SAFETY: getrusage only writes the struct it is given.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } == 0 {
            // Linux reports kilobytes, macOS bytes
            let scale = if cfg!(target_os = "macos") { 1 } else { 1024 };
            return u64::try_from(ru.ru_maxrss).ok().map(|v| v * scale);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The peak kernel computes what it claims (the AVX-512 chains agree with the portable
    /// ones), and peak memory is readable here and plausible.
    #[test]
    fn peak_kernel_and_memory() {
        let iters = 1000;
        // acc_{n+1} = acc_n·a + b from 0, summed over 12 × 16 lanes
        let (a, b) = (0.999_999f64, 1e-7f64);
        let one = (0..iters).fold(0.0f64, |acc, _| acc * a + b);
        let want = one * (PEAK_ACC * 16) as f64;
        let got = fma_chains(iters) as f64;
        assert!((got - want).abs() <= 1e-4 * want, "{got} vs {want}");
        if cfg!(target_os = "linux") {
            let rss = peak_rss_bytes().expect("VmHWM on Linux");
            assert!(rss > 1 << 20 && rss < 1 << 40, "{rss}");
        }
    }
}
