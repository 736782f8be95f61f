//! The operator: reconciles Function and trigger resources into the
//! Kubernetes objects that run them.

mod merge;
pub mod resources;
pub mod routes;
