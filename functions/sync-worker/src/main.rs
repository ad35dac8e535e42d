//! sync-worker: queued work that talks to Shopify or applies what Shopify
//! told us; today, pulled stock from webhook deliveries.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use fibermade_sync::config::{AwsClients, Config};
use fibermade_sync::pull::{Puller, handle_sqs_event};
use fibermade_sync::store::Store;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    fibermade_sync::telemetry::init();
    let config = Config::from_env()?;
    let aws = AwsClients::from_env(&config).await;
    let puller = Puller::new(Store::new(aws.dynamodb.clone(), config.tables.clone()));
    let puller = &puller;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, Error>(handle_sqs_event(puller, event.payload).await)
    }))
    .await
}
