//! The DynamoDB store.
//!
//! Two tables:
//! - **catalog** (stream on, read by the catalog observer): accounts,
//!   colorways, bases, inventory, media, all under `pk = ACCOUNT#<id>`, so an
//!   account's whole catalog is one Query.
//! - **sync** (no observer): integrations and their tokens, external
//!   identifiers, the integration log, push jobs and dedupe records. Keeping
//!   them apart means the sync's own bookkeeping never wakes the observer and
//!   tokens never travel in stream records.
//!
//! Both have a `gsi1` index (`gsi1pk`, `gsi1sk`); the sync table uses it to find
//! an identifier by its Shopify id and an integration by its shop domain, each
//! in one Query. No request path scans. See `docs/store.md` for every key.

pub mod attrs;
mod catalog;
mod integrations;
mod intents;
mod jobs;
mod links;
mod log;
mod pulls;

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{KeysAndAttributes, WriteRequest};

pub use catalog::{Catalog, CatalogChange, CatalogItem, ImportWrites, InventorySync};
pub use intents::{INTENT_RETENTION, IntendedStock, StockIntent, VariantsIntent, WriteIntent};
pub use jobs::{PENDING_STALE_AFTER, PushJobRecord, PushJobStatus, PushProgress};
pub use log::LOG_RETENTION;
pub use pulls::{DEDUPE_RETENTION, Notification, PUSH_LEASE, PullRecords, PullWriteError};

use attrs::Item;

/// Table names, from the environment in Lambda.
#[derive(Debug, Clone)]
pub struct Tables {
    pub catalog: String,
    pub sync: String,
}

/// The name of the secondary index on both tables.
pub const GSI1: &str = "gsi1";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("DynamoDB {operation} failed: {message}")]
    Dynamo {
        operation: &'static str,
        message: String,
        retryable: bool,
    },
    #[error("stored item {key} is unreadable: {message}")]
    Corrupt { key: String, message: String },
    #[error("{what} was changed by someone else meanwhile")]
    Conflict { what: String },
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Dynamo { retryable, .. } => *retryable,
            Self::Conflict { .. } => true,
            Self::Corrupt { .. } => false,
        }
    }

    fn from_sdk<E, R>(operation: &'static str, error: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let retryable = match &error {
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => true,
            SdkError::ServiceError(service) => matches!(
                service.err().code(),
                Some(
                    "ProvisionedThroughputExceededException"
                        | "ThrottlingException"
                        | "RequestLimitExceeded"
                        | "InternalServerError"
                        | "ServiceUnavailable"
                        | "TransactionConflictException"
                )
            ),
            _ => false,
        };
        let message = match error.as_service_error() {
            Some(e) => format!(
                "{}: {}",
                e.code().unwrap_or("error"),
                e.message().unwrap_or("no message")
            ),
            None => {
                let mut text = error.to_string();
                let mut source = std::error::Error::source(&error);
                while let Some(inner) = source {
                    text.push_str(": ");
                    text.push_str(&inner.to_string());
                    source = inner.source();
                }
                text
            }
        };
        Self::Dynamo {
            operation,
            message,
            retryable,
        }
    }
}

/// Whether an SDK error is a failed condition check: a racing writer got there
/// first.
fn is_condition_failure<E, R>(error: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    error
        .as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

/// The DynamoDB store, cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
    tables: Tables,
}

/// DynamoDB takes at most 25 writes in one BatchWriteItem.
const BATCH_WRITE: usize = 25;
/// …and at most 100 keys in one BatchGetItem.
const BATCH_GET: usize = 100;
/// Unprocessed items are sent again this many times, with growing pauses.
const BATCH_RETRIES: u32 = 8;

impl Store {
    pub fn new(client: Client, tables: Tables) -> Self {
        Self { client, tables }
    }

    pub fn tables(&self) -> &Tables {
        &self.tables
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Puts an item if `condition` holds; `Ok(false)` when it does not (a
    /// racing writer got there first, or the item is already there).
    async fn put_if(
        &self,
        table: &str,
        item: Item,
        condition: &str,
        values: &[(&str, aws_sdk_dynamodb::types::AttributeValue)],
    ) -> Result<bool, StoreError> {
        let mut put = self
            .client
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression(condition);
        for (name, value) in values {
            put = put.expression_attribute_values(*name, value.clone());
        }
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(StoreError::from_sdk("PutItem", e)),
        }
    }

    /// Queries one partition to the end, page by page.
    async fn query_all(
        &self,
        table: &str,
        pk: &str,
        sk_prefix: Option<&str>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(table)
                .expression_attribute_values(":pk", attrs::s(pk))
                .set_exclusive_start_key(start);
            query = match sk_prefix {
                Some(prefix) => query
                    .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":prefix", attrs::s(prefix)),
                None => query.key_condition_expression("pk = :pk"),
            };
            let page = query
                .send()
                .await
                .map_err(|e| StoreError::from_sdk("Query", e))?;
            items.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }

