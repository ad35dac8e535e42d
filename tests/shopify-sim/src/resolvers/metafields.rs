//! `metafieldsSet` and the metafield checks `productSet` shares.

use serde_json::{Map, Value, json};

use super::{list_arg, path, str_arg, user_error};
use crate::ids::parse_gid;
use crate::state::render::{compare_digest, metafield_json};
use crate::state::{Metafield, Shop, timestamp};

/// Most metafields one `metafieldsSet` call takes.
pub const MAX_METAFIELDS_PER_CALL: usize = 25;

/// Metafield types the simulator accepts.
const KNOWN_TYPES: [&str; 16] = [
    "single_line_text_field",
    "multi_line_text_field",
    "rich_text_field",
    "number_integer",
    "number_decimal",
    "boolean",
    "json",
    "url",
    "color",
    "date",
    "date_time",
    "money",
    "product_reference",
    "variant_reference",
    "file_reference",
    "list.single_line_text_field",
];

/// A checked metafield, not yet stored.
#[derive(Debug, Clone)]
pub struct MetafieldDraft {
    pub namespace: String,
    pub key: String,
    pub kind: String,
    pub value: String,
}

/// Checks one `MetafieldInput`; `at` is the field path of the input object.
pub fn validate_metafield(
    input: &Map<String, Value>,
    at: &[&str],
) -> Result<MetafieldDraft, Value> {
    let field = |name: &str| {
        let mut full: Vec<&str> = at.to_vec();
        full.push(name);
        path(&full)
    };
    let namespace = str_arg(input, "namespace").unwrap_or("$app").to_owned();
    let Some(key) = str_arg(input, "key").filter(|key| !key.is_empty()) else {
        return Err(user_error(
            field("key"),
            "Key can't be blank",
            Some("BLANK"),
        ));
    };
    let Some(kind) = str_arg(input, "type") else {
        return Err(user_error(
            field("type"),
            "Type can't be blank",
            Some("BLANK"),
        ));
    };
    if !KNOWN_TYPES.contains(&kind) {
        return Err(user_error(
            field("type"),
            format!("Type '{kind}' is not a valid metafield type."),
            Some("INVALID_TYPE"),
        ));
    }
    let value = str_arg(input, "value").unwrap_or_default();
    if let Some(message) = value_problem(kind, value) {
        return Err(user_error(field("value"), message, Some("INVALID_VALUE")));
    }
    Ok(MetafieldDraft {
        namespace,
        key: key.to_owned(),
        kind: kind.to_owned(),
        value: value.to_owned(),
    })
}

fn value_problem(kind: &str, value: &str) -> Option<&'static str> {
    let fits = match kind {
        "number_integer" => value.trim().parse::<i64>().is_ok(),
        "number_decimal" => value.trim().parse::<rust_decimal::Decimal>().is_ok(),
        "boolean" => value == "true" || value == "false",
        "json" => serde_json::from_str::<Value>(value).is_ok(),
        "single_line_text_field" => !value.contains('\n'),
        _ => true,
    };
    if fits {
        None
    } else {
        Some(match kind {
            "number_integer" => "Value must be an integer.",
            "number_decimal" => "Value must be a decimal.",
            "boolean" => "Value must be true or false.",
            "json" => "Value must be valid JSON.",
            _ => "Value is invalid for its type.",
        })
    }
}

/// Stores metafields on a product (or one of its variants), keeping the id
/// of one that already exists under the same namespace and key.
pub fn upsert_metafields(
    shop: &mut Shop,
    product_id: u64,
    variant_id: Option<u64>,
    drafts: Vec<MetafieldDraft>,
) -> Vec<Metafield> {
    let now = timestamp();
    let ids: Vec<u64> = drafts.iter().map(|_| shop.next_id()).collect();
    let Some(product) = shop.products.get_mut(&product_id) else {
        return Vec::new();
    };
    let list = match variant_id {
        Some(variant_id) => match product.variants.iter_mut().find(|v| v.id == variant_id) {
            Some(variant) => &mut variant.metafields,
            None => return Vec::new(),
        },
        None => &mut product.metafields,
    };
    let mut stored = Vec::new();
    for (draft, fresh_id) in drafts.into_iter().zip(ids) {
        let existing = list
            .iter_mut()
            .find(|m| m.namespace == draft.namespace && m.key == draft.key);
        let metafield = match existing {
            Some(metafield) => {
                metafield.kind = draft.kind;
                metafield.value = draft.value;
                metafield.updated_at = now.clone();
                metafield.clone()
            }
            None => {
                let metafield = Metafield {
                    id: fresh_id,
                    namespace: draft.namespace,
                    key: draft.key,
                    kind: draft.kind,
                    value: draft.value,
                    created_at: now.clone(),
                    updated_at: now.clone(),
                };
                list.push(metafield.clone());
                metafield
            }
        };
        stored.push(metafield);
    }
    product.updated_at = now;
    stored
}

