//! Reconciliation: compare the shop with Fibermade and repair the drift that
//! webhooks and digests cannot see, because a webhook can be lost or a day
//! late, and a product can be edited or deleted by hand in the Shopify admin.
//!
//! For every linked product the shop's copy is read (a few products a query)
//! and compared with what a push would write:
//! - a product the shop no longer has is forgotten (its links dropped), so
//!   the push makes it again by handle;
//! - a product whose title, description, vendor, status, tags or per_pan
//!   differ, or whose variant is gone or priced otherwise, has its digest
//!   forgotten, so the push writes it again (Fibermade is the source of
//!   truth for the catalog);
//! - stock the shop holds that differs from the figure we last synced moved
//!   on the shop without a webhook reaching us: that change is applied to
//!   Fibermade's figure, by the conflict rule (a sale is never lost), and
//!   dated now, so a late webhook of an older change is stale.
//!
//! Then the account is pushed, under the same lease, and one log entry says
//! what was repaired, with a warning per stock figure moved.

use std::collections::HashMap;

use serde::Serialize;
use time::OffsetDateTime;

use super::{Loaded, PushError, PushReport, PushRequest, PushScope, Pusher};
use crate::domain::{
    AccountId, Base, Direction, ExternalIdentifier, ExternalType, Gid, IntegrationLogEntry,
    InventoryKey, LocalRef, LogSource, LogStatus, SyncStatus,
};
use crate::mapping::{self, BASE_OPTION};
use crate::shopify::snapshot::ProductSnapshot;
use crate::store::{InventorySync, StoreError};

/// What one reconciliation found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct ReconcileReport {
    pub products_checked: u64,
    /// Linked products the shop no longer has: made again.
    pub products_missing: u64,
    /// Products whose catalog fields were changed on the shop: written again.
    pub products_drifted: u64,
    /// Variants the shop lost or prices it changed: written again.
    pub variants_repaired: u64,
    /// Stock figures that moved on the shop without a webhook reaching us.
    pub stock_repaired: u64,
    /// The net change those figures brought to Fibermade's stock.
    pub stock_change: i64,
    /// The push that followed.
    pub push: PushReport,
}

impl ReconcileReport {
    pub fn repaired(&self) -> u64 {
        self.products_missing + self.products_drifted + self.variants_repaired + self.stock_repaired
    }
}

/// How long a reconciliation waits for a push of the same shop to finish.
const LEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

impl Pusher {
    /// Compares the account's catalog and stock with the shop and repairs
    /// the drift; see the module documentation.
    #[tracing::instrument(name = "reconcile", skip_all, fields(account_id = %account_id))]
    pub async fn reconcile(&self, account_id: &AccountId) -> Result<ReconcileReport, PushError> {
        let loaded = self
            .load(account_id, &PushScope::Account, LogSource::Reconcile)
            .await?;
        let integration = loaded.integration.id.clone();
        let owner = uuid::Uuid::new_v4().simple().to_string();
        self.take_lease(&integration, &owner, LEASE_WAIT).await?;
        // A push's unrecorded write would look like drift; settle it first.
        let result = match self.settled(loaded, &PushScope::Account).await {
            Ok(mut loaded) => self.reconcile_holding_lease(&mut loaded).await,
            Err(e) => Err(e),
        };
        if let Err(e) = self.store.release_push_lease(&integration, &owner).await {
            tracing::error!(error = %e, "could not release the push lease; it expires by itself");
        }
        result
    }

