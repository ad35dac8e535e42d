//! Webhook delivery: every stock change becomes an `inventory_levels/update`
//! POST to each `INVENTORY_LEVELS_UPDATE` subscription, signed, retried,
//! and — when a test asks for it — duplicated, reordered or delayed.
//!
//! Stock changes are put in the shop's outbox (with the subscriptions that
//! existed at that moment) while the shop is locked; handlers then wake the
//! delivery task, which runs in the background, one per shop, so no GraphQL
//! or control answer waits for a delivery.

pub mod sign;
pub mod target;
mod worker;

use std::sync::{Arc, Mutex};

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::app::{AppState, lock};
use crate::ids::level_gid;
use crate::state::OutboxEntry;

pub use sign::{sign, verify};
pub use target::loopback_target;

/// The topic as headers name it.
pub const TOPIC: &str = "inventory_levels/update";

/// How deliveries behave. Defaults: 3 attempts 200 ms apart, 5 s to
/// answer, a subscription removed after 20 failed deliveries in a row, no
/// duplicates, no reordering, no delay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookConfig {
    /// Chance (0.0 to 1.0) that a delivery is sent twice, the copy with the
    /// same event id and body but its own webhook id.
    pub duplicate_rate: f64,
    /// Hold up to this many deliveries, then send them in shuffled order
    /// (0: send each at once, in event order).
    pub reorder_window: usize,
    /// Wait this long before each delivery.
    pub delay_ms: u64,
    /// Seed for duplicates, shuffles and ids (`None`: from the OS).
    pub seed: Option<u64>,
    /// Attempts per delivery, the first included.
    pub attempts: u32,
    /// Wait between two attempts of a delivery.
    pub retry_delay_ms: u64,
    /// An attempt with no answer after this long has failed.
    pub timeout_ms: u64,
    /// After this many failed deliveries in a row to a subscription, the
    /// subscription is deleted (0: never).
    pub failure_limit: u32,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            duplicate_rate: 0.0,
            reorder_window: 0,
            delay_ms: 0,
            seed: None,
            attempts: 3,
            retry_delay_ms: 200,
            timeout_ms: 5000,
            failure_limit: 20,
        }
    }
}

/// Body of `POST /_sim/webhooks/config`: only the fields given change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WebhookConfigUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reorder_window: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Reseeds the random source at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_limit: Option<u32>,
}

/// One delivery attempt, as `GET /_sim/webhooks/deliveries` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// Position in the log, from 1.
    pub sequence: u64,
    /// `X-Shopify-Event-Id`: the same for duplicates and replays of an event.
    pub event_id: String,
    /// `X-Shopify-Webhook-Id`: the same for every attempt of one delivery.
    pub webhook_id: String,
    /// `gid://shopify/WebhookSubscription/N`
    pub subscription_id: String,
    pub topic: String,
    pub url: String,
    /// 1 for the first attempt; replays continue the count.
    pub attempt: u32,
    /// The receiver's HTTP status, if it answered.
    pub status: Option<u16>,
    /// Why the attempt failed without a status (refused, connection,
    /// timeout).
    pub error: Option<String>,
    /// `delivered`, `retrying` (another attempt follows), `failed` (the
    /// last attempt failed) or `refused` (not a loopback address; nothing
    /// was sent).
    pub outcome: String,
    /// When the attempt ended.
    pub at: String,
    /// `X-Shopify-Triggered-At` of the event.
    pub triggered_at: String,
    /// A copy made by `duplicate_rate`.
    pub duplicated: bool,
    /// Sent in another position than its event order, by `reorder_window`.
    pub reordered: bool,
    /// Sent again by `POST /_sim/webhooks/replay`.
    pub replayed: bool,
    /// This failure deleted the subscription (`failure_limit` reached).
    pub subscription_removed: bool,
    /// The raw body sent.
    pub body: String,
}

/// The `inventory_levels/update` body, fields in Shopify's order; ids are
/// JSON numbers, written exactly (they do not pass through `f64`).
#[derive(Debug, Serialize)]
struct InventoryLevelsUpdate<'a> {
    inventory_item_id: u64,
    location_id: u64,
    available: Option<i64>,
    updated_at: &'a str,
    admin_graphql_api_id: String,
}

