//! The catalog observer: DynamoDB Streams records of the catalog table →
//! catalog jobs on the queue.
//!
//! Each record's old and new images are compared on the fields the shop
//! shows; a real change names the colorways whose products must follow:
//!
//! | change | colorways |
//! |---|---|
//! | colorway created, or name, description, status, colors, technique, per_pan changed | that one |
//! | base created, deleted, or descriptor or retail price changed | every colorway of the account |
//! | media added, removed, moved, primary changed | its colorway |
//! | inventory quantity changed by a person | its colorway (the push sets stock only where it differs) |
//! | account name changed (the products' vendor) | every colorway |
//! | automatic catalog sync turned on | every colorway, to catch up |
//!
//! Writes the sync makes itself (`writer = sync`: pushed bookkeeping, pulled
//! stock) and imports (`writer = import`; the dyer reviews an import and
//! pushes it) make no job; the template's event filter drops them before the
//! function runs and the code checks again. When an account's automatic
//! catalog sync is off, nothing is queued.
//!
//! A colorway with a job already waiting is not queued again (the pending
//! mark in the sync table), so a burst of edits costs one job.

use std::collections::{BTreeMap, BTreeSet};

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use time::OffsetDateTime;

use crate::domain::{AccountId, ColorwayId, Writer};
use crate::jobs::{ChangeReason, JobQueue, QueueError, split_into_jobs};
use crate::store::attrs::Item;
use crate::store::{CatalogItem, Store, StoreError};

/// Which colorways a change reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    Colorway(ColorwayId),
    EveryColorway,
}

/// One change the shop must follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub account_id: AccountId,
    pub reach: Reach,
    pub reason: ChangeReason,
}

/// Why a stream record could not be read.
#[derive(Debug, thiserror::Error)]
#[error("stream record {event_id} ({sequence}) is unreadable: {source}")]
pub struct RecordError {
    event_id: String,
    sequence: String,
    #[source]
    source: StoreError,
}

/// The change a stream record describes, if the shop must follow it.
pub fn observe(record: &EventRecord) -> Result<Option<Observed>, RecordError> {
    let read = |image: &serde_dynamo::Item| -> Result<Option<(Item, CatalogItem)>, RecordError> {
        if image.is_empty() {
            return Ok(None);
        }
        let item: Item = image.clone().into();
        let decoded = CatalogItem::decode(&item).map_err(|source| RecordError {
            event_id: record.event_id.clone(),
            sequence: record.change.sequence_number.clone().unwrap_or_default(),
            source,
        })?;
        Ok(Some((item, decoded)))
    };
    let new = read(&record.change.new_image)?;
    let old = read(&record.change.old_image)?;

    // A deletion has no writer; only people delete catalog items.
    if let Some((item, _)) = &new
        && matches!(
            CatalogItem::writer(item),
            Some(Writer::Sync | Writer::Import)
        )
    {
        return Ok(None);
    }
    let account = new
        .as_ref()
        .or(old.as_ref())
        .and_then(|(item, _)| CatalogItem::account_of(item));
    let Some(account_id) = account else {
        return Ok(None);
    };
    let old = old.map(|(_, decoded)| decoded);
    let new = new.map(|(_, decoded)| decoded);
    let change = |reach, reason| {
        Some(Observed {
            account_id: account_id.clone(),
            reach,
            reason,
        })
    };

    Ok(match (old, new) {
        (None, Some(CatalogItem::Colorway(c))) => {
            change(Reach::Colorway(c.id), ChangeReason::ColorwayCreated)
        }
        (Some(CatalogItem::Colorway(a)), Some(CatalogItem::Colorway(b))) => {
            let synced = |c: &crate::domain::Colorway| {
                (
                    c.name.clone(),
                    c.description_html.clone(),
                    c.status,
                    c.colors.clone(),
                    c.technique.clone(),
                    c.per_pan,
                )
            };
            (synced(&a) != synced(&b))
                .then_some(())
                .and_then(|()| change(Reach::Colorway(b.id), ChangeReason::ColorwayFields))
        }
        // Limitation: a deleted colorway keeps its product on the shop; it
        // should be archived there (status ARCHIVED), which needs the product
        // link and a productUpdate document the client does not have yet.
        (Some(CatalogItem::Colorway(c)), None) => {
            tracing::warn!(colorway_id = %c.id, "colorway deleted; its Shopify product is left as it was");
            None
        }
        (None, Some(CatalogItem::Base(_))) => {
            change(Reach::EveryColorway, ChangeReason::BaseCreated)
        }
        (Some(CatalogItem::Base(_)), None) => {
            change(Reach::EveryColorway, ChangeReason::BaseDeleted)
        }
        (Some(CatalogItem::Base(a)), Some(CatalogItem::Base(b))) => {
            let changed = a.descriptor != b.descriptor || a.retail_price != b.retail_price;
            changed
                .then_some(())
                .and_then(|()| change(Reach::EveryColorway, ChangeReason::BaseFields))
        }
        (
            old @ (None | Some(CatalogItem::Media(_))),
            new @ (None | Some(CatalogItem::Media(_))),
        ) => {
            let media = |m: &Option<CatalogItem>| match m {
                Some(CatalogItem::Media(m)) => Some(m.clone()),
                _ => None,
            };
            match (media(&old), media(&new)) {
                (Some(a), Some(b)) if a == b => None,
                (_, Some(m)) | (Some(m), None) => {
                    change(Reach::Colorway(m.colorway_id), ChangeReason::Media)
                }
                (None, None) => None,
            }
        }
        (old, Some(CatalogItem::Inventory(row))) => {
            let before = match old {
                Some(CatalogItem::Inventory(before)) => Some(before.quantity),
                _ => None,
            };
            (before != Some(row.quantity))
                .then_some(())
                .and_then(|()| change(Reach::Colorway(row.key.colorway_id), ChangeReason::Stock))
        }
        (Some(CatalogItem::Account(a)), Some(CatalogItem::Account(b))) => {
            if !a.auto_catalog_sync && b.auto_catalog_sync {
                change(Reach::EveryColorway, ChangeReason::SyncEnabled)
            } else if a.name != b.name {
                change(Reach::EveryColorway, ChangeReason::Vendor)
            } else {
                None
            }
        }
        _ => None,
    })
}

