//! The background task that sends deliveries, one at a time, in the order
//! they are released (event order unless a reorder window shuffles them).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Weak};
use std::time::Duration;

use rand::Rng;
use rand::seq::SliceRandom;
use tokio::sync::mpsc;

use super::{Command, DeliveryRecord, TOPIC, WebhookConfig, loopback_target, payload};
use crate::app::{AppState, lock};
use crate::graphql::API_VERSION;
use crate::ids::gid;
use crate::state::{OutboxEntry, timestamp_millis};

/// One delivery series: every attempt shares its webhook id and body.
#[derive(Debug, Clone)]
struct Pending {
    event_id: String,
    webhook_id: String,
    subscription_id: u64,
    url: String,
    body: String,
    triggered_at: String,
    duplicated: bool,
    reordered: bool,
    replayed: bool,
    /// Attempts made so far (replays continue the count).
    attempts_made: u32,
}

/// What one attempt came to.
enum Attempt {
    Delivered(u16),
    Failed {
        status: Option<u16>,
        error: Option<String>,
    },
}

struct Worker {
    app: Weak<AppState>,
    http: Option<reqwest::Client>,
    /// Released by neither a full reorder window nor a flush yet.
    held: Vec<Pending>,
    /// Failed deliveries in a row, per subscription.
    failures: HashMap<u64, u32>,
    /// Deliveries sent since the last flush.
    sent: usize,
    /// Original (not duplicated) deliveries already sent, by event id, for
    /// replays.
    sent_by_event: HashMap<String, Vec<Pending>>,
}

