//! Import of Shopify product exports into the Fibermade catalog.

pub mod reader;
