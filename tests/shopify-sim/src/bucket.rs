//! The leaky bucket that paces a client by query cost.
//!
//! The bucket holds up to `maximum` points and refills continuously at
//! `restore_rate` points a second. A request whose requested cost is more
//! than what is available is throttled and runs nothing; otherwise the
//! requested cost is taken and the difference to the actual cost refunded.

use std::time::Instant;

use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct Bucket {
    maximum: f64,
    restore_rate: f64,
    available: f64,
    updated: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn new(maximum: f64, restore_rate: f64) -> Bucket {
        Bucket {
            maximum,
            restore_rate,
            available: maximum,
            updated: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.available = (self.available + elapsed * self.restore_rate).min(self.maximum);
        self.updated = now;
    }

    /// Takes `cost` points if they are there. `false` means throttled.
    pub fn try_take(&mut self, cost: f64) -> bool {
        self.refill(Instant::now());
        if cost > self.available {
            return false;
        }
        self.available -= cost;
        true
    }

    /// Gives back points charged but not used.
    pub fn refund(&mut self, points: f64) {
        self.refill(Instant::now());
        self.available = (self.available + points).min(self.maximum);
    }

    /// Changes the size and rate; the bucket keeps what it holds, capped.
    pub fn reconfigure(&mut self, maximum: Option<f64>, restore_rate: Option<f64>) {
        self.refill(Instant::now());
        if let Some(maximum) = maximum {
            self.maximum = maximum;
        }
        if let Some(rate) = restore_rate {
            self.restore_rate = rate;
        }
        self.available = self.available.min(self.maximum);
    }

    /// Fills the bucket up.
    pub fn fill(&mut self) {
        self.available = self.maximum;
        self.updated = Instant::now();
    }

    /// Points available now.
    pub fn available(&mut self) -> f64 {
        self.refill(Instant::now());
        self.available
    }

    /// `throttleStatus` as Shopify reports it.
    pub fn throttle_status(&mut self) -> Value {
        let available = self.available().floor();
        json!({
            "maximumAvailable": number(self.maximum),
            "currentlyAvailable": number(available),
            "restoreRate": number(self.restore_rate),
        })
    }
}

/// Whole numbers as JSON integers, as a real shop sends them.
fn number(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        json!(value as i64)
    } else {
        json!(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn throttles_when_drained_and_refills_with_time() {
        let mut bucket = Bucket::new(20.0, 1000.0);
        assert!(bucket.try_take(20.0));
        assert!(!bucket.try_take(15.0));
        std::thread::sleep(Duration::from_millis(30));
        assert!(bucket.try_take(15.0));
    }

    #[test]
    fn refunds_never_overflow() {
        let mut bucket = Bucket::new(10.0, 0.0);
        assert!(bucket.try_take(4.0));
        bucket.refund(100.0);
        assert_eq!(bucket.available(), 10.0);
    }
}
