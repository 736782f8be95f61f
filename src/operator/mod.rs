//! The operator: reconciles Function and trigger resources into the
//! Kubernetes objects that run them, and fires cron triggers.

pub mod catalog;
pub mod context;
pub mod error;
pub mod invalid;
mod merge;
pub mod pool;
pub mod reconcile;
pub mod resources;
pub mod routes;
pub mod run;
pub mod scheduler;
pub mod status;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod scenarios;
