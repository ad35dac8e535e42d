//! `make bench`: what a push costs in Shopify calls, points and time, beside
//! a one-call-per-variant baseline, and how fast and how lean an import is.
//!
//! Run with `make bench` (release build, one moto_server, the simulator at
//! standard-plan limits: bucket 2000, 100 points a second).

use std::io::Read;
use std::time::{Duration, Instant};

use fibermade_sync::domain::{
    AccountId, Base, BaseId, Colorway, ColorwayId, ColorwayStatus, Descriptor, Handle, Money,
};
use fibermade_sync::import::survey::survey;
use fibermade_sync::import::{Importer, Source};
use fibermade_sync::push::{PushReport, PushRequest};
use fibermade_sync::shopify::operations::{
    BulkInventoryQuantity, BulkVariantInput, InventoryItemInput, InventoryQuantityInput,
    OptionSetInput, OptionValueInput, ProductSetInput, VariantOptionValue, VariantSetInput,
};
use fibermade_sync::shopify::{AccessToken, ProductIdentifier, QuantityLine, Shop};
use fibermade_sync::store::CatalogChange;
use local_stack::{ACCESS_TOKEN, Error, LocalStack, SHOP_DOMAIN, StackOptions, fixture_csv};

const STANDARD_BUCKET: f64 = 2000.0;
const STANDARD_RATE: f64 = 100.0;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    // The import is measured in a child process of its own, so its peak
    // memory is the import's alone.
    if args.get(1).map(String::as_str) == Some("import-child") {
        return import_child(&args[2..]).await;
    }

    println!("Fibermade ⇄ Shopify benchmarks ({})", machine());
    println!(
        "Shopify simulator at standard-plan limits: bucket {STANDARD_BUCKET}, {STANDARD_RATE} points/s\n"
    );
    let only = std::env::var("BENCH").unwrap_or_default();
    if only.is_empty() || only == "push" {
        bench_push(200, 6).await?;
    }
    if only.is_empty() || only == "import" {
        bench_import(100_000).await?;
    }
    if only.is_empty() || only == "pull" {
        let deliveries = std::env::var("PULL_DELIVERIES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(10_000);
        bench_pull(deliveries).await?;
    }
    Ok(())
}

