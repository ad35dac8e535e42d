//! `productSet`: declarative upsert of a whole product.
//!
//! List fields are replaced wholesale: variants left out are deleted,
//! options are rebuilt from `productOptions`, metafields and files given are
//! what the product ends up with. Variants are matched by `id`, else by
//! their option values. `inventoryQuantities` set the stock of a variant at
//! each listed location.

use serde_json::{Map, Value, json};

use super::metafields::{MetafieldDraft, upsert_metafields, validate_metafield};
use super::variants::{VariantInput, apply_variant_fields, check_locations, new_variant};
use super::{list_arg, obj_arg, path, str_arg, user_error};
use crate::ids::{gid, parse_kind};
use crate::state::handle::{dedupe, normalize};
use crate::state::render::reference;
use crate::state::{Media, OptionValue, Product, ProductOption, SelectedOption, Shop, timestamp};

/// Most variants a product can have.
pub const MAX_VARIANTS: usize = 2048;
const MAX_LENGTH: usize = 255;

pub fn product_set(shop: &mut Shop, args: &Map<String, Value>) -> Value {
    let empty = Map::new();
    let input = obj_arg(args, "input").unwrap_or(&empty);
    let identifier = obj_arg(args, "identifier");
    let synchronous = args
        .get("synchronous")
        .and_then(Value::as_bool)
        .unwrap_or(true);

    let outcome = plan(shop, input, identifier).and_then(|plan| apply(shop, input, plan));
    match outcome {
        Err(errors) => {
            // An update that fails validation still answers with the
            // product, unchanged, as a real shop does.
            let unchanged = match target(shop, input, identifier) {
                Ok(Some(id)) if identifier.is_none() || !input.contains_key("id") => {
                    reference(gid("Product", id))
                }
                _ => Value::Null,
            };
            json!({"product": unchanged, "productSetOperation": null, "userErrors": errors})
        }
        Ok(product_id) if synchronous => json!({
            "product": reference(gid("Product", product_id)),
            "productSetOperation": null,
            "userErrors": [],
        }),
        Ok(product_id) => {
            // The work is done at once; the operation reads CREATED here and
            // COMPLETE when polled with `productOperation`.
            let operation_id = shop.next_id();
            shop.product_operations.insert(operation_id, product_id);
            json!({
                "product": null,
                "productSetOperation": {
                    "__typename": "ProductSetOperation",
                    "id": gid("ProductSetOperation", operation_id),
                    "status": "CREATED",
                    "product": null,
                    "userErrors": [],
                },
                "userErrors": [],
            })
        }
    }
}

/// What `productSet` will do, checked before anything changes.
struct Plan {
    target: Option<u64>,
    handle: Option<String>,
    options: Option<Vec<ProductOption>>,
    variants: Option<Vec<PlannedVariant>>,
    metafields: Option<Vec<MetafieldDraft>>,
}

struct PlannedVariant {
    existing: Option<u64>,
    selected: Vec<SelectedOption>,
    input: Map<String, Value>,
}