/// What one call of the observer did, for its log line and the tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObserverReport {
    pub records: usize,
    pub changes: usize,
    /// Changes of accounts whose automatic catalog sync is off.
    pub skipped_flag_off: usize,
    pub jobs_queued: usize,
    /// Colorways left out because a job for them was already waiting.
    pub coalesced: usize,
}

/// Everything the observer needs.
#[derive(Clone)]
pub struct Observer {
    pub store: Store,
    pub queue: JobQueue,
}

/// Failures that hand an account's records back to the stream for a retry.
#[derive(Debug, thiserror::Error)]
enum AccountError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// The changes of one account in a batch, and where its records start.
#[derive(Default)]
struct AccountChanges {
    colorways: BTreeSet<ColorwayId>,
    every_colorway: bool,
    reasons: BTreeSet<ChangeReason>,
    /// The sequence number of the account's first record in the batch: a
    /// failure hands the stream back from there.
    first_sequence: Option<String>,
    origins: Vec<String>,
}

impl Observer {
    /// Handles one batch of stream records. A record that cannot be read is
    /// logged and skipped (retrying cannot fix it); an account whose jobs
    /// cannot be queued hands the batch back from its first record, so the
    /// stream delivers it again (and the template's on-failure destination
    /// keeps it after the last retry). Nothing here can fail a dyer's save:
    /// the save was done before the record existed.
    #[tracing::instrument(name = "observe", skip_all, fields(records = event.records.len()))]
    pub async fn handle(&self, event: Event) -> (DynamoDbEventResponse, ObserverReport) {
        let mut report = ObserverReport {
            records: event.records.len(),
            ..ObserverReport::default()
        };
        let mut accounts: BTreeMap<AccountId, AccountChanges> = BTreeMap::new();
        for record in &event.records {
            let observed = match observe(record) {
                Ok(Some(observed)) => observed,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "catalog record skipped");
                    continue;
                }
            };
            report.changes += 1;
            let entry = accounts.entry(observed.account_id.clone()).or_default();
            if entry.first_sequence.is_none() {
                entry.first_sequence = record.change.sequence_number.clone();
            }
            entry.origins.push(record.event_id.clone());
            entry.reasons.insert(observed.reason);
            match observed.reach {
                Reach::Colorway(c) => {
                    entry.colorways.insert(c);
                }
                Reach::EveryColorway => entry.every_colorway = true,
            }
        }

        let mut failed: Vec<String> = Vec::new();
        for (account_id, changes) in accounts {
            match self.queue_account(&account_id, &changes, &mut report).await {
                Ok(()) => {}
                Err(e) => {
                    tracing::error!(account_id = %account_id, error = %e, "catalog jobs not queued; the stream will deliver these records again");
                    failed.extend(changes.first_sequence);
                }
            }
        }

        let mut response = DynamoDbEventResponse::default();
        // The stream retries from the earliest failure; later records of
        // other accounts come again too and find their jobs pending.
        if let Some(first) = failed.into_iter().min_by(|a, b| compare_sequence(a, b)) {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(first);
            response.batch_item_failures.push(failure);
        }
        tracing::info!(
            changes = report.changes,
            jobs_queued = report.jobs_queued,
            coalesced = report.coalesced,
            skipped_flag_off = report.skipped_flag_off,
            "catalog records observed"
        );
        (response, report)
    }

    async fn queue_account(
        &self,
        account_id: &AccountId,
        changes: &AccountChanges,
        report: &mut ObserverReport,
    ) -> Result<(), AccountError> {
        let account = self.store.get_account(account_id).await?;
        if !account.as_ref().is_some_and(|a| a.auto_catalog_sync) {
            report.skipped_flag_off += changes.origins.len();
            tracing::debug!(account_id = %account_id, "automatic catalog sync is off; nothing queued");
            return Ok(());
        }
        let colorways: Vec<ColorwayId> = if changes.every_colorway {
            self.store.colorway_ids(account_id).await?
        } else {
            changes.colorways.iter().cloned().collect()
        };

        let now = OffsetDateTime::now_utc();
        let mut marked = Vec::new();
        let mut failure = None;
        for batch in colorways.chunks(16) {
            let claims = batch
                .iter()
                .map(|c| self.store.mark_pending(account_id, c, now));
            let results = futures::future::join_all(claims).await;
            for (colorway, result) in batch.iter().zip(results) {
                match result {
                    Ok(true) => marked.push(colorway.clone()),
                    Ok(false) => report.coalesced += 1,
                    Err(e) => failure = Some(e),
                }
            }
            if failure.is_some() {
                break;
            }
        }
        if let Some(e) = failure {
            // Marks made before the failure would make the stream's retry
            // take these colorways for queued, and no job would ever be
            // sent for them: take them back first.
            if let Err(clear) = self.store.clear_pending(account_id, &marked).await {
                tracing::error!(error = %clear, "pending marks stay until they go stale");
            }
            return Err(e.into());
        }
        if marked.is_empty() {
            return Ok(());
        }

        let jobs = split_into_jobs(account_id, &marked, &changes.reasons, now);
        let origin = changes.origins.join(",");
        if let Err(e) = self.queue.send_all(&jobs, &origin).await {
            // Unmark, so the stream's retry marks and queues them again.
            if let Err(clear) = self.store.clear_pending(account_id, &marked).await {
                tracing::error!(error = %clear, "pending marks stay until they go stale");
            }
            return Err(e.into());
        }
        report.jobs_queued += jobs.len();
        tracing::info!(account_id = %account_id, colorways = marked.len(), jobs = jobs.len(), reasons = ?changes.reasons, "catalog jobs queued");
        Ok(())
    }
}

