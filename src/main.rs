//! The `tollgate` binary: parse the command line, set up tracing, run.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = tollgate::cli::Cli::parse();
    tollgate::telemetry::init_tracing(cli.log_format);
    match tollgate::cli::run(cli) {
        Ok(0) => std::process::ExitCode::SUCCESS,
        Ok(code) => std::process::ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("tollgate: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
