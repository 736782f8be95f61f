//! `wasmless runtimes`: the runtime catalog, and the runtimes precompiled
//! for an image.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Parser as _};

use super::serve::default_runtimes_dir;
use super::{Cli, Command, UpArgs};
use crate::host::{Host, HostConfig};
use crate::up::UpConfig;

/// Options of `wasmless runtimes`.
#[derive(Debug, Args)]
pub struct RuntimesArgs {
    /// A catalog file laid over the built-in one, as `up --runtime-catalog`
    /// takes it.
    #[arg(long, env = "WASMLESS_RUNTIME_CATALOG")]
    pub catalog: Option<PathBuf>,
    /// Print the catalog as YAML (a starting point for an override).
    #[arg(long)]
    pub yaml: bool,
    /// Compile the source runtimes (python.wasm, js.wasm) for the engine
    /// `wasmless host` runs with its default limits, into this folder: an
    /// image ships it (WASMLESS_PRECOMPILED_DIR) so that no pod compiles an
    /// interpreter.
    #[arg(long, value_name = "DIR")]
    pub precompile: Option<PathBuf>,
    /// Where the runtimes to precompile are (default: as `up` finds them).
    #[arg(long, env = "WASMLESS_RUNTIMES_DIR", requires = "precompile")]
    pub runtimes_dir: Option<PathBuf>,
}

/// `wasmless runtimes --precompile DIR`: the source runtimes' optimized
/// code for the engine of a `wasmless host` with its default settings.
pub(super) async fn precompile(args: RuntimesArgs) -> anyhow::Result<()> {
    let into = args.precompile.expect("checked by the caller");
    let Cli {
        command: Command::Host(defaults),
        ..
    } = Cli::parse_from(["wasmless", "host"])
    else {
        unreachable!("parsed as the host command");
    };
    let (_, mut config) = <(UpConfig, HostConfig)>::try_from(UpArgs::from(defaults))?;
    config.cache_dir = Some(into.clone());
    config.tiered = false;
    config.precompiled_dir = None;
    let dir = args
        .runtimes_dir
        .or_else(default_runtimes_dir)
        .ok_or_else(|| anyhow::anyhow!("no runtimes folder: give --runtimes-dir (runtimes/dist after `bash runtimes/build.sh`)"))?;
    let host = Host::new(config).map_err(|e| anyhow::anyhow!("starting the wasm engine: {e:#}"))?;
    for language in [
        crate::runtimes::Language::Python,
        crate::runtimes::Language::JavaScript,
    ] {
        let path = dir.join(language.component_file());
        let bytes = std::fs::read(&path).with_context(|| {
            format!(
                "reading the {} runtime at {}",
                language.title(),
                path.display()
            )
        })?;
        let started = std::time::Instant::now();
        eprintln!(
            "precompiling {} ({} MiB) ...",
            path.display(),
            bytes.len() >> 20
        );
        let engine_host = host.clone();
        let compiled = tokio::task::spawn_blocking(move || engine_host.precompile(&bytes))
            .await?
            .map_err(|e| anyhow::anyhow!("compiling {}: {e:#}", path.display()))?;
        eprintln!(
            "  {} in {:.1} s",
            if compiled {
                "compiled"
            } else {
                "already there"
            },
            started.elapsed().as_secs_f64()
        );
    }
    println!("{}", into.display());
    Ok(())
}

/// The catalog as a table: which names run where.
pub(super) fn table(catalog: &crate::runtimes::Catalog) -> String {
    let mut rows = vec![[
        "RUNTIME".to_owned(),
        "NAMES".to_owned(),
        "WASM".to_owned(),
        "IMAGE".to_owned(),
        "LOCAL".to_owned(),
    ]];
    rows.push([
        "wasm".to_owned(),
        "wasm".to_owned(),
        "module".to_owned(),
        "-".to_owned(),
        "-".to_owned(),
    ]);
    for entry in &catalog.runtimes {
        rows.push([
            entry.id.clone(),
            entry.names.join(","),
            entry
                .wasm
                .map_or("-".to_owned(), |l| l.title().to_lowercase()),
            entry
                .image
                .clone()
                .unwrap_or_else(|| "spec.image".to_owned()),
            entry
                .local
                .as_ref()
                .map_or("-".to_owned(), |l| l.interpreter.clone()),
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|row| {
            let line: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            format!("{}\n", line.join("  ").trim_end())
        })
        .collect()
}

/// Where `up` finds the source runtimes when no folder is given.
pub(super) fn source_runtimes() -> String {
    if let Some(dir) = default_runtimes_dir() {
        return format!("{} (--runtimes-dir overrides)", dir.display());
    }
    let embedded = crate::runtimes::embedded::list();
    if embedded.is_empty() {
        return "none: give --runtimes-dir (this binary was built without runtimes/dist)"
            .to_owned();
    }
    let files: Vec<String> = embedded
        .iter()
        .map(|(name, size)| format!("{name} {} MiB", size >> 20))
        .collect();
    format!(
        "built into this binary ({}; --runtimes-dir overrides)",
        files.join(", ")
    )
}
