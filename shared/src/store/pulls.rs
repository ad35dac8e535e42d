//! Bookkeeping of pulled stock: the delivery dedupe records (TTL) and the
//! dyer-facing notifications, in the sync table.
//!
//! Keys: `pk = DEDUPE#<integration>`, `sk = <event or webhook id>`;
//! `pk = NOTIFY#<account>`, `sk = <RFC 3339 time>#<random>`.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use time::{Duration, OffsetDateTime};

use super::attrs::{self, ItemBuilder};
use super::catalog::encode_inventory;
use super::{Store, StoreError, is_condition_failure};
use crate::domain::{AccountId, IntegrationId, IntegrationLogEntry, Inventory, Writer};

/// Dedupe records outlive Shopify's retry window (4 hours) many times over.
pub const DEDUPE_RETENTION: Duration = Duration::days(7);

/// A notice for the dyer's frontend (a stock conflict, say).
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub account: AccountId,
    pub kind: String,
    pub message: String,
    pub data: serde_json::Value,
}

impl Notification {
    fn encode(&self) -> attrs::Item {
        let now = OffsetDateTime::now_utc();
        let at = now
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        ItemBuilder::new(
            format!("NOTIFY#{}", self.account),
            format!("{at}#{}", &nonce[..12]),
        )
        .s("entity", "notification")
        .s("kind", self.kind.clone())
        .s("message", self.message.clone())
        .s("data", self.data.to_string())
        .s("at", at)
        .b("read", false)
        .n("expires_at", (now + super::LOG_RETENTION).unix_timestamp())
        .build()
    }
}

/// What a delivery leaves besides stock: its log entries and notifications,
/// written in the same transaction as the stock and the dedupe record, so a
/// retried message neither loses nor repeats them.
#[derive(Debug, Clone, Default)]
pub struct PullRecords {
    pub log: Vec<IntegrationLogEntry>,
    pub notifications: Vec<Notification>,
}

impl PullRecords {
    fn items(&self) -> Vec<attrs::Item> {
        self.log
            .iter()
            .map(super::log::encode)
            .chain(self.notifications.iter().map(Notification::encode))
            .collect()
    }
}

/// Why writing pulled stock did not happen.
#[derive(Debug, thiserror::Error)]
pub enum PullWriteError {
    #[error("this delivery was applied already")]
    Duplicate,
    #[error("the inventory row changed meanwhile")]
    Changed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn transaction_build_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Dynamo {
        operation: "TransactWriteItems",
        message: e.to_string(),
        retryable: false,
    }
}

fn dedupe_item(integration: &IntegrationId, key: &str, now: OffsetDateTime) -> attrs::Item {
    ItemBuilder::new(format!("DEDUPE#{integration}"), key)
        .s("entity", "delivery")
        .time("seen_at", now)
        .n("expires_at", (now + DEDUPE_RETENTION).unix_timestamp())
        .build()
}