pub(super) async fn run(app: Weak<AppState>, mut commands: mpsc::UnboundedReceiver<Command>) {
    let http = reqwest::Client::builder()
        // Never through a proxy, never following a redirect elsewhere, and
        // `localhost` pinned to 127.0.0.1 instead of looked up.
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .resolve("localhost", SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .build();
    let http = match http {
        Ok(client) => Some(client),
        Err(error) => {
            tracing::error!(%error, "webhook delivery client could not be built; deliveries will fail");
            None
        }
    };
    let mut worker = Worker {
        app,
        http,
        held: Vec::new(),
        failures: HashMap::new(),
        sent: 0,
        sent_by_event: HashMap::new(),
    };
    while let Some(command) = commands.recv().await {
        let Some(app) = worker.app.upgrade() else {
            break;
        };
        match command {
            Command::Drain => {
                worker.collect(&app);
                worker.release(&app, false).await;
            }
            Command::Flush(reply) => {
                worker.collect(&app);
                worker.release(&app, true).await;
                let _ = reply.send(std::mem::take(&mut worker.sent));
            }
            Command::Replay(event_id, reply) => {
                let sent = worker.replay(&app, &event_id).await;
                let _ = reply.send(sent);
            }
            Command::Reset => {
                worker.held.clear();
                worker.failures.clear();
                worker.sent = 0;
                worker.sent_by_event.clear();
            }
        }
    }
}

/// A random UUID (version 4 layout) from the hub's seeded source.
fn uuid(rng: &mut impl Rng) -> String {
    let mut bytes = [0u8; 16];
    rng.fill(&mut bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

impl Worker {
    /// Moves new events from the shop's outbox to the held deliveries,
    /// one per subscription, plus the duplicates chance decides on.
    fn collect(&mut self, app: &AppState) {
        let entries: Vec<OutboxEntry> = std::mem::take(&mut lock(&app.shop).webhook_outbox);
        if entries.is_empty() {
            return;
        }
        let mut settings = lock(&app.webhooks.settings);
        let rate = settings.config.duplicate_rate;
        for entry in entries {
            let body = match payload(&entry) {
                Ok(body) => body,
                Err(error) => {
                    tracing::error!(%error, "inventory_levels/update body could not be written");
                    continue;
                }
            };
            let event_id = uuid(&mut settings.rng);
            for (subscription_id, url) in &entry.subscriptions {
                let original = Pending {
                    event_id: event_id.clone(),
                    webhook_id: uuid(&mut settings.rng),
                    subscription_id: *subscription_id,
                    url: url.clone(),
                    body: body.clone(),
                    triggered_at: entry.triggered_at.clone(),
                    duplicated: false,
                    reordered: false,
                    replayed: false,
                    attempts_made: 0,
                };
                let duplicate = rate > 0.0 && settings.rng.random_bool(rate.min(1.0));
                if duplicate {
                    let copy = Pending {
                        webhook_id: uuid(&mut settings.rng),
                        duplicated: true,
                        ..original.clone()
                    };
                    self.held.push(original);
                    self.held.push(copy);
                } else {
                    self.held.push(original);
                }
            }
        }
    }

    /// Sends what is due: everything at once without a reorder window;
    /// with one, each full window shuffled, and on a flush the rest too.
    async fn release(&mut self, app: &Arc<AppState>, flush: bool) {
        let window = app.webhooks.config().reorder_window;
        let mut batches = Vec::new();
        if window == 0 {
            batches.push(std::mem::take(&mut self.held));
        } else {
            while self.held.len() >= window {
                batches.push(self.held.drain(..window).collect::<Vec<_>>());
            }
            if flush && !self.held.is_empty() {
                batches.push(std::mem::take(&mut self.held));
            }
            for batch in &mut batches {
                self.shuffle(app, batch);
            }
        }
        for batch in batches {
            for pending in batch {
                self.sent += 1;
                self.deliver(app, pending).await;
            }
        }
    }

    /// Shuffles a batch so that, when it holds two or more, it never goes
    /// out in its original order; marks the ones that moved.
    fn shuffle(&self, app: &AppState, batch: &mut Vec<Pending>) {
        if batch.len() < 2 {
            return;
        }
        let mut order: Vec<usize> = (0..batch.len()).collect();
        order.shuffle(&mut lock(&app.webhooks.settings).rng);
        if order.iter().enumerate().all(|(at, from)| at == *from) {
            order.rotate_left(1);
        }
        let mut slots: Vec<Option<Pending>> = std::mem::take(batch).into_iter().map(Some).collect();
        for (at, from) in order.into_iter().enumerate() {
            if let Some(mut pending) = slots[from].take() {
                pending.reordered = at != from;
                batch.push(pending);
            }
        }
    }

    async fn replay(&mut self, app: &Arc<AppState>, event_id: &str) -> usize {
        let Some(originals) = self.sent_by_event.get(event_id).cloned() else {
            return 0;
        };
        let count = originals.len();
        for original in originals {
            let again = Pending {
                replayed: true,
                reordered: false,
                ..original
            };
            self.deliver(app, again).await;
        }
        count
    }

    /// One delivery series: up to `attempts` POSTs of the same payload,
    /// then the failure count of the subscription.
    async fn deliver(&mut self, app: &Arc<AppState>, mut pending: Pending) {
        let config = app.webhooks.config();
        if config.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(config.delay_ms)).await;
        }
        let delivered = match loopback_target(&pending.url) {
            Err(reason) => {
                pending.attempts_made += 1;
                tracing::warn!(url = %pending.url, %reason, "webhook delivery refused");
                self.log(
                    app,
                    &pending,
                    "refused",
                    None,
                    Some(format!("refused: {reason}")),
                );
                false
            }
            Ok(url) => self.attempts(app, &config, &mut pending, url).await,
        };
        if !pending.duplicated && !pending.replayed {
            self.sent_by_event
                .entry(pending.event_id.clone())
                .or_default()
                .push(pending.clone());
        } else if pending.replayed {
            // Later replays continue the attempt count.
            if let Some(series) = self.sent_by_event.get_mut(&pending.event_id)
                && let Some(stored) = series
                    .iter_mut()
                    .find(|stored| stored.webhook_id == pending.webhook_id)
            {
                stored.attempts_made = pending.attempts_made;
            }
        }
        self.count_outcome(app, &config, &pending, delivered);
    }

    async fn attempts(
        &self,
        app: &AppState,
        config: &WebhookConfig,
        pending: &mut Pending,
        url: reqwest::Url,
    ) -> bool {
        let attempts = config.attempts.max(1);
        for left in (0..attempts).rev() {
            pending.attempts_made += 1;
            match self.attempt(app, config, pending, url.clone()).await {
                Attempt::Delivered(status) => {
                    self.log(app, pending, "delivered", Some(status), None);
                    return true;
                }
                Attempt::Failed { status, error } => {
                    let outcome = if left == 0 { "failed" } else { "retrying" };
                    self.log(app, pending, outcome, status, error);
                    if left > 0 {
                        tokio::time::sleep(Duration::from_millis(config.retry_delay_ms)).await;
                    }
                }
            }
        }
        false
    }

    async fn attempt(
        &self,
        app: &AppState,
        config: &WebhookConfig,
        pending: &Pending,
        url: reqwest::Url,
    ) -> Attempt {
        let Some(http) = &self.http else {
            return Attempt::Failed {
                status: None,
                error: Some("no HTTP client".to_owned()),
            };
        };
        let shop_domain = lock(&app.shop).domain.clone();
        let timeout = Duration::from_millis(config.timeout_ms);
        let request = http
            .post(url)
            .timeout(timeout)
            .header("Content-Type", "application/json")
            .header("X-Shopify-Topic", TOPIC)
            .header("X-Shopify-Shop-Domain", shop_domain)
            .header("X-Shopify-API-Version", API_VERSION)
            .header("X-Shopify-Webhook-Id", &pending.webhook_id)
            .header("X-Shopify-Event-Id", &pending.event_id)
            .header("X-Shopify-Triggered-At", &pending.triggered_at)
            .header(
                "X-Shopify-Hmac-Sha256",
                app.webhooks.signature(pending.body.as_bytes()),
            )
            .body(pending.body.clone());
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                return Attempt::Failed {
                    status: None,
                    error: Some(describe(&error, config.timeout_ms)),
                };
            }
        };
        let status = response.status();
        // Read the answer so the connection can be reused; its content does
        // not matter, but it must arrive within the same time limit.
        if let Err(error) = response.bytes().await {
            return Attempt::Failed {
                status: Some(status.as_u16()),
                error: Some(describe(&error, config.timeout_ms)),
            };
        }
        if status.is_success() {
            Attempt::Delivered(status.as_u16())
        } else {
            Attempt::Failed {
                status: Some(status.as_u16()),
                error: None,
            }
        }
    }

    fn log(
        &self,
        app: &AppState,
        pending: &Pending,
        outcome: &str,
        status: Option<u16>,
        error: Option<String>,
    ) {
        app.webhooks.record(DeliveryRecord {
            sequence: 0,
            event_id: pending.event_id.clone(),
            webhook_id: pending.webhook_id.clone(),
            subscription_id: gid("WebhookSubscription", pending.subscription_id),
            topic: TOPIC.to_owned(),
            url: pending.url.clone(),
            attempt: pending.attempts_made,
            status,
            error,
            outcome: outcome.to_owned(),
            at: timestamp_millis(),
            triggered_at: pending.triggered_at.clone(),
            duplicated: pending.duplicated,
            reordered: pending.reordered,
            replayed: pending.replayed,
            subscription_removed: false,
            body: pending.body.clone(),
        });
    }

    /// A success clears the subscription's failure count; a failure adds
    /// to it, and at the limit the subscription is deleted.
    fn count_outcome(
        &mut self,
        app: &AppState,
        config: &WebhookConfig,
        pending: &Pending,
        delivered: bool,
    ) {
        let id = pending.subscription_id;
        if delivered {
            self.failures.remove(&id);
            return;
        }
        let failures = self.failures.entry(id).or_default();
        *failures += 1;
        if config.failure_limit > 0 && *failures >= config.failure_limit {
            self.failures.remove(&id);
            if lock(&app.shop).webhooks.remove(&id).is_some() {
                tracing::warn!(
                    subscription = id,
                    limit = config.failure_limit,
                    "webhook subscription deleted after consecutive failed deliveries"
                );
                app.webhooks.mark_removal(&pending.webhook_id);
            }
        }
    }
}

fn describe(error: &reqwest::Error, timeout_ms: u64) -> String {
    if error.is_timeout() {
        format!("timeout: no answer within {timeout_ms} ms")
    } else if error.is_connect() {
        format!("connection failed: {error}")
    } else {
        error.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn ids_are_version_4_uuids_and_repeat_with_the_seed() {
        let mut first = StdRng::seed_from_u64(7);
        let mut second = StdRng::seed_from_u64(7);
        let id = uuid(&mut first);
        assert_eq!(id, uuid(&mut second));
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(id, uuid(&mut first));
    }
}
