//! `rapport`: the command-line interface. Runs the server and the demo, manages workspaces and
//! keys, checks configuration, imports events, and benchmarks ingestion.

mod analyze;
mod audit;
mod bench;
mod bench_nba;
mod bench_routing;
mod bench_scaleout;
mod churn;
mod cli;
mod config;
mod demo;
mod demo_data;
mod demo_decisions;
mod demo_dupes;
mod demo_nba;
mod demo_routing;
mod fairness;
mod import;
mod intents;
mod match_data;
mod matching;
mod models;
mod predict;
mod profiles;
mod scaleout;
mod transfer;
mod users;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of the system allocator: the next-best-action profile spent a quarter of
/// its time in glibc's malloc and free (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if cli.command.only_files_and_stdout() {
        end_quietly_on_a_closed_pipe();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Rust ignores SIGPIPE, so `println!` to a reader that has gone away (`rapport openapi | head`)
/// panicked with "failed printing to stdout". Commands that open no sockets and only write
/// files and stdout take the default action instead and end silently, as other command-line
/// tools do. Servers keep ignoring it: a client hanging up must not end them.
fn end_quietly_on_a_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in `main`, before any other thread exists; setting a signal's
    // disposition to its default has no other effect on this process.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
