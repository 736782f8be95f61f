//! Pure status logic: the `Ready` condition of a Function from its
//! Deployment, and of a trigger. Conditions keep their transition time
//! while their status does not change, as Kubernetes conventions ask.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// The condition type every wasmless resource reports.
pub const READY: &str = "Ready";

/// A `Ready` condition. `previous` is the resource's current list: when
/// its Ready condition has the same status, its transition time is kept.
pub fn ready_condition(
    ready: bool,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
    previous: &[Condition],
    now: Timestamp,
) -> Condition {
    let status = if ready { "True" } else { "False" };
    let since = previous
        .iter()
        .find(|c| c.type_ == READY && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    Condition {
        type_: READY.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time: since,
    }
}

/// Whether a function's pods serve it, from its Deployment: `(ready,
/// reason, message)`.
pub fn deployment_readiness(deployment: &Deployment) -> (bool, &'static str, String) {
    let generation = deployment.metadata.generation.unwrap_or_default();
    let spec_replicas = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let Some(status) = &deployment.status else {
        return (
            false,
            "Deploying",
            "waiting for the Deployment to start".into(),
        );
    };
    if status.observed_generation.unwrap_or_default() < generation {
        return (
            false,
            "Deploying",
            "the Deployment is rolling out a change".into(),
        );
    }
    let condition = |type_: &str| {
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == type_)
    };
    if let Some(progressing) = condition("Progressing")
        && progressing.status == "False"
    {
        return (
            false,
            "ProgressDeadlineExceeded",
            progressing.message.clone().unwrap_or_default(),
        );
    }
    let ready = status.ready_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    if spec_replicas == 0 && replicas == 0 {
        return (false, "ScaledToZero", "the function has 0 replicas".into());
    }
    let available = condition("Available").is_some_and(|c| c.status == "True");
    if available && ready >= 1 && updated >= spec_replicas && replicas == updated {
        (
            true,
            "Available",
            format!("{ready} of {replicas} pods ready"),
        )
    } else {
        (
            false,
            "Deploying",
            format!("{ready} of {spec_replicas} pods ready"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(generation: i64, status: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "a", "generation": generation},
            "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": status,
        }))
        .expect("test deployment")
    }

    #[test]
    fn ready_follows_the_deployments_availability() {
        let available = json!({"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2,
            "readyReplicas": 2, "conditions": [{"type": "Available", "status": "True"}]});
        assert_eq!(
            deployment_readiness(&deployment(3, available.clone())),
            (true, "Available", "2 of 2 pods ready".into())
        );
        let stale = deployment(4, available);
        assert_eq!(deployment_readiness(&stale).1, "Deploying");
        let rolling = json!({"observedGeneration": 3, "replicas": 3, "updatedReplicas": 1,
            "readyReplicas": 2, "conditions": [{"type": "Available", "status": "True"}]});
        assert_eq!(
            deployment_readiness(&deployment(3, rolling)),
            (false, "Deploying", "2 of 2 pods ready".into())
        );
        let stuck = json!({"observedGeneration": 3, "conditions": [
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
             "message": "ReplicaSet \"a-1\" has timed out progressing."}]});
        assert_eq!(
            deployment_readiness(&deployment(3, stuck)).1,
            "ProgressDeadlineExceeded"
        );
    }

    #[test]
    fn a_condition_keeps_its_transition_time_while_its_status_holds() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().expect("time");
        let t1: Timestamp = "2026-01-01T00:05:00Z".parse().expect("time");
        let first = ready_condition(false, "Deploying", "0 of 1", Some(1), &[], t0);
        let still = ready_condition(
            false,
            "Deploying",
            "0 of 1",
            Some(1),
            std::slice::from_ref(&first),
            t1,
        );
        assert_eq!(still.last_transition_time, Time(t0));
        let flipped = ready_condition(true, "Available", "1 of 1", Some(1), &[still], t1);
        assert_eq!(flipped.last_transition_time, Time(t1));
    }
}
