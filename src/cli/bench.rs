//! `stride bench conv|gemm|train`: parses the flags, asks the library ([`stride::bench`]) to time
//! each pass of the standard shapes with the shared protocol, and prints GFLOP/s and, given
//! PyTorch's results from the same machine, the ratios.

use clap::{Args, Subcommand};
use serde_json::json;
use std::path::PathBuf;
use stride::bench::{time_conv, time_gemm, time_pool, PassTiming, Shapes};
use stride::ops::conv::ConvAlgo;

/// The standard shapes (the course's `bench/shapes.json`, copied into this repository), used
/// when --shapes is not given.
const DEFAULT_SHAPES: &str = include_str!("../../bench/shapes.json");

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: BenchWhat,
}

#[derive(Subcommand, Debug)]
enum BenchWhat {
    /// Convolution forward (and gradients) on the standard shapes.
    Conv(ConvBenchArgs),
    /// Square SGEMM (the ceiling for GEMM-based convolution) at the sizes of the shapes file.
    Gemm(GemmBenchArgs),
    /// Training steps of a model (default lenet5): images/s.
    Train(super::bench_train::BenchTrainArgs),
}

#[derive(Args, Debug)]
pub struct GemmBenchArgs {
    /// Threads (default: all cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Sizes n of the n×n×n products (comma list).
    #[arg(long, value_name = "N,N,...", default_value = "256,512,1024,2048")]
    sizes: String,
}