    /// Queries the `gsi1` index for one key.
    async fn query_index(&self, table: &str, gsi1pk: &str) -> Result<Vec<Item>, StoreError> {
        let page = self
            .client
            .query()
            .table_name(table)
            .index_name(GSI1)
            .key_condition_expression("gsi1pk = :k")
            .expression_attribute_values(":k", attrs::s(gsi1pk))
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("Query", e))?;
        Ok(page.items.unwrap_or_default())
    }

    /// Writes items 25 at a time, sending unprocessed items again with backoff.
    async fn batch_put(&self, table: &str, items: Vec<Item>) -> Result<(), StoreError> {
        let requests = items
            .into_iter()
            .map(|item| {
                let put = aws_sdk_dynamodb::types::PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(batch_request_error)?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<_, StoreError>>()?;
        self.batch_write(table, requests).await
    }

    /// Deletes items by key, 25 at a time, sending unprocessed ones again.
    async fn batch_delete(&self, table: &str, keys: Vec<Item>) -> Result<(), StoreError> {
        let requests = keys
            .into_iter()
            .map(|key| {
                let delete = aws_sdk_dynamodb::types::DeleteRequest::builder()
                    .set_key(Some(key))
                    .build()
                    .map_err(batch_request_error)?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<Result<_, StoreError>>()?;
        self.batch_write(table, requests).await
    }

    /// Sends write requests 25 at a time, sending unprocessed ones again with
    /// growing pauses.
    async fn batch_write(
        &self,
        table: &str,
        requests: Vec<WriteRequest>,
    ) -> Result<(), StoreError> {
        for chunk in requests.chunks(BATCH_WRITE) {
            let mut pending = chunk.to_vec();
            let mut attempt = 0;
            while !pending.is_empty() {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(table, pending)
                    .send()
                    .await
                    .map_err(|e| StoreError::from_sdk("BatchWriteItem", e))?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(table))
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                attempt += 1;
                if attempt > BATCH_RETRIES {
                    return Err(StoreError::Dynamo {
                        operation: "BatchWriteItem",
                        message: format!(
                            "{} items stayed unprocessed after {BATCH_RETRIES} retries",
                            pending.len()
                        ),
                        retryable: true,
                    });
                }
                tracing::warn!(
                    unprocessed = pending.len(),
                    attempt,
                    "DynamoDB left items unprocessed; sending them again"
                );
                tokio::time::sleep(Duration::from_millis(50 * 2u64.pow(attempt.min(6)))).await;
            }
        }
        Ok(())
    }

    /// Reads items by key, 100 at a time, asking again for unprocessed keys.
    async fn batch_get(&self, table: &str, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH_GET) {
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .build()
                    .map_err(|e| StoreError::Dynamo {
                        operation: "BatchGetItem",
                        message: e.to_string(),
                        retryable: false,
                    })?,
            );
            let mut attempt = 0;
            while let Some(request) = pending.take() {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(table, request)
                    .send()
                    .await
                    .map_err(|e| StoreError::from_sdk("BatchGetItem", e))?;
                if let Some(mut responses) = out.responses {
                    found.extend(responses.remove(table).unwrap_or_default());
                }
                pending = out
                    .unprocessed_keys
                    .and_then(|mut m| m.remove(table))
                    .filter(|k| !k.keys.is_empty());
                if pending.is_some() {
                    attempt += 1;
                    if attempt > BATCH_RETRIES {
                        return Err(StoreError::Dynamo {
                            operation: "BatchGetItem",
                            message: "keys stayed unprocessed".into(),
                            retryable: true,
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(50 * 2u64.pow(attempt.min(6)))).await;
                }
            }
        }
        Ok(found)
    }
}

/// A put or delete request the SDK could not build (a missing key).
fn batch_request_error(error: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Dynamo {
        operation: "BatchWriteItem",
        message: error.to_string(),
        retryable: false,
    }
}

fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    let mut item = Item::new();
    item.insert("pk".into(), attrs::s(pk));
    item.insert("sk".into(), attrs::s(sk));
    item
}
