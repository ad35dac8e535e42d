//! Settling what a push wrote to the shop and died before recording.
//!
//! Before each Shopify call that sets stock, the push records a
//! [`WriteIntent`]; after recording the outcome on the rows it removes it.
//! An intent still open when the next push, reconciliation or pull comes
//! means its call may or may not have reached the shop. Taking the shop's
//! figure for a sale then would count the dyer's change twice, and writing
//! stock over it would lose a real sale. So an open intent is settled first,
//! holding the shop's push lease:
//!
//! - **Stock**: the same `inventorySetQuantities` is sent again under the same
//!   idempotency key. Shopify answers a call it applied before with its
//!   stored answer and applies nothing; a call it never got is applied now,
//!   or refused as stale if the shop moved meanwhile (a sale), in which case
//!   it was never applied. Applied: the rows record the figure as the shop's.
//! - **Variants**: the product is looked up by handle. Variants that exist
//!   were created by the call, stocked with the recorded figures: links are
//!   saved where missing and the rows record those figures as the shop's.
//!
//! Either way the next comparison (`changeFromQuantity`, or the pull's
//! conflict rule) starts from what the shop was really given.

use std::collections::HashMap;

use serde_json::json;
use time::OffsetDateTime;

use super::{PushError, Pusher, base_of_variant};
use crate::domain::{
    AccountId, Direction, ExternalIdentifier, ExternalType, Gid, Integration, IntegrationLogEntry,
    InventoryKey, LocalRef, LogSource, LogStatus,
};
use crate::shopify::{QuantityLine, Shop, ShopifyError};
use crate::store::{IntendedStock, StockIntent, VariantsIntent, WriteIntent};

/// The `inventorySetQuantities` lines of a stock intent, as sent the first
/// time and again when it is settled.
pub(super) fn quantity_lines(lines: &[IntendedStock], location: &Gid) -> Vec<QuantityLine> {
    lines
        .iter()
        .map(|line| QuantityLine {
            inventory_item_id: line.item.clone(),
            location_id: location.clone(),
            quantity: line.quantity,
            change_from_quantity: Some(line.change_from),
        })
        .collect()
}

/// What settling one intent found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settled {
    /// The write reached the shop (before, or just now); rows recorded.
    Applied(usize),
    /// The write never reached the shop and never will.
    NotApplied,
    /// Settling failed for good; nothing was recorded.
    GivenUp,
}

impl Pusher {
    /// Settles every open intent of the integration; the caller holds the
    /// push lease. Returns how many intents there were.
    pub(crate) async fn settle_intents(
        &self,
        account: &AccountId,
        integration: &Integration,
        shop: &Shop,
    ) -> Result<usize, PushError> {
        self.settle_intents_where(account, integration, shop, |_| true)
            .await
    }

    /// Settles the open intents `wanted` picks.
    async fn settle_intents_where(
        &self,
        account: &AccountId,
        integration: &Integration,
        shop: &Shop,
        wanted: impl Fn(&WriteIntent) -> bool,
    ) -> Result<usize, PushError> {
        let mut intents = self.store.open_write_intents(&integration.id).await?;
        intents.retain(|intent| wanted(intent));
        for intent in &intents {
            let settled = match intent {
                WriteIntent::Stock(stock) => self.settle_stock(account, shop, stock).await,
                WriteIntent::Variants(variants) => {
                    self.settle_variants(account, integration, shop, variants)
                        .await
                }
            };
            let settled = match settled {
                Ok(settled) => settled,
                // Shopify busy or away: the intent stays for the next try.
                Err(e) if e.is_retryable() => return Err(e),
                // No try will settle it (the token or the shop refuses the
                // call): kept, it would hold up every push and every pull of
                // its rows. The rows keep their last recorded figures, the
                // engineer on call gets an error entry, and the
                // reconciliation compares them with the shop.
                Err(e) => {
                    tracing::error!(intent = ?intent, error = %e, "an interrupted write could not be settled; given up");
                    Settled::GivenUp
                }
            };
            tracing::warn!(intent = ?intent, settled = ?settled, "a write an earlier push did not record was settled");
            self.log_settled(account, integration, intent, settled)
                .await?;
            self.store
                .delete_write_intents(&integration.id, std::slice::from_ref(intent))
                .await?;
        }
        Ok(intents.len())
    }

