//! `productVariantsBulkCreate`, `productVariantsBulkUpdate`,
//! `productVariantsBulkDelete`, and the variant fields they share with
//! `productSet`.

use serde_json::{Map, Value, json};

use super::metafields::validate_metafield;
use super::{list_arg, money, obj_arg, path, str_arg, user_error};
use crate::ids::{gid, parse_kind};
use crate::state::render::reference;
use crate::state::{
    InventoryItem, OptionValue, Product, ProductOption, SelectedOption, Shop, Variant, timestamp,
};

/// One variant's input object (`ProductVariantSetInput` or
/// `ProductVariantsBulkInput`).
pub struct VariantInput<'a>(pub &'a Map<String, Value>);

/// A variant with fresh ids and Shopify's defaults.
pub fn new_variant(shop: &mut Shop, selected: Vec<SelectedOption>) -> Variant {
    let now = timestamp();
    Variant {
        id: shop.next_id(),
        price: "0.00".to_owned(),
        compare_at_price: None,
        sku: None,
        barcode: None,
        taxable: true,
        inventory_policy: "DENY".to_owned(),
        selected_options: selected,
        metafields: Vec::new(),
        inventory_item: InventoryItem {
            id: shop.next_id(),
            tracked: false,
            requires_shipping: true,
            levels: Vec::new(),
        },
        created_at: now.clone(),
        updated_at: now,
    }
}

/// Copies the fields present in the input onto the variant.
pub fn apply_variant_fields(shop: &mut Shop, variant: &mut Variant, input: &VariantInput<'_>) {
    let input = input.0;
    if let Some(price) = input.get("price").and_then(money) {
        variant.price = price;
    }
    if let Some(compare) = input.get("compareAtPrice") {
        variant.compare_at_price = money(compare);
    }
    if let Some(sku) = input.get("sku") {
        variant.sku = sku.as_str().map(str::to_owned);
    }
    if let Some(barcode) = input.get("barcode") {
        variant.barcode = barcode.as_str().map(str::to_owned);
    }
    if let Some(taxable) = input.get("taxable").and_then(Value::as_bool) {
        variant.taxable = taxable;
    }
    if let Some(policy) = str_arg(input, "inventoryPolicy") {
        variant.inventory_policy = policy.to_owned();
    }
    if let Some(item) = obj_arg(input, "inventoryItem") {
        if let Some(sku) = item.get("sku") {
            variant.sku = sku.as_str().map(str::to_owned);
        }
        if let Some(tracked) = item.get("tracked").and_then(Value::as_bool) {
            variant.inventory_item.tracked = tracked;
        }
        if let Some(requires) = item.get("requiresShipping").and_then(Value::as_bool) {
            variant.inventory_item.requires_shipping = requires;
        }
    }
    if let Some(metafields) = list_arg(input, "metafields") {
        let drafts = metafields
            .iter()
            .filter_map(|metafield| validate_metafield(metafield.as_object()?, &[]).ok())
            .collect();
        let now = timestamp();
        for draft in drafts_into(shop, &variant.metafields, drafts, &now) {
            match variant
                .metafields
                .iter_mut()
                .find(|m| m.namespace == draft.namespace && m.key == draft.key)
            {
                Some(existing) => *existing = draft,
                None => variant.metafields.push(draft),
            }
        }
    }
    variant.updated_at = timestamp();
}

fn drafts_into(
    shop: &mut Shop,
    existing: &[crate::state::Metafield],
    drafts: Vec<super::metafields::MetafieldDraft>,
    now: &str,
) -> Vec<crate::state::Metafield> {
    drafts
        .into_iter()
        .map(|draft| {
            let previous = existing
                .iter()
                .find(|m| m.namespace == draft.namespace && m.key == draft.key);
            crate::state::Metafield {
                id: previous.map_or_else(|| shop.next_id(), |m| m.id),
                namespace: draft.namespace,
                key: draft.key,
                kind: draft.kind,
                value: draft.value,
                created_at: previous.map_or_else(|| now.to_owned(), |m| m.created_at.clone()),
                updated_at: now.to_owned(),
            }
        })
        .collect()
}

