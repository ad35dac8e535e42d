//! inventory-push: the "Push to Shopify" API behind API Gateway's JWT authorizer.

use std::convert::Infallible;

use fibermade_sync::config::{AwsClients, Config, number_env};
use fibermade_sync::jobs::JobQueue;
use fibermade_sync::push::Pusher;
use fibermade_sync::push::http::{self, DEFAULT_JOB_THRESHOLD, PushApi};
use fibermade_sync::shopify::ShopifyClient;
use fibermade_sync::store::Store;
use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    fibermade_sync::telemetry::init();
    let config = Config::from_env()?;
    let aws = AwsClients::from_env(&config).await;
    let api = PushApi {
        pusher: Pusher::new(
            Store::new(aws.dynamodb.clone(), config.tables.clone()),
            ShopifyClient::new(config.shopify.clone())?,
        ),
        // Without the catalog queue every push runs within its request.
        jobs: std::env::var("CATALOG_QUEUE_URL")
            .ok()
            .filter(|url| !url.is_empty())
            .map(|url| JobQueue::new(aws.sqs.clone(), url)),
        job_threshold: number_env("PUSH_JOB_THRESHOLD", DEFAULT_JOB_THRESHOLD)?,
    };
    let api = &api;
    lambda_http::run(service_fn(move |request: Request| async move {
        Ok::<_, Infallible>(http::handle(api, request).await)
    }))
    .await
}
