//! `make web`: the push page on the local stack, for a person to click.
//!
//! Starts moto_server and the Shopify simulator, runs the functions under
//! `cargo lambda watch`, gives the demo dyer a catalog (the real Shopify
//! exports, through csv-import), subscribes the shop's inventory webhook to
//! webhook-ingress, and serves the page and the API behind the gateway
//! stand-in. A sale made on the simulated shop reaches the activity panel:
//! the pull queue is handed to sync-worker every second. Runs until ctrl-c,
//! then stops everything it started.
//!
//! `PORT` picks the page's port (default: a free one); `RUST_LOG=info`
//! prints every request the gateway forwards.

use std::time::Duration;

use local_stack::gateway::{Gateway, GatewayConfig, Issuer, LocalSession};
use local_stack::lambda::LambdaWatch;
use local_stack::{Error, LocalStack, SHOP_DOMAIN, fixture_csv, project_root};

const ACCOUNT: &str = "acct-demo";
const CREATOR: &str = "user-demo-creator";
const HELPER: &str = "user-demo-helper";
const EXPORTS: &[&str] = &[
    "legacy-export-2021.csv",
    "template-multi-option.csv",
    "new-format-2025.csv",
];

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run().await {
        eprintln!("\nThe push page could not be served: {e}");
        std::process::exit(1);
    }
    println!("\nStopped.");
}

async fn run() -> Result<(), Error> {
    let web_dist = project_root().join("web/dist");
    if !web_dist.join("index.html").exists() {
        return Err("the page is not built: run `make web-build`".into());
    }
    let port: u16 = match std::env::var("PORT") {
        Ok(p) if !p.is_empty() => p.parse().map_err(|_| format!("PORT={p} is not a port"))?,
        _ => 0,
    };

    println!("Starting the local stack for the push page…");
    let stack = LocalStack::start().await?;
    let watch = LambdaWatch::start(&stack.function_env()).await?;
    stack
        .seed_account(ACCOUNT, CREATOR, &[HELPER], true)
        .await?;
    for file in EXPORTS {
        let event = stack
            .upload(&ACCOUNT.parse()?, file, std::fs::read(fixture_csv(file))?)
            .await?;
        let answer = watch.invoke("csv-import", &event).await?;
        println!("  imported {file}: {} products", answer[0]["products"]);
    }
    let ingress = format!("{}/lambda-url/webhook-ingress/", watch.endpoint());
    let shop = fibermade_sync::shopify::Shop {
        domain: SHOP_DOMAIN.to_owned(),
        access_token: fibermade_sync::shopify::AccessToken::new(local_stack::ACCESS_TOKEN),
    };
    fibermade_sync::webhook::registration::ensure_inventory_subscription(
        &stack.shopify,
        &shop,
        &ingress,
    )
    .await?;

    let mut config = GatewayConfig::new(&watch.endpoint(), Some(web_dist), Issuer::local());
    config.session = Some(LocalSession {
        account_id: ACCOUNT.to_owned(),
        user_id: CREATOR.to_owned(),
    });
    config.port = port;
    let gateway = Gateway::start_with(config).await?;

    println!("\nThe push page: {}/", gateway.url());
    println!("  signed in as {CREATOR}, the creator of {ACCOUNT} (shop {SHOP_DOMAIN})");
    println!(
        "  as the helper, who may read the activity but not push: {}",
        gateway.page_url(ACCOUNT, HELPER)
    );
    println!(
        "  a sale on the shop: POST {}/_sim/sale with an inventory_item_id from /_sim/state",
        stack.sim.base_url()
    );
    println!("Press ctrl-c to stop.");

    // The queues' event sources: sales pulled from the shop, and the
    // catalog queue large pushes and catalog edits run from.
    let queues = [stack.pull_queue.clone(), stack.catalog_queue.clone()];
    let workers = async {
        loop {
            for queue in &queues {
                drain(&stack, &watch, queue).await;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    tokio::select! {
        () = workers => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    drop(gateway);
    drop(watch);
    Ok(())
}

/// Hands what waits on `queue` to sync-worker, as the event source would.
async fn drain(stack: &LocalStack, watch: &LambdaWatch, queue: &str) {
    let drained = local_stack::router::drain_queue_with(&stack.sqs, queue, |event| async move {
        let answer = watch.invoke("sync-worker", &event).await?;
        Ok(answer["batchItemFailures"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned))
            .collect())
    })
    .await;
    if let Err(e) = drained {
        tracing::warn!(queue, error = %e, "could not hand the queue to sync-worker");
    }
}
