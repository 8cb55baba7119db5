//! `stride bench conv`: times convolution passes on the standard shapes with the shared protocol,
//! prints GFLOP/s and, given PyTorch's results from the same machine, the ratios.

use clap::{Args, Subcommand};
use serde_json::json;
use std::path::PathBuf;
use stride::bench::{time, ConvBenchShape, Shapes};
use stride::geometry::PaddingSpec;
use stride::ops::conv::{conv, conv_backward, ConvAlgo, ConvParams, ConvShape, GradRequest};
use stride::ops::pool::{pool_backward, pool_forward, PoolKind, PoolParams};
use stride::rng::Rng;
use stride::Tensor;

/// The standard shapes (a copy of ../shared/bench/shapes.json), used when --shapes is not given.
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
    use stride::ops::gemm::{matmul, MatRef};
    // the global pool, so the timed calls run on this (main) thread as a library user's
    // would: their tensors come from the main allocator arena, which keeps freed memory
    super::train::set_threads(a.threads)?;
    let threads = rayon::current_num_threads();
    println!("stride bench gemm: {threads} thread(s)");
    println!("{:>6} {:>9} {:>8} {:>9}", "n", "ms", "GFLOP/s", "cpu ms");
    for n in stride::geometry::parse_per_axis("sizes", &a.sizes)? {
        let mut rng = Rng::new(1);
        let (x, w) = (rng.vec(n * n, -1.0, 1.0), rng.vec(n * n, -1.0, 1.0));
        let mut y = vec![0.0; n * n];
        let t = time(|| {
            matmul(
                &mut y,
                n,
                MatRef::row_major(&x, n, n),
                MatRef::row_major(&w, n, n),
                false,
                threads,
            )
        });
        let gflops = 2.0 * (n as f64).powi(3) / t.median_s / 1e9;
        let cpu = t
            .cpu_s
            .map_or(String::from("-"), |c| format!("{:.3}", c * 1e3));
        println!("{n:>6} {:>9.3} {gflops:>8.1} {cpu:>9}", t.median_s * 1e3);
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct ConvBenchArgs {
    /// Shapes file (format of ../shared/bench/shapes.json); default: the built-in copy.
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
    /// PyTorch results of ../shared/bench/torch_conv.py from this machine: adds ratio columns
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

/// PyTorch's median ms for (shape, op) at `threads`, if present.
fn torch_ms(doc: &serde_json::Value, threads: usize, name: &str, op: &str) -> Option<f64> {
    doc["runs"]
        .as_array()?
        .iter()
        .find(|r| r["threads"].as_u64() == Some(threads as u64))?["conv"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name && e["op"] == op)?["median_ms"]
        .as_f64()
}

/// PyTorch's median ms for a pooling (shape, op) at `threads`, if present.
fn torch_pool_ms(doc: &serde_json::Value, threads: usize, name: &str, op: &str) -> Option<f64> {
    doc["runs"]
        .as_array()?
        .iter()
        .find(|r| r["threads"].as_u64() == Some(threads as u64))?["pool"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name && e["op"] == op)?["median_ms"]
        .as_f64()
}

fn params_of(c: &ConvBenchShape) -> ConvParams {
    ConvParams {
        stride: c.stride.clone(),
        padding: PaddingSpec::Explicit(c.pad.iter().map(|&p| (p, p)).collect()),
        dilation: c.dilation.clone(),
        groups: c.groups,
        ..Default::default()
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
    let mut rows = vec![];
    if !a.json {
        println!("stride bench conv: {threads} thread(s), median of 7 runs (protocol of ../shared/bench/common.py)");
        println!(
            "{:<10} {:<10} {:<8} {:>9} {:>8} {:>9}{}",
            "shape",
            "pass",
            "algo",
            "ms",
            "GFLOP/s",
            "cpu ms",
            if torch.is_some() {
                "  torch ms   ratio"
            } else {
                ""
            }
        );
    }
    let mut ratios = vec![];
    for c in &shapes.conv {
        if filter
            .as_ref()
            .is_some_and(|f| !f.contains(&c.name.as_str()))
        {
            continue;
        }
        let mut rng = Rng::new(0);
        let mut xs = vec![c.n, c.cin];
        xs.extend(&c.input);
        let mut ws = vec![c.cout, c.cin / c.groups];
        ws.extend(&c.kernel);
        let x = Tensor::new(xs.clone(), rng.vec(xs.iter().product(), -1.0, 1.0))?;
        let w = Tensor::new(ws.clone(), rng.vec(ws.iter().product(), -1.0, 1.0))?;
        let p = params_of(c);
        let shape = ConvShape::new(x.shape(), w.shape(), None, &p)?;
        let used = algo;
        let names = if algo == ConvAlgo::Auto {
            stride::ops::conv::auto_algos(&shape)
        } else {
            [0, 1, 2].map(|_| algo.name().to_string())
        };
        let flops = c.flops()?;
        let gy = Tensor::new(
            shape.out_shape(),
            rng.vec(shape.out_shape().iter().product(), -1.0, 1.0),
        )?;
        let grad =
            |want: GradRequest| conv_backward(&x, &w, &gy, &p, used, want).expect("valid shape");
        type Op<'a> = (&'static str, Box<dyn Fn() + Sync + 'a>);
        let ops: [Op; 3] = [
            (
                "fwd",
                Box::new(|| {
                    drop(std::hint::black_box(
                        conv(&x, &w, None, &p, used).expect("valid shape"),
                    ))
                }),
            ),
            (
                "bwd_input",
                Box::new(|| {
                    drop(std::hint::black_box(grad(GradRequest {
                        input: true,
                        ..Default::default()
                    })))
                }),
            ),
            (
                "bwd_weight",
                Box::new(|| {
                    drop(std::hint::black_box(grad(GradRequest {
                        weight: true,
                        ..Default::default()
                    })))
                }),
            ),
        ];
        for ((op, f), algo_name) in ops.iter().zip(&names) {
            let t = time(f);
            let ms = t.median_s * 1e3;
            let gflops = flops / t.median_s / 1e9;
            let tm = torch
                .as_ref()
                .and_then(|d| torch_ms(d, threads, &c.name, op));
            if let Some(tm) = tm {
                ratios.push((op.to_string(), tm / ms));
            }
            if !a.json {
                let cmp = tm.map_or(String::new(), |tm| format!("  {tm:8.3} {:7.2}", tm / ms));
                let cpu = t
                    .cpu_s
                    .map_or(String::from("-"), |c| format!("{:.3}", c * 1e3));
                println!(
                    "{:<10} {:<10} {:<8} {ms:9.3} {gflops:8.1} {cpu:>9}{cmp}",
                    c.name, op, algo_name
                );
            }
            rows.push(json!({"name": c.name, "op": op, "algo": algo_name,
                "median_ms": ms, "min_ms": t.min_s * 1e3, "max_ms": t.max_s * 1e3, "gflops": gflops,
                "flops": flops, "cpu_ms": t.cpu_s.map(|c| c * 1e3), "torch_ms": tm}));
        }
    }
    // pooling shapes: forward (with indices for max) and backward
    let mut pool_rows = vec![];
    if !a.json {
        println!(
            "{:<16} {:<5} {:>9} {:>9}{}",
            "pool",
            "pass",
            "ms",
            "cpu ms",
            if torch.is_some() {
                "  torch ms   ratio"
            } else {
                ""
            }
        );
    }
    for ps in &shapes.pool {
        if filter
            .as_ref()
            .is_some_and(|f| !f.contains(&ps.name.as_str()))
        {
            continue;
        }
        let kind = match ps.kind.as_str() {
            "max" => PoolKind::Max,
            "avg" => PoolKind::Avg,
            other => anyhow::bail!("shapes file: unknown pool kind '{other}'"),
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
        type Op<'a> = (&'static str, Box<dyn Fn() + Sync + 'a>);
        let ops: [Op; 2] = [
            (
                "fwd",
                Box::new(|| {
                    drop(std::hint::black_box(
                        pool_forward(&x, &p).expect("valid shape"),
                    ))
                }),
            ),
            (
                "bwd",
                Box::new(|| {
                    drop(std::hint::black_box(
                        pool_backward(&x, &out, &gy, &p).expect("valid shape"),
                    ))
                }),
            ),
        ];
        for (op, f) in ops.iter() {
            let t = time(f);
            let ms = t.median_s * 1e3;
            let tm = torch
                .as_ref()
                .and_then(|d| torch_pool_ms(d, threads, &ps.name, op));
            if let Some(tm) = tm {
                ratios.push((format!("pool {op}"), tm / ms));
            }
            if !a.json {
                let cmp = tm.map_or(String::new(), |tm| format!("  {tm:8.3} {:7.2}", tm / ms));
                let cpu = t
                    .cpu_s
                    .map_or(String::from("-"), |c| format!("{:.3}", c * 1e3));
                println!("{:<16} {:<5} {ms:9.3} {cpu:>9}{cmp}", ps.name, op);
            }
            pool_rows.push(
                json!({"name": ps.name, "op": op, "median_ms": ms, "min_ms": t.min_s * 1e3,
                "max_ms": t.max_s * 1e3, "cpu_ms": t.cpu_s.map(|c| c * 1e3), "torch_ms": tm}),
            );
        }
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"threads": threads, "conv": rows, "pool": pool_rows})
            )?
        );
    } else {
        for op in ["fwd", "bwd_input", "bwd_weight", "pool fwd", "pool bwd"] {
            let r: Vec<f64> = ratios
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
    }
    Ok(())
}
