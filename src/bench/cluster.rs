//! `wasmless bench cold-start --cluster`: from applying a fresh Function
//! to its first successful answer through its Service (the API server's
//! service proxy, as `wasmless function call` goes), on a real cluster,
//! with the namespace's pool and with a dedicated Deployment side by side.

use std::time::{Duration, Instant};

use base64::Engine as _;
use kube::api::{DeleteParams, Patch, PatchParams};

use super::{Subject, markdown, quantile_index, run_id, size};
use crate::cluster::{Cluster, call};
use crate::crd::{ContentType, FunctionResource, FunctionSpec, Hosting};

/// How long one trial may take before the run fails.
const TRIAL_LIMIT: Duration = Duration::from_secs(300);
/// The pause between polls of a function that does not answer yet.
const POLL: Duration = Duration::from_millis(5);

/// The times of one kind, placement and cache state.
#[derive(Clone, Debug)]
pub struct ClusterRow {
    /// The kind of function.
    pub kind: String,
    /// `pool` or `dedicated`.
    pub placement: &'static str,
    /// `fresh` (code no host compiled) or `cached` (compiled before).
    pub cache: &'static str,
    /// The module's or source's size in bytes.
    pub size: usize,
    /// Apply to first answer, sorted.
    pub times: Vec<Duration>,
}

impl ClusterRow {
    fn quantile(&self, q: f64) -> Duration {
        self.times[quantile_index(self.times.len(), q)]
    }
}

/// The Function of `subject` with `source`, placed as `hosting` says.
fn resource(name: &str, subject: &Subject, source: &[u8], hosting: Hosting) -> FunctionResource {
    let (function, content_type) = match &subject.runtime {
        None => (
            base64::engine::general_purpose::STANDARD.encode(source),
            ContentType::Base64,
        ),
        Some(_) => (
            String::from_utf8_lossy(source).into_owned(),
            ContentType::Text,
        ),
    };
    FunctionResource::new(
        name,
        FunctionSpec {
            runtime: subject
                .runtime
                .clone()
                .unwrap_or_else(|| crate::crd::WASM_RUNTIME.into()),
            handler: subject.handler.clone(),
            function: Some(function),
            function_content_type: content_type,
            placement: Some(hosting),
            ..FunctionSpec::default()
        },
    )
}

/// Applies the Function and polls it until it answers a POST with 2xx:
/// the time from the apply.
async fn trial(cluster: &Cluster, function: &FunctionResource) -> anyhow::Result<Duration> {
    let name = function.metadata.name.clone().unwrap_or_default();
    let started = Instant::now();
    cluster
        .functions()
        .patch(
            &name,
            &PatchParams::apply("wasmless-bench").force(),
            &Patch::Apply(function),
        )
        .await
        .map_err(|e| anyhow::anyhow!("applying {name}: {e}"))?;
    let mut last;
    loop {
        match call(cluster, &name, Some("bench".into()), None).await {
            Ok((status, _)) if status.is_success() => return Ok(started.elapsed()),
            Ok((status, body)) => {
                last = format!("{status}: {}", String::from_utf8_lossy(&body).trim());
            }
            Err(err) => last = err.to_string(),
        }
        if started.elapsed() > TRIAL_LIMIT {
            anyhow::bail!("{name} did not answer within {TRIAL_LIMIT:?}; last: {last}");
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn delete(cluster: &Cluster, name: &str) -> anyhow::Result<()> {
    cluster
        .functions()
        .delete(name, &DeleteParams::default())
        .await
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("deleting {name}: {e}"))
}

/// For each subject (the image-path ones are left out: they are always
/// dedicated): `trials` fresh and `trials` cached Functions in the pool,
/// then `dedicated_trials` fresh ones on Deployments of their own, each
/// applied, timed to its first answer and deleted, one at a time.
pub async fn cold_start(
    cluster: &Cluster,
    subjects: &[Subject],
    trials: usize,
    dedicated_trials: usize,
) -> anyhow::Result<Vec<ClusterRow>> {
    let run = &run_id();
    let mut rows = Vec::new();
    for subject in subjects.iter().filter(|s| s.image.is_none()) {
        let kind = &subject.kind;
        // Untimed: the pool exists and has loaded this kind once (a source
        // runtime from the image's precompiled code); its module is the
        // cached one below.
        let prime = format!("cs-{run}-{kind}-prime");
        let cached = subject.distinct(&format!("{run}-cached"));
        eprintln!(
            "{kind} ({}): priming the pool ...",
            size(subject.module.len())
        );
        trial(cluster, &resource(&prime, subject, &cached, Hosting::Pool)).await?;
        for cache in ["fresh", "cached"] {
            eprintln!("{kind}, pool, {cache}: {trials} trials ...");
            let mut times = Vec::with_capacity(trials);
            for i in 0..trials {
                let name = format!("cs-{run}-{kind}-{cache}-{i}");
                let source = match cache {
                    "fresh" => subject.distinct(&format!("{run}-{i}")),
                    _ => cached.clone(),
                };
                let function = resource(&name, subject, &source, Hosting::Pool);
                times.push(trial(cluster, &function).await?);
                delete(cluster, &name).await?;
            }
            times.sort();
            rows.push(ClusterRow {
                kind: kind.clone(),
                placement: "pool",
                cache,
                size: subject.module.len(),
                times,
            });
        }
        delete(cluster, &prime).await?;
        if dedicated_trials > 0 {
            eprintln!("{kind}, dedicated: {dedicated_trials} trials ...");
            let mut times = Vec::with_capacity(dedicated_trials);
            for i in 0..dedicated_trials {
                let name = format!("cs-{run}-{kind}-own-{i}");
                let source = subject.distinct(&format!("{run}-own-{i}"));
                let function = resource(&name, subject, &source, Hosting::Dedicated);
                times.push(trial(cluster, &function).await?);
                delete(cluster, &name).await?;
            }
            times.sort();
            rows.push(ClusterRow {
                kind: kind.clone(),
                placement: "dedicated",
                cache: "fresh",
                size: subject.module.len(),
                times,
            });
        }
    }
    Ok(rows)
}

/// The rows as a markdown table, with each pool row's p50 beside the
/// dedicated p50 of its kind.
pub fn table(rows: &[ClusterRow]) -> String {
    let ms = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1e3);
    let dedicated = |kind: &str| {
        rows.iter()
            .find(|r| r.kind == kind && r.placement == "dedicated")
            .map(|r| r.quantile(0.5))
    };
    markdown(
        "| kind | source | placement | code | trials | min ms | p50 ms | p99 ms | dedicated p50 / this p50 |\n|---|---:|---|---|---:|---:|---:|---:|---:|\n",
        rows.iter().map(|row| {
            let ratio = match dedicated(&row.kind) {
                Some(d) if row.placement == "pool" => {
                    format!("{:.0}×", d.as_secs_f64() / row.quantile(0.5).as_secs_f64())
                }
                _ => "-".into(),
            };
            vec![
                row.kind.clone(),
                size(row.size),
                row.placement.to_owned(),
                row.cache.to_owned(),
                row.times.len().to_string(),
                ms(row.times[0]),
                ms(row.quantile(0.5)),
                ms(row.quantile(0.99)),
                ratio,
            ]
        }),
    )
}