fn product_id(shop: &Shop, args: &Map<String, Value>) -> Option<u64> {
    str_arg(args, "productId")
        .and_then(|id| parse_kind(id, "Product"))
        .filter(|id| shop.products.contains_key(id))
}

fn missing_product() -> Value {
    user_error(
        path(&["productId"]),
        "Product does not exist",
        Some("PRODUCT_DOES_NOT_EXIST"),
    )
}

fn is_standalone_default(product: &Product) -> bool {
    product.variants.len() == 1
        && product.variants[0].selected_options
            == vec![SelectedOption {
                name: "Title".to_owned(),
                value: "Default Title".to_owned(),
            }]
}

/// `productVariantsBulkCreate`.
pub fn bulk_create(shop: &mut Shop, args: &Map<String, Value>) -> Value {
    let Some(product_id) = product_id(shop, args) else {
        return json!({"product": null, "productVariants": [], "userErrors": [missing_product()]});
    };
    let Some(product) = shop.products.get(&product_id).cloned() else {
        return json!({"product": null, "productVariants": [], "userErrors": [missing_product()]});
    };
    let strategy = str_arg(args, "strategy").unwrap_or("DEFAULT");
    let drop_standalone = match strategy {
        "REMOVE_STANDALONE_VARIANT" => product.variants.len() == 1,
        "PRESERVE_STANDALONE_VARIANT" => false,
        _ => is_standalone_default(&product),
    };
    let inputs: Vec<&Map<String, Value>> = list_arg(args, "variants")
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .collect();

    // The option names the product will have: its own, or, when the
    // default variant goes away, those the new variants bring.
    let mut options: Vec<ProductOption> = if drop_standalone && is_standalone_default(&product) {
        Vec::new()
    } else {
        product.options.clone()
    };
    let mut errors = Vec::new();
    let mut planned: Vec<(Vec<SelectedOption>, &Map<String, Value>)> = Vec::new();
    let fixed_options = !options.is_empty();
    for (index, input) in inputs.iter().enumerate() {
        let at = index.to_string();
        let given = option_pairs(input);
        if !fixed_options {
            for (name, value) in &given {
                add_option_value(shop, &mut options, name, value);
            }
        }
        let mut selected = Vec::new();
        let mut problem = None;
        for option in &options {
            match given.iter().find(|(name, _)| *name == option.name) {
                Some((_, value)) => selected.push(SelectedOption {
                    name: option.name.clone(),
                    value: value.clone(),
                }),
                None => {
                    problem = Some((
                        "NEED_TO_ADD_OPTION_VALUES",
                        format!("You need to add option values for {}", option.name),
                    ))
                }
            }
        }
        if given
            .iter()
            .any(|(name, _)| !options.iter().any(|o| o.name == *name))
        {
            problem = Some((
                "OPTION_VALUES_FOR_NUMBER_OF_UNKNOWN_OPTIONS",
                "Option values provided for unknown options.".to_owned(),
            ));
        }
        if let Some((code, message)) = problem {
            errors.push(user_error(
                path(&["variants", &at, "optionValues"]),
                message,
                Some(code),
            ));
            continue;
        }
        let clashes_existing = !drop_standalone
            && product
                .variants
                .iter()
                .any(|v| v.selected_options == selected);
        if clashes_existing || planned.iter().any(|(other, _)| *other == selected) {
            let title = selected
                .iter()
                .map(|s| s.value.as_str())
                .collect::<Vec<_>>()
                .join(" / ");
            errors.push(user_error(
                path(&["variants", &at]),
                format!("The variant '{title}' already exists."),
                Some("VARIANT_ALREADY_EXISTS"),
            ));
            continue;
        }
        if let Err(error) = check_locations(
            shop,
            input,
            &["variants", &at],
            "TRACKED_VARIANT_LOCATION_NOT_FOUND",
        ) {
            errors.push(error);
            continue;
        }
        planned.push((selected, input));
    }
    if !errors.is_empty() {
        return json!({"product": null, "productVariants": [], "userErrors": errors});
    }

    let mut created = Vec::new();
    let mut stock = Vec::new();
    for (selected, input) in planned {
        let mut variant = new_variant(shop, selected);
        apply_variant_fields(shop, &mut variant, &VariantInput(input));
        for line in list_arg(input, "inventoryQuantities")
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
        {
            if let (Some(location), Some(quantity)) = (
                str_arg(line, "locationId").and_then(|id| parse_kind(id, "Location")),
                line.get("availableQuantity").and_then(Value::as_i64),
            ) {
                stock.push((variant.inventory_item.id, location, quantity));
            }
        }
        created.push(variant);
    }
    let created_ids: Vec<u64> = created.iter().map(|v| v.id).collect();
    for option in &mut options {
        for variant in &created {
            if let Some(selected) = variant
                .selected_options
                .iter()
                .find(|s| s.name == option.name)
                && !option.values.iter().any(|v| v.name == selected.value)
            {
                option.values.push(OptionValue {
                    id: 0,
                    name: selected.value.clone(),
                });
            }
        }
    }
    for option in &mut options {
        for value in &mut option.values {
            if value.id == 0 {
                value.id = shop.next_id();
            }
        }
    }
    if let Some(product) = shop.products.get_mut(&product_id) {
        if drop_standalone {
            product.variants.clear();
        }
        product.options = options;
        product.variants.extend(created);
        product.updated_at = timestamp();
    }
    for (item, location, quantity) in stock {
        shop.set_available(item, location, quantity, "graphql");
    }
    json!({
        "product": reference(gid("Product", product_id)),
        "productVariants": created_ids.iter().map(|id| reference(gid("ProductVariant", *id))).collect::<Vec<_>>(),
        "userErrors": [],
    })
}

