//! Root fields: each resolver reads or changes the shop and returns the raw
//! JSON of what the field returns; the projection does the rest.

pub mod fields;
pub mod inventory;
pub mod metafields;
pub mod product_set;
pub mod products;
pub mod query;
pub mod variants;
pub mod webhooks;

use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use crate::state::Shop;

/// A root field that fails as a whole: a top-level error, the field null.
#[derive(Debug, Clone)]
pub struct FieldError {
    pub message: String,
    pub code: String,
}

impl FieldError {
    pub fn new(message: impl Into<String>, code: &str) -> FieldError {
        FieldError {
            message: message.into(),
            code: code.to_owned(),
        }
    }
}

/// What a mutation resolver needs besides its arguments.
#[derive(Debug, Clone, Default)]
pub struct MutationContext {
    /// `@idempotent(key:)` on the field, if given.
    pub idempotency_key: Option<String>,
}

/// Root query fields the simulator answers.
pub const QUERY_FIELDS: [&str; 16] = [
    "shop",
    "locations",
    "location",
    "product",
    "productByIdentifier",
    "products",
    "productVariant",
    "inventoryItem",
    "node",
    "nodes",
    "webhookSubscriptions",
    "webhookSubscription",
    "productOperation",
    "bulkOperation",
    "bulkOperations",
    "currentBulkOperation",
];

/// Resolves a root query field. Fields not modelled are `null`.
pub fn query(shop: &Shop, field: &str, args: &Map<String, Value>) -> Result<Value, FieldError> {
    query::resolve(shop, field, args)
}

/// Resolves a root mutation field.
pub fn mutate(
    shop: &mut Shop,
    field: &str,
    args: &Map<String, Value>,
    context: &MutationContext,
) -> Result<Value, FieldError> {
    match field {
        "productSet" => Ok(product_set::product_set(shop, args)),
        "productDelete" => Ok(products::product_delete(shop, args)),
        "productVariantsBulkCreate" => Ok(variants::bulk_create(shop, args)),
        "productVariantsBulkUpdate" => Ok(variants::bulk_update(shop, args)),
        "productVariantsBulkDelete" => Ok(variants::bulk_delete(shop, args)),
        "inventorySetQuantities" | "inventoryAdjustQuantities" => {
            inventory::idempotent(shop, field, args, context)
        }
        "metafieldsSet" => Ok(metafields::metafields_set(shop, args)),
        "webhookSubscriptionCreate" => Ok(webhooks::create(shop, args)),
        "webhookSubscriptionDelete" => Ok(webhooks::delete(shop, args)),
        other => Err(FieldError::new(
            format!("The simulator does not implement the mutation '{other}'."),
            "NOT_IMPLEMENTED",
        )),
    }
}

/// A userError as the payloads carry it. `code` is dropped by the
/// projection when the error type has no such field.
pub fn user_error(
    field: Option<Vec<String>>,
    message: impl Into<String>,
    code: Option<&str>,
) -> Value {
    json!({"field": field, "message": message.into(), "code": code})
}

/// A field path like `["input", "quantities", "0", "locationId"]`.
pub fn path(parts: &[&str]) -> Option<Vec<String>> {
    Some(parts.iter().map(|part| (*part).to_owned()).collect())
}

pub fn str_arg<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    map.get(key).and_then(Value::as_str)
}

pub fn obj_arg<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Map<String, Value>> {
    map.get(key).and_then(Value::as_object)
}

pub fn list_arg<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Vec<Value>> {
    map.get(key).and_then(Value::as_array)
}

/// A money amount as Shopify prints it: a decimal string with two places.
pub fn money(value: &Value) -> Option<String> {
    let decimal: Decimal = match value {
        Value::String(text) => text.trim().parse().ok()?,
        Value::Number(number) => number.to_string().parse().ok()?,
        _ => return None,
    };
    Some(format!("{:.2}", decimal.round_dp(2)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_a_two_place_decimal_string() {
        assert_eq!(money(&json!("26")), Some("26.00".to_owned()));
        assert_eq!(money(&json!("79.99")), Some("79.99".to_owned()));
        assert_eq!(money(&json!(12.5)), Some("12.50".to_owned()));
        assert_eq!(money(&json!("abc")), None);
    }
}
