//! The webhook ingress (CPU per delivery in process, and whole handling on
//! moto), catalog sync through the stream, observer, queue and worker, and
//! the pull of sales through ingress, queue and worker.

use std::time::{Duration, Instant};

use fibermade_sync::push::PushRequest;
use fibermade_sync::shopify::{AccessToken, Shop};
use local_stack::{ACCESS_TOKEN, Error, LocalStack, SHOP_DOMAIN, StackOptions};

use crate::import::peak_rss_mb;
use crate::table::{Row, Table, int, mb, points, time};
use crate::{STANDARD_BUCKET, STANDARD_RATE, floor, seed_catalog};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[derive(Debug, Clone, Copy)]
pub struct IngressFindings {
    pub cpu_p50: Duration,
    pub cpu_p99: Duration,
}

/// The ingress's own work per delivery (verify the signature, read the body,
/// build the queue message), and the whole handling in-process with the
/// shop lookup and the queue on moto.
pub async fn bench_ingress(table: &mut Table, deliveries: usize) -> Result<IngressFindings, Error> {
    use fibermade_sync::webhook::signature::{HmacSignature, WebhookSecret};
    use fibermade_sync::webhook::{InventoryLevelUpdate, PullJob, ingress};

    eprintln!("ingress: {deliveries} signed deliveries");
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
    let findings = IngressFindings {
        cpu_p50: percentile(&cpu, 0.5),
        cpu_p99: percentile(&cpu, 0.99),
    };
    let part = "ingress";
    let cpu_case = "CPU per delivery: verify, read, build the message (in process)";
    table.add(Row {
        time: time(findings.cpu_p50),
        note: format!("p50 of {} deliveries", int(deliveries as u64)),
        ..Row::new(part, format!("{cpu_case}, p50"))
    });
    table.add(Row {
        time: time(findings.cpu_p99),
        note: format!("p99 of {} deliveries", int(deliveries as u64)),
        ..Row::new(part, format!("{cpu_case}, p99"))
    });
    let whole_case = "whole handling with the shop lookup and the queue (moto)";
    table.add(Row {
        time: time(percentile(&whole, 0.5)),
        note: "Shopify allows 5,000 ms".into(),
        ..Row::new(part, format!("{whole_case}, p50"))
    });
    table.add(Row {
        time: time(percentile(&whole, 0.99)),
        memory: mb(peak_rss_mb()),
        note: "peak memory is the measuring process's".into(),
        ..Row::new(part, format!("{whole_case}, p99"))
    });
    Ok(findings)
}

