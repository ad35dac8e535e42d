//! `make demo`: a dyer's first day, end to end on the local stack.
//!
//! Starts moto_server and the Shopify simulator, runs the functions under
//! `cargo lambda watch`, uploads each real Shopify export to the imports
//! bucket and hands S3's notification to csv-import, then presses "Push to
//! Shopify" through inventory-push as API Gateway would, and prints what a
//! dyer would want to know. Everything it started stops when it ends.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use local_stack::gateway::{Gateway, GatewayConfig, Issuer, LocalSession};
use local_stack::lambda::LambdaWatch;
use local_stack::{Error, LocalStack, SHOP_DOMAIN, fixture_csv};
use serde_json::{Value, json};

const ACCOUNT: &str = "acct-demo";
const CREATOR: &str = "user-demo-creator";
const EXPORTS: &[&str] = &[
    "legacy-export-2021.csv",
    "template-multi-option.csv",
    "new-format-2025.csv",
];

/// Set once the demo has run and only the page is being served.
static SERVING: AtomicBool = AtomicBool::new(false);
/// Whether shop and catalog agreed at the end of the demo.
static DEMO_OK: AtomicBool = AtomicBool::new(false);

#[tokio::main]
async fn main() {
    let outcome = tokio::select! {
        outcome = run() => outcome,
        // After the demo, ctrl-c is how the page's visitor ends it.
        _ = tokio::signal::ctrl_c() => match SERVING.load(Ordering::SeqCst) {
            true => Ok(DEMO_OK.load(Ordering::SeqCst)),
            false => Err("interrupted".into()),
        },
    };
    // Everything started is stopped by now: the stack and the watcher drop
    // at the end of `run`, on success, failure or interruption alike.
    match outcome {
        Ok(true) => println!("\nDemo finished: shop and catalog agree."),
        Ok(false) => {
            println!("\nDemo finished, but shop and catalog disagree (see above).");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("\nDemo failed: {e}");
            std::process::exit(1);
        }
    }
}