impl Store {
    /// Writes pulled stock and the delivery's dedupe record in one
    /// transaction: both or neither, so a delivery is applied exactly once
    /// even when the worker dies halfway or the message comes back.
    pub async fn apply_pulled_stock(
        &self,
        integration: &IntegrationId,
        dedupe_key: &str,
        expected_version: u64,
        row: &Inventory,
        records: &PullRecords,
    ) -> Result<(), PullWriteError> {
        let stock = Put::builder()
            .table_name(&self.tables.catalog)
            .set_item(Some(encode_inventory(row, Writer::Sync)))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", attrs::n(expected_version))
            .build()
            .map_err(transaction_build_error)?;
        let transaction =
            self.delivery_transaction(integration, dedupe_key, Some(stock), records)?;
        let result = transaction.send().await;
        let Err(error) = result else { return Ok(()) };
        let reasons: Vec<Option<String>> = error
            .as_service_error()
            .and_then(|e| match e {
                aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) => {
                    Some(c.cancellation_reasons().iter().map(|r| r.code().map(str::to_owned)).collect())
                }
                _ => None,
            })
            .unwrap_or_default();
        let failed =
            |i: usize| reasons.get(i).and_then(|r| r.as_deref()) == Some("ConditionalCheckFailed");
        if failed(1) {
            return Err(PullWriteError::Duplicate);
        }
        if failed(0) {
            return Err(PullWriteError::Changed);
        }
        if !reasons.is_empty() {
            // Cancelled without a reason we can read: ask the store which.
            return match self.delivery_seen(integration, dedupe_key).await? {
                true => Err(PullWriteError::Duplicate),
                false => Err(PullWriteError::Changed),
            };
        }
        Err(StoreError::from_sdk("TransactWriteItems", error).into())
    }

    /// Records a delivery that changes no stock, with its log entries, in one
    /// transaction; `false` if it was seen before (and nothing is written).
    pub async fn settle_delivery(
        &self,
        integration: &IntegrationId,
        dedupe_key: &str,
        records: &PullRecords,
    ) -> Result<bool, StoreError> {
        if records.log.is_empty() && records.notifications.is_empty() {
            return self.mark_delivery_seen(integration, dedupe_key).await;
        }
        let transaction = self.delivery_transaction(integration, dedupe_key, None, records)?;
        match transaction.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_transaction_canceled_exception()) =>
            {
                // Only the dedupe record carries a condition.
                Ok(false)
            }
            Err(e) => Err(StoreError::from_sdk("TransactWriteItems", e)),
        }
    }

    /// One delivery's writes as one transaction: the stock (if any, first),
    /// the dedupe record (second; its condition makes a repeat fail), then
    /// the delivery's log entries and notifications.
    fn delivery_transaction(
        &self,
        integration: &IntegrationId,
        dedupe_key: &str,
        stock: Option<Put>,
        records: &PullRecords,
    ) -> Result<aws_sdk_dynamodb::operation::transact_write_items::builders::TransactWriteItemsFluentBuilder, StoreError>{
        let seen = Put::builder()
            .table_name(&self.tables.sync)
            .set_item(Some(dedupe_item(
                integration,
                dedupe_key,
                OffsetDateTime::now_utc(),
            )))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(transaction_build_error)?;
        let mut puts: Vec<Put> = stock.into_iter().chain([seen]).collect();
        for item in records.items() {
            puts.push(
                Put::builder()
                    .table_name(&self.tables.sync)
                    .set_item(Some(item))
                    .build()
                    .map_err(transaction_build_error)?,
            );
        }
        Ok(puts
            .into_iter()
            .fold(self.client.transact_write_items(), |t, put| {
                t.transact_items(TransactWriteItem::builder().put(put).build())
            }))
    }

    /// Whether a push to this integration's shop is running now.
    pub async fn push_running(&self, integration: &IntegrationId) -> Result<bool, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.sync)
            .set_key(Some(super::key(format!("LEASE#{integration}"), "PUSH")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("GetItem", e))?;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        Ok(out
            .item
            .as_ref()
            .and_then(|item| {
                attrs::ItemReader::new(item)
                    .opt_n::<i64>("expires_at")
                    .ok()
                    .flatten()
            })
            .is_some_and(|expires| expires > now))
    }

    /// Records a delivery that changed nothing; `false` if it was seen before.
    pub async fn mark_delivery_seen(
        &self,
        integration: &IntegrationId,
        dedupe_key: &str,
    ) -> Result<bool, StoreError> {
        let item = dedupe_item(integration, dedupe_key, OffsetDateTime::now_utc());
        self.put_if(&self.tables.sync, item, "attribute_not_exists(pk)", &[])
            .await
    }

    pub async fn delivery_seen(
        &self,
        integration: &IntegrationId,
        dedupe_key: &str,
    ) -> Result<bool, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.sync)
            .set_key(Some(super::key(
                format!("DEDUPE#{integration}"),
                dedupe_key,
            )))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("GetItem", e))?;
        Ok(out.item.is_some())
    }

    /// The newest notifications of an account, as (kind, message, data).
    pub async fn recent_notifications(
        &self,
        account: &AccountId,
        limit: i32,
    ) -> Result<Vec<(String, String, serde_json::Value)>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.tables.sync)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", attrs::s(format!("NOTIFY#{account}")))
            .scan_index_forward(false)
            .limit(limit)
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("Query", e))?;
        out.items
            .unwrap_or_default()
            .iter()
            .map(|item| {
                let r = attrs::ItemReader::new(item);
                Ok((
                    r.s("kind")?.to_owned(),
                    r.s("message")?.to_owned(),
                    serde_json::from_str(r.opt_s("data")?.unwrap_or("null")).unwrap_or_default(),
                ))
            })
            .collect()
    }
}

/// How long a push may hold its integration's lease; a push that dies
/// without releasing it blocks the next one at most this long.
pub const PUSH_LEASE: Duration = Duration::minutes(15);

impl Store {
    /// Takes the integration's push lease for `owner` unless another push
    /// holds a lease that has not expired. Two pushes of one shop at once
    /// would each take the other's writes for sales.
    pub async fn acquire_push_lease(
        &self,
        integration: &IntegrationId,
        owner: &str,
    ) -> Result<bool, StoreError> {
        let now = OffsetDateTime::now_utc();
        let item = ItemBuilder::new(format!("LEASE#{integration}"), "PUSH")
            .s("entity", "push_lease")
            .s("owner", owner)
            .n("expires_at", (now + PUSH_LEASE).unix_timestamp())
            .build();
        self.put_if(
            &self.tables.sync,
            item,
            "attribute_not_exists(pk) OR expires_at < :now",
            &[(":now", attrs::n(now.unix_timestamp()))],
        )
        .await
    }

    /// Gives the lease back, if it is still ours.
    pub async fn release_push_lease(
        &self,
        integration: &IntegrationId,
        owner: &str,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.tables.sync)
            .set_key(Some(super::key(format!("LEASE#{integration}"), "PUSH")))
            .condition_expression("#o = :o")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_values(":o", attrs::s(owner))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(StoreError::from_sdk("DeleteItem", e)),
        }
    }
}