/// Stream sequence numbers are decimal strings of varying length.
fn compare_sequence(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str) -> EventRecord {
        let text = std::fs::read_to_string(format!(
            "{}/../events/catalog-observer/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let event: Event = serde_json::from_str(&text).unwrap();
        event.records.into_iter().next().unwrap()
    }

    #[test]
    fn a_colorway_rename_names_its_colorway() {
        let observed = observe(&record("colorway-renamed")).unwrap().unwrap();
        assert_eq!(observed.reason, ChangeReason::ColorwayFields);
        assert!(matches!(observed.reach, Reach::Colorway(c) if c.as_str() == "cw-moss-garden"));
    }

    #[test]
    fn a_price_change_reaches_every_colorway() {
        let observed = observe(&record("base-price-changed")).unwrap().unwrap();
        assert_eq!(observed.reason, ChangeReason::BaseFields);
        assert_eq!(observed.reach, Reach::EveryColorway);
    }

    #[test]
    fn a_write_by_the_sync_itself_is_no_change() {
        assert_eq!(observe(&record("inventory-synced")).unwrap(), None);
    }

    #[test]
    fn a_save_that_changes_no_synced_field_is_no_change() {
        let mut r = record("colorway-renamed");
        r.change.new_image = r.change.old_image.clone();
        assert_eq!(observe(&r).unwrap(), None);
    }

    #[test]
    fn a_deleted_base_reaches_every_colorway() {
        let observed = observe(&record("base-deleted")).unwrap().unwrap();
        assert_eq!(observed.reason, ChangeReason::BaseDeleted);
    }

    #[test]
    fn sequence_numbers_compare_as_numbers() {
        assert!(compare_sequence("900", "1000").is_lt());
        assert!(compare_sequence("1001", "1000").is_gt());
    }
}