async fn run() -> Result<bool, Error> {
    println!("Fibermade ⇄ Shopify: import a real export and push it to a shop\n");
    let stack = LocalStack::start().await?;
    println!("  moto_server (DynamoDB, S3)  {}", stack.aws_endpoint);
    println!(
        "  Shopify simulator           {} ({SHOP_DOMAIN}, standard plan: 2000 points, 100/s)",
        stack.sim.base_url()
    );
    let started = Instant::now();
    let watch = LambdaWatch::start(&stack.function_env()).await?;
    println!("  functions (cargo lambda)    {}", watch.endpoint());
    warm_up(&watch).await;
    let mut gateway = GatewayConfig::new(
        &watch.endpoint(),
        Some(local_stack::project_root().join("web/dist")),
        Issuer::local(),
    );
    gateway.session = Some(LocalSession {
        account_id: ACCOUNT.to_owned(),
        user_id: CREATOR.to_owned(),
    });
    let api = Api {
        gateway: Gateway::start_with(gateway).await?,
        http: reqwest::Client::new(),
    };
    println!(
        "  API Gateway stand-in (JWT)  {} — the push page: {}/",
        api.gateway.url(),
        api.gateway.url()
    );

    let account = stack
        .seed_account(ACCOUNT, CREATOR, &["user-demo-helper"], true)
        .await?;
    println!(
        "\nDyer: {} (account {ACCOUNT}), linked to {SHOP_DOMAIN}\n",
        account.name
    );

    println!(
        "1. Import: each export uploaded to s3://{}/imports/{ACCOUNT}/, S3 → csv-import",
        stack.bucket
    );
    println!(
        "   {:<28} {:>7} {:>5} {:>9} {:>5} {:>8} {:>7} {:>8}",
        "file", "header", "rows", "colorways", "bases", "variants", "written", "warnings"
    );
    let mut warnings = Vec::new();
    for file in EXPORTS {
        let event = stack
            .upload(&account.id, file, std::fs::read(fixture_csv(file))?)
            .await?;
        let answer = watch.invoke("csv-import", &event).await?;
        let report = &answer[0];
        if let Some(rejected) = report.get("rejected") {
            println!("   {file:<28} rejected: {rejected}");
            continue;
        }
        let written = &report["written"];
        let total: u64 = ["colorways", "bases", "inventory", "media"]
            .iter()
            .map(|k| written[k].as_u64().unwrap_or(0))
            .sum();
        let n = |key: &str| report[key].as_u64().unwrap_or(0);
        println!(
            "   {:<28} {:>7} {:>5} {:>9} {:>5} {:>8} {:>7} {:>8}",
            file,
            report["header"].as_str().unwrap_or("?"),
            n("rows"),
            n("products"),
            n("bases"),
            n("variants"),
            total,
            n("warnings_total")
        );
        for w in report["warnings"].as_array().into_iter().flatten() {
            warnings.push(format!("{file}: {}", w.as_str().unwrap_or_default()));
        }
    }
    if !warnings.is_empty() {
        println!("   warnings ({}):", warnings.len());
        for w in warnings.iter().take(8) {
            println!("   - {}", shorten(w, 110));
        }
        if warnings.len() > 8 {
            println!("   - … {} more in the integration log", warnings.len() - 8);
        }
    }
    let last = EXPORTS[EXPORTS.len() - 1];
    let again = watch
        .invoke(
            "csv-import",
            &stack
                .upload(&account.id, last, std::fs::read(fixture_csv(last))?)
                .await?,
        )
        .await?;
    println!(
        "   importing {last} again wrote {} items",
        again[0]["written"]
            .as_object()
            .map_or(0, |w| w.values().filter_map(Value::as_u64).sum::<u64>())
    );

    let catalog = stack.store.load_catalog(&account.id).await?;
    let skeins: i64 = catalog.inventory.iter().map(|r| r.quantity).sum();
    println!(
        "\n   Fibermade now holds {} colorways, {} bases, {} inventory rows ({} in stock), {} images",
        catalog.colorways.len(),
        catalog.bases.len(),
        catalog.inventory.len(),
        skeins,
        catalog.media.len()
    );

    println!(
        "\n2. Push to Shopify: POST /accounts/{ACCOUNT}/push through API Gateway's JWT authorizer → inventory-push"
    );
    let claims = json!({ "sub": CREATOR, "exp": "4102444800" });
    let preview = call_api(
        &api,
        "POST",
        &format!("/accounts/{ACCOUNT}/push/preview"),
        Some(claims.clone()),
        json!({}),
    )
    .await?;
    println!(
        "   preview: {} products to create, {} variants to create, {} quantities to set ({} variants: the page asks to confirm above 50)",
        preview.1["products_created"],
        preview.1["variants_created"],
        preview.1["quantities_set"],
        preview.1["variants_affected"]
    );
    let refused = call_api(
        &api,
        "POST",
        &format!("/accounts/{ACCOUNT}/push"),
        Some(json!({ "sub": "user-demo-helper", "exp": "4102444800" })),
        json!({}),
    )
    .await?;
    let anonymous = call_api(
        &api,
        "POST",
        &format!("/accounts/{ACCOUNT}/push"),
        None,
        json!({}),
    )
    .await?;
    println!(
        "   a push by another member of the account: HTTP {}; without a token: HTTP {} (from the gateway)",
        refused.0, anonymous.0
    );

    stack.sim_control.clear_calls().await?;
    let push_started = Instant::now();
    let (status, report) = push_and_wait(&stack, &watch, &api, claims.clone()).await?;
    let push_time = push_started.elapsed();
    let stats = stack.sim_control.stats().await?;
    println!(
        "   push finished in {:.1} s ({})",
        push_time.as_secs_f64(),
        if status == 200 {
            "every item reached the shop"
        } else {
            "some items failed"
        }
    );
    println!(
        "     products created {}, variants created {}, variants updated {}, quantities set {}, errors {}",
        report["products_created"],
        report["variants_created"],
        report["variants_updated"],
        report["quantities_set"],
        report["errors"].as_array().map_or(0, Vec::len)
    );
    println!(
        "     Shopify calls {}, cost points {}, THROTTLED answers {}",
        report["shopify_calls"], report["shopify_cost"], stats["throttled"]
    );

    stack.sim_control.clear_calls().await?;
    let (_, second) = call_api(
        &api,
        "POST",
        &format!("/accounts/{ACCOUNT}/push"),
        Some(claims),
        json!({}),
    )
    .await?;
    println!(
        "   second push with nothing changed: {} Shopify calls, {} products unchanged, {} quantities unchanged",
        second["shopify_calls"], second["products_unchanged"], second["quantities_unchanged"]
    );

    let agree = compare(&stack).await?;
    let pulled = sale_on_the_shop(&stack, &watch).await?;
    let followed = catalog_edits_follow(&stack, &watch).await?;
    let (_, log) = call_api(
        &api,
        "GET",
        &format!("/accounts/{ACCOUNT}/sync-log"),
        Some(json!({ "sub": CREATOR })),
        json!(null),
    )
    .await?;
    println!("\n6. Sync activity (newest first):");
    for entry in log["entries"].as_array().into_iter().flatten().take(6) {
        println!(
            "   {} {:<7} {:<11} {}",
            entry["at"].as_str().unwrap_or(""),
            entry["status"].as_str().unwrap_or(""),
            entry["source"].as_str().unwrap_or(""),
            shorten(entry["message"].as_str().unwrap_or(""), 110)
        );
    }
    println!(
        "\nTotal time {:.1} s (the first invocation of each function builds it).",
        started.elapsed().as_secs_f64()
    );
    let ok = agree && pulled && followed;
    DEMO_OK.store(ok, Ordering::SeqCst);
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) && std::env::var_os("CI").is_none() {
        serve_the_page(&stack, &watch, &api).await;
    } else {
        println!(
            "The push page was served at {}/ while the demo ran (run it in a terminal to keep it up).",
            api.gateway.url()
        );
    }
    drop(api);
    drop(watch);
    Ok(ok)
}

