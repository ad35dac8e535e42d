//! Read-only root fields.

use serde_json::{Map, Value, json};

use super::{FieldError, list_arg, obj_arg, str_arg};
use crate::ids::{gid, parse_kind};
use crate::state::render::{bulk_operation_json, location_json, reference, webhook_json};
use crate::state::{BulkOperation, Product, Shop};

pub fn resolve(shop: &Shop, field: &str, args: &Map<String, Value>) -> Result<Value, FieldError> {
    Ok(match field {
        "shop" => json!({
            "__typename": "Shop",
            "id": gid("Shop", 1),
            "name": shop.name,
            "myshopifyDomain": shop.domain,
            "url": format!("https://{}", shop.domain),
            "currencyCode": "USD",
            "ianaTimezone": "UTC",
        }),
        "locations" => Value::Array(shop.locations.iter().map(location_json).collect()),
        "location" => match str_arg(args, "id") {
            Some(id) => parse_kind(id, "Location")
                .and_then(|id| shop.location(id))
                .map_or(Value::Null, location_json),
            None => shop.locations.first().map_or(Value::Null, location_json),
        },
        "product"
        | "productVariant"
        | "inventoryItem"
        | "node"
        | "webhookSubscription"
        | "bulkOperation" => str_arg(args, "id").map_or(Value::Null, |id| existing_ref(shop, id)),
        "nodes" => Value::Array(
            list_arg(args, "ids")
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|id| existing_ref(shop, id))
                .collect(),
        ),
        "productByIdentifier" => {
            let identifier = obj_arg(args, "identifier");
            let by_id = identifier.and_then(|identifier| str_arg(identifier, "id"));
            let by_handle = identifier.and_then(|identifier| str_arg(identifier, "handle"));
            match (by_id, by_handle) {
                (Some(id), _) => existing_ref(shop, id),
                (None, Some(handle)) => shop
                    .product_by_handle(handle)
                    .map_or(Value::Null, |product| reference(gid("Product", product.id))),
                _ => Value::Null,
            }
        }
        "products" => {
            let filter = ProductQuery::parse(str_arg(args, "query").unwrap_or(""));
            Value::Array(
                shop.products
                    .values()
                    .filter(|product| filter.matches(product))
                    .map(|product| reference(gid("Product", product.id)))
                    .collect(),
            )
        }
        "productOperation" => {
            let operation =
                str_arg(args, "id").and_then(|id| parse_kind(id, "ProductSetOperation"));
            match operation.and_then(|id| shop.product_operations.get(&id).map(|p| (id, *p))) {
                Some((id, product)) => json!({
                    "__typename": "ProductSetOperation",
                    "id": gid("ProductSetOperation", id),
                    "status": "COMPLETE",
                    "product": if shop.products.contains_key(&product) {
                        reference(gid("Product", product))
                    } else {
                        Value::Null
                    },
                    "userErrors": [],
                }),
                None => Value::Null,
            }
        }
        "currentBulkOperation" => {
            // The app's most recent operation of the type asked for; the
            // simulator runs bulk mutations only.
            let mutations = str_arg(args, "type").unwrap_or("QUERY") == "MUTATION";
            shop.bulk_operations
                .values()
                .next_back()
                .filter(|_| mutations)
                .map_or(Value::Null, bulk_operation_json)
        }
        "bulkOperations" => {
            let filter = BulkQuery::parse(str_arg(args, "query").unwrap_or(""));
            Value::Array(
                shop.bulk_operations
                    .values()
                    .rev()
                    .filter(|operation| filter.matches(operation))
                    .map(bulk_operation_json)
                    .collect(),
            )
        }
        "webhookSubscriptions" => {
            let topics: Option<Vec<&str>> = list_arg(args, "topics")
                .map(|topics| topics.iter().filter_map(Value::as_str).collect());
            Value::Array(
                shop.webhooks
                    .values()
                    .filter(|webhook| {
                        topics
                            .as_ref()
                            .is_none_or(|topics| topics.contains(&webhook.topic.as_str()))
                    })
                    .map(webhook_json)
                    .collect(),
            )
        }
        _ => Value::Null,
    })
}