fn run_gemm(a: GemmBenchArgs) -> anyhow::Result<()> {
    // the global pool, so the timed calls run on this (main) thread as a library user's
    // would: their tensors come from the main allocator arena, which keeps freed memory
    super::train::set_threads(a.threads)?;
    let threads = rayon::current_num_threads();
    let peak = stride::bench::fma_peak();
    println!("stride bench gemm: {threads} thread(s); measured f32 FMA peak {peak:.0} GFLOP/s");
    println!(
        "{:>6} {:>9} {:>8} {:>5} {:>9}",
        "n", "ms", "GFLOP/s", "peak%", "cpu ms"
    );
    for n in stride::geometry::parse_per_axis("sizes", &a.sizes)? {
        let t = time_gemm(n, threads);
        let gflops = 2.0 * (n as f64).powi(3) / t.median_s / 1e9;
        println!(
            "{n:>6} {:>9.3} {gflops:>8.1} {:>5.0} {:>9}",
            t.median_s * 1e3,
            gflops / peak * 100.0,
            cpu_ms(&t)
        );
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct ConvBenchArgs {
    /// Shapes file (the format of bench/shapes.json); default: the built-in copy.
    #[arg(long, value_name = "FILE")]
    shapes: Option<PathBuf>,
    /// Threads (default: all cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Only these shapes (comma list of names).
    #[arg(long, value_name = "NAMES")]
    filter: Option<String>,
    /// Algorithm to time (default auto).
    #[arg(long, value_name = "ALGO", default_value = "auto")]
    algo: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// PyTorch results of bench/torch_conv.py from this machine: adds ratio columns
    /// (PyTorch time / stride time; above 1 = stride is faster).
    #[arg(long, value_name = "FILE")]
    pytorch: Option<PathBuf>,
}

pub fn run(a: BenchArgs) -> anyhow::Result<()> {
    match a.what {
        BenchWhat::Conv(c) => run_conv(c),
        BenchWhat::Gemm(g) => run_gemm(g),
        BenchWhat::Train(t) => super::bench_train::run(t),
    }
}

/// PyTorch's median ms for (shape, op) in the `section` ("conv" or "pool") at `threads`.
fn torch_ms(
    doc: &serde_json::Value,
    section: &str,
    threads: usize,
    name: &str,
    op: &str,
) -> Option<f64> {
    doc["runs"]
        .as_array()?
        .iter()
        .find(|r| r["threads"].as_u64() == Some(threads as u64))?[section]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name && e["op"] == op)?["median_ms"]
        .as_f64()
}

/// CPU ms per call, or `-` where the platform does not say.
fn cpu_ms(t: &stride::bench::Timing) -> String {
    t.cpu_s
        .map_or(String::from("-"), |c| format!("{:.3}", c * 1e3))
}

/// What one `bench conv` run prints: the table (or JSON rows) and the PyTorch ratios.
struct Report {
    json: bool,
    threads: usize,
    torch: Option<serde_json::Value>,
    conv: Vec<serde_json::Value>,
    pool: Vec<serde_json::Value>,
    /// (pass, PyTorch time / stride time)
    ratios: Vec<(String, f64)>,
    /// The measured FMA peak in GFLOP/s on these threads.
    peak: f64,
}

impl Report {
    /// The column header of a table section (`first` names the shape column).
    fn header(&self, first: &str) {
        if self.json {
            return;
        }
        let cmp = if self.torch.is_some() {
            "  torch ms   ratio"
        } else {
            ""
        };
        if first == "shape" {
            println!(
                "{:<10} {:<10} {:<17} {:>9} {:>8} {:>5} {:>9}{cmp}",
                "shape", "pass", "algo", "ms", "GFLOP/s", "peak%", "cpu ms"
            );
        } else {
            println!(
                "{:<16} {:<5} {:>9} {:>9}{cmp}",
                first, "pass", "ms", "cpu ms"
            );
        }
    }

    /// PyTorch's time for this pass, recording the ratio; and the ratio columns.
    fn compare(
        &mut self,
        section: &str,
        name: &str,
        p: &PassTiming,
        ms: f64,
    ) -> (Option<f64>, String) {
        let tm = self
            .torch
            .as_ref()
            .and_then(|d| torch_ms(d, section, self.threads, name, p.op));
        if let Some(tm) = tm {
            let key = if section == "pool" {
                format!("pool {}", p.op)
            } else {
                p.op.to_string()
            };
            self.ratios.push((key, tm / ms));
        }
        (
            tm,
            tm.map_or(String::new(), |tm| format!("  {tm:8.3} {:7.2}", tm / ms)),
        )
    }

    /// One convolution pass: a table row or a JSON row.
    fn conv_row(&mut self, name: &str, p: &PassTiming, flops: f64) {
        let t = &p.timing;
        let ms = t.median_s * 1e3;
        let gflops = flops / t.median_s / 1e9;
        let share = gflops / self.peak;
        let (tm, cmp) = self.compare("conv", name, p, ms);
        if !self.json {
            println!(
                "{:<10} {:<10} {:<17} {ms:9.3} {gflops:8.1} {:>5.0} {:>9}{cmp}",
                name,
                p.op,
                p.algo,
                share * 100.0,
                cpu_ms(t)
            );
        }
        self.conv
            .push(json!({"name": name, "op": p.op, "algo": p.algo,
            "median_ms": ms, "min_ms": t.min_s * 1e3, "max_ms": t.max_s * 1e3, "gflops": gflops,
            "peak_share": share, "flops": flops, "cpu_ms": t.cpu_s.map(|c| c * 1e3), "torch_ms": tm}));
    }

    /// One pooling pass: a table row or a JSON row.
    fn pool_row(&mut self, name: &str, p: &PassTiming) {
        let t = &p.timing;
        let ms = t.median_s * 1e3;
        let (tm, cmp) = self.compare("pool", name, p, ms);
        if !self.json {
            println!("{:<16} {:<5} {ms:9.3} {:>9}{cmp}", name, p.op, cpu_ms(t));
        }
        self.pool.push(
            json!({"name": name, "op": p.op, "median_ms": ms, "min_ms": t.min_s * 1e3,
            "max_ms": t.max_s * 1e3, "cpu_ms": t.cpu_s.map(|c| c * 1e3), "torch_ms": tm}),
        );
    }

    /// The JSON document, or the geometric mean of the ratios per pass.
    fn finish(self) -> anyhow::Result<()> {
        if self.json {
            let doc = json!({"threads": self.threads, "fma_peak_gflops": self.peak, "conv": self.conv, "pool": self.pool});
            println!("{}", serde_json::to_string_pretty(&doc)?);
            return Ok(());
        }
        for op in ["fwd", "bwd_input", "bwd_weight", "pool fwd", "pool bwd"] {
            let r: Vec<f64> = self
                .ratios
                .iter()
                .filter(|(o, _)| o == op)
                .map(|(_, r)| *r)
                .collect();
            if !r.is_empty() {
                let geo = (r.iter().map(|r| r.ln()).sum::<f64>() / r.len() as f64).exp();
                let min = r.iter().cloned().fold(f64::INFINITY, f64::min);
                println!("{op}: geometric mean of PyTorch/stride time ratios {geo:.2} (lowest {min:.2}, {} shapes)", r.len());
            }
        }
        Ok(())
    }
}

fn run_conv(a: ConvBenchArgs) -> anyhow::Result<()> {
    let shapes: Shapes = match &a.shapes {
        Some(p) => Shapes::read(p)?,
        None => serde_json::from_str(DEFAULT_SHAPES)?,
    };
    let algo: ConvAlgo = a.algo.parse()?;
    let torch: Option<serde_json::Value> = a
        .pytorch
        .as_ref()
        .map(|p| -> anyhow::Result<_> { Ok(serde_json::from_str(&std::fs::read_to_string(p)?)?) })
        .transpose()?;
    // the global pool, so the timed calls run on this (main) thread as a library user's
    // would: their tensors come from the main allocator arena, which keeps freed memory
    super::train::set_threads(a.threads)?;
    let threads = rayon::current_num_threads();
    let filter: Option<Vec<&str>> = a.filter.as_deref().map(|f| f.split(',').collect());
    let wanted = |name: &str| filter.as_ref().is_none_or(|f| f.contains(&name));
    let mut report = Report {
        json: a.json,
        threads,
        torch,
        conv: vec![],
        pool: vec![],
        ratios: vec![],
        peak: stride::bench::fma_peak(),
    };
    if !a.json {
        println!("stride bench conv: {threads} thread(s), median of 7 runs (the protocol of bench/common.py)");
        println!(
            "measured f32 FMA peak: {:.0} GFLOP/s on {threads} thread(s) ({:?} kernels); peak% = each pass's share of it",
            report.peak,
            stride::ops::simd::isa()
        );
    }
    report.header("shape");
    for c in shapes.conv.iter().filter(|c| wanted(&c.name)) {
        let flops = c.flops()?;
        for p in time_conv(c, algo)? {
            report.conv_row(&c.name, &p, flops);
        }
    }
    // pooling shapes: forward (with indices for max) and backward
    report.header("pool");
    for ps in shapes.pool.iter().filter(|ps| wanted(&ps.name)) {
        for p in time_pool(ps)? {
            report.pool_row(&ps.name, &p);
        }
    }
    report.finish()
}
