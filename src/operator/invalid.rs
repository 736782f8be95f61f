//! Objects the API server stores but the operator cannot decode (a value
//! out of range of its type, stored before the schema had bounds, or by a
//! newer version). The controllers watch every resource through
//! [`DeserializeGuard`], so one such object never fails a list or a watch:
//! it is reported where its owner looks (a log line, a metric, a Warning
//! Event and a Ready=False condition on the object) and the rest are
//! reconciled as usual.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::core::{DeserializeGuard, error_boundary::InvalidObject};
use kube::runtime::events::EventType;
use serde_json::json;

use kube::runtime::controller::Action;

use super::context::Context;
use super::error::Error;
use super::reconcile::{key, kind_name, publish};

/// The condition reason of an object the operator cannot read.
pub const INVALID_OBJECT: &str = "InvalidObject";

/// The (uid, generation) pairs already reported, so that the status patch
/// of a report does not report it again.
#[derive(Default)]
pub struct Reported(Mutex<HashSet<(String, i64)>>);

impl Reported {
    /// True the first time `object` is seen at its generation.
    fn first(&self, object: &InvalidObject) -> bool {
        let uid = object.metadata.uid.clone().unwrap_or_default();
        let generation = object.metadata.generation.unwrap_or_default();
        self.0
            .lock()
            .expect("the lock is never poisoned")
            .insert((uid, generation))
    }
}

/// The object, when it decoded; otherwise reports it (once per generation)
/// and returns None.
pub async fn decoded<K>(object: &DeserializeGuard<K>, ctx: &Context) -> Option<Arc<K>>
where
    K: Resource<DynamicType = ()> + Clone,
{
    match &object.0 {
        Ok(valid) => Some(Arc::new(valid.clone())),
        Err(invalid) => {
            if ctx.reported_invalid.first(invalid) {
                report::<K>(ctx, object, invalid).await;
            }
            None
        }
    }
}

/// Runs `reconcile` on the object when it decoded; otherwise reports it
/// and waits for a change. The shell every controller's reconcile runs in.
pub async fn reconcile_decoded<K, F, Fut>(
    object: Arc<DeserializeGuard<K>>,
    ctx: Arc<Context>,
    reconcile: F,
) -> Result<Action, Error>
where
    K: Resource<DynamicType = ()> + Clone,
    F: FnOnce(Arc<K>, Arc<Context>) -> Fut,
    Fut: std::future::Future<Output = Result<Action, Error>>,
{
    // A standby replica keeps its caches warm and writes nothing; the
    // leader's election reconciles everything again (run.rs).
    if !ctx.is_leading() {
        return Ok(Action::await_change());
    }
    match decoded(&object, &ctx).await {
        Some(valid) => reconcile(valid, ctx).await,
        None => Ok(Action::await_change()),
    }
}

/// The decodable objects of a list; the others are left to their own
/// controller to report.
pub fn valid<K>(list: impl IntoIterator<Item = DeserializeGuard<K>>) -> impl Iterator<Item = K> {
    list.into_iter().filter_map(|guarded| guarded.0.ok())
}

async fn report<K>(ctx: &Context, object: &DeserializeGuard<K>, invalid: &InvalidObject)
where
    K: Resource<DynamicType = ()>,
{
    let message = format!(
        "the operator cannot read this {}: {}; fix the field named (kubectl edit) or delete and apply it again",
        K::kind(&()),
        invalid.error
    );
    tracing::warn!(object = %key(object), "{message}");
    ctx.count(kind_name::<K>(), "invalid");
    publish(
        ctx,
        object,
        EventType::Warning,
        INVALID_OBJECT,
        message.clone(),
    )
    .await;
    let (Some(namespace), Some(name)) = (&invalid.metadata.namespace, &invalid.metadata.name)
    else {
        return;
    };
    // Untyped, since the typed response would not decode either.
    let resource = ApiResource::erase::<K>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), namespace, &resource);
    let generation = invalid.metadata.generation;
    let status = json!({
        "status": {
            "observedGeneration": generation,
            "conditions": [{
                "type": "Ready",
                "status": "False",
                "reason": INVALID_OBJECT,
                "message": message,
                "observedGeneration": generation,
                "lastTransitionTime": Timestamp::now().to_string(),
            }],
        }
    });
    if let Err(err) = api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
    {
        tracing::warn!(object = %key(object), "could not write the status: {err}");
    }
}
