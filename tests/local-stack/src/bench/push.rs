//! Push figures against the simulator at standard-plan limits: for each
//! catalog a first push, a push with nothing changed and a one-base price
//! change; the first push with the bulk path off beside the default; a sweep
//! of catalog sizes, bulk against one call a product; and a
//! one-call-per-variant baseline run here (it is not part of the product).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fibermade_sync::domain::{AccountId, Gid, Writer};
use fibermade_sync::push::{DEFAULT_BULK_THRESHOLD, PushReport, PushRequest, Pusher};
use fibermade_sync::shopify::operations::{
    BulkInventoryQuantity, BulkVariantInput, InventoryItemInput, InventoryQuantityInput,
    OptionSetInput, OptionValueInput, ProductSetInput, VariantOptionValue, VariantSetInput,
};
use fibermade_sync::shopify::{
    AccessToken, ClientConfig, ProductIdentifier, QuantityLine, RetryPolicy, Shop, ShopifyClient,
};
use local_stack::{ACCESS_TOKEN, Error, LocalStack, SHOP_DOMAIN, StackOptions};

use crate::table::{Row, Table, int, points, time};
use crate::{STANDARD_BUCKET, STANDARD_RATE, floor, seed_catalog};

/// A catalog: colorways × bases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Catalog {
    pub colorways: usize,
    pub bases: usize,
}

impl Catalog {
    pub fn name(&self) -> String {
        format!("{}×{}", self.colorways, self.bases)
    }
}

/// What one push cost and how long it took.
#[derive(Debug, Clone)]
pub struct PushRun {
    /// GraphQL requests sent, retries included.
    pub calls: u64,
    pub writes: u64,
    pub points: f64,
    pub wall: Duration,
    pub throttled: u64,
    /// Whether the products went through a bulk operation.
    pub bulk: bool,
    pub report: PushReport,
    /// From the push's start to its first Shopify request.
    pub first_call: Option<Duration>,
    /// From the push's start to its last Shopify answer.
    pub last_answer: Option<Duration>,
    pub dynamodb_requests: u64,
    /// The bulk run on Shopify's side at the simulator's pace (start delay
    /// plus one line at a time), when the push used one.
    pub bulk_run: Option<Duration>,
    /// Requests by operation name.
    pub operations: std::collections::BTreeMap<String, u64>,
}

impl PushRun {
    pub fn floor(&self) -> Duration {
        floor(self.points)
    }

    /// Wall time over the floor, when the bucket bounds the push at all.
    pub fn ratio(&self) -> Option<f64> {
        let floor = self.floor().as_secs_f64();
        (floor > 0.0).then(|| self.wall.as_secs_f64() / floor)
    }

    /// The span from the first Shopify request to the last answer, over the
    /// floor: how closely the calls themselves keep to the bucket.
    pub fn span_ratio(&self) -> Option<f64> {
        let floor = self.floor().as_secs_f64();
        let span = self.last_answer?.saturating_sub(self.first_call?);
        (floor > 0.0).then(|| span.as_secs_f64() / floor)
    }
}

/// Everything the push part measured, for the targets.
#[derive(Debug, Default)]
pub struct PushFindings {
    /// (catalog, first push by default, first push with bulk off, no-op, price change)
    pub catalogs: Vec<CatalogRuns>,
    /// (products, bulk, per call) at the sweep's bases.
    pub sweep: Vec<(usize, PushRun, PushRun)>,
    pub sweep_bases: usize,
    /// The simulator's bulk pace: ms in CREATED, ms a line.
    pub bulk_pace: (u64, u64),
}

#[derive(Debug)]
pub struct CatalogRuns {
    pub catalog: Catalog,
    pub first: PushRun,
    pub first_bulk_off: Option<PushRun>,
    pub noop: PushRun,
    pub price: PushRun,
}

/// Samples the client's counters while a push runs, to tell the time before
/// the first Shopify call and after the last answer from the time between.
struct Sampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(Option<Instant>, Option<Instant>)>,
}

