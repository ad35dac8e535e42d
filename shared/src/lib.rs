//! The Fibermade ⇄ Shopify sync engine: everything the Lambda functions do
//! lives here; each function's `main.rs` only wires it up.

pub mod domain;
pub mod import;
pub mod mapping;
pub mod push;
pub mod store;
pub mod shopify;
