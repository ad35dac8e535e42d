//! Measures a first push of N colorways two ways against the simulator at
//! standard-plan limits (bucket 2000, 100 points a second): one `productSet`
//! call per product, as the push does today, and one bulk `productSet` run.
//! Prints calls, cost points and wall time for each, and the floor the
//! bucket allows the per-call way.
//!
//! ```sh
//! cargo run -p shopify-sim --example bulk_vs_calls            # N = 50, 200, 1000
//! cargo run -p shopify-sim --example bulk_vs_calls -- 50 200  # chosen sizes
//! cargo run -p shopify-sim --example bulk_vs_calls -- --latency-ms 300 50 200
//! ```
//!
//! The simulator answers at once; `--latency-ms` delays every GraphQL
//! answer by that much, as a real shop's round trip would.
//!
//! Catalogs have 4, 6 and 8 bases (variants a product) for 50, 200 and 1000
//! colorways, as `make bench` uses; other sizes get 8. The bulk run uses the
//! simulator's default pace (see its README): the figures for it are as
//! good as that assumption.

use std::time::{Duration, Instant};

use fibermade_sync::domain::Gid;
use fibermade_sync::shopify::operations::{
    InventoryItemInput, InventoryQuantityInput, OptionSetInput, OptionValueInput, ProductSetInput,
    VariantOptionValue, VariantSetInput,
};
use fibermade_sync::shopify::{
    AccessToken, BulkOptions, ClientConfig, ProductIdentifier, Shop, ShopifyClient,
};
use shopify_sim::{FaultKind, RunningSimulator, SimConfig, SimControl};

const TOKEN: &str = "shpat_measure";

struct Figures {
    calls: u64,
    cost: f64,
    throttled: u64,
    wall: Duration,
    failed: usize,
}

fn bases_for(colorways: usize) -> usize {
    match colorways {
        50 => 4,
        200 => 6,
        _ => 8,
    }
}

fn catalog(
    colorways: usize,
    bases: usize,
    location: &Gid,
) -> Vec<(ProductIdentifier, ProductSetInput)> {
    let names: Vec<String> = (0..bases).map(|b| format!("Base {b}")).collect();
    (0..colorways)
        .map(|n| {
            let handle = format!("colorway-{n}");
            let input = ProductSetInput {
                title: format!("Colorway {n}"),
                handle: handle.clone(),
                description_html: "<p>Hand-dyed.</p>".to_owned(),
                vendor: "Measure Dyer".to_owned(),
                status: "ACTIVE",
                tags: vec!["tonal".to_owned()],
                product_options: vec![OptionSetInput {
                    name: "Base".to_owned(),
                    position: 1,
                    values: names
                        .iter()
                        .map(|name| OptionValueInput { name: name.clone() })
                        .collect(),
                }],
                variants: names
                    .iter()
                    .map(|name| VariantSetInput {
                        id: None,
                        option_values: vec![VariantOptionValue {
                            option_name: "Base".to_owned(),
                            name: name.clone(),
                        }],
                        price: "26.00".to_owned(),
                        inventory_item: InventoryItemInput { tracked: true },
                        inventory_quantities: Some(vec![InventoryQuantityInput {
                            location_id: location.clone(),
                            name: "available",
                            quantity: 5,
                        }]),
                    })
                    .collect(),
                metafields: Vec::new(),
                files: None,
            };
            (ProductIdentifier::Handle(handle), input)
        })
        .collect()
}

struct Stand {
    sim: RunningSimulator,
    shopify: ShopifyClient,
    shop: Shop,
    lines: Vec<(ProductIdentifier, ProductSetInput)>,
}