impl Sampler {
    fn start(client: ShopifyClient) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let start = client.stats();
            let (mut first, mut last) = (None, None);
            let mut answered = start.calls;
            loop {
                let done = flag.load(Ordering::Relaxed);
                let now = client.stats();
                if first.is_none() && now.requests > start.requests {
                    first = Some(Instant::now());
                }
                if now.calls > answered {
                    answered = now.calls;
                    last = Some(Instant::now());
                }
                if done {
                    return (first, last);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        Self { stop, task }
    }

    async fn stop(self) -> (Option<Instant>, Option<Instant>) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap_or((None, None))
    }
}

/// A client as a function starts with: no pacing state, no statistics.
pub fn fresh_client(stack: &LocalStack) -> Result<ShopifyClient, Error> {
    Ok(ShopifyClient::new(ClientConfig {
        base_url_override: Some(stack.sim.base_url()),
        retry: RetryPolicy::default(),
        request_timeout: Duration::from_secs(30),
    })?)
}

/// One push of the account from a full bucket, with a client of its own.
async fn measure(
    stack: &LocalStack,
    account: &AccountId,
    threshold: usize,
) -> Result<PushRun, Error> {
    stack
        .sim_control
        .configure_bucket(Some(STANDARD_BUCKET), Some(STANDARD_RATE), true)
        .await?;
    let shopify = fresh_client(stack)?;
    let pusher = Pusher::new(stack.store.clone(), shopify.clone()).with_bulk_threshold(threshold);
    let sampler = Sampler::start(shopify.clone());
    let dynamodb = stack.dynamodb_requests.count();
    let started = Instant::now();
    let report = pusher.push(&PushRequest::account(account.clone())).await?;
    let wall = started.elapsed();
    let (first, last) = sampler.stop().await;
    let stats = shopify.stats();
    let bulk = stats.by_operation.contains_key("BulkOperationRunMutation");
    let bulk_run = if bulk {
        let config = stack.sim_control.bulk_config().await?;
        let lines = (report.products_created + report.products_updated) as u32;
        Some(
            Duration::from_millis(config.start_delay_ms)
                + Duration::from_millis(config.line_ms) * lines,
        )
    } else {
        None
    };
    if !report.errors.is_empty() {
        eprintln!(
            "    the push reported {} errors, the first: {:?}",
            report.errors.len(),
            report.errors[0]
        );
    }
    Ok(PushRun {
        calls: stats.requests,
        writes: stats.write_calls(),
        points: stats.actual_cost,
        wall,
        throttled: stats.throttled,
        bulk,
        report,
        first_call: first.map(|t| t.saturating_duration_since(started)),
        last_answer: last.map(|t| t.saturating_duration_since(started)),
        dynamodb_requests: stack.dynamodb_requests.count() - dynamodb,
        bulk_run,
        operations: stats.by_operation,
    })
}

/// A fresh account with the catalog, and an empty shop.
async fn fresh_account(
    stack: &LocalStack,
    name: &str,
    catalog: Catalog,
) -> Result<AccountId, Error> {
    let account = stack.seed_account(name, "user-1", &[], true).await?.id;
    seed_catalog(stack, &account, catalog.colorways, catalog.bases).await?;
    stack.sim_control.reset().await?;
    Ok(account)
}

/// Raises the first base's price by one, as a dyer would.
async fn change_one_price(stack: &LocalStack, account: &AccountId) -> Result<(), Error> {
    let catalog = stack.store.load_catalog(account).await?;
    let mut base = catalog.bases.first().ok_or("no base")?.clone();
    base.retail_price = (base.retail_price.amount() + rust_decimal::Decimal::ONE).try_into()?;
    stack.store.put_base(&base, Writer::Dyer).await?;
    Ok(())
}

