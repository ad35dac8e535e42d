//! webhook-ingress: Shopify's `inventory_levels/update` deliveries on a
//! Lambda Function URL → verified, checked, queued for the sync worker.

use std::convert::Infallible;

use fibermade_sync::config::{AwsClients, Config, required_env};
use fibermade_sync::store::Store;
use fibermade_sync::webhook::ingress::{self, Ingress};
use fibermade_sync::webhook::signature::WebhookSecret;
use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    fibermade_sync::telemetry::init();
    let config = Config::from_env()?;
    let aws = AwsClients::from_env(&config).await;
    let ingress = Ingress {
        store: Store::new(aws.dynamodb.clone(), config.tables.clone()),
        sqs: aws.sqs.clone(),
        queue_url: required_env("PULL_QUEUE_URL")?,
        // Limitation: the secret arrives in the environment, resolved from
        // Secrets Manager at deploy time, so whoever may read the function's
        // configuration can read it; fetching it here at cold start would not.
        secret: WebhookSecret::new(required_env("SHOPIFY_WEBHOOK_SECRET")?),
    };
    let ingress = &ingress;
    lambda_http::run(service_fn(move |request: Request| async move {
        Ok::<_, Infallible>(ingress::handle(ingress, request).await)
    }))
    .await
}
