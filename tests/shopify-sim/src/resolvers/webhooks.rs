//! `webhookSubscriptionCreate` and `webhookSubscriptionDelete`.
//!
//! Subscriptions are stored with their topic and address; stock changes
//! are delivered to `INVENTORY_LEVELS_UPDATE` ones by `crate::webhooks`.

use serde_json::{Map, Value, json};

use super::{list_arg, obj_arg, path, str_arg, user_error};
use crate::ids::{gid, parse_kind};
use crate::state::render::webhook_json;
use crate::state::{Shop, WebhookSubscription, timestamp};

fn strings(input: &Map<String, Value>, key: &str) -> Vec<String> {
    list_arg(input, key)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

/// Why Shopify would refuse this address, if it would. Plain `http://` is
/// allowed to loopback hosts only, so the local stack can receive.
fn address_problems(uri: &str) -> Vec<String> {
    if uri.trim().is_empty() {
        return vec!["Address can't be blank".to_owned()];
    }
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|prefix| uri.starts_with(prefix));
    if uri.starts_with("https://") || loopback || uri.starts_with("arn:aws:events:") {
        return Vec::new();
    }
    if let Some(rest) = uri.strip_prefix("pubsub://") {
        let valid = rest
            .split_once(':')
            .is_some_and(|(project, topic)| !project.is_empty() && !topic.is_empty());
        return if valid {
            Vec::new()
        } else {
            vec![
                "Address is not a valid GCP pub/sub format. Format should be pubsub://project:topic"
                    .to_owned(),
            ]
        };
    }
    let protocol = uri.split_once("://").map_or(uri, |(scheme, _)| scheme);
    vec![format!("Address protocol {protocol}:// is not supported")]
}

pub fn create(shop: &mut Shop, args: &Map<String, Value>) -> Value {
    let empty = Map::new();
    let input = obj_arg(args, "webhookSubscription").unwrap_or(&empty);
    let topic = str_arg(args, "topic").unwrap_or_default().to_owned();
    let uri = str_arg(input, "uri")
        .or_else(|| str_arg(input, "callbackUrl"))
        .unwrap_or_default()
        .to_owned();
    let field = path(&["webhookSubscription", "callbackUrl"]);
    let mut errors: Vec<Value> = address_problems(&uri)
        .into_iter()
        .map(|message| user_error(field.clone(), message, None))
        .collect();
    let duplicate = shop
        .webhooks
        .values()
        .any(|webhook| webhook.topic == topic && webhook.uri == uri);
    if errors.is_empty() && duplicate {
        errors.push(user_error(
            field,
            "Address for this topic has already been taken",
            None,
        ));
    }
    if !errors.is_empty() {
        return json!({"webhookSubscription": null, "userErrors": errors});
    }
    let now = timestamp();
    let webhook = WebhookSubscription {
        id: shop.next_id(),
        topic,
        uri,
        format: str_arg(input, "format").unwrap_or("JSON").to_owned(),
        filter: str_arg(input, "filter").map(str::to_owned),
        include_fields: strings(input, "includeFields"),
        metafield_namespaces: strings(input, "metafieldNamespaces"),
        name: str_arg(input, "name").map(str::to_owned),
        created_at: now.clone(),
        updated_at: now,
    };
    let json = webhook_json(&webhook);
    shop.webhooks.insert(webhook.id, webhook);
    json!({"webhookSubscription": json, "userErrors": []})
}

pub fn delete(shop: &mut Shop, args: &Map<String, Value>) -> Value {
    let id = str_arg(args, "id").and_then(|id| parse_kind(id, "WebhookSubscription"));
    match id.and_then(|id| shop.webhooks.remove(&id)) {
        Some(webhook) => json!({
            "deletedWebhookSubscriptionId": gid("WebhookSubscription", webhook.id),
            "userErrors": [],
        }),
        None => json!({
            "deletedWebhookSubscriptionId": null,
            "userErrors": [user_error(path(&["id"]), "Webhook subscription does not exist", None)],
        }),
    }
}
