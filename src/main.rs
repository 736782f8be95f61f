//! The `wasmless` command.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = wasmless::cli::Cli::parse();
    wasmless::telemetry::init(cli.log.as_deref());
    match wasmless::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