/// `metafieldsSet`: all or nothing, products and variants as owners.
pub fn metafields_set(shop: &mut Shop, args: &Map<String, Value>) -> Value {
    let inputs: Vec<&Map<String, Value>> = list_arg(args, "metafields")
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .collect();
    if inputs.len() > MAX_METAFIELDS_PER_CALL {
        return json!({"metafields": null, "userErrors": [{
            "field": ["metafields"],
            "message": format!("Exceeded the maximum metafields input limit of {MAX_METAFIELDS_PER_CALL}."),
            "code": "LESS_THAN_OR_EQUAL_TO",
            "elementIndex": null,
        }]});
    }
    let mut errors = Vec::new();
    let mut planned = Vec::new();
    for (index, input) in inputs.iter().enumerate() {
        let at = index.to_string();
        let owner = str_arg(input, "ownerId").and_then(|id| owner(shop, id));
        let Some((product_id, variant_id)) = owner else {
            errors.push(indexed(
                user_error(
                    path(&["metafields", &at, "ownerId"]),
                    "Owner does not exist.",
                    Some("INVALID"),
                ),
                index,
            ));
            continue;
        };
        let mut input = (*input).clone();
        let existing = existing_metafield(shop, product_id, variant_id, &input);
        if let (Some(existing), None) = (&existing, input.get("type")) {
            input.insert("type".into(), Value::String(existing.kind.clone()));
        }
        if let (Some(existing), Some(digest)) = (&existing, str_arg(&input, "compareDigest"))
            && compare_digest(&existing.value) != digest
        {
            errors.push(indexed(
                user_error(
                    path(&["metafields", &at]),
                    "The resource has been updated since it was loaded. Try again with an updated `compareDigest` value.",
                    Some("STALE_OBJECT"),
                ),
                index,
            ));
            continue;
        }
        match validate_metafield(&input, &["metafields", &at]) {
            Ok(draft) => planned.push((product_id, variant_id, draft)),
            Err(error) => errors.push(indexed(error, index)),
        }
    }
    if !errors.is_empty() {
        return json!({"metafields": [], "userErrors": errors});
    }
    let mut stored = Vec::new();
    for (product_id, variant_id, draft) in planned {
        for metafield in upsert_metafields(shop, product_id, variant_id, vec![draft]) {
            let (owner_type, owner_id) = match variant_id {
                Some(variant_id) => ("PRODUCTVARIANT", variant_id),
                None => ("PRODUCT", product_id),
            };
            stored.push(metafield_json(&metafield, owner_type, owner_id));
        }
    }
    json!({"metafields": stored, "userErrors": []})
}

fn indexed(mut error: Value, index: usize) -> Value {
    error["elementIndex"] = json!(index);
    error
}

/// `(product, variant)` for a product or variant GID.
fn owner(shop: &Shop, id: &str) -> Option<(u64, Option<u64>)> {
    match parse_gid(id)? {
        ("Product", number) => shop
            .products
            .contains_key(&number)
            .then_some((number, None)),
        ("ProductVariant", number) => shop
            .variant(number)
            .map(|(product, _)| (product.id, Some(number))),
        _ => None,
    }
}

fn existing_metafield(
    shop: &Shop,
    product_id: u64,
    variant_id: Option<u64>,
    input: &Map<String, Value>,
) -> Option<Metafield> {
    let product = shop.products.get(&product_id)?;
    let list = match variant_id {
        Some(variant_id) => {
            &product
                .variants
                .iter()
                .find(|v| v.id == variant_id)?
                .metafields
        }
        None => &product.metafields,
    };
    let namespace = str_arg(input, "namespace").unwrap_or("$app");
    let key = str_arg(input, "key")?;
    list.iter()
        .find(|m| m.namespace == namespace && m.key == key)
        .cloned()
}
