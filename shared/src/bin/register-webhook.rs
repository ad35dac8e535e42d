//! Registers the shop's `INVENTORY_LEVELS_UPDATE` webhook to point at the
//! ingress URL, once: running it again changes nothing.
//!
//! ```sh
//! SHOPIFY_ACCESS_TOKEN=shpat_… register-webhook --shop dyer.myshopify.com --url https://…lambda-url…/
//! ```
//! The token is read from the environment, never from the command line,
//! where other users of the machine could see it. `--api-base` sends the
//! calls elsewhere (the local simulator).

use fibermade_sync::shopify::{AccessToken, ClientConfig, Shop, ShopifyClient};
use fibermade_sync::webhook::registration::{Registration, TOPIC, ensure_inventory_subscription};

fn usage() -> ! {
    eprintln!(
        "usage: SHOPIFY_ACCESS_TOKEN=… register-webhook --shop <shop>.myshopify.com --url <ingress URL> [--api-base <url>]"
    );
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let mut shop = None;
    let mut url = None;
    let mut api_base = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--shop" => shop = Some(value),
            "--url" => url = Some(value),
            "--api-base" => api_base = Some(value),
            _ => usage(),
        }
    }
    let (Some(shop), Some(url)) = (shop, url) else {
        usage()
    };
    let Ok(token) = std::env::var("SHOPIFY_ACCESS_TOKEN") else {
        eprintln!(
            "SHOPIFY_ACCESS_TOKEN is not set: export the shop's Admin API access token first"
        );
        std::process::exit(2)
    };
    if !url.starts_with("https://") && api_base.is_none() {
        eprintln!("the ingress URL must be https:// (Shopify refuses plain http)");
        std::process::exit(2)
    }

    let client = match ShopifyClient::new(ClientConfig {
        base_url_override: api_base,
        ..ClientConfig::default()
    }) {
        Ok(client) => client,
        Err(e) => {
            eprintln!("could not build the HTTP client: {e}");
            std::process::exit(1)
        }
    };
    let shop = Shop {
        domain: shop,
        access_token: AccessToken::new(token),
    };
    match ensure_inventory_subscription(&client, &shop, &url).await {
        Ok((registration, others)) => {
            match registration {
                Registration::AlreadyRegistered(s) => {
                    println!("{TOPIC} already goes to {} ({})", s.uri, s.id)
                }
                Registration::Created(s) => println!("{TOPIC} now goes to {} ({})", s.uri, s.id),
            }
            for other in others {
                println!(
                    "note: {} also sends {TOPIC} to {}; left alone",
                    other.id, other.uri
                );
            }
        }
        Err(e) => {
            eprintln!("registration failed: {e}");
            std::process::exit(1)
        }
    }
}
