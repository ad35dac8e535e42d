//! A local simulator of the Shopify Admin GraphQL API (version 2026-07).
//!
//! It validates every request against the real schema, keeps a small shop
//! (locations, products, variants, inventory per location, metafields,
//! media, webhook subscriptions), runs bulk mutations from staged JSONL
//! files, charges query cost against a leaky bucket, answers with
//! Shopify-shaped errors, and lets tests look inside and inject faults
//! through a control API under `/_sim/`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), shopify_sim::SimError> {
//! let sim = shopify_sim::RunningSimulator::start(shopify_sim::SimConfig::default()).await?;
//! let control = shopify_sim::SimControl::new(sim.base_url());
//! let _state = control.state().await?;
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

pub mod app;
pub mod bucket;
pub mod bulk;
pub mod calls;
pub mod client;
pub mod config;
pub mod control;
pub mod cost;
pub mod error;
pub mod faults;
pub mod graphql;
pub mod ids;
pub mod projection;
pub mod resolvers;
pub mod schema;
pub mod server;
pub mod state;
pub mod values;
pub mod variables;
pub mod webhooks;

pub use bulk::{BulkConfig, BulkConfigUpdate};
pub use client::{Level, SimControl};
pub use config::SimConfig;
pub use error::SimError;
pub use faults::{Fault, FaultKind};
pub use graphql::API_VERSION;
pub use server::RunningSimulator;
pub use webhooks::{DeliveryRecord, WebhookConfig, WebhookConfigUpdate};
