//! The `tollgate` binary: parse the command line, set up tracing, run.

use clap::Parser;

fn main() -> std::process::ExitCode {
    tollgate::telemetry::init_tracing();
    let cli = tollgate::cli::Cli::parse();
    match tollgate::cli::run(cli) {
        Ok(0) => std::process::ExitCode::SUCCESS,
        Ok(code) => std::process::ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("tollgate: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
