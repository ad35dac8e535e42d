//! The local stack: `moto_server` for DynamoDB, SQS and S3 on loopback, the
//! Shopify simulator, and the AWS resources the functions use, created with
//! the same shapes as `template.yaml`. End-to-end tests and the demo start it
//! through [`LocalStack::start`]; everything it starts stops when it drops.

pub mod chaos;
pub mod gateway;
pub mod lambda;
pub mod moto;
pub mod resources;
pub mod router;
pub mod stream;

use std::path::PathBuf;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::config::{Credentials, Region};
use fibermade_sync::domain::{Account, AccountId, Integration, IntegrationId, UserId};
use fibermade_sync::import::{ImportError, ImportReport, Importer, handle_s3_event};
use fibermade_sync::push::Pusher;
use fibermade_sync::shopify::{AccessToken, ClientConfig, RetryPolicy, ShopifyClient};
use fibermade_sync::store::{Store, Tables};
use shopify_sim::{RunningSimulator, SimConfig, SimControl};

pub use moto::MotoServer;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The shop every local integration is linked to.
pub const SHOP_DOMAIN: &str = "example-dyer.myshopify.com";
/// The app's webhook signing secret on the local stack.
pub const WEBHOOK_SECRET: &str = "shpss_local_webhook_secret";

/// The simulator's Admin API access token.
pub const ACCESS_TOKEN: &str = "shpat_local_test_token";

/// The project's root folder.
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The shared reference data beside the project (schema, real exports).
pub fn shared_dir() -> PathBuf {
    project_root().join("../shared")
}

/// A real Shopify export from the shared fixtures.
pub fn fixture_csv(name: &str) -> PathBuf {
    shared_dir().join("fixtures/csv").join(name)
}

/// How to start the stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Shopify's bucket: size and points restored a second.
    pub bucket_size: f64,
    pub restore_rate: f64,
    /// The client's retry policy; tests shorten the waits.
    pub retry: RetryPolicy,
    /// The catalog queue's delay (the template's `CatalogSyncDelaySeconds`;
    /// tests that do not measure coalescing use 0).
    pub catalog_delay_seconds: u32,
    /// Receives of a catalog job before the dead-letter queue.
    pub catalog_max_receives: u32,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            bucket_size: 2000.0,
            restore_rate: 100.0,
            retry: RetryPolicy {
                max_attempts: 5,
                base_delay: Duration::from_millis(20),
                max_delay: Duration::from_millis(200),
                max_throttled: 50,
            },
            catalog_delay_seconds: 0,
            catalog_max_receives: 3,
        }
    }
}

/// A running local stack.
pub struct LocalStack {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub tables: Tables,
    pub bucket: String,
    /// The pull queue (webhook ingress → sync worker) and its dead-letter queue.
    pub pull_queue: String,
    pub pull_dlq: String,
    /// The catalog queue (observer and large pushes → sync worker), FIFO.
    pub catalog_queue: String,
    pub catalog_dlq: String,
    pub catalog_max_receives: u32,
    pub streams: aws_sdk_dynamodbstreams::Client,
    /// DynamoDB requests the stack's clients have sent.
    pub dynamodb_requests: DynamoDbRequests,
    pub store: Store,
    pub shopify: ShopifyClient,
    pub sim: RunningSimulator,
    pub sim_control: SimControl,
    pub aws_endpoint: String,
    _moto: Option<MotoServer>,
}

impl LocalStack {
    pub async fn start() -> Result<Self, Error> {
        Self::start_with(StackOptions::default()).await
    }