fn plan(
    shop: &mut Shop,
    input: &Map<String, Value>,
    identifier: Option<&Map<String, Value>>,
) -> Result<Plan, Vec<Value>> {
    if identifier.is_some() && input.get("id").is_some_and(|id| !id.is_null()) {
        return Err(vec![user_error(
            path(&["input"]),
            "The id field is not allowed if identifier is provided.",
            Some("ID_NOT_ALLOWED"),
        )]);
    }
    let target = target(shop, input, identifier)?;
    let existing = target.and_then(|id| shop.products.get(&id).cloned());
    let mut errors = Vec::new();

    let title = str_arg(input, "title");
    if let Some(title) = title
        && title.chars().count() > MAX_LENGTH
    {
        errors.push(user_error(
            path(&["input", "title"]),
            "is too long (maximum is 255 characters)",
            Some("INVALID_INPUT"),
        ));
    }
    if existing.is_none() && title.is_none_or(|title| title.trim().is_empty()) {
        errors.push(user_error(
            path(&["input", "title"]),
            "Title can't be blank",
            Some("INVALID_INPUT"),
        ));
    }

    let handle = plan_handle(shop, input, identifier, existing.as_ref(), &mut errors);
    if handle
        .as_ref()
        .is_some_and(|handle| handle.chars().count() > MAX_LENGTH)
    {
        errors.push(user_error(
            path(&["input"]),
            "Handle is too long (maximum is 255 characters)",
            Some("INVALID_INPUT"),
        ));
    }
    if str_arg(input, "vendor").is_some_and(|vendor| vendor.chars().count() > MAX_LENGTH) {
        errors.push(user_error(
            path(&["input"]),
            "Vendor is too long (maximum is 255 characters)",
            Some("INVALID_INPUT"),
        ));
    }
    if str_arg(input, "productType").is_some_and(|kind| kind.chars().count() > MAX_LENGTH) {
        for message in [
            "Product type is too long (maximum is 255 characters)",
            "Custom product type is too long (maximum is 255 characters)",
        ] {
            errors.push(user_error(path(&["input"]), message, Some("INVALID_INPUT")));
        }
    }

    let options_input = list_arg(input, "productOptions");
    let variants_input = list_arg(input, "variants");
    if options_input.is_some() && variants_input.is_none() {
        errors.push(user_error(
            path(&["input", "variants"]),
            "Variants input is required when updating product options",
            Some("VARIANTS_INPUT_MISSING"),
        ));
    }
    if variants_input.is_some_and(|variants| variants.len() > MAX_VARIANTS) {
        errors.push(user_error(
            path(&["input", "variants"]),
            format!("The number of variants can't exceed {MAX_VARIANTS}."),
            Some("VARIANTS_OVER_LIMIT"),
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let options = plan_options(shop, options_input, variants_input, existing.as_ref());
    let variants = match (variants_input, &options) {
        (Some(variants), Some(options)) => Some(plan_variants(
            shop,
            variants,
            options,
            options_input.is_some(),
            existing.as_ref(),
            &mut errors,
        )),
        _ => None,
    };
    let metafields = list_arg(input, "metafields").map(|metafields| {
        metafields
            .iter()
            .enumerate()
            .filter_map(|(index, metafield)| {
                let metafield = metafield.as_object()?;
                match validate_metafield(metafield, &["input", "metafields", &index.to_string()]) {
                    Ok(draft) => Some(draft),
                    Err(error) => {
                        errors.push(error);
                        None
                    }
                }
            })
            .collect()
    });
    if errors.is_empty() {
        Ok(Plan {
            target,
            handle,
            options,
            variants,
            metafields,
        })
    } else {
        Err(errors)
    }
}

fn target(
    shop: &Shop,
    input: &Map<String, Value>,
    identifier: Option<&Map<String, Value>>,
) -> Result<Option<u64>, Vec<Value>> {
    let missing = |field: &[&str]| {
        vec![user_error(
            path(field),
            "Product does not exist",
            Some("PRODUCT_DOES_NOT_EXIST"),
        )]
    };
    if let Some(identifier) = identifier {
        if let Some(id) = str_arg(identifier, "id") {
            return match parse_kind(id, "Product").filter(|id| shop.products.contains_key(id)) {
                Some(id) => Ok(Some(id)),
                None => Err(missing(&["identifier", "id"])),
            };
        }
        if let Some(handle) = str_arg(identifier, "handle") {
            return Ok(shop.product_by_handle(handle).map(|product| product.id));
        }
        if identifier
            .get("customId")
            .is_some_and(|custom| !custom.is_null())
        {
            return Err(vec![user_error(
                path(&["identifier", "customId"]),
                "The simulator does not support customId identifiers.",
                Some("INVALID_INPUT"),
            )]);
        }
        return Ok(None);
    }
    match str_arg(input, "id") {
        Some(id) => match parse_kind(id, "Product").filter(|id| shop.products.contains_key(id)) {
            Some(id) => Ok(Some(id)),
            None => Err(missing(&["input", "id"])),
        },
        None => Ok(None),
    }
}

/// The handle the product will have: `None` keeps the current one.
fn plan_handle(
    shop: &Shop,
    input: &Map<String, Value>,
    identifier: Option<&Map<String, Value>>,
    existing: Option<&Product>,
    errors: &mut Vec<Value>,
) -> Option<String> {
    let except = existing.map(|product| product.id);
    let taken = |handle: &str| shop.handle_taken(handle, except);
    let requested = str_arg(input, "handle").or_else(|| {
        existing
            .is_none()
            .then(|| identifier.and_then(|identifier| str_arg(identifier, "handle")))
            .flatten()
    });
    let generated = || {
        let title = str_arg(input, "title").or(existing.map(|product| product.title.as_str()));
        let from_title = title.map(normalize).unwrap_or_default();
        let base = if from_title.is_empty() {
            "product".to_owned()
        } else {
            from_title
        };
        dedupe(&base, taken)
    };
    match requested {
        Some(raw) => {
            let normalized = normalize(raw);
            if !normalized.is_empty() {
                if taken(&normalized) {
                    errors.push(user_error(
                        path(&["input", "handle"]),
                        format!("Handle '{raw}' already in use. Please provide a new handle."),
                        Some("HANDLE_NOT_UNIQUE"),
                    ));
                }
                Some(normalized)
            } else if raw.trim().is_empty() {
                // A blank handle is generated again from the title.
                Some(generated())
            } else {
                Some(dedupe("product", taken))
            }
        }
        None => existing.is_none().then(generated),
    }
}

/// Options after this call; `None` keeps the product's.
fn plan_options(
    shop: &mut Shop,
    options_input: Option<&Vec<Value>>,
    variants_input: Option<&Vec<Value>>,
    existing: Option<&Product>,
) -> Option<Vec<ProductOption>> {
    let old: &[ProductOption] = existing.map_or(&[], |product| &product.options);
    let mut wanted: Vec<(String, Vec<String>)> = Vec::new();
    match (options_input, variants_input) {
        (Some(options), _) => {
            let mut ordered: Vec<(i64, usize, &Map<String, Value>)> = options
                .iter()
                .enumerate()
                .filter_map(|(index, option)| {
                    let option = option.as_object()?;
                    let position = option.get("position").and_then(Value::as_i64);
                    Some((position.unwrap_or(index as i64 + 1), index, option))
                })
                .collect();
            ordered.sort_by_key(|(position, index, _)| (*position, *index));
            for (_, _, option) in ordered {
                let name = str_arg(option, "name")
                    .map(str::to_owned)
                    .or_else(|| {
                        let id = parse_kind(str_arg(option, "id")?, "ProductOption")?;
                        old.iter().find(|o| o.id == id).map(|o| o.name.clone())
                    })
                    .unwrap_or_default();
                let values = list_arg(option, "values")
                    .into_iter()
                    .flatten()
                    .filter_map(|value| str_arg(value.as_object()?, "name").map(str::to_owned))
                    .collect();
                wanted.push((name, values));
            }
        }
        (None, Some(variants)) => {
            for variant in variants.iter().filter_map(Value::as_object) {
                for value in list_arg(variant, "optionValues").into_iter().flatten() {
                    let Some(value) = value.as_object() else {
                        continue;
                    };
                    let (Some(name), Some(value)) =
                        (str_arg(value, "optionName"), str_arg(value, "name"))
                    else {
                        continue;
                    };
                    match wanted.iter_mut().find(|(option, _)| option == name) {
                        Some((_, values)) if !values.iter().any(|v| v == value) => {
                            values.push(value.to_owned())
                        }
                        Some(_) => {}
                        None => wanted.push((name.to_owned(), vec![value.to_owned()])),
                    }
                }
            }
            if wanted.is_empty() {
                wanted.push(("Title".to_owned(), vec!["Default Title".to_owned()]));
            }
        }
        (None, None) if existing.is_some() => return None,
        (None, None) => wanted.push(("Title".to_owned(), vec!["Default Title".to_owned()])),
    }
    let options = wanted
        .into_iter()
        .map(|(name, values)| {
            let previous = old.iter().find(|option| option.name == name);
            let id = previous.map_or_else(|| shop.next_id(), |option| option.id);
            let values = values
                .into_iter()
                .map(|value| {
                    let reused = previous
                        .and_then(|option| option.values.iter().find(|v| v.name == value))
                        .map(|v| v.id);
                    OptionValue {
                        id: reused.unwrap_or_else(|| shop.next_id()),
                        name: value,
                    }
                })
                .collect();
            ProductOption { id, name, values }
        })
        .collect();
    Some(options)
}

fn plan_variants(
    shop: &Shop,
    variants: &[Value],
    options: &[ProductOption],
    strict_options: bool,
    existing: Option<&Product>,
    errors: &mut Vec<Value>,
) -> Vec<PlannedVariant> {
    let mut planned: Vec<PlannedVariant> = Vec::new();
    let mut claimed: Vec<u64> = Vec::new();
    let old = existing.map_or(&[][..], |product| &product.variants[..]);
    for (index, variant) in variants.iter().enumerate() {
        let Some(variant) = variant.as_object() else {
            continue;
        };
        let at = index.to_string();
        let selected = match selected_options(variant, options, strict_options) {
            Ok(selected) => selected,
            Err(message) => {
                errors.push(user_error(
                    path(&["input", "variants", &at, "optionValues"]),
                    message,
                    Some("OPTION_VALUE_DOES_NOT_EXIST"),
                ));
                continue;
            }
        };
        let title = selected
            .iter()
            .map(|option| option.value.as_str())
            .collect::<Vec<_>>()
            .join(" / ");
        if planned.iter().any(|other| other.selected == selected) {
            errors.push(user_error(
                path(&["input", "variants", &at]),
                format!(
                    "The variant '{title}' already exists. Please change at least one option value."
                ),
                Some("INVALID_VARIANT"),
            ));
            continue;
        }
        let existing_id = match str_arg(variant, "id") {
            Some(id) => {
                let found = parse_kind(id, "ProductVariant").filter(|id| {
                    old.iter().any(|variant| variant.id == *id) && shop.variant(*id).is_some()
                });
                if found.is_none() {
                    errors.push(user_error(
                        path(&["input", "variants", &at, "id"]),
                        "Product variant does not exist",
                        Some("PRODUCT_VARIANT_DOES_NOT_EXIST"),
                    ));
                    continue;
                }
                found
            }
            None => old
                .iter()
                .find(|variant| {
                    variant.selected_options == selected && !claimed.contains(&variant.id)
                })
                .map(|variant| variant.id),
        };
        if let Err(error) =
            check_locations(shop, variant, &["input", "variants", &at], "INVALID_INPUT")
        {
            errors.push(error);
            continue;
        }
        if let Some(id) = existing_id {
            claimed.push(id);
        }
        planned.push(PlannedVariant {
            existing: existing_id,
            selected,
            input: variant.clone(),
        });
    }
    planned
}

/// The variant's option values in option order.
fn selected_options(
    variant: &Map<String, Value>,
    options: &[ProductOption],
    strict: bool,
) -> Result<Vec<SelectedOption>, String> {
    let given: Vec<(String, String)> = list_arg(variant, "optionValues")
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .map(|value| {
            let option_name = str_arg(value, "optionName")
                .map(str::to_owned)
                .or_else(|| {
                    let id = parse_kind(str_arg(value, "optionId")?, "ProductOption")?;
                    options.iter().find(|o| o.id == id).map(|o| o.name.clone())
                })
                .unwrap_or_default();
            let name = str_arg(value, "name")
                .map(str::to_owned)
                .or_else(|| {
                    let id = parse_kind(str_arg(value, "id")?, "ProductOptionValue")?;
                    options
                        .iter()
                        .flat_map(|o| &o.values)
                        .find(|v| v.id == id)
                        .map(|v| v.name.clone())
                })
                .unwrap_or_default();
            (option_name, name)
        })
        .collect();
    if given.is_empty() && options.len() == 1 && options[0].name == "Title" {
        return Ok(vec![SelectedOption {
            name: "Title".to_owned(),
            value: "Default Title".to_owned(),
        }]);
    }
    let mut selected = Vec::new();
    for option in options {
        let Some((_, value)) = given.iter().find(|(name, _)| *name == option.name) else {
            return Err(format!(
                "Option values must be provided for the option '{}'.",
                option.name
            ));
        };
        if strict && !option.values.iter().any(|known| known.name == *value) {
            return Err(format!(
                "Option value '{value}' does not exist for the option '{}'.",
                option.name
            ));
        }
        selected.push(SelectedOption {
            name: option.name.clone(),
            value: value.clone(),
        });
    }
    if let Some((name, _)) = given
        .iter()
        .find(|(name, _)| !options.iter().any(|option| option.name == *name))
    {
        return Err(format!("Option '{name}' does not exist."));
    }
    Ok(selected)
}

fn apply(shop: &mut Shop, input: &Map<String, Value>, plan: Plan) -> Result<u64, Vec<Value>> {
    let now = timestamp();
    let id = match plan.target {
        Some(id) => id,
        None => create_empty(shop, &now),
    };
    let media = plan_media(shop, input, id);

    // Variants are built first (ids, fields), then swapped in at once.
    let mut variants = Vec::new();
    let mut quantities: Vec<(u64, Vec<Value>)> = Vec::new();
    for planned in plan.variants.iter().flatten() {
        let mut variant = match planned.existing.and_then(|vid| shop.variant(vid)) {
            Some((_, variant)) => variant.clone(),
            None => new_variant(shop, planned.selected.clone()),
        };
        variant.selected_options = planned.selected.clone();
        apply_variant_fields(shop, &mut variant, &VariantInput(&planned.input));
        if let Some(lines) = list_arg(&planned.input, "inventoryQuantities") {
            quantities.push((variant.inventory_item.id, lines.clone()));
        }
        variants.push(variant);
    }

    let Some(product) = shop.products.get_mut(&id) else {
        return Err(vec![user_error(
            None,
            "Product does not exist",
            Some("PRODUCT_DOES_NOT_EXIST"),
        )]);
    };
    if let Some(title) = str_arg(input, "title") {
        product.title = title.to_owned();
    }
    if let Some(handle) = plan.handle {
        product.handle = handle;
    }
    for (key, slot) in [
        ("descriptionHtml", &mut product.description_html),
        ("vendor", &mut product.vendor),
        ("productType", &mut product.product_type),
        ("status", &mut product.status),
    ] {
        if let Some(value) = str_arg(input, key) {
            *slot = value.to_owned();
        }
    }
    if let Some(tags) = list_arg(input, "tags") {
        product.tags = sorted_tags(tags);
    }
    if let Some(options) = plan.options {
        product.options = options;
    }
    if plan.variants.is_some() {
        product.variants = variants;
    }
    if let Some(media) = media {
        product.media = media;
    }
    product.updated_at = now;
    if let Some(drafts) = &plan.metafields {
        // Wholesale: metafields not listed are removed.
        product.metafields.retain(|metafield| {
            drafts
                .iter()
                .any(|draft| draft.namespace == metafield.namespace && draft.key == metafield.key)
        });
    }
    ensure_default_variant(shop, id);
    if let Some(drafts) = plan.metafields {
        upsert_metafields(shop, id, None, drafts);
    }

    for (item_id, lines) in quantities {
        for line in lines.iter().filter_map(Value::as_object) {
            let location = str_arg(line, "locationId").and_then(|id| parse_kind(id, "Location"));
            let quantity = line.get("quantity").and_then(Value::as_i64);
            let (Some(location), Some(quantity)) = (location, quantity) else {
                continue;
            };
            if str_arg(line, "name") == Some("on_hand") {
                shop.set_on_hand(item_id, location, quantity, "graphql");
            } else {
                shop.set_available(item_id, location, quantity, "graphql");
            }
        }
    }
    Ok(id)
}

fn create_empty(shop: &mut Shop, now: &str) -> u64 {
    let id = shop.next_id();
    shop.products.insert(
        id,
        Product {
            id,
            title: String::new(),
            handle: String::new(),
            description_html: String::new(),
            vendor: String::new(),
            product_type: String::new(),
            status: "ACTIVE".to_owned(),
            tags: Vec::new(),
            options: Vec::new(),
            variants: Vec::new(),
            metafields: Vec::new(),
            media: Vec::new(),
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
        },
    );
    id
}

/// A product is never without a variant: give it `Default Title`.
pub fn ensure_default_variant(shop: &mut Shop, product_id: u64) {
    let needs_default = shop
        .products
        .get(&product_id)
        .is_some_and(|product| product.variants.is_empty());
    if !needs_default {
        return;
    }
    let selected = vec![SelectedOption {
        name: "Title".to_owned(),
        value: "Default Title".to_owned(),
    }];
    let variant = new_variant(shop, selected);
    let option_id = shop.next_id();
    let value_id = shop.next_id();
    if let Some(product) = shop.products.get_mut(&product_id) {
        if product.options.is_empty() {
            product.options.push(ProductOption {
                id: option_id,
                name: "Title".to_owned(),
                values: vec![OptionValue {
                    id: value_id,
                    name: "Default Title".to_owned(),
                }],
            });
        }
        product.variants.push(variant);
    }
}

/// Files given replace the product's media, in order; an `id` keeps an
/// existing image, an `originalSource` adds a new one, READY at once.
fn plan_media(shop: &mut Shop, input: &Map<String, Value>, product_id: u64) -> Option<Vec<Media>> {
    let files = list_arg(input, "files")?;
    let old = shop
        .products
        .get(&product_id)
        .map(|product| product.media.clone())
        .unwrap_or_default();
    let mut media = Vec::new();
    for file in files.iter().filter_map(Value::as_object) {
        let kept = str_arg(file, "id")
            .and_then(|id| parse_kind(id, "MediaImage"))
            .and_then(|id| old.iter().find(|media| media.id == id).cloned());
        if let Some(mut kept) = kept {
            if let Some(alt) = str_arg(file, "alt") {
                kept.alt = Some(alt.to_owned());
            }
            media.push(kept);
            continue;
        }
        if let Some(source) = str_arg(file, "originalSource") {
            media.push(Media {
                id: shop.next_id(),
                alt: str_arg(file, "alt").map(str::to_owned),
                original_source: source.to_owned(),
                created_at: timestamp(),
            });
        }
    }
    Some(media)
}

/// Tags as Shopify returns them: split on commas, trimmed, unique, sorted.
pub fn sorted_tags(tags: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = tags
        .iter()
        .filter_map(Value::as_str)
        .flat_map(|tag| tag.split(','))
        .map(|tag| tag.trim().to_owned())
        .filter(|tag| !tag.is_empty())
        .collect();
    out.sort_by_key(|tag| tag.to_lowercase());
    out.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    out
}
