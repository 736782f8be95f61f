//! Hand-written OpenAPI schemas for the few fields whose Rust type has no
//! structural schema (untagged enums, free-form JSON). Kubernetes requires
//! structural schemas; these use its `x-kubernetes-*` extensions.

use schemars::{Schema, SchemaGenerator, json_schema};

/// A whole number of seconds or a text such as `"180"` or `500ms`.
pub(crate) fn int_or_string(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "x-kubernetes-int-or-string": true })
}

/// Any JSON value, kept as written (a payload, a broker list).
pub(crate) fn any_value(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "x-kubernetes-preserve-unknown-fields": true })
}

/// An object merged into a generated one (a Deployment or Service
/// template); its fields are those of the Kubernetes type.
pub(crate) fn any_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}