    /// Starts (or joins) moto, starts a simulator, and creates a fresh set of
    /// tables and a bucket with names of their own, so tests sharing one moto
    /// server never see each other's data.
    pub async fn start_with(options: StackOptions) -> Result<Self, Error> {
        let (endpoint, moto) = match std::env::var("MOTO_ENDPOINT") {
            Ok(endpoint) if !endpoint.is_empty() => (endpoint, None),
            _ => {
                let moto = MotoServer::start().await?;
                (moto.endpoint(), Some(moto))
            }
        };

        let shared = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "local-stack",
            ))
            .load()
            .await;
        let dynamodb_requests = DynamoDbRequests::default();
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&shared)
                .interceptor(dynamodb_requests.clone())
                .build(),
        );
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&shared)
                .force_path_style(true)
                .build(),
        );
        let sqs = aws_sdk_sqs::Client::new(&shared);
        let streams = aws_sdk_dynamodbstreams::Client::new(&shared);

        let suffix = uuid_suffix();
        let tables = Tables {
            catalog: format!("fibermade-catalog-{suffix}"),
            sync: format!("fibermade-sync-{suffix}"),
        };
        let bucket = format!("fibermade-imports-{suffix}");
        resources::create_tables(&dynamodb, &tables).await?;
        resources::create_bucket(&s3, &bucket).await?;
        let (pull_queue, pull_dlq) = resources::create_pull_queues(&sqs, &suffix, 3).await?;
        let (catalog_queue, catalog_dlq) = resources::create_catalog_queues(
            &sqs,
            &suffix,
            options.catalog_max_receives,
            options.catalog_delay_seconds,
        )
        .await?;

        let sim = RunningSimulator::start(SimConfig {
            access_token: ACCESS_TOKEN.to_owned(),
            shop_domain: SHOP_DOMAIN.to_owned(),
            bucket_size: options.bucket_size,
            restore_rate: options.restore_rate,
            webhook_secret: WEBHOOK_SECRET.to_owned(),
            ..SimConfig::default()
        })
        .await?;
        let sim_control = SimControl::new(sim.base_url());
        let shopify = ShopifyClient::new(ClientConfig {
            base_url_override: Some(sim.base_url()),
            retry: options.retry,
            request_timeout: Duration::from_secs(10),
        })?;
        let store = Store::new(dynamodb.clone(), tables.clone());

        Ok(Self {
            dynamodb,
            s3,
            sqs,
            tables,
            bucket,
            pull_queue,
            pull_dlq,
            catalog_queue,
            catalog_dlq,
            catalog_max_receives: options.catalog_max_receives,
            streams,
            dynamodb_requests,
            store,
            shopify,
            sim,
            sim_control,
            aws_endpoint: endpoint,
            _moto: moto,
        })
    }

    pub fn pusher(&self) -> Pusher {
        Pusher::new(self.store.clone(), self.shopify.clone())
    }

    pub fn observer(&self) -> fibermade_sync::observer::Observer {
        fibermade_sync::observer::Observer {
            store: self.store.clone(),
            queue: fibermade_sync::jobs::JobQueue::new(self.sqs.clone(), &self.catalog_queue),
        }
    }

    pub fn worker(&self) -> fibermade_sync::jobs::Worker {
        fibermade_sync::jobs::Worker {
            puller: self.puller(),
            pusher: self.pusher(),
            max_receives: self.catalog_max_receives,
            queue: Some(fibermade_sync::jobs::JobQueue::new(
                self.sqs.clone(),
                &self.catalog_queue,
            )),
        }
    }

    /// The catalog table's stream, from now on.
    pub async fn catalog_stream(&self) -> Result<stream::StreamSource, Error> {
        stream::StreamSource::open(self.streams.clone(), &self.dynamodb, &self.tables.catalog).await
    }

    /// Plays the catalog sync's AWS wiring once, in process: the stream's new
    /// records (through the template's filters) to the observer, then the
    /// catalog queue to the worker until it is empty.
    pub async fn sync_catalog(
        &self,
        stream: &mut stream::StreamSource,
    ) -> Result<CatalogPass, Error> {
        let observer = self.observer();
        let observed = std::rc::Rc::new(std::cell::RefCell::new(
            fibermade_sync::observer::ObserverReport::default(),
        ));
        let delivered = stream
            .deliver(|event| {
                let observer = observer.clone();
                let observed = observed.clone();
                async move {
                    let event = serde_json::from_value(event)?;
                    let (response, report) = observer.handle(event).await;
                    let mut observed = observed.borrow_mut();
                    observed.changes += report.changes;
                    observed.jobs_queued += report.jobs_queued;
                    observed.coalesced += report.coalesced;
                    observed.skipped_flag_off += report.skipped_flag_off;
                    Ok(response
                        .batch_item_failures
                        .into_iter()
                        .next()
                        .and_then(|f| f.item_identifier))
                }
            })
            .await?;
        // A short visibility timeout, so a test can see a failed job again
        // without waiting the template's six minutes.
        let drained = self
            .drain_catalog_queue(router::Feed {
                visibility_timeout: 1,
                ..router::Feed::default()
            })
            .await?;
        let observed = observed.borrow().clone();
        Ok(CatalogPass {
            delivered,
            observed,
            drained,
        })
    }

    /// The stream's new records to the observer only; the jobs stay queued.
    pub async fn observe_only(
        &self,
        stream: &mut stream::StreamSource,
    ) -> Result<fibermade_sync::observer::ObserverReport, Error> {
        let observer = self.observer();
        let mut report = fibermade_sync::observer::ObserverReport::default();
        let records = stream.read_new().await?;
        let kept: Vec<_> = records.into_iter().filter(stream::passes_filters).collect();
        if !kept.is_empty() {
            let event = serde_json::from_value(serde_json::json!({ "Records": kept }))?;
            report = observer.handle(event).await.1;
        }
        Ok(report)
    }

    /// As [`Self::sync_catalog`], waiting for delayed jobs to become
    /// visible (a queue with `CatalogSyncDelaySeconds`).
    pub async fn sync_catalog_waiting(
        &self,
        stream: &mut stream::StreamSource,
    ) -> Result<CatalogPass, Error> {
        let mut pass = self.sync_catalog(stream).await?;
        while self.queue_depth(&self.catalog_queue).await? > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            let drained = self
                .drain_catalog_queue(router::Feed {
                    visibility_timeout: 1,
                    ..router::Feed::default()
                })
                .await?;
            pass.drained.received += drained.received;
            pass.drained.failed += drained.failed;
        }
        Ok(pass)
    }

    /// Feeds the catalog queue to the worker, in process.
    pub async fn drain_catalog_queue(&self, feed: router::Feed) -> Result<router::Drained, Error> {
        // The template's batch size for the catalog queue.
        let feed = router::Feed {
            batch_size: lambda::CATALOG_BATCH_SIZE,
            ..feed
        };
        let worker = self.worker();
        router::drain(&self.sqs, &self.catalog_queue, feed, |event| {
            let worker = worker.clone();
            async move {
                let event = serde_json::from_value(event)?;
                let response = fibermade_sync::jobs::handle_sqs_event(&worker, event).await;
                Ok(response
                    .batch_item_failures
                    .into_iter()
                    .map(|f| f.item_identifier)
                    .collect())
            }
        })
        .await
    }

    /// How many messages wait in a queue (visible, in flight or delayed).
    pub async fn queue_depth(&self, url: &str) -> Result<u64, Error> {
        use aws_sdk_sqs::types::QueueAttributeName;
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await?;
        let attributes = out.attributes.unwrap_or_default();
        Ok(attributes
            .values()
            .filter_map(|v| v.parse::<u64>().ok())
            .sum())
    }

    pub fn puller(&self) -> fibermade_sync::pull::Puller {
        fibermade_sync::pull::Puller::new(self.store.clone()).settling_with(self.pusher())
    }

    pub fn ingress(&self) -> fibermade_sync::webhook::ingress::Ingress {
        fibermade_sync::webhook::ingress::Ingress {
            store: self.store.clone(),
            sqs: self.sqs.clone(),
            queue_url: self.pull_queue.clone(),
            secret: fibermade_sync::webhook::signature::WebhookSecret::new(WEBHOOK_SECRET),
        }
    }

    pub fn importer(&self) -> Importer {
        Importer::new(self.store.clone(), self.shopify.clone())
    }

    /// Creates an account whose creator is `creator`, with `members` besides,
    /// linked to the simulated shop when `linked`.
    pub async fn seed_account(
        &self,
        account: &str,
        creator: &str,
        members: &[&str],
        linked: bool,
    ) -> Result<Account, Error> {
        let account = Account {
            id: account.parse()?,
            name: "Moss & Main Fiber Co.".to_owned(),
            creator: creator.parse()?,
            members: members
                .iter()
                .map(|m| m.parse::<UserId>())
                .collect::<Result<_, _>>()?,
            auto_catalog_sync: false,
        };
        self.store.put_account(&account).await?;
        if linked {
            self.link(&account.id).await?;
        }
        Ok(account)
    }

    /// Changes a row's stock as a person would in Fibermade: a new version,
    /// pending for the next push, written by the dyer.
    pub async fn dyer_sets_stock(
        &self,
        account: &AccountId,
        key: &fibermade_sync::domain::InventoryKey,
        quantity: i64,
    ) -> Result<(), Error> {
        let mut row = self
            .store
            .get_inventory(account, key)
            .await?
            .ok_or("no such inventory row")?;
        row.quantity = quantity;
        row.version += 1;
        row.sync_status = fibermade_sync::domain::SyncStatus::Pending;
        self.store
            .put_inventory(&row, fibermade_sync::domain::Writer::Dyer)
            .await?;
        Ok(())
    }

    /// Links an account to the simulated shop.
    pub async fn link(&self, account: &AccountId) -> Result<Integration, Error> {
        let integration = Integration {
            id: IntegrationId::try_from(format!("int-{account}"))?,
            account_id: account.clone(),
            shop_domain: SHOP_DOMAIN.to_owned(),
            location_id: None,
            api_version: fibermade_sync::shopify::API_VERSION.to_owned(),
        };
        self.store
            .put_integration(&integration, &AccessToken::new(ACCESS_TOKEN))
            .await?;
        Ok(integration)
    }

    /// The environment a function needs to run against this stack, as SAM
    /// would set it in AWS.
    pub fn function_env(&self) -> Vec<(String, String)> {
        let max_receives = self.catalog_max_receives.to_string();
        [
            ("CATALOG_TABLE", self.tables.catalog.as_str()),
            ("SYNC_TABLE", self.tables.sync.as_str()),
            ("AWS_ENDPOINT_URL", self.aws_endpoint.as_str()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("S3_FORCE_PATH_STYLE", "true"),
            ("SHOPIFY_API_BASE_URL", &self.sim.base_url()),
            ("PULL_QUEUE_URL", &self.pull_queue),
            ("CATALOG_QUEUE_URL", &self.catalog_queue),
            ("CATALOG_MAX_RECEIVES", &max_receives),
            ("SHOPIFY_WEBHOOK_SECRET", WEBHOOK_SECRET),
            ("SHOPIFY_RETRY_BASE_MS", "50"),
            ("SHOPIFY_RETRY_MAX_MS", "1000"),
            ("RUST_LOG", "info"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// Uploads an export under the account's import prefix and runs the
    /// csv-import handler on the notification S3 would send for it.
    pub async fn upload_and_import(
        &self,
        account: &AccountId,
        name: &str,
        body: Vec<u8>,
    ) -> Result<Result<Vec<serde_json::Value>, ImportError>, Error> {
        let key = format!("imports/{account}/{name}");
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .body(body.into())
            .send()
            .await?;
        let event = resources::object_created_event(&self.bucket, &key)?;
        Ok(handle_s3_event(&self.importer(), &self.s3, event).await)
    }

    /// Uploads an export; returns the notification S3 sends for it.
    pub async fn upload(
        &self,
        account: &AccountId,
        name: &str,
        body: Vec<u8>,
    ) -> Result<serde_json::Value, Error> {
        let key = format!("imports/{account}/{name}");
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .body(body.into())
            .send()
            .await?;
        Ok(serde_json::to_value(resources::object_created_event(
            &self.bucket,
            &key,
        )?)?)
    }

    /// Uploads and imports, expecting one object imported without a retryable
    /// failure, and returns its report (or the rejection message).
    pub async fn import_file(
        &self,
        account: &AccountId,
        name: &str,
        body: Vec<u8>,
    ) -> Result<Result<ImportReport, String>, Error> {
        let outcomes = self.upload_and_import(account, name, body).await??;
        let outcome = outcomes
            .into_iter()
            .next()
            .ok_or("the handler imported nothing")?;
        if let Some(rejected) = outcome.get("rejected") {
            return Ok(Err(rejected.as_str().unwrap_or_default().to_owned()));
        }
        Ok(Ok(
            serde_json::from_value(outcome).map_err(|e| format!("unreadable report: {e}"))?
        ))
    }
}

/// Counts the requests a DynamoDB client sends (each attempt), for the
/// benchmarks' figures.
#[derive(Debug, Clone, Default)]
pub struct DynamoDbRequests(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl DynamoDbRequests {
    pub fn count(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl aws_sdk_dynamodb::config::Intercept for DynamoDbRequests {
    fn name(&self) -> &'static str {
        "DynamoDbRequests"
    }

    fn read_before_attempt(
        &self,
        _context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

/// What one pass of the catalog sync's wiring did.
#[derive(Debug, Clone, Default)]
pub struct CatalogPass {
    pub delivered: stream::Delivered,
    pub observed: fibermade_sync::observer::ObserverReport,
    pub drained: router::Drained,
}

fn uuid_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{}-{n}-{nanos:x}", std::process::id())
}
