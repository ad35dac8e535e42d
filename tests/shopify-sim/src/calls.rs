//! The call log and running totals, read by tests through the control API.

use std::collections::BTreeMap;

use serde::Serialize;

/// One GraphQL request as the simulator saw it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallRecord {
    pub sequence: u64,
    pub at: String,
    pub operation_name: Option<String>,
    pub root_fields: Vec<String>,
    pub requested_cost: Option<u64>,
    pub actual_cost: Option<u64>,
    /// `ok`, `throttled`, `invalid`, `unauthorized`, `max_cost_exceeded`,
    /// or the fault kind that hit it (`server_error`, `lost_response`, …).
    pub outcome: String,
    pub status: u16,
    pub variables_bytes: usize,
    pub duration_ms: u64,
}

/// Totals since start or the last reset.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub calls: u64,
    pub requested_cost: u64,
    pub actual_cost: u64,
    pub throttled: u64,
    pub by_outcome: BTreeMap<String, u64>,
    pub by_root_field: BTreeMap<String, u64>,
}

#[derive(Debug, Default)]
pub struct CallLog {
    records: Vec<CallRecord>,
    stats: Stats,
    sequence: u64,
}

impl CallLog {
    pub fn record(&mut self, mut record: CallRecord) {
        self.sequence += 1;
        record.sequence = self.sequence;
        self.stats.calls += 1;
        self.stats.requested_cost += record.requested_cost.unwrap_or(0);
        self.stats.actual_cost += record.actual_cost.unwrap_or(0);
        if record.outcome == "throttled" {
            self.stats.throttled += 1;
        }
        *self
            .stats
            .by_outcome
            .entry(record.outcome.clone())
            .or_default() += 1;
        for field in &record.root_fields {
            *self.stats.by_root_field.entry(field.clone()).or_default() += 1;
        }
        self.records.push(record);
    }

    pub fn records(&self) -> &[CallRecord] {
        &self.records
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Forgets the records; totals stay.
    pub fn clear(&mut self) {
        self.records.clear();
    }

    /// Forgets records and totals.
    pub fn reset(&mut self) {
        self.records.clear();
        self.stats = Stats::default();
    }
}
