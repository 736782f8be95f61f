//! `wasmless trigger`: the triggers of a running `up`.

use clap::Subcommand;

use super::target::TargetArgs;
use crate::up::{ADMIN_PREFIX, TriggerInfo};

/// The `wasmless trigger` verbs.
#[derive(Debug, Subcommand)]
pub enum TriggerCommand {
    /// List the triggers and whether they run.
    Ls(TargetArgs),
}

pub(super) async fn list(target: TargetArgs) -> anyhow::Result<()> {
    let url = format!("{}{ADMIN_PREFIX}triggers", target.url.trim_end_matches('/'));
    let answer = crate::client::send(http::Method::GET, &url, None, Vec::new()).await?;
    if !answer.status.is_success() {
        anyhow::bail!(
            "listing failed: {}",
            String::from_utf8_lossy(&answer.body).trim()
        );
    }
    let list: Vec<TriggerInfo> = serde_json::from_slice(&answer.body)?;
    println!("{:<32} {:<8} DETAIL", "NAME", "STATUS");
    for t in list {
        println!("{:<32} {:<8} {}", t.name, t.status, t.detail);
    }
    Ok(())
}
