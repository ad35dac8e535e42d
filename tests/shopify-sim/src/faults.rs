//! Faults a test can queue to see how a client copes.

use serde::{Deserialize, Serialize};

/// What goes wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum FaultKind {
    /// Answers THROTTLED without running anything.
    Throttled,
    /// Answers with a 5xx status without running anything.
    ServerError {
        #[serde(default = "default_server_status")]
        status: u16,
    },
    /// Waits before answering (the request still runs).
    Latency { ms: u64 },
    /// Runs the request and applies its writes, then loses the answer:
    /// the connection is dropped, or `status` (such as 504) is answered.
    LostResponse {
        #[serde(default)]
        status: Option<u16>,
    },
    /// Closes the connection without running anything.
    NetworkDrop,
    /// For `bulkOperationRunMutation`: the run is admitted as usual, then
    /// fails with `error_code` once `after_lines` lines have run; those
    /// lines' results are its `partialDataUrl` (none if zero ran).
    BulkFailure {
        #[serde(default)]
        after_lines: u64,
        #[serde(default = "default_bulk_error")]
        error_code: String,
    },
}

fn default_bulk_error() -> String {
    "INTERNAL_SERVER_ERROR".to_owned()
}

fn default_server_status() -> u16 {
    502
}

/// A queued fault and how many more requests it hits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    #[serde(flatten)]
    pub kind: FaultKind,
    /// Root field name to match (`productSet`); any request if absent.
    #[serde(default)]
    pub operation: Option<String>,
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

/// Faults waiting for matching requests, first queued first used.
#[derive(Debug, Default)]
pub struct FaultQueue {
    faults: Vec<Fault>,
}

impl FaultQueue {
    pub fn push(&mut self, fault: Fault) {
        if fault.count > 0 {
            self.faults.push(fault);
        }
    }

    pub fn clear(&mut self) {
        self.faults.clear();
    }

    pub fn pending(&self) -> &[Fault] {
        &self.faults
    }

    /// The fault for a request with these root fields, if one is queued.
    pub fn take(&mut self, root_fields: &[String]) -> Option<FaultKind> {
        let index = self.faults.iter().position(|fault| {
            fault
                .operation
                .as_ref()
                .is_none_or(|operation| root_fields.iter().any(|field| field == operation))
        })?;
        let fault = &mut self.faults[index];
        fault.count -= 1;
        let kind = fault.kind.clone();
        if fault.count == 0 {
            self.faults.remove(index);
        }
        Some(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_from_the_control_api_shape() {
        let fault: Fault =
            serde_json::from_str(r#"{"kind":"server_error","operation":"productSet","count":2}"#)
                .expect("fault");
        assert_eq!(fault.kind, FaultKind::ServerError { status: 502 });
        let mut queue = FaultQueue::default();
        queue.push(fault);
        assert_eq!(queue.take(&["shop".to_owned()]), None);
        assert!(queue.take(&["productSet".to_owned()]).is_some());
        assert!(queue.take(&["productSet".to_owned()]).is_some());
        assert!(queue.take(&["productSet".to_owned()]).is_none());
    }
}
