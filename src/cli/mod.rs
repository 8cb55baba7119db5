//! The command line: one file per subcommand, no maths here. `main` → `run` → exit code:
//! 0 success, 2 bad usage or input (clap errors too), 1 runtime failure.

mod args;
mod conv;
mod pool;
mod render;

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
    /// Convolution forward (1-D, 2-D or 3-D, PyTorch semantics), with --explain for the worked steps.
    Conv(conv::ConvArgs),
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
        Command::Pool(a) => pool::run(a),
    }
}
