//! `stride bench train` (a subcommand of `stride bench`, see `bench.rs`): images per second of training steps (forward, loss, backward,
//! optimiser) on random data, for a preset or spec, and the process's peak memory.

use super::train::set_threads;
use clap::Args;
use stride::nn::models::{self, Model};
use stride::train::bench_steps;

#[derive(Args, Debug)]
#[command(
    after_help = "Example:\n  stride bench train lenet5 --batch-size 256 --threads 2 --steps 50"
)]
pub struct BenchTrainArgs {
    /// A preset, an inline spec, or @file.
    #[arg(value_name = "MODEL", default_value = "lenet5")]
    model: String,
    #[arg(long, value_name = "B", default_value_t = 256)]
    batch_size: usize,
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "T")]
    threads: Option<usize>,
    /// Timed steps (after 2 warm-up steps).
    #[arg(long, value_name = "K", default_value_t = 20)]
    steps: usize,
    /// Also print forward and backward time per layer.
    #[arg(long)]
    layers: bool,
}

pub fn run(a: BenchTrainArgs) -> anyhow::Result<()> {
    set_threads(a.threads)?;
    if a.batch_size == 0 || a.steps == 0 {
        return Err(
            stride::Error::arg("batch-size", "batch size and steps must be at least 1").into(),
        );
    }
    let (spec, name, d) = models::resolve(&a.model)?;
    let mut model = Model::build(&spec, d.init, 0)?;
    let mut optim = stride::optim::OptimConfig::new(&d.optimizer, d.lr)?.build();
    let r = bench_steps(&mut model, optim.as_mut(), a.batch_size, a.steps, a.layers)?;
    let steps_per_epoch = 60_000usize.div_ceil(a.batch_size) as f64;
    println!(
        "{name}: {:.0} images/s ({:.2} ms/step, batch {}, {} threads; ≈ {:.2} s per 60k-image epoch)",
        r.images_per_s,
        r.step_s * 1e3,
        a.batch_size,
        rayon::current_num_threads(),
        steps_per_epoch * r.step_s
    );
    if let Some(b) = stride::bench::peak_rss_bytes() {
        println!(
            "peak memory (max resident set of this process): {:.0} MB",
            b as f64 / 1e6
        );
    }
    if a.layers {
        if stride::shards::applies(&model, a.batch_size) {
            println!(
                "(data-parallel step: {} shards of the batch side by side; the rows time the first \
                 shard's layers, the last row includes waiting for the others)",
                stride::shards::SHARDS
            );
        }
        println!("{:<4} {:<58} {:>9} {:>9}", "#", "layer", "fwd ms", "bwd ms");
        for (i, (d, f, b)) in r.layers.iter().enumerate() {
            println!("{i:<4} {d:<58} {:>9.3} {:>9.3}", f * 1e3, b * 1e3);
        }
        println!(
            "{:<4} {:<58} {:>9.3}",
            "",
            "loss, optimiser, batch copy, shards",
            r.other_s * 1e3
        );
    }
    Ok(())
}