    async fn reconcile_holding_lease(
        &self,
        loaded: &mut Loaded,
    ) -> Result<ReconcileReport, PushError> {
        let location = self.location(loaded).await?;
        let mut report = ReconcileReport::default();
        let products: Vec<(crate::domain::ColorwayId, Gid)> = loaded
            .catalog
            .colorways
            .iter()
            .filter_map(|c| {
                loaded
                    .links
                    .get(&(
                        LocalRef::Colorway(c.id.clone()),
                        ExternalType::ShopifyProduct,
                    ))
                    .map(|l| (c.id.clone(), l.external_id.clone()))
            })
            .collect();
        let ids: Vec<Gid> = products.iter().map(|(_, id)| id.clone()).collect();
        // Stock repaired from this read is dated a second before it began:
        // a webhook of a change the read already saw is then stale (or an
        // echo), and one of a change after it is not, whole-second
        // `updated_at` included.
        let read_at = OffsetDateTime::now_utc() - time::Duration::seconds(1);
        let shop = self
            .shopify
            .product_snapshots(&loaded.shop, &ids, loaded.catalog.bases.len(), &location)
            .await?;
        report.products_checked = products.len() as u64;

        let mut forget: Vec<ExternalIdentifier> = Vec::new();
        let mut drop: Vec<ExternalIdentifier> = Vec::new();
        let mut warnings = Vec::new();
        let now = read_at;
        for (colorway_id, product_id) in &products {
            let links_of_colorway: Vec<&ExternalIdentifier> = loaded
                .links
                .values()
                .filter(|l| match &l.local {
                    LocalRef::Colorway(c) => c == colorway_id,
                    LocalRef::Inventory(k) => &k.colorway_id == colorway_id,
                })
                .collect();
            let Some(Some(snapshot)) = shop.get(product_id) else {
                tracing::warn!(colorway_id = %colorway_id, product_id = %product_id, "the shop no longer has the product; it will be made again");
                report.products_missing += 1;
                drop.extend(links_of_colorway.into_iter().cloned());
                continue;
            };
            let product_link = loaded
                .links
                .get(&(
                    LocalRef::Colorway(colorway_id.clone()),
                    ExternalType::ShopifyProduct,
                ))
                .cloned();
            let mut product_drifted = self.fields_drifted(loaded, colorway_id, snapshot);
            if product_drifted {
                report.products_drifted += 1;
            }

            let variants: HashMap<&Gid, &crate::shopify::snapshot::VariantSnapshot> =
                snapshot.variants.nodes.iter().map(|v| (&v.id, v)).collect();
            for base in &loaded.catalog.bases {
                let key = InventoryKey::new(colorway_id.clone(), base.id.clone());
                let local = LocalRef::Inventory(key.clone());
                let Some(variant_link) = loaded
                    .links
                    .get(&(local.clone(), ExternalType::ShopifyVariant))
                else {
                    continue;
                };
                let Some(variant) = variants.get(&variant_link.external_id) else {
                    // Deleted on the shop: forget it, the push makes it again.
                    report.variants_repaired += 1;
                    product_drifted = true;
                    drop.push(variant_link.clone());
                    if let Some(item) = loaded
                        .links
                        .get(&(local, ExternalType::ShopifyInventoryItem))
                    {
                        drop.push(item.clone());
                    }
                    continue;
                };
                if !variant_matches(variant, base) {
                    report.variants_repaired += 1;
                    product_drifted = true;
                    forget.push(ExternalIdentifier {
                        fingerprint: None,
                        ..variant_link.clone()
                    });
                }
                if let Some(warning) = self
                    .repair_stock(loaded, &key, variant.available(), now, &mut report)
                    .await?
                {
                    warnings.push(warning);
                }
            }
            if product_drifted && let Some(link) = product_link {
                forget.push(ExternalIdentifier {
                    fingerprint: None,
                    ..link
                });
            }
        }
        self.store.put_links(&forget).await?;
        self.store.delete_links(&drop).await?;

        // Push what the repairs left to do, from a fresh read, under the
        // lease already held.
        let fresh = self
            .load(
                &loaded.account.id,
                &PushScope::Account,
                LogSource::Reconcile,
            )
            .await?;
        let request = PushRequest {
            source: LogSource::Reconcile,
            ..PushRequest::account(loaded.account.id.clone())
        };
        report.push = self.run(&request, fresh, None).await?;
        self.log_reconcile(loaded, &report, warnings).await?;
        Ok(report)
    }

    /// Whether the shop's product fields differ from what a push writes.
    fn fields_drifted(
        &self,
        loaded: &Loaded,
        colorway_id: &crate::domain::ColorwayId,
        snapshot: &ProductSnapshot,
    ) -> bool {
        let Some(colorway) = loaded
            .catalog
            .colorways
            .iter()
            .find(|c| &c.id == colorway_id)
        else {
            return false;
        };
        let mut tags = snapshot.tags.clone();
        tags.sort_by_key(|t| t.to_lowercase());
        let per_pan = snapshot.per_pan.as_ref().map(|m| m.value.clone());
        let drifted = snapshot.title != colorway.name
            || snapshot.description_html != colorway.description_html
            || snapshot.vendor != loaded.account.name
            || snapshot.status != mapping::product_status(colorway.status)
            || tags != mapping::product_tags(colorway)
            || per_pan != colorway.per_pan.map(|p| p.to_string());
        if drifted {
            tracing::warn!(colorway_id = %colorway_id, "product fields were changed on the shop; Fibermade's are written again");
        }
        drifted
    }