/// The raw body for an outbox entry.
pub fn payload(entry: &OutboxEntry) -> Result<String, serde_json::Error> {
    let event = &entry.event;
    let updated_at = with_offset(&event.at);
    serde_json::to_string(&InventoryLevelsUpdate {
        inventory_item_id: event.inventory_item_id,
        location_id: event.location_id,
        available: Some(event.available),
        updated_at: &updated_at,
        admin_graphql_api_id: level_gid(entry.level_id, event.inventory_item_id),
    })
}

/// `2026-07-19T13:09:37Z` as REST payloads print it: `2026-07-19T13:09:37+00:00`.
fn with_offset(at: &str) -> String {
    OffsetDateTime::parse(at, &Rfc3339)
        .ok()
        .and_then(|moment| {
            moment
                .format(format_description!(
                    "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory]:[offset_minute]"
                ))
                .ok()
        })
        .unwrap_or_else(|| at.to_owned())
}

/// What the delivery task is asked to do.
enum Command {
    /// Take new events from the outbox and send what is due.
    Drain,
    /// Send everything held, answer how many deliveries were sent since the
    /// previous flush.
    Flush(oneshot::Sender<usize>),
    /// Send the deliveries of an event again; answer how many.
    Replay(String, oneshot::Sender<usize>),
    /// Forget held deliveries, failure counts and replayable deliveries.
    Reset,
}

/// Settings and the random source, changed together.
struct Settings {
    config: WebhookConfig,
    rng: StdRng,
}

fn rng_for(seed: Option<u64>) -> StdRng {
    match seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => StdRng::from_os_rng(),
    }
}

/// The delivery side of one simulator: settings, the attempt log, and the
/// channel to its background task.
pub struct WebhookHub {
    secret: String,
    settings: Mutex<Settings>,
    log: Mutex<Vec<DeliveryRecord>>,
    commands: mpsc::UnboundedSender<Command>,
    /// Taken when the task starts.
    receiver: Mutex<Option<mpsc::UnboundedReceiver<Command>>>,
}

impl WebhookHub {
    pub fn new(secret: &str, config: WebhookConfig) -> WebhookHub {
        let (commands, receiver) = mpsc::unbounded_channel();
        WebhookHub {
            secret: secret.to_owned(),
            settings: Mutex::new(Settings {
                rng: rng_for(config.seed),
                config,
            }),
            log: Mutex::new(Vec::new()),
            commands,
            receiver: Mutex::new(Some(receiver)),
        }
    }

    /// Starts the delivery task for this simulator (once; later calls do
    /// nothing). It stops when the state is dropped or the handle aborted.
    pub fn spawn(app: &Arc<AppState>) -> Option<JoinHandle<()>> {
        let receiver = lock(&app.webhooks.receiver).take()?;
        Some(tokio::spawn(worker::run(Arc::downgrade(app), receiver)))
    }

    fn running(&self) -> bool {
        lock(&self.receiver).is_none()
    }

    /// Tells the task new events may be in the outbox. Never blocks.
    pub fn wake(&self) {
        let _ = self.commands.send(Command::Drain);
    }

    /// Sends everything held and waits until nothing is queued; gives the
    /// number of deliveries sent since the previous flush.
    pub async fn flush(&self) -> Result<usize, String> {
        self.ask(Command::Flush).await
    }

    /// Sends the deliveries of an event again, with their original body and
    /// `X-Shopify-Triggered-At`; gives how many were sent (0: unknown event).
    pub async fn replay(&self, event_id: &str) -> Result<usize, String> {
        let event_id = event_id.to_owned();
        self.ask(|reply| Command::Replay(event_id, reply)).await
    }

    async fn ask(
        &self,
        command: impl FnOnce(oneshot::Sender<usize>) -> Command,
    ) -> Result<usize, String> {
        if !self.running() {
            return Err("the webhook delivery task is not running".to_owned());
        }
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .map_err(|_| "the webhook delivery task has stopped".to_owned())?;
        answer
            .await
            .map_err(|_| "the webhook delivery task has stopped".to_owned())
    }

    /// Forgets the log and everything queued (the shop's reset).
    pub fn reset(&self) {
        lock(&self.log).clear();
        let _ = self.commands.send(Command::Reset);
    }

