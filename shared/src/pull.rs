//! Pull: apply a queued `inventory_levels/update` to Fibermade's stock,
//! exactly once, whatever order and how often Shopify delivers it.
//!
//! The rules, in order (see `docs/sync.md`):
//! 1. the shop must be linked, the location must be the integration's;
//! 2. the inventory item must be linked to an inventory row (one index
//!    lookup); unknown items are logged and acknowledged;
//! 3. `available: null` (untracked) changes nothing;
//! 4. a delivery older than the last one applied (`updated_at`) is stale;
//! 5. a figure the row already holds is an echo (of our own push, say) and
//!    writes nothing, so nothing is pushed back;
//! 6. if Fibermade also changed since the last sync, the shop's change is
//!    applied to Fibermade's figure (the conflict rule), logged as a warning
//!    and recorded as a notification;
//! 7. otherwise Fibermade takes the shop's figure.
//!
//! Before a delivery changes a row, any stock write a push made to that row
//! and died before recording is settled (`push/intent.rs`): the shop's
//! figure is only a sale once we know what the push gave it.
//!
//! Writes carry `writer = sync`, so the catalog observer never pushes a
//! pulled figure back, and go out in one transaction with the delivery's
//! dedupe record.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use crate::domain::{
    Direction, ExternalType, Integration, IntegrationLogEntry, Inventory, InventoryKey, LocalRef,
    LogSource, LogStatus, QUANTITY_LIMIT, Quantity, SyncStatus,
};
use crate::push::{PushError, Pusher};
use crate::shopify::Shop;
use crate::store::{Notification, PullRecords, PullWriteError, Store, StoreError};
use crate::webhook::PullJob;

/// What became of one delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum PullOutcome {
    Applied {
        from: Quantity,
        to: Quantity,
    },
    Merged {
        fibermade: Quantity,
        shop_change: Quantity,
        to: Quantity,
    },
    Echo,
    Stale,
    Duplicate,
    Untracked,
    UnknownShop,
    OtherLocation,
    UnknownItem,
    /// Out of Shopify's bounds or dated in the future: logged, not applied.
    Implausible,
}

/// How far in the future a change may be dated before it is refused.
const MAX_CLOCK_SKEW: time::Duration = time::Duration::minutes(10);

/// Attempts at a read-modify-write when a person edits the row meanwhile.
const WRITE_ATTEMPTS: u32 = 5;

/// Why a delivery could not be applied now.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The row waits on a stock write an interrupted push made; settling it
    /// failed or must wait for the push running now.
    #[error("inventory {key} waits on an unrecorded stock write to the shop: {reason}")]
    Unsettled {
        key: InventoryKey,
        reason: String,
        retryable: bool,
    },
}

impl PullError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Store(e) => e.is_retryable(),
            Self::Unsettled { retryable, .. } => *retryable,
        }
    }
}

#[derive(Clone)]
pub struct Puller {
    pub store: Store,
    /// Settles a push's unrecorded writes (it talks to Shopify). Without it,
    /// a delivery for a row with such a write waits and is retried.
    pub settler: Option<Pusher>,
}