/// Starts each function once with an empty event, so the first real
/// invocation does not wait for `cargo lambda watch` to build it: Shopify
/// gives a webhook 5 s, which a build does not fit in.
async fn warm_up(watch: &LambdaWatch) {
    let empty = json!({ "Records": [] });
    let url_request = json!({
        "version": "2.0",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": {},
        "requestContext": { "http": { "method": "POST", "path": "/", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "warm-up" } },
        "body": "",
        "isBase64Encoded": false,
    });
    for (function, event) in [
        ("webhook-ingress", &url_request),
        ("sync-worker", &empty),
        ("catalog-observer", &empty),
    ] {
        // The answer does not matter (the ingress refuses an unsigned body);
        // the build does.
        let _ = watch.invoke(function, event).await;
    }
}

/// Keeps the push page up on the demo's shop until ctrl-c, handing the
/// queues to sync-worker as their event sources would.
async fn serve_the_page(stack: &LocalStack, watch: &LambdaWatch, api: &Api) {
    println!(
        "\nThe push page stays up at {}/ (signed in as the demo dyer). Press ctrl-c to stop.",
        api.gateway.url()
    );
    SERVING.store(true, Ordering::SeqCst);
    let queues = [stack.pull_queue.clone(), stack.catalog_queue.clone()];
    let work = async {
        loop {
            for queue in &queues {
                if let Err(e) = drain_through(stack, watch, queue).await {
                    eprintln!("   the queue could not be handed over: {e}");
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    };
    work.await
}

/// Presses "Push to Shopify". A push touching more variants than one
/// request carries is answered 202 and runs as a job: the catalog queue goes
/// to sync-worker (as the event source mapping would hand it over) while the
/// page would poll the job's status route.
async fn push_and_wait(
    stack: &LocalStack,
    watch: &LambdaWatch,
    api: &Api,
    claims: Value,
) -> Result<(u64, Value), Error> {
    let (status, answer) = call_api(
        api,
        "POST",
        &format!("/accounts/{ACCOUNT}/push"),
        Some(claims.clone()),
        json!({}),
    )
    .await?;
    if status != 202 {
        return Ok((status, answer));
    }
    let status_url = answer["status_url"]
        .as_str()
        .ok_or("no status_url")?
        .to_owned();
    println!(
        "   push: HTTP 202, {} variants is more than one request carries; runs as job {}",
        answer["plan"]["variants_affected"], answer["job_id"]
    );
    let drained = drain_through(stack, watch, &stack.catalog_queue).await?;
    let (_, job) = call_api(api, "GET", &status_url, Some(claims), json!(null)).await?;
    println!(
        "   GET {status_url}: {} ({} of {} products), sync-worker took {} message(s)",
        job["status"],
        job["progress"]["products_done"],
        job["progress"]["products_total"],
        drained.received
    );
    let status = match job["status"].as_str() {
        Some("succeeded") => 200,
        Some("partial") => 207,
        _ => 500,
    };
    Ok((status, job["report"].clone()))
}

/// Feeds a queue to sync-worker through the Invoke API, as Lambda's event
/// source mapping would, with its partial batch responses.
async fn drain_through(
    stack: &LocalStack,
    watch: &LambdaWatch,
    queue: &str,
) -> Result<local_stack::router::Drained, Error> {
    local_stack::router::drain(
        &stack.sqs,
        queue,
        local_stack::router::Feed {
            visibility_timeout: 2,
            passes: 3,
            ..Default::default()
        },
        |event| async move {
            let answer = watch.invoke("sync-worker", &event).await?;
            Ok(answer["batchItemFailures"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned))
                .collect())
        },
    )
    .await
}

/// The dyer turns on automatic catalog sync, changes a base's price and
/// renames a colorway a few times: the catalog table's stream goes to
/// catalog-observer, its jobs through the catalog queue to sync-worker, and
/// the shop follows without a push.
async fn catalog_edits_follow(stack: &LocalStack, watch: &LambdaWatch) -> Result<bool, Error> {
    use fibermade_sync::domain::Writer;
    println!(
        "\n5. Catalog edits reach the shop on their own (stream → catalog-observer → SQS FIFO → sync-worker)"
    );
    let account_id: fibermade_sync::domain::AccountId = ACCOUNT.parse()?;
    let mut stream = stack.catalog_stream().await?;
    let mut account = stack
        .store
        .get_account(&account_id)
        .await?
        .ok_or("account")?;
    account.auto_catalog_sync = true;
    stack.store.put_account(&account).await?;
    let catch_up = observe_and_run(stack, watch, &mut stream).await?;
    println!(
        "   automatic catalog sync turned on: {} jobs, {} Shopify calls (nothing to catch up)",
        catch_up.jobs, catch_up.calls
    );

    let catalog = stack.store.load_catalog(&account_id).await?;
    let mut base = catalog.bases.first().ok_or("no base")?.clone();
    let old_price = base.retail_price;
    base.retail_price = (old_price.amount() + rust_decimal::Decimal::new(150, 2)).try_into()?;
    stack.store.put_base(&base, Writer::Dyer).await?;
    let priced = observe_and_run(stack, watch, &mut stream).await?;
    let state = stack.sim_control.state().await?;
    let products = state["products"].as_array().cloned().unwrap_or_default();
    let with_price = products
        .iter()
        .filter(|p| {
            p["variants"].as_array().into_iter().flatten().any(|v| {
                v["selectedOptions"][0]["value"] == base.descriptor.as_str()
                    && v["price"] == base.retail_price.to_string()
            })
        })
        .count();
    println!(
        "   {} {old_price} → {}: {} jobs, {} Shopify calls, {} cost points, {:.1} s; {with_price} of {} products show it",
        base.descriptor,
        base.retail_price,
        priced.jobs,
        priced.calls,
        priced.cost,
        priced.seconds,
        products.len()
    );

    let mut colorway = catalog.colorways.first().ok_or("no colorway")?.clone();
    for take in 1..=5 {
        colorway.name = format!("{} (take {take})", catalog.colorways[0].name);
        stack.store.put_colorway(&colorway, Writer::Dyer).await?;
    }
    let renamed = observe_and_run(stack, watch, &mut stream).await?;
    let title = stack
        .sim_control
        .product_by_handle(colorway.handle.as_str())
        .await?
        .map(|p| p["title"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default();
    println!(
        "   five quick renames of {}: {} job, {} Shopify call; the product is now titled {title:?}",
        catalog.colorways[0].name, renamed.jobs, renamed.calls
    );
    let ok = with_price == products.len() && title == colorway.name;
    if !ok {
        println!("   check FAILED: the shop did not follow every edit");
    }
    Ok(ok)
}

struct Followed {
    jobs: usize,
    calls: u64,
    cost: f64,
    seconds: f64,
}

/// One pass of the catalog sync's wiring through the functions under
/// `cargo lambda watch`: new stream records (filtered as the template
/// filters them) to catalog-observer, then the catalog queue to sync-worker.
async fn observe_and_run(
    stack: &LocalStack,
    watch: &LambdaWatch,
    stream: &mut local_stack::stream::StreamSource,
) -> Result<Followed, Error> {
    let started = Instant::now();
    stack.sim_control.clear_calls().await?;
    let before = stack.sim_control.stats().await?;
    stream
        .deliver(|event| async move {
            let answer = watch.invoke("catalog-observer", &event).await?;
            Ok(answer["batchItemFailures"]
                .as_array()
                .and_then(|f| f.first())
                .and_then(|f| f["itemIdentifier"].as_str().map(str::to_owned)))
        })
        .await?;
    let drained = drain_through(stack, watch, &stack.catalog_queue).await?;
    let calls = stack.sim_control.calls().await?;
    let after = stack.sim_control.stats().await?;
    let cost = |stats: &Value| stats["actualCost"].as_f64().unwrap_or(0.0);
    Ok(Followed {
        jobs: drained.received,
        calls: calls.len() as u64,
        cost: cost(&after) - cost(&before),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// A customer buys two skeins on the shop: Shopify's signed webhook goes to
/// webhook-ingress's Function URL, the queue hands it to sync-worker, and
/// Fibermade's stock follows.
async fn sale_on_the_shop(stack: &LocalStack, watch: &LambdaWatch) -> Result<bool, Error> {
    let ingress_url = format!("{}/lambda-url/webhook-ingress/", watch.endpoint());
    let shop = fibermade_sync::shopify::Shop {
        domain: SHOP_DOMAIN.to_owned(),
        access_token: fibermade_sync::shopify::AccessToken::new(local_stack::ACCESS_TOKEN),
    };
    let (registration, _) = fibermade_sync::webhook::registration::ensure_inventory_subscription(
        &stack.shopify,
        &shop,
        &ingress_url,
    )
    .await?;
    println!(
        "\n4. A sale on the shop reaches Fibermade (webhook → webhook-ingress → SQS → sync-worker)"
    );
    println!(
        "   subscription INVENTORY_LEVELS_UPDATE → {ingress_url}: {}",
        match registration {
            fibermade_sync::webhook::registration::Registration::Created(_) => "created",
            fibermade_sync::webhook::registration::Registration::AlreadyRegistered(_) =>
                "already there",
        }
    );

    let catalog = stack.store.load_catalog(&ACCOUNT.parse()?).await?;
    let row = catalog
        .inventory
        .iter()
        .filter(|r| r.quantity >= 2)
        .max_by_key(|r| r.quantity)
        .ok_or("no stock to sell")?;
    let colorway = catalog
        .colorways
        .iter()
        .find(|c| c.id == row.key.colorway_id)
        .ok_or("colorway")?;
    let base = catalog
        .bases
        .iter()
        .find(|b| b.id == row.key.base_id)
        .ok_or("base")?;
    let (integration, _) = stack
        .store
        .account_integration(&ACCOUNT.parse()?)
        .await?
        .ok_or("integration")?;
    let item = stack
        .store
        .load_links(&integration.id)
        .await?
        .into_iter()
        .find(|l| {
            l.local == fibermade_sync::domain::LocalRef::Inventory(row.key.clone())
                && l.external_type == fibermade_sync::domain::ExternalType::ShopifyInventoryItem
        })
        .ok_or("the row is not linked")?;
    let before = row.quantity;

    stack
        .sim_control
        .sale(item.external_id.as_str(), None, 2)
        .await?;
    stack.sim_control.flush_webhooks().await?;
    let deliveries = stack.sim_control.webhook_deliveries().await?;
    let statuses: Vec<String> = deliveries
        .iter()
        .map(|d| {
            d.status
                .map_or_else(|| "no answer".to_owned(), |s| format!("HTTP {s}"))
        })
        .collect();
    println!(
        "   {} / {}: 2 sold on the shop; deliveries {}",
        colorway.name,
        base.descriptor,
        statuses.join(", ")
    );

    let drained =
        local_stack::router::drain_queue_with(&stack.sqs, &stack.pull_queue, |event| async move {
            let answer = watch.invoke("sync-worker", &event).await?;
            Ok(answer["batchItemFailures"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned))
                .collect())
        })
        .await?;
    let after = stack
        .store
        .get_inventory(&ACCOUNT.parse()?, &row.key)
        .await?
        .map(|r| r.quantity)
        .unwrap_or(i64::MIN);
    println!(
        "   sync-worker: {} message(s), {} failed; Fibermade stock {before} → {after}",
        drained.received, drained.failed
    );
    let ok = after == before - 2;
    if !ok {
        println!("   check FAILED: expected {}", before - 2);
    }
    Ok(ok)
}

/// The push API as the page reaches it: the API Gateway stand-in, which
/// checks the JWT from the local issuer and hands inventory-push the event
/// the HTTP API sends, with the token's claims.
struct Api {
    gateway: Gateway,
    http: reqwest::Client,
}

/// Calls the push API as `claims["sub"]` (a token from the local issuer), or
/// without a token; returns the HTTP status and the JSON body.
async fn call_api(
    api: &Api,
    method: &str,
    path: &str,
    claims: Option<Value>,
    body: Value,
) -> Result<(u64, Value), Error> {
    let url = format!("{}{path}", api.gateway.url());
    let mut request = match method {
        "GET" => api.http.get(url),
        _ => api.http.post(url).json(&body),
    };
    if let Some(user) = claims.as_ref().and_then(|c| c["sub"].as_str()) {
        request = request.bearer_auth(api.gateway.token_for(user));
    }
    let response = request.send().await?;
    let status = u64::from(response.status().as_u16());
    let text = response.text().await?;
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok((status, body))
}

/// Compares every colorway × base of the catalog with the shop.
async fn compare(stack: &LocalStack) -> Result<bool, Error> {
    let catalog = stack.store.load_catalog(&ACCOUNT.parse()?).await?;
    let state = stack.sim_control.state().await?;
    let mut shop: BTreeMap<(String, String), (String, i64)> = BTreeMap::new();
    let products = state["products"].as_array().cloned().unwrap_or_default();
    for product in &products {
        for variant in product["variants"].as_array().into_iter().flatten() {
            let base = variant["selectedOptions"][0]["value"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            let available = variant["levels"][0]["available"]
                .as_i64()
                .unwrap_or(i64::MIN);
            shop.insert(
                (product["handle"].as_str().unwrap_or("").to_owned(), base),
                (
                    variant["price"].as_str().unwrap_or("").to_owned(),
                    available,
                ),
            );
        }
    }
    let on_shop: i64 = shop.values().map(|(_, q)| *q).sum();
    println!(
        "\n3. The shop now: {} products, {} variants, {} in stock",
        products.len(),
        shop.len(),
        on_shop
    );

    let mut mismatches = Vec::new();
    for row in &catalog.inventory {
        let colorway = catalog
            .colorways
            .iter()
            .find(|c| c.id == row.key.colorway_id);
        let base = catalog.bases.iter().find(|b| b.id == row.key.base_id);
        let (Some(colorway), Some(base)) = (colorway, base) else {
            continue;
        };
        let key = (colorway.handle.to_string(), base.descriptor.to_string());
        match shop.get(&key) {
            Some((price, q)) if *q == row.quantity && *price == base.retail_price.to_string() => {}
            other => mismatches.push(format!(
                "{} / {}: Fibermade {} at {}, shop {:?}",
                key.0, key.1, row.quantity, base.retail_price, other
            )),
        }
    }
    let expected = catalog.colorways.len() * catalog.bases.len();
    let agree = mismatches.is_empty()
        && shop.len() == expected
        && products.len() == catalog.colorways.len();
    if agree {
        println!(
            "   check: every colorway × base ({expected}) has the same price and stock on both sides ✔"
        );
    } else {
        println!(
            "   check FAILED: {} differences, {} variants on the shop for {expected} expected",
            mismatches.len(),
            shop.len()
        );
        for m in mismatches.iter().take(10) {
            println!("   - {m}");
        }
    }
    Ok(agree)
}

/// Wraps a long line for the terminal, continuing under `indent`.
fn shorten(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = 0;
    for word in text.split_whitespace() {
        if line > 0 && line + 1 + word.chars().count() > width {
            out.push_str("\n     ");
            line = 0;
        } else if line > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(word);
        line += word.chars().count();
    }
    out
}
