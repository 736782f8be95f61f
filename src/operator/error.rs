//! What can go wrong while reconciling: Kubernetes API calls, named after
//! the operation that failed. These are transient (retried with backoff);
//! problems with the user's spec are not errors but status conditions.

/// A failed Kubernetes API call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Server-side apply of an object the resource owns.
    #[error("applying {kind} {name}: {source}")]
    Apply {
        /// The object's kind.
        kind: &'static str,
        /// Its name.
        name: String,
        /// The API error.
        source: kube::Error,
    },
    /// Deleting an object that is no longer wanted.
    #[error("deleting {kind} {name}: {source}")]
    Delete {
        /// The object's kind.
        kind: &'static str,
        /// Its name.
        name: String,
        /// The API error.
        source: kube::Error,
    },
    /// Writing the resource's status.
    #[error("updating the status of {kind} {name}: {source}")]
    PatchStatus {
        /// The resource's kind.
        kind: &'static str,
        /// Its name.
        name: String,
        /// The API error.
        source: kube::Error,
    },
    /// Reading an object the resource owns.
    #[error("reading {kind} {name}: {source}")]
    Get {
        /// The object's kind.
        kind: &'static str,
        /// Its name.
        name: String,
        /// The API error.
        source: kube::Error,
    },
    /// Listing the triggers or functions a resource depends on.
    #[error("listing {kind}: {source}")]
    List {
        /// The kind listed.
        kind: &'static str,
        /// The API error.
        source: kube::Error,
    },
    /// A resource without a namespace or name (never from the API server).
    #[error("the object has no {0}")]
    MissingMetadata(&'static str),
}

impl Error {
    /// Whether the call failed because the object's namespace is being
    /// deleted: nothing to retry, the object goes with it.
    pub fn namespace_terminating(&self) -> bool {
        let source = match self {
            Error::Apply { source, .. }
            | Error::Delete { source, .. }
            | Error::PatchStatus { source, .. }
            | Error::Get { source, .. }
            | Error::List { source, .. } => source,
            Error::MissingMetadata(_) => return false,
        };
        matches!(source, kube::Error::Api(status) if status
            .details
            .as_ref()
            .is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(reason: &str) -> Error {
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "status": "Failure",
            "code": 403,
            "reason": "Forbidden",
            "message": "configmaps \"a\" is forbidden",
            "details": {"causes": [{"reason": reason, "field": "metadata.namespace"}]},
        }))
        .expect("a Status");
        Error::Apply {
            kind: "ConfigMap",
            name: "a".into(),
            source: kube::Error::Api(Box::new(status)),
        }
    }

    #[test]
    fn a_terminating_namespace_is_told_from_other_refusals() {
        assert!(api_error("NamespaceTerminating").namespace_terminating());
        assert!(!api_error("FieldValueInvalid").namespace_terminating());
        assert!(!Error::MissingMetadata("name").namespace_terminating());
    }
}
