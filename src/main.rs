//! The `stride` binary: parse arguments, call one library function, render. See `cli/`.

mod cli;
mod serve;

fn main() -> std::process::ExitCode {
    cli::main()
}
