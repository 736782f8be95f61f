//! `function top`: kubeless's call counts and durations per function, read
//! from the hosts' Prometheus metrics.

use std::collections::BTreeMap;

use serde::Serialize;

/// One function's figures, with kubeless's field names.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FunctionMetrics {
    /// The function.
    pub function: String,
    /// Its namespace (`-` under `up`).
    pub namespace: String,
    /// The HTTP method kubeless reported; events of every method are
    /// counted together here.
    pub method: String,
    /// Events handled.
    pub total_calls: f64,
    /// Events that ended in an error.
    pub total_failures: f64,
    /// Time spent handling them.
    pub total_duration_seconds: f64,
    /// That time per event.
    pub avg_duration_seconds: f64,
}

/// The per-function figures in a Prometheus text exposition (several
/// hosts' texts may be given; they add up).
pub fn parse(texts: &[String], namespace: &str) -> BTreeMap<String, FunctionMetrics> {
    let mut out: BTreeMap<String, FunctionMetrics> = BTreeMap::new();
    for text in texts {
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let (metric, labels) = series.split_once('{').unwrap_or((series, ""));
            let Some(function) = label(labels, "function") else {
                continue;
            };
            let entry = out
                .entry(function.clone())
                .or_insert_with(|| FunctionMetrics {
                    function,
                    namespace: namespace.to_owned(),
                    method: "ANY".to_owned(),
                    ..FunctionMetrics::default()
                });
            match metric {
                "wasmless_function_calls_total" => entry.total_calls += value,
                "wasmless_function_failures_total" => entry.total_failures += value,
                "wasmless_function_duration_seconds_sum" => entry.total_duration_seconds += value,
                _ => {}
            }
        }
    }
    for entry in out.values_mut() {
        if entry.total_calls > 0.0 {
            entry.avg_duration_seconds = entry.total_duration_seconds / entry.total_calls;
        }
    }
    out
}

/// A label's value in `a="x",b="y"}`.
fn label(labels: &str, name: &str) -> Option<String> {
    let labels = labels.trim_end_matches('}');
    labels.split(',').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key.trim() == name).then(|| value.trim().trim_matches('"').to_owned())
    })
}

/// kubeless's table.
pub fn table(rows: &[FunctionMetrics]) -> String {
    let mut out = format!(
        "{:<24} {:<12} {:<6} {:>11} {:>14} {:>22} {:>20}\n",
        "NAME",
        "NAMESPACE",
        "METHOD",
        "TOTAL_CALLS",
        "TOTAL_FAILURES",
        "TOTAL_DURATION_SECONDS",
        "AVG_DURATION_SECONDS"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<24} {:<12} {:<6} {:>11} {:>14} {:>22.6} {:>20.6}\n",
            r.function,
            r.namespace,
            r.method,
            r.total_calls,
            r.total_failures,
            r.total_duration_seconds,
            r.avg_duration_seconds
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_add_up_across_hosts_and_reasons() {
        let a = "# HELP x\nwasmless_function_calls_total{function=\"f\"} 3\n\
                 wasmless_function_failures_total{function=\"f\",reason=\"trap\"} 1\n\
                 wasmless_function_failures_total{function=\"f\",reason=\"timeout\"} 1\n\
                 wasmless_function_duration_seconds_sum{function=\"f\"} 0.3\n\
                 wasmless_function_duration_seconds_count{function=\"f\"} 3\n"
            .to_owned();
        let b = "wasmless_function_calls_total{function=\"f\"} 1\n\
                 wasmless_function_duration_seconds_sum{function=\"f\"} 0.1\n"
            .to_owned();
        let figures = parse(&[a, b], "default");
        let f = &figures["f"];
        assert_eq!(f.total_calls, 4.0);
        assert_eq!(f.total_failures, 2.0);
        assert!((f.avg_duration_seconds - 0.1).abs() < 1e-9);
    }
}
