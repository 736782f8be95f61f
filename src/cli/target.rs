//! Where a verb acts: a running `up` (the default) or, with any cluster
//! flag, a Kubernetes cluster.

use std::path::PathBuf;

use clap::Args;

/// A running `up` (the default), or a cluster when any cluster flag is
/// given.
#[derive(Debug, Args)]
pub struct FunctionTarget {
    /// Where `up` runs.
    #[command(flatten)]
    pub up: TargetArgs,
    /// Which cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Kubernetes flags, as kubectl takes them. Any of them selects the cluster
/// instead of a local `up`.
#[derive(Debug, Default, Args)]
pub struct ClusterArgs {
    /// Talk to the cluster of the current kubeconfig context.
    #[arg(long)]
    pub cluster: bool,
    /// The kubeconfig file (default: KUBECONFIG, then ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context.
    #[arg(long)]
    pub context: Option<String>,
    /// The namespace (default: the context's).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
}

impl ClusterArgs {
    /// The cluster to talk to, when any cluster flag was given.
    pub fn target(&self) -> Option<crate::cluster::ClusterTarget> {
        let wanted = self.cluster
            || self.kubeconfig.is_some()
            || self.context.is_some()
            || self.namespace.is_some();
        wanted.then(|| crate::cluster::ClusterTarget {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            namespace: self.namespace.clone(),
        })
    }
}

/// Which `up` to talk to.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// The URL of a running `wasmless up`.
    #[arg(long, default_value = "http://127.0.0.1:8080", env = "WASMLESS_URL")]
    pub url: String,
    /// The Unix socket of its admin API (default: found from the port of
    /// --url, where `up` made it).
    #[arg(long, env = "WASMLESS_ADMIN_SOCKET")]
    pub admin_socket: Option<PathBuf>,
}