    /// Applies a stock change made on the shop that no webhook brought us.
    async fn repair_stock(
        &self,
        loaded: &Loaded,
        key: &InventoryKey,
        on_shop: Option<i64>,
        now: OffsetDateTime,
        report: &mut ReconcileReport,
    ) -> Result<Option<IntegrationLogEntry>, PushError> {
        let Some(shop_now) = on_shop else {
            return Ok(None);
        };
        let Some(row) = loaded.catalog.inventory.iter().find(|r| &r.key == key) else {
            return Ok(None);
        };
        let Some(believed) = row.synced_quantity else {
            return Ok(None);
        };
        if believed == shop_now {
            return Ok(None);
        }
        // The conflict rule: the shop's change lands on Fibermade's figure,
        // whatever the dyer did meanwhile.
        let change = shop_now - believed;
        let quantity = row.quantity + change;
        let sync = InventorySync {
            key: key.clone(),
            expected_version: row.version,
            quantity,
            synced_quantity: shop_now,
            status: if quantity == shop_now {
                SyncStatus::Synced
            } else {
                SyncStatus::Pending
            },
            at: now,
        };
        match self
            .store
            .record_reconciled_stock(&loaded.account.id, &sync)
            .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict { .. }) => {
                // A person or a webhook wrote the row just now; the next
                // reconciliation looks again.
                tracing::info!(inventory = %key, "stock changed meanwhile; left for the next reconciliation");
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        }
        report.stock_repaired += 1;
        report.stock_change += change;
        let label = self.row_label(loaded, key);
        tracing::warn!(inventory = %key, shop_now, believed, change, fibermade_before = row.quantity, fibermade_after = quantity, "stock moved on the shop without a webhook; applied");
        Ok(Some(IntegrationLogEntry {
            account_id: loaded.account.id.clone(),
            integration_id: Some(loaded.integration.id.clone()),
            entity: format!("inventory:{key}"),
            direction: Direction::Pull,
            source: LogSource::Reconcile,
            status: LogStatus::Warning,
            message: format!(
                "{label}: stock on Shopify moved {change:+} without a webhook reaching Fibermade; Fibermade {} → {quantity}",
                row.quantity
            ),
            data: serde_json::json!({
                "shop_quantity": shop_now,
                "synced_quantity": believed,
                "shop_change": change,
                "fibermade_before": row.quantity,
                "fibermade_after": quantity,
            }),
            at: now,
        }))
    }

    fn row_label(&self, loaded: &Loaded, key: &InventoryKey) -> String {
        let colorway = loaded
            .catalog
            .colorways
            .iter()
            .find(|c| c.id == key.colorway_id);
        let base = loaded.catalog.bases.iter().find(|b| b.id == key.base_id);
        match (colorway, base) {
            (Some(c), Some(b)) => format!("{} / {}", c.name, b.descriptor),
            _ => key.to_string(),
        }
    }

    async fn log_reconcile(
        &self,
        loaded: &Loaded,
        report: &ReconcileReport,
        warnings: Vec<IntegrationLogEntry>,
    ) -> Result<(), PushError> {
        let status = if !report.push.errors.is_empty() {
            LogStatus::Error
        } else if report.repaired() > 0 {
            LogStatus::Warning
        } else {
            LogStatus::Success
        };
        let mut entries = warnings;
        entries.push(IntegrationLogEntry {
            account_id: loaded.account.id.clone(),
            integration_id: Some(loaded.integration.id.clone()),
            entity: format!("account:{}", loaded.account.id),
            direction: Direction::Push,
            source: LogSource::Reconcile,
            status,
            message: format!(
                "Compared {} products with {}: {} missing, {} changed there, {} variants and {} stock figures repaired",
                report.products_checked,
                loaded.integration.shop_domain,
                report.products_missing,
                report.products_drifted,
                report.variants_repaired,
                report.stock_repaired,
            ),
            data: serde_json::to_value(report).unwrap_or_default(),
            at: OffsetDateTime::now_utc(),
        });
        self.store.append_logs(&entries).await?;
        Ok(())
    }
}

/// Whether the shop's variant carries the base's descriptor and price.
fn variant_matches(variant: &crate::shopify::snapshot::VariantSnapshot, base: &Base) -> bool {
    let descriptor_ok = variant
        .option(BASE_OPTION)
        .is_some_and(|d| d.trim().eq_ignore_ascii_case(base.descriptor.as_str()));
    let price_ok = variant
        .price
        .parse::<rust_decimal::Decimal>()
        .is_ok_and(|p| p == base.retail_price.amount());
    descriptor_ok && price_ok
}
