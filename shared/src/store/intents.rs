//! Write intents: what a push is about to set on the shop, recorded before
//! the Shopify call and removed once the outcome is recorded on the rows.
//!
//! A push that dies between a Shopify write and its own record of it (a
//! Lambda timeout, a crash) leaves the intent behind. Whoever next needs
//! those rows (the next push or catalog job, the reconciliation, a pull of
//! one of them) settles it first, so nobody takes the push's own write for
//! a sale. See `push/intent.rs` for how an intent is settled.
//!
//! Key: `pk = INTENT#<integration>`, `sk = STOCK#<idempotency key>` or
//! `VARIANTS#<colorway>`: an integration's open intents are one small Query,
//! usually empty. They expire by TTL after [`INTENT_RETENTION`].

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::attrs::{ItemBuilder, ItemReader};
use super::{Store, StoreError, key};
use crate::domain::{BaseId, ColorwayId, Gid, IntegrationId, InventoryKey, Quantity};

/// How long an intent nobody settled is kept. Settling normally happens on
/// the next push, pull or daily reconciliation; this is a bound, not a wait.
pub const INTENT_RETENTION: Duration = Duration::days(30);

/// One line of a stock write, as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntendedStock {
    pub key: InventoryKey,
    pub item: Gid,
    pub quantity: Quantity,
    pub change_from: Quantity,
    /// What the push added to Fibermade's figure to get `quantity`: a sale
    /// it found on the shop and merged. Settling adds it to Fibermade's
    /// figure as the push's own record would have.
    #[serde(default)]
    pub merged: Quantity,
}

/// A Shopify write whose outcome the push has not recorded yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WriteIntent {
    Stock(StockIntent),
    Variants(VariantsIntent),
}

/// An `inventorySetQuantities` call exactly as sent, so it can be sent again
/// under the same idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockIntent {
    pub idempotency_key: String,
    pub reference: String,
    pub location: Gid,
    pub lines: Vec<IntendedStock>,
}

/// A `productSet` or `productVariantsBulkCreate` that creates variants
/// already stocked with these figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariantsIntent {
    pub colorway_id: ColorwayId,
    pub handle: String,
    pub figures: Vec<(BaseId, Quantity)>,
    /// Variants of the product known before the call: found later, they are
    /// not the call's doing and keep their recorded figures.
    #[serde(default)]
    pub existing: Vec<Gid>,
}

impl WriteIntent {
    /// Whether settling this intent may change what Fibermade believes the
    /// shop holds for `row`.
    pub fn covers(&self, row: &InventoryKey) -> bool {
        match self {
            Self::Stock(stock) => stock.lines.iter().any(|l| &l.key == row),
            Self::Variants(variants) => {
                variants.colorway_id == row.colorway_id
                    && variants.figures.iter().any(|(b, _)| b == &row.base_id)
            }
        }
    }

    fn sk(&self) -> String {
        match self {
            Self::Stock(stock) => format!("STOCK#{}", stock.idempotency_key),
            Self::Variants(variants) => variants_sk(&variants.colorway_id),
        }
    }
}

fn variants_sk(colorway: &ColorwayId) -> String {
    format!("VARIANTS#{colorway}")
}

fn intents_pk(integration: &IntegrationId) -> String {
    format!("INTENT#{integration}")
}

impl Store {
    /// Records intents before their Shopify call; a later intent for the
    /// same colorway's variants replaces the earlier one.
    pub async fn put_write_intents(
        &self,
        integration: &IntegrationId,
        intents: &[WriteIntent],
    ) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        let items = intents
            .iter()
            .map(|intent| {
                let record = serde_json::to_string(intent).map_err(|e| StoreError::Corrupt {
                    key: intent.sk(),
                    message: e.to_string(),
                })?;
                Ok(ItemBuilder::new(intents_pk(integration), intent.sk())
                    .s("entity", "write_intent")
                    .s("record", record)
                    .time("created_at", now)
                    .n("expires_at", (now + INTENT_RETENTION).unix_timestamp())
                    .build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.batch_put(&self.tables.sync, items).await
    }

    /// The intents of an integration that nobody has settled yet.
    pub async fn open_write_intents(
        &self,
        integration: &IntegrationId,
    ) -> Result<Vec<WriteIntent>, StoreError> {
        let pk = intents_pk(integration);
        let items = self.query_all(&self.tables.sync, &pk, None).await?;
        items
            .iter()
            .map(|item| {
                let reader = ItemReader::new(item);
                serde_json::from_str(reader.s("record")?).map_err(|e| StoreError::Corrupt {
                    key: format!("{pk}/{}", reader.s("sk").unwrap_or("?")),
                    message: e.to_string(),
                })
            })
            .collect()
    }

    /// Removes the variants intents of these colorways, once the stock their
    /// writes gave is recorded.
    pub async fn delete_variants_intents(
        &self,
        integration: &IntegrationId,
        colorways: &[ColorwayId],
    ) -> Result<(), StoreError> {
        let keys = colorways
            .iter()
            .map(|c| key(intents_pk(integration), variants_sk(c)))
            .collect();
        self.batch_delete(&self.tables.sync, keys).await
    }

    /// Removes intents whose outcome is recorded (or that were never applied).
    pub async fn delete_write_intents(
        &self,
        integration: &IntegrationId,
        intents: &[WriteIntent],
    ) -> Result<(), StoreError> {
        let keys = intents
            .iter()
            .map(|intent| key(intents_pk(integration), intent.sk()))
            .collect();
        self.batch_delete(&self.tables.sync, keys).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(colorway: &str, base: &str) -> InventoryKey {
        InventoryKey::new(colorway.parse().unwrap(), base.parse().unwrap())
    }

    #[test]
    fn a_stock_intent_covers_its_lines_and_a_variants_intent_its_stocked_bases() {
        let stock = WriteIntent::Stock(StockIntent {
            idempotency_key: "fibermade-push-1".into(),
            reference: "gid://fibermade/Push/1".into(),
            location: "gid://shopify/Location/1".parse().unwrap(),
            lines: vec![IntendedStock {
                key: row("moss", "dk"),
                item: "gid://shopify/InventoryItem/7".parse().unwrap(),
                quantity: 14,
                change_from: 9,
                merged: 0,
            }],
        });
        assert!(stock.covers(&row("moss", "dk")));
        assert!(!stock.covers(&row("moss", "sock")));

        let variants = WriteIntent::Variants(VariantsIntent {
            colorway_id: "moss".parse().unwrap(),
            handle: "moss".into(),
            figures: vec![("dk".parse().unwrap(), 3)],
            existing: vec![],
        });
        assert!(variants.covers(&row("moss", "dk")));
        assert!(!variants.covers(&row("moss", "sock")));
        assert!(!variants.covers(&row("fog", "dk")));
    }

    #[test]
    fn an_intent_reads_back_as_written() {
        let intent = WriteIntent::Variants(VariantsIntent {
            colorway_id: "moss".parse().unwrap(),
            handle: "moss-garden".into(),
            figures: vec![("dk".parse().unwrap(), 3), ("sock".parse().unwrap(), 0)],
            existing: vec!["gid://shopify/ProductVariant/5".parse().unwrap()],
        });
        let text = serde_json::to_string(&intent).unwrap();
        assert_eq!(serde_json::from_str::<WriteIntent>(&text).unwrap(), intent);
        assert_eq!(intent.sk(), "VARIANTS#moss");
    }
}