async fn stand(colorways: usize, latency_ms: u64) -> Result<Stand, Box<dyn std::error::Error>> {
    let sim = RunningSimulator::start(SimConfig {
        access_token: TOKEN.to_owned(),
        ..SimConfig::default()
    })
    .await?;
    let control = SimControl::new(sim.base_url());
    if latency_ms > 0 {
        let every_call = u32::MAX;
        control
            .inject_fault(FaultKind::Latency { ms: latency_ms }, None, every_call)
            .await?;
    }
    let state = control.state().await?;
    let location: Gid = state["locations"][0]["id"]
        .as_str()
        .ok_or("no location")?
        .parse()?;
    let shopify = ShopifyClient::new(ClientConfig {
        base_url_override: Some(sim.base_url()),
        ..ClientConfig::default()
    })?;
    let shop = Shop {
        domain: "fibermade-sim.myshopify.com".to_owned(),
        access_token: AccessToken::new(TOKEN),
    };
    let lines = catalog(colorways, bases_for(colorways), &location);
    Ok(Stand {
        sim,
        shopify,
        shop,
        lines,
    })
}

async fn per_call(
    colorways: usize,
    latency_ms: u64,
) -> Result<Figures, Box<dyn std::error::Error>> {
    let stand = stand(colorways, latency_ms).await?;
    let started = Instant::now();
    let mut failed = 0;
    for (identifier, input) in &stand.lines {
        if stand
            .shopify
            .product_set(&stand.shop, identifier, input)
            .await
            .is_err()
        {
            failed += 1;
        }
    }
    let wall = started.elapsed();
    let stats = stand.shopify.stats();
    stand.sim.shutdown().await;
    Ok(Figures {
        calls: stats.requests,
        cost: stats.actual_cost,
        throttled: stats.throttled,
        wall,
        failed,
    })
}

async fn bulk(
    colorways: usize,
    latency_ms: u64,
) -> Result<(Figures, u32), Box<dyn std::error::Error>> {
    let stand = stand(colorways, latency_ms).await?;
    let started = Instant::now();
    let run = stand
        .shopify
        .product_set_bulk_with(&stand.shop, &stand.lines, &BulkOptions::default())
        .await?;
    let wall = started.elapsed();
    let stats = stand.shopify.stats();
    stand.sim.shutdown().await;
    let failed = run.results.iter().filter(|r| r.is_err()).count();
    Ok((
        Figures {
            calls: stats.requests,
            cost: stats.actual_cost,
            throttled: stats.throttled,
            wall,
            failed,
        },
        run.polls,
    ))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut latency_ms = 0;
    if let Some(at) = args.iter().position(|arg| arg == "--latency-ms") {
        latency_ms = args
            .get(at + 1)
            .ok_or("--latency-ms needs a value")?
            .parse()?;
        args.drain(at..at + 2);
    }
    let sizes: Vec<usize> = args
        .iter()
        .map(|arg| arg.parse())
        .collect::<Result<_, _>>()?;
    let sizes = if sizes.is_empty() {
        vec![50, 200, 1000]
    } else {
        sizes
    };
    let pace = shopify_sim::BulkConfig::default();
    println!(
        "bucket 2000, 100 points/s; bulk pace: {} ms before the first line, {} ms a line; \
         {latency_ms} ms added to each GraphQL answer",
        pace.start_delay_ms, pace.line_ms
    );
    println!(
        "| products × variants | way | calls | cost points | THROTTLED | wall s | floor s | failed |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for colorways in sizes {
        let bases = bases_for(colorways);
        let calls = per_call(colorways, latency_ms).await?;
        let floor = ((calls.cost - 2000.0) / 100.0).max(0.0);
        println!(
            "| {colorways} × {bases} | productSet per product | {} | {:.0} | {} | {:.1} | {floor:.1} | {} |",
            calls.calls,
            calls.cost,
            calls.throttled,
            calls.wall.as_secs_f64(),
            calls.failed
        );
        let (bulk, polls) = bulk(colorways, latency_ms).await?;
        println!(
            "| {colorways} × {bases} | bulk run ({polls} polls) | {} | {:.0} | {} | {:.1} | – | {} |",
            bulk.calls,
            bulk.cost,
            bulk.throttled,
            bulk.wall.as_secs_f64(),
            bulk.failed
        );
    }
    Ok(())
}