fn push_row(part: &str, case: &str, run: &PushRun) -> Row {
    let floor = run.floor();
    let mut note = Vec::new();
    if let (Some(first), Some(last)) = (run.first_call, run.last_answer) {
        let span = last.saturating_sub(first);
        let paced = if floor > Duration::ZERO {
            format!(
                " (the calls' span is {:.2}× the floor)",
                span.as_secs_f64() / floor.as_secs_f64()
            )
        } else {
            String::new()
        };
        note.push(format!(
            "Shopify calls from {} to {}, then {} more{paced}",
            time(first),
            time(last),
            time(run.wall.saturating_sub(last))
        ));
    } else if run.calls == 0 {
        note.push("no Shopify call".to_owned());
    }
    if let Some(bulk_run) = run.bulk_run {
        note.push(format!("bulk run {} on Shopify's side", time(bulk_run)));
    }
    if !run.operations.is_empty() {
        let calls: Vec<String> = run
            .operations
            .iter()
            .map(|(name, n)| format!("{n} {name}"))
            .collect();
        note.push(calls.join(" + "));
    }
    note.push(format!("{} DynamoDB requests", int(run.dynamodb_requests)));
    if !run.report.errors.is_empty() {
        note.push(format!("{} items failed", run.report.errors.len()));
    }
    Row {
        calls: int(run.calls),
        writes: int(run.writes),
        points: points(run.points),
        time: time(run.wall),
        floor: time(floor),
        ratio: run.ratio().map(|r| format!("{r:.2}×")).unwrap_or_default(),
        throttled: int(run.throttled),
        note: note.join("; "),
        ..Row::new(part, case)
    }
}

/// The push part: the catalogs, then the sweep.
pub async fn bench_push(
    table: &mut Table,
    catalogs: &[Catalog],
    bulk_off_for: &[Catalog],
    sweep: &[usize],
    sweep_bases: usize,
) -> Result<PushFindings, Error> {
    let stack = LocalStack::start_with(StackOptions {
        bucket_size: STANDARD_BUCKET,
        restore_rate: STANDARD_RATE,
        ..StackOptions::default()
    })
    .await?;
    let pace = stack.sim_control.bulk_config().await?;
    let mut findings = PushFindings {
        sweep_bases,
        bulk_pace: (pace.start_delay_ms, pace.line_ms),
        ..PushFindings::default()
    };
    for &catalog in catalogs {
        let part = format!("push {}", catalog.name());
        eprintln!(
            "push: {} colorways × {} bases ({} variants)",
            catalog.colorways,
            catalog.bases,
            catalog.colorways * catalog.bases
        );
        let account =
            fresh_account(&stack, &format!("acct-push-{}", catalog.name()), catalog).await?;
        let first = measure(&stack, &account, DEFAULT_BULK_THRESHOLD).await?;
        let first_row = table.rows.len();
        let way = if first.bulk {
            "bulk"
        } else {
            "one call a product"
        };
        table.add(push_row(
            &part,
            &format!("first push ({way}, default)"),
            &first,
        ));

        let noop = measure(&stack, &account, DEFAULT_BULK_THRESHOLD).await?;
        table.add(push_row(&part, "no-op push", &noop));
        change_one_price(&stack, &account).await?;
        let price = measure(&stack, &account, DEFAULT_BULK_THRESHOLD).await?;
        table.add(push_row(&part, "one-base price change", &price));

        // Last, as it empties the shop the pushes above wrote to.
        let first_bulk_off = if bulk_off_for.contains(&catalog) {
            let other = fresh_account(
                &stack,
                &format!("acct-push-{}-calls", catalog.name()),
                catalog,
            )
            .await?;
            let run = measure(&stack, &other, usize::MAX).await?;
            table.insert(
                first_row + 1,
                push_row(&part, "first push (bulk off, one call a product)", &run),
            );
            Some(run)
        } else {
            None
        };

        let baseline = baseline(&stack, catalog).await?;
        for (case, run, ours, which) in [
            (
                "baseline: first push",
                &baseline.first,
                &first,
                "our first push",
            ),
            (
                "baseline: no-op push",
                &baseline.noop,
                &noop,
                "our no-op push",
            ),
            (
                "baseline: one-base price change",
                &baseline.price,
                &price,
                "our price change",
            ),
        ] {
            let against = if ours.calls == 0 {
                format!("{which} makes no call")
            } else {
                format!(
                    "{:.1}× the calls and {:.1}× the points of {which}",
                    run.calls as f64 / ours.calls as f64,
                    run.points / ours.points.max(1.0)
                )
            };
            table.add(Row {
                calls: int(run.calls),
                writes: int(run.writes),
                points: points(run.points),
                floor: time(floor(run.points)),
                note: format!(
                    "{against}; measured without a rate limit in {} (note 2)",
                    time(run.wall)
                ),
                ..Row::new(&part, case)
            });
        }
        findings.catalogs.push(CatalogRuns {
            catalog,
            first,
            first_bulk_off,
            noop,
            price,
        });
    }

    if !sweep.is_empty() {
        eprintln!("push: bulk against one call a product, {sweep_bases} bases");
    }
    let part = format!("bulk vs calls, ×{sweep_bases}");
    for &products in sweep {
        let catalog = Catalog {
            colorways: products,
            bases: sweep_bases,
        };
        // The catalogs above measured this size already, both ways.
        let known = findings.catalogs.iter().find(|c| c.catalog == catalog);
        let (bulk, calls) = match known {
            Some(runs) if runs.first.bulk && runs.first_bulk_off.is_some() => (
                runs.first.clone(),
                runs.first_bulk_off.clone().ok_or("no run")?,
            ),
            _ => {
                let a =
                    fresh_account(&stack, &format!("acct-sweep-{products}-bulk"), catalog).await?;
                let bulk = measure(&stack, &a, 1).await?;
                let b =
                    fresh_account(&stack, &format!("acct-sweep-{products}-calls"), catalog).await?;
                let calls = measure(&stack, &b, usize::MAX).await?;
                (bulk, calls)
            }
        };
        let faster = calls.wall.as_secs_f64() - bulk.wall.as_secs_f64();
        let mut bulk_row = push_row(&part, &format!("{products} products, bulk"), &bulk);
        bulk_row.note = format!(
            "{} than one call a product ({:+.1} s); {}",
            if faster > 0.0 { "faster" } else { "slower" },
            -faster,
            bulk_row.note
        );
        table.add(bulk_row);
        table.add(push_row(
            &part,
            &format!("{products} products, one call a product"),
            &calls,
        ));
        findings.sweep.push((products, bulk, calls));
    }
    Ok(findings)
}

