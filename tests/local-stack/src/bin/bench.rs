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
    if only.is_empty() || only == "ingress" {
        bench_ingress(2000).await?;
    }
    if only.is_empty() || only == "catalog" {
        bench_catalog(300, 6).await?;
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

/// Catalog edits on an account with automatic catalog sync, through the
/// stream, the observer, the FIFO catalog queue (with the template's 5 s
/// delay) and the worker, against the shop at standard-plan limits: one
/// base's price (every product), ten quick renames of one colorway, and a
/// save that changes no synced field.
async fn bench_catalog(colorways: usize, bases: usize) -> Result<(), Error> {
    use fibermade_sync::domain::Writer;
    let stack = LocalStack::start_with(StackOptions {
        bucket_size: STANDARD_BUCKET,
        restore_rate: STANDARD_RATE,
        catalog_delay_seconds: 5,
        ..StackOptions::default()
    })
    .await?;
    let account = stack
        .seed_account("acct-catalog-bench", "user-1", &[], true)
        .await?
        .id;
    seed_catalog(&stack, &account, colorways, bases).await?;
    let mut flagged = stack.store.get_account(&account).await?.ok_or("account")?;
    flagged.auto_catalog_sync = true;
    stack.store.put_account(&flagged).await?;
    println!(
        "Catalog sync: {colorways} colorways × {bases} bases, pushed first; catalog queue delay 5 s"
    );
    stack
        .pusher()
        .push(&PushRequest::account(account.clone()))
        .await?;
    // Let the bucket refill after the first push, as hours of quiet would.
    tokio::time::sleep(Duration::from_secs_f64(STANDARD_BUCKET / STANDARD_RATE)).await;
    let mut stream = stack.catalog_stream().await?;
    stack.sim_control.clear_calls().await?;

    // One base's price, on every product.
    let catalog = stack.store.load_catalog(&account).await?;
    let mut base = catalog.bases[0].clone();
    base.retail_price = (base.retail_price.amount() + rust_decimal::Decimal::ONE).try_into()?;
    let before = stack.shopify.stats();
    let requests_before = stack.dynamodb_requests.count();
    let started = Instant::now();
    stack.store.put_base(&base, Writer::Dyer).await?;
    let pass = stack.sync_catalog_waiting(&mut stream).await?;
    let elapsed = started.elapsed();
    let after = stack.shopify.stats();
    let state = stack.sim_control.state().await?;
    let matching = state["products"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| {
            p["variants"].as_array().into_iter().flatten().any(|v| {
                v["selectedOptions"][0]["value"] == base.descriptor.as_str()
                    && v["price"] == base.retail_price.to_string()
            })
        })
        .count();
    let cost = after.actual_cost - before.actual_cost;
    let requests = stack.dynamodb_requests.count() - requests_before;
    println!(
        "  one base price change: {} jobs, {} Shopify calls ({} writes), {cost:.0} points, {} THROTTLED, {:.1} s until {matching} of {colorways} products match (floor {:.1} s + 5 s queue delay)",
        pass.observed.jobs_queued,
        after.requests - before.requests,
        after.write_calls() - before.write_calls(),
        after.throttled - before.throttled,
        elapsed.as_secs_f64(),
        floor(cost).as_secs_f64(),
    );
    println!(
        "    (DynamoDB on moto: {requests} requests, {:.0} a job)",
        requests as f64 / pass.observed.jobs_queued.max(1) as f64
    );

    // Ten renames of one colorway, a second apart at most: each reaches the
    // observer on its own, while the first job waits out the queue's delay.
    let mut colorway = catalog.colorways[0].clone();
    let before = stack.shopify.stats();
    let mut coalesced = 0;
    let mut queued = 0;
    for take in 1..=10 {
        colorway.name = format!("Renamed {take}");
        stack.store.put_colorway(&colorway, Writer::Dyer).await?;
        let observed = stack.observe_only(&mut stream).await?;
        coalesced += observed.coalesced;
        queued += observed.jobs_queued;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    stack.sync_catalog_waiting(&mut stream).await?;
    let after = stack.shopify.stats();
    let title = stack
        .sim_control
        .product_by_handle(colorway.handle.as_str())
        .await?
        .map(|p| p["title"].as_str().unwrap_or_default().to_owned());
    println!(
        "  ten quick renames of one colorway: {queued} job queued, {coalesced} coalesced, {} Shopify calls; title now {:?}",
        after.requests - before.requests,
        title.unwrap_or_default()
    );

    // The same colorway saved again, nothing synced changed.
    let before = stack.shopify.stats();
    stack.store.put_colorway(&colorway, Writer::Dyer).await?;
    let pass = stack.sync_catalog_waiting(&mut stream).await?;
    let after = stack.shopify.stats();
    println!(
        "  a save touching no synced field: {} records, {} changes, {} jobs, {} Shopify calls\n",
        pass.delivered.delivered,
        pass.observed.changes,
        pass.observed.jobs_queued,
        after.requests - before.requests
    );
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
        .push(&PushRequest::account(account.clone()))
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

    let tally: std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, usize>>> =
        Default::default();
    let drained = drain_queue_with(&stack.sqs, &stack.pull_queue, |event| {
        let puller = stack.puller();
        let tally = tally.clone();
        async move {
            let event: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_value(event)?;
            let mut failed = Vec::new();
            for message in event.records {
                let job: fibermade_sync::webhook::PullJob =
                    serde_json::from_str(message.body.as_deref().unwrap_or("{}"))?;
                match puller.apply(&job).await {
                    Ok(outcome) => {
                        let name = format!("{outcome:?}")
                            .split([' ', '{'])
                            .next()
                            .unwrap_or("")
                            .to_owned();
                        *tally
                            .lock()
                            .map_err(|_| "tally poisoned")?
                            .entry(name)
                            .or_default() += 1;
                    }
                    Err(_) => failed.push(message.message_id.unwrap_or_default()),
                }
            }
            Ok(failed)
        }
    })
    .await?;
    let applied = started.elapsed();
    let outcomes = tally.lock().map_err(|_| "tally poisoned")?.clone();

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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The ingress's own work per delivery (verify the signature, read the body,
/// build the queue message), and the whole handling in-process with the
/// shop lookup and the queue on moto.
async fn bench_ingress(deliveries: usize) -> Result<(), Error> {
    use fibermade_sync::webhook::signature::{HmacSignature, WebhookSecret};
    use fibermade_sync::webhook::{InventoryLevelUpdate, PullJob, ingress};

    let secret = WebhookSecret::new(local_stack::WEBHOOK_SECRET);
    let bodies: Vec<(String, String)> = (0..deliveries)
        .map(|n| {
            let body = format!(
                "{{\"inventory_item_id\":{},\"location_id\":53716844710,\"available\":{},\"updated_at\":\"2026-11-03T08:44:10-05:00\",\"admin_graphql_api_id\":\"gid://shopify/InventoryLevel/87892394150?inventory_item_id={}\"}}",
                271_878_346_596_884_015u64 + n as u64, n % 50, 271_878_346_596_884_015u64 + n as u64
            );
            let signature = secret.sign(body.as_bytes());
            (body, signature)
        })
        .collect();

    let mut cpu = Vec::with_capacity(deliveries);
    for (body, signature) in &bodies {
        let started = Instant::now();
        HmacSignature::parse(Some(signature))?.verify(&secret, body.as_bytes())?;
        let update: InventoryLevelUpdate = serde_json::from_str(body)?;
        let job = PullJob {
            webhook_id: "wh".into(),
            event_id: "ev".into(),
            triggered_at: None,
            shop_domain: SHOP_DOMAIN.into(),
            update,
        };
        std::hint::black_box(serde_json::to_string(&job)?);
        cpu.push(started.elapsed());
    }
    cpu.sort();

    let stack = LocalStack::start().await?;
    stack
        .seed_account("acct-ingress-bench", "user-1", &[], true)
        .await?;
    let ingress = stack.ingress();
    let mut whole = Vec::with_capacity(deliveries);
    for (n, (body, signature)) in bodies.iter().enumerate() {
        let request = lambda_http::http::Request::builder()
            .method("POST")
            .uri("https://ingress.example/")
            .header("x-shopify-topic", "inventory_levels/update")
            .header("x-shopify-shop-domain", SHOP_DOMAIN)
            .header("x-shopify-event-id", format!("ev-{n}"))
            .header("x-shopify-webhook-id", format!("wh-{n}"))
            .header("x-shopify-hmac-sha256", signature)
            .body(lambda_http::Body::Text(body.clone()))?;
        let started = Instant::now();
        let response = ingress::handle(&ingress, request).await;
        whole.push(started.elapsed());
        if response.status() != 200 {
            return Err(format!("delivery {n} answered {}", response.status()).into());
        }
    }
    whole.sort();
    println!("Ingress, {deliveries} signed deliveries");
    println!(
        "  verify + read + build the message (CPU, in-process): p50 {:>7.1} µs  p99 {:>7.1} µs",
        percentile(&cpu, 0.5).as_secs_f64() * 1e6,
        percentile(&cpu, 0.99).as_secs_f64() * 1e6
    );
    println!(
        "  whole handling with shop lookup and queue (moto):     p50 {:>7.1} ms  p99 {:>7.1} ms  (Shopify allows 5000 ms)",
        percentile(&whole, 0.5).as_secs_f64() * 1e3,
        percentile(&whole, 0.99).as_secs_f64() * 1e3
    );
    println!(
        "  peak memory of the bench process: {:.1} MB\n",
        peak_rss_mb()
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

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpus} cores, {model}")
}

/// The floor: the least wall time the bucket allows for `cost` points.
fn floor(cost: f64) -> Duration {
    Duration::from_secs_f64(((cost - STANDARD_BUCKET).max(0.0)) / STANDARD_RATE)
}

async fn seed_catalog(
    stack: &LocalStack,
    account: &AccountId,
    colorways: usize,
    bases: usize,
) -> Result<(), Error> {
    let mut changes = Vec::new();
    let base_list: Vec<Base> = (0..bases)
        .map(|b| {
            let descriptor = Descriptor::try_from(format!("Base {b:02}"))?;
            Ok(Base {
                id: BaseId::for_descriptor(account, &descriptor),
                account_id: account.clone(),
                descriptor,
                retail_price: format!("{}.50", 20 + b).parse::<Money>()?,
            })
        })
        .collect::<Result<_, Error>>()?;
    changes.extend(base_list.iter().cloned().map(CatalogChange::Base));
    for c in 0..colorways {
        let handle = Handle::try_from(format!("colorway-{c:04}"))?;
        let colorway = Colorway {
            id: ColorwayId::for_handle(account, &handle),
            account_id: account.clone(),
            name: format!("Colorway {c:04}"),
            handle,
            description_html: "<p>Hand-dyed in small batches.</p>".into(),
            status: ColorwayStatus::Active,
            colors: vec!["Green".into()],
            technique: Some("Speckled".into()),
            per_pan: Some(6),
        };
        for (b, base) in base_list.iter().enumerate() {
            changes.push(CatalogChange::InventoryQuantity {
                key: fibermade_sync::domain::InventoryKey::new(
                    colorway.id.clone(),
                    base.id.clone(),
                ),
                quantity: Some(((c * 7 + b * 3) % 13) as i64),
                shop_quantity: None,
            });
        }
        changes.push(CatalogChange::Colorway(colorway));
    }
    stack.store.apply_import(account, changes).await?;
    Ok(())
}

/// One push, timed, with the write calls and THROTTLED answers the client saw.
async fn timed_push(
    stack: &LocalStack,
    account: &AccountId,
) -> Result<(PushReport, Duration, u64, u64), Error> {
    let before = stack.shopify.stats();
    let started = Instant::now();
    let report = stack
        .pusher()
        .push(&PushRequest::account(account.clone()))
        .await?;
    let elapsed = started.elapsed();
    let after = stack.shopify.stats();
    Ok((
        report,
        elapsed,
        after.write_calls() - before.write_calls(),
        after.throttled - before.throttled,
    ))
}

async fn bench_push(colorways: usize, bases: usize) -> Result<(), Error> {
    let stack = LocalStack::start_with(StackOptions {
        bucket_size: STANDARD_BUCKET,
        restore_rate: STANDARD_RATE,
        ..StackOptions::default()
    })
    .await?;
    let account = stack
        .seed_account("acct-bench", "user-1", &[], true)
        .await?
        .id;
    seed_catalog(&stack, &account, colorways, bases).await?;
    let variants = colorways * bases;

    let (first, first_time, first_writes, first_throttled) = timed_push(&stack, &account).await?;
    let (second, second_time, second_writes, second_throttled) =
        timed_push(&stack, &account).await?;
    let calls = |r: &PushReport| r.shopify_calls;

    // The baseline starts from an empty shop with a fresh bucket.
    stack.sim_control.reset().await?;
    stack
        .sim_control
        .configure_bucket(Some(STANDARD_BUCKET), Some(STANDARD_RATE), true)
        .await?;
    let (baseline_calls, baseline_cost, baseline_time) =
        one_call_per_variant(&stack, colorways, bases).await?;

    println!("Push of {colorways} colorways × {bases} bases ({variants} variants)");
    println!(
        "  {:<34} {:>7} {:>8} {:>9} {:>9} {:>6} {:>10}",
        "", "calls", "writes", "points", "time s", "floor", "THROTTLED"
    );
    let row = |name: &str, calls: u64, writes: u64, cost: f64, time: Duration, throttled: u64| {
        println!(
            "  {name:<34} {calls:>7} {writes:>8} {cost:>9.0} {:>9.1} {:>6.1} {throttled:>10}",
            time.as_secs_f64(),
            floor(cost).as_secs_f64()
        );
    };
    row(
        "first push",
        calls(&first),
        first_writes,
        first.shopify_cost,
        first_time,
        first_throttled,
    );
    row(
        "second push, nothing changed",
        calls(&second),
        second_writes,
        second.shopify_cost,
        second_time,
        second_throttled,
    );
    row(
        "one call per variant (baseline)",
        baseline_calls,
        baseline_calls,
        baseline_cost,
        baseline_time,
        0,
    );
    println!(
        "  first push: {} products and {} variants created, {} quantities set, {} errors",
        first.products_created,
        first.variants_created,
        first.quantities_set,
        first.errors.len()
    );
    println!(
        "  the baseline spends {:.1}× the calls and {:.1}× the points; at the standard plan its floor is {:.0} s",
        baseline_calls as f64 / calls(&first).max(1) as f64,
        baseline_cost / first.shopify_cost.max(1.0),
        floor(baseline_cost).as_secs_f64()
    );
    println!(
        "  (baseline wall time measured at restore rate {BASELINE_RATE}/s to keep the run short; its floor is computed for 100/s)\n"
    );
    Ok(())
}

/// The baseline's restore rate: its calls cost ~10× ours, and waiting for
/// them at 100 points/s would add minutes of sleeping to every bench run.
const BASELINE_RATE: f64 = 1000.0;

/// What a naive sync does: create each product with one variant, add every
/// other variant with its own call, set every quantity with its own call.
async fn one_call_per_variant(
    stack: &LocalStack,
    colorways: usize,
    bases: usize,
) -> Result<(u64, f64, Duration), Error> {
    stack
        .sim_control
        .configure_bucket(Some(STANDARD_BUCKET), Some(BASELINE_RATE), true)
        .await?;
    let shopify = stack.shopify.clone();
    shopify.reset_stats();
    let shop = Shop {
        domain: SHOP_DOMAIN.into(),
        access_token: AccessToken::new(ACCESS_TOKEN),
    };
    let location = shopify.locations(&shop).await?.remove(0).id;
    let started = Instant::now();
    for c in 0..colorways {
        let variant = |b: usize| VariantOptionValue {
            option_name: "Base".into(),
            name: format!("Base {b:02}"),
        };
        let input = ProductSetInput {
            title: format!("Colorway {c:04}"),
            handle: format!("baseline-{c:04}"),
            description_html: "<p>Hand-dyed in small batches.</p>".into(),
            vendor: "Baseline".into(),
            status: "ACTIVE",
            tags: vec![],
            product_options: vec![OptionSetInput {
                name: "Base".into(),
                position: 1,
                values: vec![OptionValueInput {
                    name: "Base 00".into(),
                }],
            }],
            variants: vec![VariantSetInput {
                id: None,
                option_values: vec![variant(0)],
                price: "20.50".into(),
                inventory_item: InventoryItemInput { tracked: true },
                inventory_quantities: Some(vec![InventoryQuantityInput {
                    location_id: location.clone(),
                    name: "available",
                    quantity: 0,
                }]),
            }],
            metafields: vec![],
            files: None,
        };
        let product = shopify
            .product_set(
                &shop,
                &ProductIdentifier::Handle(input.handle.clone()),
                &input,
            )
            .await?;
        let mut items = vec![product.variants.nodes[0].inventory_item.id.clone()];
        for b in 1..bases {
            let created = shopify
                .variants_bulk_create(
                    &shop,
                    &product.id,
                    &[BulkVariantInput {
                        id: None,
                        option_values: vec![variant(b)],
                        price: format!("{}.50", 20 + b),
                        inventory_item: Some(InventoryItemInput { tracked: true }),
                        inventory_quantities: Some(vec![BulkInventoryQuantity {
                            location_id: location.clone(),
                            available_quantity: 0,
                        }]),
                    }],
                )
                .await?;
            items.extend(created.into_iter().map(|v| v.inventory_item.id));
        }
        for (b, item) in items.into_iter().enumerate() {
            let line = QuantityLine {
                inventory_item_id: item,
                location_id: location.clone(),
                quantity: ((c * 7 + b * 3) % 13) as i64,
                change_from_quantity: Some(0),
            };
            shopify
                .set_inventory_quantities(
                    &shop,
                    &[line],
                    &format!("baseline-{c}-{b}"),
                    "gid://fibermade/Bench/baseline",
                )
                .await?;
        }
    }
    let stats = shopify.stats();
    Ok((stats.calls - 1, stats.actual_cost, started.elapsed()))
}

/// A product export of `rows` rows from the real legacy header: products of
/// five variants each, with multi-line descriptions and images, generated a
/// row at a time so the bench measures the import, not the generator.
struct GeneratedExport {
    columns: Vec<String>,
    rows: usize,
    row: usize,
    buffer: Vec<u8>,
    offset: usize,
}

const BASES: [&str; 5] = [
    "Merino Fingering",
    "Merino DK",
    "Sock 75/25",
    "Mohair Lace",
    "Bulky",
];

fn generated_export(rows: usize) -> GeneratedExport {
    let header = std::fs::read_to_string(fixture_csv("legacy-export-2021.csv"))
        .ok()
        .and_then(|f| f.lines().next().map(str::to_owned))
        .unwrap_or_default();
    GeneratedExport {
        columns: header.split(',').map(str::to_owned).collect(),
        rows,
        row: 0,
        buffer: format!("{header}\n").into_bytes(),
        offset: 0,
    }
}

impl GeneratedExport {
    fn next_row(&mut self) {
        let (product, variant) = (self.row / 5, self.row % 5);
        let mut cells = vec![String::new(); self.columns.len()];
        let mut set = |name: &str, value: String| {
            if let Some(i) = self.columns.iter().position(|c| c == name) {
                cells[i] = value;
            }
        };
        set("Handle", format!("colorway-{product:06}"));
        if variant == 0 {
            set("Title", format!("Colorway {product}"));
            set(
                "Body (HTML)",
                "\"<p>Hand-dyed,\nin small batches.</p>\"".into(),
            );
            set("Option1 Name", "Base".into());
            set(
                "Image Src",
                format!("https://cdn.example.com/{product}.jpg"),
            );
            set("Image Position", "1".into());
            set("Status", "active".into());
        }
        set("Option1 Value", BASES[variant].into());
        set(
            "Variant Inventory Qty",
            ((product + variant) % 17).to_string(),
        );
        set("Variant Price", format!("{}.00", 24 + variant * 2));
        self.buffer = format!("{}\n", cells.join(",")).into_bytes();
        self.offset = 0;
        self.row += 1;
    }
}

impl Read for GeneratedExport {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.offset >= self.buffer.len() {
            if self.row >= self.rows {
                return Ok(0);
            }
            self.next_row();
        }
        let n = buf.len().min(self.buffer.len() - self.offset);
        buf[..n].copy_from_slice(&self.buffer[self.offset..self.offset + n]);
        self.offset += n;
        Ok(n)
    }
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn bench_import(rows: usize) -> Result<(), Error> {
    println!("Import of a generated {rows}-row export (real legacy header, 5 variants a product)");
    for mode in ["parse", "write"] {
        let output = std::process::Command::new(std::env::current_exe()?)
            .args(["import-child", mode, &rows.to_string()])
            .output()?;
        if !output.status.success() {
            return Err(format!(
                "import bench ({mode}) failed: {}",
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
        print!("{}", String::from_utf8_lossy(&output.stdout));
    }
    Ok(())
}

async fn import_child(args: &[String]) -> Result<(), Error> {
    let mode = args.first().map(String::as_str).unwrap_or("parse");
    let rows: usize = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(100_000);
    let started = Instant::now();
    match mode {
        "parse" => {
            let survey =
                tokio::task::spawn_blocking(move || survey(generated_export(rows))).await??;
            let secs = started.elapsed().as_secs_f64();
            println!(
                "  {:<34} {:>9.0} rows/s {:>7.2} s  peak memory {:>6.1} MB  ({} products, {} bases)",
                "parse and map (first pass)",
                survey.rows as f64 / secs,
                secs,
                peak_rss_mb(),
                survey.products,
                survey.bases.len()
            );
        }
        _ => {
            let stack = LocalStack::start().await?;
            let account = stack
                .seed_account("acct-import-bench", "user-1", &[], false)
                .await?
                .id;
            let importer = Importer::new(stack.store.clone(), stack.shopify.clone());
            let source = Source::reader("generated.csv", move || {
                Ok(Box::new(generated_export(rows)) as Box<dyn Read + Send>)
            });
            let started = Instant::now();
            let report = importer.import(&account, &source).await?;
            let secs = started.elapsed().as_secs_f64();
            println!(
                "  {:<34} {:>9.0} rows/s {:>7.2} s  peak memory {:>6.1} MB  ({} items written to DynamoDB on moto)",
                "full import with DynamoDB writes",
                report.rows as f64 / secs,
                secs,
                peak_rss_mb(),
                report.written.total()
            );
        }
    }
    Ok(())
}
