//! Client-side model of a shop's leaky bucket, so we pace calls instead of
//! running into THROTTLED.

use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

/// `extensions.cost.throttleStatus` of a Shopify answer.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThrottleStatus {
    pub maximum_available: f64,
    pub currently_available: f64,
    pub restore_rate: f64,
}

/// `extensions.cost` of a Shopify answer.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryCost {
    pub requested_query_cost: f64,
    #[serde(default)]
    pub actual_query_cost: Option<f64>,
    pub throttle_status: ThrottleStatus,
}

/// What we believe a shop's bucket holds, refilled with time between answers.
#[derive(Debug, Clone)]
pub struct Bucket {
    maximum: f64,
    available: f64,
    restore_rate: f64,
    observed_at: Instant,
}

impl Bucket {
    /// A bucket for a shop we have not heard from yet: Shopify's standard plan.
    pub fn standard() -> Self {
        Self {
            maximum: 2000.0,
            available: 2000.0,
            restore_rate: 100.0,
            observed_at: Instant::now(),
        }
    }

    fn available_at(&self, now: Instant) -> f64 {
        let refilled = now
            .saturating_duration_since(self.observed_at)
            .as_secs_f64()
            * self.restore_rate;
        (self.available + refilled).min(self.maximum)
    }

    /// Reserves `cost` points and tells how long to wait before sending.
    ///
    /// The reservation is taken at once, so calls made in parallel for the same
    /// shop queue behind each other instead of all seeing the same points.
    pub fn reserve(&mut self, cost: f64, now: Instant) -> Duration {
        let available = self.available_at(now);
        let cost = cost.min(self.maximum);
        let wait = if available >= cost {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((cost - available) / self.restore_rate.max(1.0))
        };
        self.available = available - cost;
        self.observed_at = now;
        wait
    }

    /// Gives back points reserved for a call that was never answered with a
    /// cost (a network fault, a 5xx).
    pub fn refund(&mut self, cost: f64, now: Instant) {
        self.available = (self.available_at(now) + cost).min(self.maximum);
        self.observed_at = now;
    }

    /// Takes Shopify's own figures as the truth.
    pub fn observe(&mut self, status: &ThrottleStatus, now: Instant) {
        self.maximum = status.maximum_available;
        self.restore_rate = status.restore_rate;
        self.available = status.currently_available;
        self.observed_at = now;
    }

    /// How long Shopify's figures say to wait until `cost` points are there.
    pub fn wait_for(status: &ThrottleStatus, cost: f64) -> Duration {
        let missing = (cost - status.currently_available).max(0.0);
        Duration::from_secs_f64(missing / status.restore_rate.max(1.0))
    }

    pub fn restore_rate(&self) -> f64 {
        self.restore_rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_bucket_sends_at_once() {
        let now = Instant::now();
        let mut bucket = Bucket::standard();
        assert_eq!(bucket.reserve(10.0, now), Duration::ZERO);
    }

    #[test]
    fn drained_bucket_waits_for_the_refill_of_the_missing_points() {
        let now = Instant::now();
        let mut bucket = Bucket::standard();
        bucket.observe(
            &ThrottleStatus {
                maximum_available: 2000.0,
                currently_available: 5.0,
                restore_rate: 100.0,
            },
            now,
        );
        let wait = bucket.reserve(25.0, now);
        assert_eq!(wait, Duration::from_millis(200));
    }

    #[test]
    fn parallel_reservations_queue_behind_each_other() {
        let now = Instant::now();
        let mut bucket = Bucket::standard();
        bucket.observe(
            &ThrottleStatus {
                maximum_available: 2000.0,
                currently_available: 10.0,
                restore_rate: 100.0,
            },
            now,
        );
        assert_eq!(bucket.reserve(10.0, now), Duration::ZERO);
        assert_eq!(bucket.reserve(10.0, now), Duration::from_millis(100));
        assert_eq!(bucket.reserve(10.0, now), Duration::from_millis(200));
    }

    #[test]
    fn bucket_refills_with_time_up_to_its_maximum() {
        let now = Instant::now();
        let mut bucket = Bucket::standard();
        bucket.observe(
            &ThrottleStatus {
                maximum_available: 100.0,
                currently_available: 0.0,
                restore_rate: 50.0,
            },
            now,
        );
        let later = now + Duration::from_secs(10);
        assert_eq!(bucket.available_at(later), 100.0);
        assert_eq!(bucket.available_at(now + Duration::from_secs(1)), 50.0);
    }

    #[test]
    fn wait_after_throttled_is_the_missing_points_over_the_rate() {
        let status = ThrottleStatus {
            maximum_available: 2000.0,
            currently_available: 2.0,
            restore_rate: 100.0,
        };
        assert_eq!(Bucket::wait_for(&status, 52.0), Duration::from_millis(500));
    }
}
