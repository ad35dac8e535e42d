//! sync-worker: queued work that talks to Shopify or applies what Shopify
//! told us: pulled stock from webhook deliveries (the pull queue) and catalog
//! jobs from the observer and large pushes (the catalog queue).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use fibermade_sync::config::{AwsClients, Config, number_env};
use fibermade_sync::jobs::{JobQueue, Worker, handle_sqs_event};
use fibermade_sync::pull::Puller;
use fibermade_sync::push::Pusher;
use fibermade_sync::shopify::ShopifyClient;
use fibermade_sync::store::Store;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    fibermade_sync::telemetry::init();
    let config = Config::from_env()?;
    let aws = AwsClients::from_env(&config).await;
    let store = Store::new(aws.dynamodb.clone(), config.tables.clone());
    let pusher = Pusher::new(store.clone(), ShopifyClient::new(config.shopify.clone())?);
    let worker = Worker {
        puller: Puller::new(store).settling_with(pusher.clone()),
        pusher,
        max_receives: number_env("CATALOG_MAX_RECEIVES", 5)? as u32,
        // The schedule's reconciliation tick fans out on the catalog queue.
        queue: std::env::var("CATALOG_QUEUE_URL")
            .ok()
            .filter(|url| !url.is_empty())
            .map(|url| JobQueue::new(aws.sqs.clone(), url)),
    };
    let worker = &worker;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, Error>(handle_sqs_event(worker, event.payload).await)
    }))
    .await
}