/// Catalog edits on an account with automatic catalog sync, through the
/// stream, the observer, the FIFO catalog queue (with the template's 5 s
/// delay) and the worker, against the shop at standard-plan limits: one
/// base's price (every product), ten quick renames of one colorway, and a
/// save that changes no synced field.
pub async fn bench_catalog(table: &mut Table, colorways: usize, bases: usize) -> Result<(), Error> {
    use fibermade_sync::domain::Writer;
    eprintln!("catalog sync: {colorways} colorways × {bases} bases");
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
    stack
        .pusher()
        .push(&PushRequest::account(account.clone()))
        .await?;
    // A full bucket, as hours of quiet after the first push would leave it.
    stack
        .sim_control
        .configure_bucket(Some(STANDARD_BUCKET), Some(STANDARD_RATE), true)
        .await?;
    let mut stream = stack.catalog_stream().await?;
    stack.sim_control.clear_calls().await?;
    let part = format!("catalog sync {colorways}×{bases}");

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
    let floor = floor(cost);
    // The queue holds each job 5 s before the worker sees it.
    let forced = floor + Duration::from_secs(5);
    table.add(Row {
        calls: int(after.requests - before.requests),
        writes: int(after.write_calls() - before.write_calls()),
        points: points(cost),
        time: time(elapsed),
        floor: time(floor),
        ratio: format!("{:.2}× (floor + 5 s)", elapsed.as_secs_f64() / forced.as_secs_f64()),
        throttled: int(after.throttled - before.throttled),
        note: format!(
            "save to all {matching} of {colorways} products matching; {} jobs; {} DynamoDB requests ({:.0} a job)",
            pass.observed.jobs_queued,
            int(requests),
            requests as f64 / pass.observed.jobs_queued.max(1) as f64
        ),
        ..Row::new(&part, "one base's price, on every product")
    });

    // Ten renames of one colorway, 300 ms apart: each reaches the observer
    // on its own, while the first job waits out the queue's delay.
    let mut colorway = catalog.colorways[0].clone();
    let before = stack.shopify.stats();
    let (mut coalesced, mut queued) = (0, 0);
    let started = Instant::now();
    for take in 1..=10 {
        colorway.name = format!("Renamed {take}");
        stack.store.put_colorway(&colorway, Writer::Dyer).await?;
        let observed = stack.observe_only(&mut stream).await?;
        coalesced += observed.coalesced;
        queued += observed.jobs_queued;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    stack.sync_catalog_waiting(&mut stream).await?;
    let elapsed = started.elapsed();
    let after = stack.shopify.stats();
    let title = stack
        .sim_control
        .product_by_handle(colorway.handle.as_str())
        .await?
        .map(|p| p["title"].as_str().unwrap_or_default().to_owned());
    table.add(Row {
        calls: int(after.requests - before.requests),
        writes: int(after.write_calls() - before.write_calls()),
        points: points(after.actual_cost - before.actual_cost),
        time: time(elapsed),
        throttled: int(after.throttled - before.throttled),
        note: format!(
            "{queued} job queued, {coalesced} coalesced; title now {:?}",
            title.unwrap_or_default()
        ),
        ..Row::new(&part, "ten renames of one colorway, 300 ms apart")
    });

    // The same colorway saved again, nothing synced changed.
    let before = stack.shopify.stats();
    let started = Instant::now();
    stack.store.put_colorway(&colorway, Writer::Dyer).await?;
    let pass = stack.sync_catalog_waiting(&mut stream).await?;
    let after = stack.shopify.stats();
    table.add(Row {
        calls: int(after.requests - before.requests),
        writes: int(after.write_calls() - before.write_calls()),
        time: time(started.elapsed()),
        note: format!(
            "{} stream records, {} changes, {} jobs",
            pass.delivered.delivered, pass.observed.changes, pass.observed.jobs_queued
        ),
        ..Row::new(&part, "a save touching no synced field")
    });
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

/// Sales on the simulated shop, delivered by the simulator with 30 %
/// duplicates and reordering, plus 5 % forged deliveries, through the
/// ingress and the worker; then every inventory row is compared with the shop.
pub async fn bench_pull(table: &mut Table, deliveries: usize) -> Result<(), Error> {
    use fibermade_sync::webhook::registration::ensure_inventory_subscription;
    use local_stack::router::{FunctionUrl, drain_queue_with};

    eprintln!("pull: {deliveries} deliveries");
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
    let url = FunctionUrl::start(stack.ingress()).await?;
    let shop = Shop {
        domain: SHOP_DOMAIN.into(),
        access_token: AccessToken::new(ACCESS_TOKEN),
    };
    ensure_inventory_subscription(&stack.shopify, &shop, &url.url()).await?;
    // Enough stock that every sale finds a skein, set on the shop and
    // pulled into Fibermade before the measured sales.
    for item in &items {
        stack
            .sim_control
            .set_stock(item.as_str(), None, 100_000)
            .await?;
    }
    stack.sim_control.flush_webhooks().await?;
    drain_queue_with(&stack.sqs, &stack.pull_queue, |event| {
        let puller = stack.puller();
        async move {
            let event: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_value(event)?;
            for message in event.records {
                let job: fibermade_sync::webhook::PullJob =
                    serde_json::from_str(message.body.as_deref().unwrap_or("{}"))?;
                puller.apply(&job).await?;
            }
            Ok(Vec::new())
        }
    })
    .await?;
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
                            .split([' ', '{', '('])
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
    let outcomes: Vec<String> = outcomes.iter().map(|(k, v)| format!("{k} {v}")).collect();
    table.add(Row {
        time: time(applied),
        note: format!(
            "{sales} sales with 30 % duplicates and reordering, {forged} forged: {} sent, {accepted} accepted, {forged_refused} refused (401), {} queued, {} worker failures; {}; {differ} of {} rows differ from the shop; deliveries took {}",
            deliveries_log.len() + forged,
            drained.received,
            drained.failed,
            outcomes.join(", "),
            catalog.inventory.len(),
            time(sent)
        ),
        ..Row::new("pull", format!("{} deliveries through ingress, queue and worker", int(deliveries as u64)))
    });
    Ok(())
}