impl Puller {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            settler: None,
        }
    }

    /// A puller that settles unrecorded push writes itself.
    pub fn settling_with(self, pusher: Pusher) -> Self {
        Self {
            settler: Some(pusher),
            ..self
        }
    }

    #[tracing::instrument(name = "pull", skip_all, fields(event_id = %job.event_id, webhook_id = %job.webhook_id, shop = %job.shop_domain, inventory_item_id = job.update.inventory_item_id))]
    pub async fn apply(&self, job: &PullJob) -> Result<PullOutcome, PullError> {
        let Some((integration, token)) = self.store.integration_by_shop(&job.shop_domain).await?
        else {
            tracing::warn!("delivery for a shop no integration knows; acknowledged");
            return Ok(PullOutcome::UnknownShop);
        };
        let shop = Shop {
            domain: integration.shop_domain.clone(),
            access_token: token,
        };
        let outcome = self.apply_for(&integration, &shop, job).await?;
        tracing::info!(outcome = ?outcome, "delivery handled");
        Ok(outcome)
    }

    async fn apply_for(
        &self,
        integration: &Integration,
        shop: &Shop,
        job: &PullJob,
    ) -> Result<PullOutcome, PullError> {
        let key = job.dedupe_key();
        if self.store.delivery_seen(&integration.id, &key).await? {
            return Ok(PullOutcome::Duplicate);
        }
        let none = PullRecords::default();
        if integration
            .location_id
            .as_ref()
            .is_some_and(|l| *l != job.update.location())
        {
            return self
                .settle(integration, &key, PullOutcome::OtherLocation, &none)
                .await;
        }
        let event_time = job.event_time();
        if let Some(problem) = implausible(job, event_time) {
            let records = self.records(
                integration,
                job,
                LogStatus::Warning,
                problem,
                json!({ "available": job.update.available }),
            );
            return self
                .settle(integration, &key, PullOutcome::Implausible, &records)
                .await;
        }
        let link = self
            .store
            .find_link(
                &integration.id,
                ExternalType::ShopifyInventoryItem,
                &job.update.inventory_item(),
            )
            .await?;
        let Some(LocalRef::Inventory(inventory_key)) = link.map(|l| l.local) else {
            let message = format!(
                "Stock change for inventory item {} ignored: it is not linked to any Fibermade inventory",
                job.update.inventory_item_id
            );
            let records = self.records(
                integration,
                job,
                LogStatus::Warning,
                message,
                json!({ "available": job.update.available }),
            );
            return self
                .settle(integration, &key, PullOutcome::UnknownItem, &records)
                .await;
        };
        let Some(available) = job.update.available else {
            let message = format!(
                "Shopify stopped tracking stock of inventory {inventory_key}; Fibermade's figure is kept"
            );
            let records = self.records(
                integration,
                job,
                LogStatus::Warning,
                message,
                json!({ "available": null }),
            );
            return self
                .settle(integration, &key, PullOutcome::Untracked, &records)
                .await;
        };

        for _ in 0..WRITE_ATTEMPTS {
            let Some(row) = self
                .store
                .get_inventory(&integration.account_id, &inventory_key)
                .await?
            else {
                return self
                    .settle(integration, &key, PullOutcome::UnknownItem, &none)
                    .await;
            };
            // Limitation: a push records no shop time, so a sale's delivery
            // delayed past a push that merged it is not stale and sets the
            // older figure until the push's echo restores it.
            if row.shop_updated_at.is_some_and(|last| event_time < last) {
                let label = self
                    .store
                    .inventory_label(&integration.account_id, &inventory_key)
                    .await?;
                let message = format!(
                    "Stock of {label} from Shopify ({available}) ignored: a newer change was applied already"
                );
                let records = self.records(
                    integration,
                    job,
                    LogStatus::Success,
                    message,
                    json!({ "stale": true, "available": available }),
                );
                return self
                    .settle(integration, &key, PullOutcome::Stale, &records)
                    .await;
            }
            let (next, outcome) = decide(&row, available, event_time);
            if outcome == PullOutcome::Echo
                && row.shop_updated_at.is_some_and(|last| last >= event_time)
            {
                return self.settle(integration, &key, outcome, &none).await;
            }
            let changes_stock = matches!(
                outcome,
                PullOutcome::Applied { .. } | PullOutcome::Merged { .. }
            );
            if changes_stock
                && self
                    .settle_writes_to(integration, shop, &inventory_key)
                    .await?
            {
                continue;
            }
            if matches!(outcome, PullOutcome::Merged { .. })
                && self.store.push_running(&integration.id).await?
            {
                // A running push may have set this very figure and not yet
                // recorded it; deciding now would take its write for a sale.
                // The message comes back after its visibility timeout.
                return Err(StoreError::Conflict {
                    what: format!("inventory {inventory_key} while a push is running"),
                }
                .into());
            }
            let label = match outcome {
                PullOutcome::Applied { .. } | PullOutcome::Merged { .. } => {
                    self.store
                        .inventory_label(&integration.account_id, &inventory_key)
                        .await?
                }
                _ => inventory_key.to_string(),
            };
            let records = self.outcome_records(integration, job, &row, &label, &outcome);
            match self
                .store
                .apply_pulled_stock(&integration.id, &key, row.version, &next, &records)
                .await
            {
                Ok(()) => return Ok(outcome),
                Err(PullWriteError::Duplicate) => return Ok(PullOutcome::Duplicate),
                Err(PullWriteError::Changed) => continue,
                Err(PullWriteError::Store(e)) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict {
            what: format!("inventory {inventory_key}"),
        }
        .into())
    }

    /// Settles the unrecorded push writes of the shop if one covers `row`;
    /// `true` when it did (the row must be read again).
    async fn settle_writes_to(
        &self,
        integration: &Integration,
        shop: &Shop,
        row: &InventoryKey,
    ) -> Result<bool, PullError> {
        let intents = self.store.open_write_intents(&integration.id).await?;
        if !intents.iter().any(|intent| intent.covers(row)) {
            return Ok(false);
        }
        let unsettled = |reason: String, retryable| PullError::Unsettled {
            key: row.clone(),
            reason,
            retryable,
        };
        let Some(pusher) = &self.settler else {
            return Err(unsettled("this worker cannot reach Shopify".into(), true));
        };
        tracing::info!(inventory = %row, "an interrupted push's stock write is settled before this delivery");
        match pusher.settle_open_writes(integration, shop, row).await {
            Ok(_) => Ok(true),
            // A push is running: it settles the write itself. The message
            // comes back after its visibility timeout.
            Err(PushError::Busy) => Err(unsettled("a push of this shop is running".into(), true)),
            Err(PushError::Store(e)) => Err(e.into()),
            Err(e) => {
                let retryable = e.is_retryable();
                Err(unsettled(e.to_string(), retryable))
            }
        }
    }

    /// Marks a delivery that writes no stock as seen, with its records.
    async fn settle(
        &self,
        integration: &Integration,
        key: &str,
        outcome: PullOutcome,
        records: &PullRecords,
    ) -> Result<PullOutcome, PullError> {
        if self
            .store
            .settle_delivery(&integration.id, key, records)
            .await?
        {
            Ok(outcome)
        } else {
            Ok(PullOutcome::Duplicate)
        }
    }

    fn outcome_records(
        &self,
        integration: &Integration,
        job: &PullJob,
        row: &Inventory,
        label: &str,
        outcome: &PullOutcome,
    ) -> PullRecords {
        match outcome {
            PullOutcome::Applied { from, to } => self.records(
                integration,
                job,
                LogStatus::Success,
                format!("Stock of {label} set to {to} from Shopify (was {from})"),
                json!({ "from": from, "to": to, "inventory": row.key.local_id() }),
            ),
            PullOutcome::Merged {
                fibermade,
                shop_change,
                to,
            } => {
                let message = format!(
                    "Stock of {label} changed in Fibermade ({fibermade}) and on Shopify ({shop_change:+}) since the last sync; kept both: {to}. The next push sets {to} on the shop"
                );
                let data = json!({ "conflict": true, "fibermade_quantity": fibermade, "shop_change": shop_change, "resolved_quantity": to, "inventory": row.key.local_id() });
                tracing::warn!(inventory = %row.key, fibermade, shop_change, resolved = to, "stock conflict merged");
                let mut records = self.records(
                    integration,
                    job,
                    LogStatus::Warning,
                    message.clone(),
                    data.clone(),
                );
                records.notifications.push(Notification {
                    account: integration.account_id.clone(),
                    kind: "stock_conflict".to_owned(),
                    message,
                    data,
                });
                records
            }
            _ => PullRecords::default(),
        }
    }

    fn records(
        &self,
        integration: &Integration,
        job: &PullJob,
        status: LogStatus,
        message: String,
        mut data: serde_json::Value,
    ) -> PullRecords {
        data["event_id"] = json!(job.event_id);
        data["webhook_id"] = json!(job.webhook_id);
        data["updated_at"] = json!(
            job.update
                .updated_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        );
        PullRecords {
            log: vec![IntegrationLogEntry {
                account_id: integration.account_id.clone(),
                integration_id: Some(integration.id.clone()),
                entity: format!("inventory_item:{}", job.update.inventory_item_id),
                direction: Direction::Pull,
                source: LogSource::Webhook,
                status,
                message,
                data,
                at: OffsetDateTime::now_utc(),
            }],
            notifications: Vec::new(),
        }
    }
}

