//! The Shopify Admin GraphQL client, pinned to one API version.

pub mod bulk;
mod client;
mod error;
pub mod operations;
pub mod snapshot;
pub mod throttle;

pub use bulk::{BulkError, BulkOperation, BulkOperationStatus, BulkOptions, BulkRun};
pub use client::{
    API_VERSION, AccessToken, CallStats, ClientConfig, RetryPolicy, Shop, ShopifyClient,
};
pub use error::{ShopifyError, UserError};
pub use operations::{Operation, ProductIdentifier, QuantityLine};