/// Sales on the simulated shop, delivered by the simulator with 30 %
/// duplicates and reordering, plus 5 % forged deliveries, through the
/// ingress and the worker; then every inventory row is compared with the shop.
async fn bench_pull(deliveries: usize) -> Result<(), Error> {
    use fibermade_sync::webhook::registration::ensure_inventory_subscription;
    use local_stack::router::{FunctionUrl, drain_queue_with};

    let stack = LocalStack::start_with(StackOptions {
        bucket_size: 20_000.0,
        restore_rate: 10_000.0,
        ..StackOptions::default()
    })
    .await?;
    let account = stack
        .seed_account("acct-pull-bench", "user-1", &[], true)
        .await?
        .id;
    seed_catalog(&stack, &account, 20, 5).await?;
    stack
        .pusher()
        .push(&PushRequest {
            account_id: account.clone(),
            colorway_id: None,
            dry_run: false,
        })
        .await?;
    let (integration, _) = stack
        .store
        .account_integration(&account)
        .await?
        .ok_or("no integration")?;
    let items: Vec<_> = stack
        .store
        .load_links(&integration.id)
        .await?
        .into_iter()
        .filter(|l| l.external_type == fibermade_sync::domain::ExternalType::ShopifyInventoryItem)
        .map(|l| l.external_id)
        .collect();
    // Enough stock that every sale finds a skein.
    for item in &items {
        stack
            .sim_control
            .set_stock(item.as_str(), None, 100_000)
            .await?;
    }
    let url = FunctionUrl::start(stack.ingress()).await?;
    let shop = Shop {
        domain: SHOP_DOMAIN.into(),
        access_token: AccessToken::new(ACCESS_TOKEN),
    };
    ensure_inventory_subscription(&stack.shopify, &shop, &url.url()).await?;
    stack.sim_control.flush_webhooks().await?;
    drain_queue_with(&stack.sqs, &stack.pull_queue, |_| async { Ok(Vec::new()) }).await?;
    stack.sim_control.clear_webhook_deliveries().await?;

    let update = shopify_sim::WebhookConfigUpdate {
        duplicate_rate: Some(0.3),
        reorder_window: Some(10),
        seed: Some(42),
        ..Default::default()
    };
    stack.sim_control.configure_webhooks(&update).await?;

    // Real deliveries ≈ sales × 1.3 (duplicates); forged ones make 5 % of all.
    let forged = deliveries * 5 / 100;
    let sales = ((deliveries - forged) as f64 / 1.3).round() as usize;
    let started = Instant::now();
    let secret = fibermade_sync::webhook::signature::WebhookSecret::new("not-the-app-secret");
    let http = reqwest::Client::new();
    let mut forged_refused = 0;
    for n in 0..sales {
        let item = &items[n % items.len()];
        stack.sim_control.sale(item.as_str(), None, 1).await?;
        if n % ((sales / forged.max(1)).max(1)) == 0 && forged_refused < forged {
            let body = format!(
                "{{\"inventory_item_id\":{},\"location_id\":1,\"available\":0,\"updated_at\":\"2030-01-01T00:00:00Z\"}}",
                item.numeric_id().unwrap_or(0)
            );
            let response = http
                .post(url.url())
                .header("x-shopify-topic", "inventory_levels/update")
                .header("x-shopify-shop-domain", SHOP_DOMAIN)
                .header("x-shopify-event-id", format!("forged-{n}"))
                .header("x-shopify-hmac-sha256", secret.sign(body.as_bytes()))
                .body(body)
                .send()
                .await?;
            if response.status().as_u16() == 401 {
                forged_refused += 1;
            }
        }
    }
    stack.sim_control.flush_webhooks().await?;
    let sent = started.elapsed();

    let mut outcomes: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    let drained = drain_queue_with(&stack.sqs, &stack.pull_queue, |event| {
        let puller = stack.puller();
        let outcomes = &mut outcomes;
        async move {
            let event: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_value(event)?;
            let mut failed = Vec::new();
            for message in event.records {
                let job: fibermade_sync::webhook::PullJob =
                    serde_json::from_str(message.body.as_deref().unwrap_or("{}"))?;
                match puller.apply(&job).await {
                    Ok(outcome) => {
                        *outcomes
                            .entry(
                                format!("{outcome:?}")
                                    .split([' ', '{'])
                                    .next()
                                    .unwrap_or("")
                                    .to_owned(),
                            )
                            .or_default() += 1
                    }
                    Err(_) => failed.push(message.message_id.unwrap_or_default()),
                }
            }
            Ok(failed)
        }
    })
    .await?;
    let applied = started.elapsed();

    let deliveries_log = stack.sim_control.webhook_deliveries().await?;
    let accepted = deliveries_log
        .iter()
        .filter(|d| d.status == Some(200))
        .count();
    let catalog = stack.store.load_catalog(&account).await?;
    let links = stack.store.load_links(&integration.id).await?;
    let on_shop = shop_levels(&stack).await?;
    let mut differ = 0;
    for row in &catalog.inventory {
        let item = links.iter().find(|l| {
            l.local == fibermade_sync::domain::LocalRef::Inventory(row.key.clone())
                && l.external_type == fibermade_sync::domain::ExternalType::ShopifyInventoryItem
        });
        let shop_level = item.and_then(|l| on_shop.get(l.external_id.as_str()).copied());
        if shop_level != Some(row.quantity) {
            differ += 1;
        }
    }
    println!(
        "Pull: {sales} sales on the shop, delivered with 30 % duplicates and reordering, plus {forged} forged deliveries"
    );
    println!(
        "  deliveries sent {}, accepted (200) {accepted}, forged refused (401) {forged_refused}",
        deliveries_log.len() + forged
    );
    println!(
        "  queue messages {}, worker failures {}; outcomes {outcomes:?}",
        drained.received, drained.failed
    );
    println!(
        "  inventory rows differing from the shop at the end: {differ} of {}",
        catalog.inventory.len()
    );
    println!(
        "  time: deliveries {:.1} s, all applied {:.1} s",
        sent.as_secs_f64(),
        applied.as_secs_f64()
    );
    Ok(())
}

/// Available stock on the shop, by inventory item id.
async fn shop_levels(stack: &LocalStack) -> Result<std::collections::HashMap<String, i64>, Error> {
    let state = stack.sim_control.state().await?;
    let mut levels = std::collections::HashMap::new();
    for product in state["products"].as_array().into_iter().flatten() {
        for variant in product["variants"].as_array().into_iter().flatten() {
            if let (Some(item), Some(available)) = (
                variant["inventoryItemId"].as_str(),
                variant["levels"][0]["available"].as_i64(),
            ) {
                levels.insert(item.to_owned(), available);
            }
        }
    }
    Ok(levels)
}
