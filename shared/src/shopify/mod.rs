//! The Shopify Admin GraphQL client, pinned to one API version.

mod client;
mod error;
pub mod operations;
pub mod throttle;

pub use client::{
    API_VERSION, AccessToken, CallStats, ClientConfig, RetryPolicy, Shop, ShopifyClient,
};
pub use error::{ShopifyError, UserError};
pub use operations::{Operation, ProductIdentifier, QuantityLine};
