//! Benchmark support: the timing protocol of `../shared/bench/common.py` (so stride and PyTorch
//! are timed alike), the standard shapes file, and FLOP counts.
//!
//! Protocol: warm up until ≥ 0.3 s and ≥ 2 calls; calibrate K = ceil(0.2 s / t_call) calls per
//! run; 7 runs of K back-to-back calls; report the median per-call time (and min, max).

use crate::error::{Error, Result};
use crate::ops::conv::conv_macs;
use serde::{Deserialize, Serialize};
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

/// Times `f` with the shared protocol.
pub fn time(mut f: impl FnMut()) -> Timing {
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
    /// Reads a shapes file (the format of `../shared/bench/shapes.json`).
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