/// A delivery no shop could have sent: a figure beyond Shopify's bounds, or
/// a change dated in the future (which would make every real change after
/// it look stale).
fn implausible(job: &PullJob, event_time: OffsetDateTime) -> Option<String> {
    if job
        .update
        .available
        .is_some_and(|a| a.abs() > QUANTITY_LIMIT)
    {
        return Some(format!(
            "Stock change for inventory item {} ignored: {} is beyond Shopify's bounds",
            job.update.inventory_item_id,
            job.update.available.unwrap_or_default()
        ));
    }
    if event_time > OffsetDateTime::now_utc() + MAX_CLOCK_SKEW {
        return Some(format!(
            "Stock change for inventory item {} ignored: it is dated in the future ({})",
            job.update.inventory_item_id,
            event_time
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        ));
    }
    None
}

/// The row after applying the shop's figure, and what that was.
fn decide(
    row: &Inventory,
    available: Quantity,
    updated_at: OffsetDateTime,
) -> (Inventory, PullOutcome) {
    let mut next = row.clone();
    next.shop_updated_at = Some(updated_at);
    next.last_synced_at = Some(OffsetDateTime::now_utc());
    next.version = row.version + 1;
    next.synced_quantity = Some(available);

    // Both sides hold the same figure: an echo of our own push, or a change
    // that reached Fibermade by another way. Nothing moves.
    if available == row.quantity {
        next.sync_status = SyncStatus::Synced;
        return (next, PullOutcome::Echo);
    }
    let fibermade_changed = row.synced_quantity.is_some_and(|s| s != row.quantity);
    match row.synced_quantity {
        Some(before) if fibermade_changed && available != before => {
            // Figures are bounded by QUANTITY_LIMIT, so these cannot overflow.
            let shop_change = available.saturating_sub(before);
            next.quantity = row.quantity.saturating_add(shop_change);
            // Limitation: the shop still holds `available` until the next push
            // sets the merged figure; a job queued here would close the gap.
            next.sync_status = SyncStatus::Conflict;
            (
                next,
                PullOutcome::Merged {
                    fibermade: row.quantity,
                    shop_change,
                    to: row.quantity + shop_change,
                },
            )
        }
        // The shop did not move; Fibermade's own change waits for a push.
        Some(before) if available == before => (next, PullOutcome::Echo),
        _ => {
            next.quantity = available;
            next.sync_status = SyncStatus::Synced;
            (
                next,
                PullOutcome::Applied {
                    from: row.quantity,
                    to: available,
                },
            )
        }
    }
}

/// Handles a batch from the pull queue, reporting the messages to retry
/// (partial batch response): a malformed message or a delivery that cannot
/// ever apply is acknowledged; a store fault is retried, and after the
/// queue's receive limit lands in the dead-letter queue.
pub async fn handle_sqs_event(puller: &Puller, event: SqsEvent) -> SqsBatchResponse {
    let mut failures = Vec::new();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let job: PullJob = match message
            .body
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
        {
            Ok(Some(job)) => job,
            Ok(None) | Err(_) => {
                tracing::error!(message_id = %id, body = ?message.body, "unreadable pull message; acknowledged");
                continue;
            }
        };
        match puller.apply(&job).await {
            Ok(_) => {}
            Err(e) => {
                tracing::error!(message_id = %id, error = %e, retryable = e.is_retryable(), "pull failed; the message will be retried");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                failures.push(failure);
            }
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}
