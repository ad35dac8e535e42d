//! The Fibermade ⇄ Shopify sync engine: everything the Lambda functions do
//! lives here; each function's `main.rs` only wires it up.

pub mod config;
pub mod domain;
pub mod import;
pub mod jobs;
pub mod mapping;
pub mod metrics;
pub mod migrate;
pub mod observer;
pub mod pull;
pub mod push;
pub mod shopify;
pub mod store;
pub mod telemetry;
pub mod webhook;