    pub fn config(&self) -> WebhookConfig {
        lock(&self.settings).config.clone()
    }

    /// Applies the fields given; a seed reseeds the random source.
    pub fn configure(&self, update: &WebhookConfigUpdate) -> Result<WebhookConfig, String> {
        if let Some(rate) = update.duplicate_rate
            && !(0.0..=1.0).contains(&rate)
        {
            return Err(format!(
                "duplicate_rate must be within 0.0..=1.0, not {rate}"
            ));
        }
        if update.attempts == Some(0) {
            return Err("attempts must be at least 1".to_owned());
        }
        let mut settings = lock(&self.settings);
        let config = &mut settings.config;
        if let Some(rate) = update.duplicate_rate {
            config.duplicate_rate = rate;
        }
        if let Some(window) = update.reorder_window {
            config.reorder_window = window;
        }
        if let Some(delay) = update.delay_ms {
            config.delay_ms = delay;
        }
        if let Some(attempts) = update.attempts {
            config.attempts = attempts;
        }
        if let Some(delay) = update.retry_delay_ms {
            config.retry_delay_ms = delay;
        }
        if let Some(timeout) = update.timeout_ms {
            config.timeout_ms = timeout;
        }
        if let Some(limit) = update.failure_limit {
            config.failure_limit = limit;
        }
        if let Some(seed) = update.seed {
            config.seed = Some(seed);
            settings.rng = rng_for(Some(seed));
        }
        Ok(settings.config.clone())
    }

    /// Every attempt so far, in order.
    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        lock(&self.log).clone()
    }

    pub fn clear_deliveries(&self) {
        lock(&self.log).clear();
    }

    fn record(&self, mut record: DeliveryRecord) {
        let mut log = lock(&self.log);
        record.sequence = log.len() as u64 + 1;
        log.push(record);
    }

    /// Marks the newest record of a delivery as the one that removed its
    /// subscription.
    fn mark_removal(&self, webhook_id: &str) {
        let mut log = lock(&self.log);
        if let Some(record) = log
            .iter_mut()
            .rev()
            .find(|record| record.webhook_id == webhook_id)
        {
            record.subscription_removed = true;
        }
    }

    fn signature(&self, body: &[u8]) -> String {
        sign(self.secret.as_bytes(), body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::InventoryEvent;

    fn entry(item: u64, location: u64, available: i64) -> OutboxEntry {
        OutboxEntry {
            event: InventoryEvent {
                sequence: 1,
                inventory_item_id: item,
                location_id: location,
                available,
                on_hand: available,
                source: "sale".to_owned(),
                at: "2026-11-03T13:44:10Z".to_owned(),
            },
            level_id: 87_892_394_150,
            triggered_at: "2026-11-03T13:44:10.123456Z".to_owned(),
            subscriptions: Vec::new(),
        }
    }

    #[test]
    fn the_body_has_the_fixtures_fields_in_order_with_exact_ids() {
        let body = payload(&entry(271_878_346_596_884_015, 53_716_844_710, 7)).expect("body");
        assert_eq!(
            body,
            "{\"inventory_item_id\":271878346596884015,\"location_id\":53716844710,\"available\":7,\
             \"updated_at\":\"2026-11-03T13:44:10+00:00\",\
             \"admin_graphql_api_id\":\"gid://shopify/InventoryLevel/87892394150?inventory_item_id=271878346596884015\"}"
        );
        let above_f64 =
            payload(&entry(9_007_199_254_740_993, 9_007_199_254_740_995, -2)).expect("body");
        assert!(above_f64.contains("\"inventory_item_id\":9007199254740993,"));
        assert!(above_f64.contains("\"location_id\":9007199254740995,"));
    }

    #[test]
    fn a_duplicate_rate_outside_zero_to_one_is_refused() {
        let hub = WebhookHub::new("secret", WebhookConfig::default());
        let update = WebhookConfigUpdate {
            duplicate_rate: Some(1.5),
            ..WebhookConfigUpdate::default()
        };
        assert!(hub.configure(&update).is_err());
        assert_eq!(hub.config(), WebhookConfig::default());
    }
}
