//! inventory-push: the "Push to Shopify" API behind API Gateway's JWT authorizer.

use std::convert::Infallible;

use fibermade_sync::config::{AwsClients, Config};
use fibermade_sync::push::{Pusher, http};
use fibermade_sync::shopify::ShopifyClient;
use fibermade_sync::store::Store;
use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    fibermade_sync::telemetry::init();
    let config = Config::from_env()?;
    let aws = AwsClients::from_env(&config).await;
    let pusher = Pusher::new(
        Store::new(aws.dynamodb.clone(), config.tables.clone()),
        ShopifyClient::new(config.shopify.clone())?,
    );
    let pusher = &pusher;
    lambda_http::run(service_fn(move |request: Request| async move {
        Ok::<_, Infallible>(http::handle(pusher, request).await)
    }))
    .await
}
