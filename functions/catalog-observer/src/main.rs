//! catalog-observer: the catalog table's stream → catalog jobs on the queue,
//! for the sync worker to bring to Shopify.

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use fibermade_sync::config::{AwsClients, Config, required_env};
use fibermade_sync::jobs::JobQueue;
use fibermade_sync::observer::Observer;
use fibermade_sync::store::Store;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    fibermade_sync::telemetry::init();
    let config = Config::from_env()?;
    let aws = AwsClients::from_env(&config).await;
    let observer = Observer {
        store: Store::new(aws.dynamodb.clone(), config.tables.clone()),
        queue: JobQueue::new(aws.sqs.clone(), required_env("CATALOG_QUEUE_URL")?),
    };
    let observer = &observer;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        let (response, _) = observer.handle(event.payload).await;
        Ok::<DynamoDbEventResponse, Error>(response)
    }))
    .await
}