/// `productVariantsBulkUpdate`.
pub fn bulk_update(shop: &mut Shop, args: &Map<String, Value>) -> Value {
    let Some(product_id) = product_id(shop, args) else {
        return json!({"product": null, "productVariants": null, "userErrors": [missing_product()]});
    };
    let inputs: Vec<&Map<String, Value>> = list_arg(args, "variants")
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .collect();
    let mut errors = Vec::new();
    let mut targets = Vec::new();
    for (index, input) in inputs.iter().enumerate() {
        let at = index.to_string();
        let Some(raw_id) = str_arg(input, "id") else {
            errors.push(user_error(
                path(&["variants", &at, "id"]),
                "Product variant is missing ID attribute.",
                Some("PRODUCT_VARIANT_ID_MISSING"),
            ));
            continue;
        };
        let belongs = parse_kind(raw_id, "ProductVariant").filter(|id| {
            shop.variant(*id)
                .is_some_and(|(product, _)| product.id == product_id)
        });
        let Some(variant_id) = belongs else {
            errors.push(user_error(
                path(&["variants", &at, "id"]),
                "Product variant does not exist",
                Some("PRODUCT_VARIANT_DOES_NOT_EXIST"),
            ));
            continue;
        };
        if input.contains_key("inventoryQuantities") {
            errors.push(user_error(
                path(&["variants", &at, "inventoryQuantities"]),
                "Inventory quantities can only be provided during create. To update inventory for existing variants, use inventoryAdjustQuantities.",
                Some("INVALID_INPUT"),
            ));
            continue;
        }
        targets.push((variant_id, *input));
    }
    if !errors.is_empty() {
        return json!({"product": null, "productVariants": null, "userErrors": errors});
    }
    let mut updated = Vec::new();
    for (variant_id, input) in targets {
        let Some((_, variant)) = shop.variant(variant_id) else {
            continue;
        };
        let mut variant = variant.clone();
        let given = option_pairs(input);
        for (name, value) in &given {
            if let Some(selected) = variant
                .selected_options
                .iter_mut()
                .find(|s| s.name == *name)
            {
                selected.value = value.clone();
            }
        }
        apply_variant_fields(shop, &mut variant, &VariantInput(input));
        let mut options = shop
            .products
            .get(&product_id)
            .map(|p| p.options.clone())
            .unwrap_or_default();
        for (name, value) in &given {
            add_option_value(shop, &mut options, name, value);
        }
        if let Some(product) = shop.products.get_mut(&product_id) {
            product.options = options;
            if let Some(slot) = product.variants.iter_mut().find(|v| v.id == variant_id) {
                *slot = variant;
            }
            product.updated_at = timestamp();
        }
        updated.push(variant_id);
    }
    json!({
        "product": reference(gid("Product", product_id)),
        "productVariants": updated.iter().map(|id| reference(gid("ProductVariant", *id))).collect::<Vec<_>>(),
        "userErrors": [],
    })
}