/// Where bulk starts to beat one call a product, from the sweep: the first
/// size at which it is faster, interpolated from the sizes either side.
pub fn crossover(sweep: &[(usize, PushRun, PushRun)]) -> Option<f64> {
    let gain = |(_, bulk, calls): &(usize, PushRun, PushRun)| {
        calls.wall.as_secs_f64() - bulk.wall.as_secs_f64()
    };
    let mut previous: Option<&(usize, PushRun, PushRun)> = None;
    for point in sweep {
        if gain(point) > 0.0 {
            return Some(match previous {
                Some(before) => {
                    let (g0, g1) = (gain(before), gain(point));
                    before.0 as f64 + (point.0 - before.0) as f64 * (-g0) / (g1 - g0)
                }
                None => point.0 as f64,
            });
        }
        previous = Some(point);
    }
    None
}

/// What the baseline measured.
pub struct BaselineRuns {
    pub first: PushRun,
    pub noop: PushRun,
    pub price: PushRun,
}

struct BaselineProduct {
    id: Gid,
    /// Variant, inventory item and quantity, by base.
    variants: Vec<(Gid, Gid, i64)>,
}

/// A naive sync: one call per variant and no stored state. Its first push
/// creates each product with one variant, adds every other variant with its
/// own call and sets every quantity with its own call; every later push
/// writes every variant's price and every quantity again, one call each.
/// Run against the simulator without a rate limit, so it takes seconds; its
/// floor at the standard plan is computed from the points it spent.
async fn baseline(stack: &LocalStack, catalog: Catalog) -> Result<BaselineRuns, Error> {
    stack.sim_control.reset().await?;
    stack
        .sim_control
        .configure_bucket(Some(1.0e9), Some(1.0e9), true)
        .await?;
    let shopify = fresh_client(stack)?;
    let shop = Shop {
        domain: SHOP_DOMAIN.into(),
        access_token: AccessToken::new(ACCESS_TOKEN),
    };
    let run = |started: Instant, before: &fibermade_sync::shopify::CallStats| {
        let after = shopify.stats();
        PushRun {
            calls: after.requests - before.requests,
            writes: after.write_calls() - before.write_calls(),
            points: after.actual_cost - before.actual_cost,
            wall: started.elapsed(),
            throttled: after.throttled - before.throttled,
            bulk: false,
            report: PushReport::default(),
            first_call: None,
            last_answer: None,
            dynamodb_requests: 0,
            bulk_run: None,
            operations: Default::default(),
        }
    };
    let price_of = |b: usize, raised: bool| {
        let extra = usize::from(raised && b == 0);
        format!("{}.50", 20 + b + extra)
    };
    let variant = |b: usize| VariantOptionValue {
        option_name: "Base".into(),
        name: format!("Base {b:02}"),
    };

    let before = shopify.stats();
    let started = Instant::now();
    let location = shopify.locations(&shop).await?.remove(0).id;
    let mut products = Vec::with_capacity(catalog.colorways);
    for c in 0..catalog.colorways {
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
                price: price_of(0, false),
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
        let first = &product.variants.nodes[0];
        let mut variants = vec![(first.id.clone(), first.inventory_item.id.clone())];
        for b in 1..catalog.bases {
            let created = shopify
                .variants_bulk_create(
                    &shop,
                    &product.id,
                    &[BulkVariantInput {
                        id: None,
                        option_values: vec![variant(b)],
                        price: price_of(b, false),
                        inventory_item: Some(InventoryItemInput { tracked: true }),
                        inventory_quantities: Some(vec![BulkInventoryQuantity {
                            location_id: location.clone(),
                            available_quantity: 0,
                        }]),
                    }],
                )
                .await?;
            variants.extend(
                created
                    .into_iter()
                    .map(|v| (v.id.clone(), v.inventory_item.id.clone())),
            );
        }
        let mut stocked = Vec::with_capacity(variants.len());
        for (b, (variant_id, item)) in variants.into_iter().enumerate() {
            let quantity = ((c * 7 + b * 3) % 13) as i64;
            let line = QuantityLine {
                inventory_item_id: item.clone(),
                location_id: location.clone(),
                quantity,
                change_from_quantity: Some(0),
            };
            shopify
                .set_inventory_quantities(
                    &shop,
                    &[line],
                    &format!("baseline-first-{c}-{b}"),
                    "gid://fibermade/Bench/baseline",
                )
                .await?;
            stocked.push((variant_id, item, quantity));
        }
        products.push(BaselineProduct {
            id: product.id,
            variants: stocked,
        });
    }
    let first = run(started, &before);

    let again = |label: &'static str, raised: bool| {
        let shopify = shopify.clone();
        let shop = shop.clone();
        let location = location.clone();
        let products = &products;
        async move {
            for (c, product) in products.iter().enumerate() {
                for (b, (variant_id, item, quantity)) in product.variants.iter().enumerate() {
                    shopify
                        .variants_bulk_update(
                            &shop,
                            &product.id,
                            &[BulkVariantInput {
                                id: Some(variant_id.clone()),
                                option_values: vec![],
                                price: price_of(b, raised),
                                inventory_item: None,
                                inventory_quantities: None,
                            }],
                        )
                        .await?;
                    let line = QuantityLine {
                        inventory_item_id: item.clone(),
                        location_id: location.clone(),
                        quantity: *quantity,
                        change_from_quantity: Some(*quantity),
                    };
                    shopify
                        .set_inventory_quantities(
                            &shop,
                            &[line],
                            &format!("baseline-{label}-{c}-{b}"),
                            "gid://fibermade/Bench/baseline",
                        )
                        .await?;
                }
            }
            Ok::<(), Error>(())
        }
    };
    let before = shopify.stats();
    let started = Instant::now();
    again("noop", false).await?;
    let noop = run(started, &before);
    let before = shopify.stats();
    let started = Instant::now();
    again("price", true).await?;
    let price = run(started, &before);

    stack
        .sim_control
        .configure_bucket(Some(STANDARD_BUCKET), Some(STANDARD_RATE), true)
        .await?;
    Ok(BaselineRuns { first, noop, price })
}
