//! csv-import: S3 ObjectCreated on the imports bucket → the Fibermade catalog.

use aws_lambda_events::event::s3::S3Event;
use fibermade_sync::config::{AwsClients, Config};
use fibermade_sync::import::{Importer, handle_s3_event};
use fibermade_sync::shopify::ShopifyClient;
use fibermade_sync::store::Store;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    fibermade_sync::telemetry::init();
    let config = Config::from_env()?;
    let aws = AwsClients::from_env(&config).await;
    let importer = Importer::new(
        Store::new(aws.dynamodb.clone(), config.tables.clone()),
        ShopifyClient::new(config.shopify.clone())?,
    );
    let importer = &importer;
    let s3 = &aws.s3;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<S3Event>| async move {
        handle_s3_event(importer, s3, event.payload).await
    }))
    .await
}
