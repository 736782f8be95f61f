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
