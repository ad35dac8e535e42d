//! What the shop holds now for some products: the reconciliation's view of
//! the shop, read a few products a query within Shopify's cost limit.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::json;

use super::client::{Shop, ShopifyClient};
use super::error::ShopifyError;
use super::operations::{MAX_INPUT_LINES, Nodes, PRODUCT_SNAPSHOTS, SelectedOption};
use crate::domain::{Gid, Quantity};

/// The most a single query may be charged before Shopify refuses it.
const MAX_QUERY_COST: u64 = 1000;

/// One product as the shop holds it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductSnapshot {
    pub id: Gid,
    pub handle: String,
    pub title: String,
    pub description_html: String,
    pub vendor: String,
    pub status: String,
    pub tags: Vec<String>,
    pub per_pan: Option<MetafieldValue>,
    pub variants: Nodes<VariantSnapshot>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MetafieldValue {
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VariantSnapshot {
    pub id: Gid,
    pub price: String,
    pub selected_options: Vec<SelectedOption>,
    pub inventory_item: ItemSnapshot,
}

impl VariantSnapshot {
    pub fn option(&self, name: &str) -> Option<&str> {
        self.selected_options
            .iter()
            .find(|o| o.name.eq_ignore_ascii_case(name))
            .map(|o| o.value.as_str())
    }

    /// Stock at the location asked for; `None` when the item is not stocked
    /// there.
    pub fn available(&self) -> Option<Quantity> {
        self.inventory_item
            .inventory_level
            .as_ref()?
            .quantities
            .iter()
            .find(|q| q.name == "available")
            .map(|q| q.quantity)
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemSnapshot {
    pub id: Gid,
    pub inventory_level: Option<LevelSnapshot>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LevelSnapshot {
    pub quantities: Vec<NamedQuantity>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NamedQuantity {
    pub name: String,
    pub quantity: Quantity,
}

#[derive(Deserialize)]
struct SnapshotData {
    nodes: Vec<Option<serde_json::Value>>,
}

/// Products a query can carry with `variants` variants each and stay under
/// Shopify's single-query cost limit: each product costs about
/// 4 + 5 × its variants (the product, its variants connection, and per
/// variant its options, item, level and quantities).
pub fn products_per_query(variants: usize) -> usize {
    let per_product = 4 + 5 * variants.max(1) as u64;
    ((MAX_QUERY_COST * 9 / 10) / per_product).clamp(1, MAX_INPUT_LINES as u64) as usize
}

impl ShopifyClient {
    /// The shop's copy of each product, by id; a product the shop no longer
    /// has maps to `None`.
    ///
    /// Limitation: a product with more than about 180 variants would cost
    /// more than one query may; such products are read with their first
    /// 180 variants only, and drift on the rest goes unseen.
    pub async fn product_snapshots(
        &self,
        shop: &Shop,
        ids: &[Gid],
        variants: usize,
        location: &Gid,
    ) -> Result<HashMap<Gid, Option<ProductSnapshot>>, ShopifyError> {
        let variant_count = variants.clamp(1, 180);
        let mut found = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(products_per_query(variant_count)) {
            let vars = json!({
                "ids": chunk,
                "variantCount": variant_count,
                "locationId": location,
            });
            let data: SnapshotData = self.execute(shop, &PRODUCT_SNAPSHOTS, vars).await?;
            for (id, node) in chunk.iter().zip(data.nodes) {
                let product = match node {
                    Some(value) if !value.is_null() => Some(
                        serde_json::from_value(value).map_err(|e| ShopifyError::Decode {
                            operation: PRODUCT_SNAPSHOTS.name,
                            message: e.to_string(),
                        })?,
                    ),
                    _ => None,
                };
                found.insert(id.clone(), product);
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_stays_under_the_cost_limit() {
        for variants in [1, 6, 8, 50, 180] {
            let products = products_per_query(variants) as u64;
            assert!(
                products * (4 + 5 * variants as u64) <= MAX_QUERY_COST,
                "{variants}"
            );
        }
        assert_eq!(products_per_query(6), 26);
    }
}