/// `productVariantsBulkDelete`.
pub fn bulk_delete(shop: &mut Shop, args: &Map<String, Value>) -> Value {
    let Some(product_id) = product_id(shop, args) else {
        return json!({"product": null, "userErrors": [missing_product()]});
    };
    let ids: Vec<Option<u64>> = list_arg(args, "variantsIds")
        .into_iter()
        .flatten()
        .map(|id| id.as_str().and_then(|id| parse_kind(id, "ProductVariant")))
        .collect();
    let Some(product) = shop.products.get(&product_id) else {
        return json!({"product": null, "userErrors": [missing_product()]});
    };
    let foreign = ids
        .iter()
        .any(|id| id.is_none_or(|id| !product.variants.iter().any(|v| v.id == id)));
    if foreign {
        return json!({"product": null, "userErrors": [user_error(
            path(&["variantsIds"]),
            "At least one variant does not belong to the product",
            Some("AT_LEAST_ONE_VARIANT_DOES_NOT_BELONG_TO_THE_PRODUCT"),
        )]});
    }
    if let Some(product) = shop.products.get_mut(&product_id) {
        product
            .variants
            .retain(|variant| !ids.contains(&Some(variant.id)));
        product.updated_at = timestamp();
    }
    super::product_set::ensure_default_variant(shop, product_id);
    json!({"product": reference(gid("Product", product_id)), "userErrors": []})
}

/// `(optionName, value)` pairs of a variant input.
fn option_pairs(input: &Map<String, Value>) -> Vec<(String, String)> {
    list_arg(input, "optionValues")
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .filter_map(|value| {
            Some((
                str_arg(value, "optionName")?.to_owned(),
                str_arg(value, "name")?.to_owned(),
            ))
        })
        .collect()
}

fn add_option_value(shop: &mut Shop, options: &mut Vec<ProductOption>, name: &str, value: &str) {
    match options.iter_mut().find(|option| option.name == name) {
        Some(option) => {
            if !option.values.iter().any(|v| v.name == value) {
                option.values.push(OptionValue {
                    id: shop.next_id(),
                    name: value.to_owned(),
                });
            }
        }
        None => {
            let id = shop.next_id();
            let value_id = shop.next_id();
            options.push(ProductOption {
                id,
                name: name.to_owned(),
                values: vec![OptionValue {
                    id: value_id,
                    name: value.to_owned(),
                }],
            });
        }
    }
}

/// Every `inventoryQuantities[].locationId` must be a location of the shop.
pub fn check_locations(
    shop: &Shop,
    input: &Map<String, Value>,
    at: &[&str],
    code: &str,
) -> Result<(), Value> {
    for (index, line) in list_arg(input, "inventoryQuantities")
        .into_iter()
        .flatten()
        .enumerate()
    {
        let known = line
            .get("locationId")
            .and_then(Value::as_str)
            .and_then(|id| parse_kind(id, "Location"))
            .is_some_and(|id| shop.location(id).is_some());
        if !known {
            let mut field: Vec<&str> = at.to_vec();
            let index = index.to_string();
            field.extend(["inventoryQuantities", &index, "locationId"]);
            return Err(user_error(
                path(&field),
                "The specified location could not be found.",
                Some(code),
            ));
        }
    }
    Ok(())
}