    /// Takes the shop's push lease, settles the open intents that cover
    /// `row` and gives the lease back: for a pull about to change the row.
    /// Only those, so one delivery's work stays a call or two; the next push
    /// or reconciliation settles the rest. `PushError::Busy` when a push
    /// holds the lease.
    pub async fn settle_open_writes(
        &self,
        integration: &Integration,
        shop: &Shop,
        row: &InventoryKey,
    ) -> Result<usize, PushError> {
        let owner = uuid::Uuid::new_v4().simple().to_string();
        self.take_lease(&integration.id, &owner, std::time::Duration::ZERO)
            .await?;
        let result = self
            .settle_intents_where(&integration.account_id, integration, shop, |intent| {
                intent.covers(row)
            })
            .await;
        if let Err(e) = self.store.release_push_lease(&integration.id, &owner).await {
            tracing::error!(error = %e, "could not release the push lease; it expires by itself");
        }
        result
    }

    async fn settle_stock(
        &self,
        account: &AccountId,
        shop: &Shop,
        intent: &StockIntent,
    ) -> Result<Settled, PushError> {
        let StockIntent {
            idempotency_key,
            reference,
            location,
            lines,
        } = intent;
        let call = quantity_lines(lines, location);
        // Limitation: Shopify keeps an idempotency key for a limited window;
        // past it, a shop that again holds exactly `change_from` would take
        // the call as new. The daily reconciliation settles intents long
        // before; reading the shop's figure instead would close it for older
        // ones.
        match self
            .shopify
            .set_inventory_quantities(shop, &call, idempotency_key, reference)
            .await
        {
            Ok(()) => {
                let now = OffsetDateTime::now_utc();
                for line in lines {
                    self.store
                        .record_settled_figure(account, &line.key, line.quantity, line.merged, now)
                        .await?;
                }
                Ok(Settled::Applied(lines.len()))
            }
            // A call with a user error applies nothing, for every line: a
            // stale figure (the shop moved before it arrived), or items the
            // shop no longer has.
            Err(e @ ShopifyError::UserErrors { .. }) => {
                tracing::info!(error = %e, "the unrecorded stock write was never applied");
                Ok(Settled::NotApplied)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn settle_variants(
        &self,
        account: &AccountId,
        integration: &Integration,
        shop: &Shop,
        intent: &VariantsIntent,
    ) -> Result<Settled, PushError> {
        let VariantsIntent {
            colorway_id,
            handle,
            figures,
            existing,
        } = intent;
        let colorways = std::slice::from_ref(colorway_id);
        let catalog = self.store.load_catalog_of(account, colorways).await?;
        let Some(product) = self
            .shopify
            .product_by_handle(shop, handle, catalog.bases.len().max(1))
            .await?
        else {
            return Ok(Settled::NotApplied);
        };
        let known: HashMap<(LocalRef, ExternalType), ExternalIdentifier> = self
            .store
            .load_links_of(&integration.id, colorways)
            .await?
            .into_iter()
            .map(|l| ((l.local.clone(), l.external_type), l))
            .collect();
        let figures: HashMap<_, _> = figures.iter().cloned().collect();

        // Links the dead push never saved. No fingerprint: the next push
        // writes product and variants again rather than trust them.
        let link = |local: LocalRef, external_type, external_id| ExternalIdentifier {
            integration_id: integration.id.clone(),
            local,
            external_type,
            external_id,
            fingerprint: None,
        };
        let mut missing = vec![link(
            LocalRef::Colorway(colorway_id.clone()),
            ExternalType::ShopifyProduct,
            product.id.clone(),
        )];
        let mut stocked = Vec::new();
        for variant in &product.variants.nodes {
            if existing.contains(&variant.id) {
                // There before the call (a remake that never applied):
                // its stock was never the call's to give.
                continue;
            }
            let Some(base) = base_of_variant(&catalog.bases, variant) else {
                continue;
            };
            let Some(quantity) = figures.get(&base.id) else {
                continue;
            };
            let key = InventoryKey::new(colorway_id.clone(), base.id.clone());
            let local = LocalRef::Inventory(key.clone());
            missing.push(link(
                local.clone(),
                ExternalType::ShopifyVariant,
                variant.id.clone(),
            ));
            missing.push(link(
                local,
                ExternalType::ShopifyInventoryItem,
                variant.inventory_item.id.clone(),
            ));
            stocked.push((key, *quantity, variant.inventory_item.id.clone()));
        }
        // Links already right are kept (with their digests); links to
        // another object (one the shop lost and the dead push made again)
        // are replaced.
        missing.retain(|l| {
            known
                .get(&(l.local.clone(), l.external_type))
                .is_none_or(|k| k.external_id != l.external_id)
        });
        self.store.put_links(&missing).await?;

        // Webhooks of sales made before the links existed were acknowledged
        // as unknown items: the shop's figure now tells what sold since the
        // variants were created, and the conflict rule lands it on
        // Fibermade's figure.
        let items: Vec<_> = stocked.iter().map(|(_, _, item)| item.clone()).collect();
        let on_shop = match &integration.location_id {
            Some(location) => {
                self.shopify
                    .available_quantities(shop, location, &items)
                    .await?
            }
            None => HashMap::new(),
        };
        let now = OffsetDateTime::now_utc();
        for (key, given, item) in &stocked {
            let holds = on_shop.get(item).copied().unwrap_or(*given);
            if holds != *given {
                tracing::warn!(inventory = %key, given, holds, "stock moved on the shop before its variant was linked; applied to Fibermade");
            }
            self.store
                .record_settled_figure(account, key, holds, holds - given, now)
                .await?;
        }
        Ok(Settled::Applied(stocked.len()))
    }

    async fn log_settled(
        &self,
        account: &AccountId,
        integration: &Integration,
        intent: &WriteIntent,
        settled: Settled,
    ) -> Result<(), PushError> {
        let (entity, what) = match intent {
            WriteIntent::Stock(StockIntent { lines, .. }) => (
                format!("account:{account}"),
                format!("a stock write of {} rows", lines.len()),
            ),
            WriteIntent::Variants(VariantsIntent { colorway_id, .. }) => (
                format!("colorway:{colorway_id}"),
                "the variants created for a colorway".to_owned(),
            ),
        };
        let message = match settled {
            Settled::Applied(rows) => format!(
                "An interrupted push had sent {what} to Shopify without recording it; found applied and recorded for {rows} rows"
            ),
            Settled::NotApplied => format!(
                "An interrupted push had sent {what} to Shopify; it never applied, and the next push sends it again"
            ),
            Settled::GivenUp => format!(
                "An interrupted push had sent {what} to Shopify, and whether it applied could not be found out; the next reconciliation compares the stock with the shop"
            ),
        };
        let entry = IntegrationLogEntry {
            account_id: account.clone(),
            integration_id: Some(integration.id.clone()),
            entity,
            direction: Direction::Push,
            source: LogSource::Reconcile,
            status: if settled == Settled::GivenUp {
                LogStatus::Error
            } else {
                LogStatus::Warning
            },
            message,
            data: json!({
                "interrupted_write": intent,
                "applied": matches!(settled, Settled::Applied(_)),
            }),
            at: OffsetDateTime::now_utc(),
        };
        self.store.append_log(&entry).await?;
        Ok(())
    }
}