/// A reference if the node exists, else `null`.
fn existing_ref(shop: &Shop, id: &str) -> Value {
    match shop.node_json(id) {
        Some(_) => reference(id.to_owned()),
        None => Value::Null,
    }
}

/// The part of Shopify's search syntax the simulator understands:
/// `handle:`, `title:`, `sku:`, `status:`, `vendor:`, `product_type:`,
/// `tag:` and bare words (matched against the title). Terms are ANDed; a
/// trailing `*` matches a prefix; values may be quoted.
pub struct ProductQuery {
    terms: Vec<(Option<String>, String)>,
}

impl ProductQuery {
    pub fn parse(query: &str) -> ProductQuery {
        let mut terms = Vec::new();
        for token in tokenize(query) {
            if token.eq_ignore_ascii_case("AND") {
                continue;
            }
            match token.split_once(':') {
                Some((field, value)) => terms.push((
                    Some(field.to_ascii_lowercase()),
                    unquote(value).to_lowercase(),
                )),
                None => terms.push((None, unquote(&token).to_lowercase())),
            }
        }
        ProductQuery { terms }
    }

    pub fn matches(&self, product: &Product) -> bool {
        self.terms.iter().all(|(field, value)| {
            let is = |actual: &str| matches_value(&actual.to_lowercase(), value);
            match field.as_deref() {
                Some("handle") => is(&product.handle),
                Some("title") => product
                    .title
                    .to_lowercase()
                    .contains(value.trim_end_matches('*')),
                Some("sku") => product
                    .variants
                    .iter()
                    .any(|variant| variant.sku.as_deref().is_some_and(is)),
                Some("status") => is(&product.status),
                Some("vendor") => is(&product.vendor),
                Some("product_type") => is(&product.product_type),
                Some("tag") => product.tags.iter().any(|tag| is(tag)),
                Some("id") => is(&product.id.to_string()),
                Some(_) => true,
                None => product
                    .title
                    .to_lowercase()
                    .contains(value.trim_end_matches('*')),
            }
        })
    }
}

/// The `bulkOperations(query:)` filters the simulator understands:
/// `status:` and `operation_type:`; other terms match everything.
/// Newest first, as the default `CREATED_AT` sort with Shopify's order.
struct BulkQuery {
    terms: Vec<(String, String)>,
}

impl BulkQuery {
    fn parse(query: &str) -> BulkQuery {
        let terms = tokenize(query)
            .iter()
            .filter_map(|token| token.split_once(':'))
            .map(|(field, value)| (field.to_ascii_lowercase(), unquote(value).to_lowercase()))
            .collect();
        BulkQuery { terms }
    }

    fn matches(&self, operation: &BulkOperation) -> bool {
        self.terms
            .iter()
            .all(|(field, value)| match field.as_str() {
                "status" => operation.status.as_str().eq_ignore_ascii_case(value),
                "operation_type" => value == "mutation",
                _ => true,
            })
    }
}

fn matches_value(actual: &str, wanted: &str) -> bool {
    match wanted.strip_suffix('*') {
        Some(prefix) => actual.starts_with(prefix),
        None => actual == wanted,
    }
}

fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .unwrap_or(value)
}

/// Splits on spaces outside quotes.
fn tokenize(query: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    for c in query.chars() {
        match (quote, c) {
            (Some(open), c) if c == open => {
                quote = None;
                current.push(c);
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                current.push(c);
            }
            (None, c) if c.is_whitespace() => {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
            }
            (_, c) => current.push(c),
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizes_quoted_values() {
        assert_eq!(
            tokenize("handle:moss-garden title:'Moss Garden' AND x"),
            vec!["handle:moss-garden", "title:'Moss Garden'", "AND", "x"]
        );
    }
}
