//! The command line: one file per subcommand, no maths here. `main` → `run` → exit code:
//! 0 success, 2 bad usage or input (clap errors too), 1 runtime failure.

mod args;
mod bench;
mod bench_train;
mod conv;
mod conv_transpose;
mod eval;
mod grad;
mod pool;
mod predict;
mod receptive_field;
mod render;
mod shape;
mod summary;
mod train;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// stride: convolutional neural networks from first principles.
#[derive(Parser, Debug)]
#[command(name = "stride", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Convolution forward and, with --grad-output, backward (1-D, 2-D or 3-D, PyTorch semantics); --explain shows the worked steps.
    Conv(conv::ConvArgs),
    /// Transposed convolution (PyTorch conv_transpose1d/2d/3d), forward and with --grad-output backward.
    ConvTranspose(conv_transpose::ConvTransposeArgs),
    /// One layer's output shape with the formula filled in, its parameters, cost and memory.
    Shape(shape::ShapeArgs),
    /// How the receptive field grows through a stack of layers, and what the alternatives cost.
    ReceptiveField(receptive_field::RfArgs),
    /// A whole network layer by layer: shapes, parameters, MACs/FLOPs, activation memory, receptive fields.
    Summary(summary::SummaryArgs),
    /// Train a network (preset or spec) on Fashion-MNIST; writes checkpoint, metrics.csv, chart.png.
    Train(train::TrainArgs),
    /// Test accuracy of a checkpoint, overall and per class.
    Eval(eval::EvalArgs),
    /// Classify one image (PNG or .npy) with a checkpoint.
    Predict(predict::PredictArgs),
    /// Benchmarks on the standard shapes (GFLOP/s; ratios to PyTorch given its results).
    Bench(bench::BenchArgs),
    /// Pooling forward and backward: max, min, avg, lp, soft, adaptive, global, k-max, fractional, max-unpool.
    Pool(pool::PoolArgs),
}

/// Parses the command line, runs the command and maps errors to exit codes.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            let usage = e
                .downcast_ref::<stride::Error>()
                .is_some_and(stride::Error::is_usage);
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Conv(a) => conv::run(a),
        Command::ConvTranspose(a) => conv_transpose::run(a),
        Command::Shape(a) => shape::run(a),
        Command::ReceptiveField(a) => receptive_field::run(a),
        Command::Summary(a) => summary::run(a),
        Command::Train(a) => train::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Predict(a) => predict::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Pool(a) => pool::run(a),
    }
}
