//! `wasmless operator`: its flags, validated into the operator's config.

use std::net::SocketAddr;

use clap::Args;

/// Options of `wasmless operator`.
#[derive(Debug, Args)]
pub struct OperatorArgs {
    /// The image function pods run (`wasmless host`): this project's image.
    #[arg(long, env = "WASMLESS_IMAGE", default_value = concat!("ghcr.io/wasmless/wasmless:", env!("CARGO_PKG_VERSION")))]
    pub image: String,
    /// The pull policy of that image (Always, IfNotPresent, Never).
    #[arg(long, env = "WASMLESS_IMAGE_PULL_POLICY")]
    pub image_pull_policy: Option<String>,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "WASMLESS_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// Where /healthz and /metrics are served.
    #[arg(long, default_value = "[::]:8081", env = "WASMLESS_OPERATOR_LISTEN")]
    pub listen: SocketAddr,
    /// The operator's namespace, where its cron Lease lives.
    #[arg(long, default_value = "wasmless", env = "POD_NAMESPACE")]
    pub lease_namespace: String,
    /// This replica's name (the pod's name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// The cluster's DNS domain.
    #[arg(long, default_value = "cluster.local", env = "WASMLESS_CLUSTER_DOMAIN")]
    pub cluster_domain: String,
}

impl TryFrom<OperatorArgs> for crate::operator::run::OperatorConfig {
    type Error = anyhow::Error;

    fn try_from(args: OperatorArgs) -> anyhow::Result<Self> {
        if let Some(policy) = &args.image_pull_policy {
            anyhow::ensure!(
                ["Always", "IfNotPresent", "Never"].contains(&policy.as_str()),
                "--image-pull-policy: `{policy}` is not Always, IfNotPresent or Never"
            );
        }
        anyhow::ensure!(!args.image.trim().is_empty(), "--image must not be empty");
        let identity = match args.identity {
            Some(identity) => identity,
            None => format!("wasmless-operator-{}", uuid::Uuid::new_v4().simple()),
        };
        Ok(Self {
            settings: crate::operator::resources::PodSettings {
                image: args.image,
                image_pull_policy: args.image_pull_policy,
                cluster_domain: args.cluster_domain,
            },
            namespace: args.watch_namespace,
            listen: args.listen,
            lease_namespace: args.lease_namespace,
            identity,
        })
    }
}
