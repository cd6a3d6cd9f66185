//! Getting results to the broker without one result hurting the others: every result is
//! measured before it is published and replaced when too large; results go out on a channel
//! of their own (a message the broker refuses closes that channel, not the consumer's, and the
//! next publish opens a new one); a result that cannot be delivered is kept for a few attempts
//! and then dropped with a log line, never re-sent ahead of other work forever.

use std::collections::HashMap;
use std::sync::Mutex;

use uuid::Uuid;

use crate::amqp::PublishError;
use netcheck_proto::result::ProbeErrorCode;
use netcheck_proto::result::{CheckResult, ProbeError, ResultStatus};

/// Largest result an agent publishes, well under the broker's `max_message_size` (RabbitMQ's
/// default is 128 MiB, netcheck's deployments set 256 KiB).
pub const MAX_RESULT_BYTES: usize = 96 * 1024;

/// Publish attempts of one result before it is dropped.
pub const MAX_ATTEMPTS: u32 = 3;

/// Most results kept for a later session.
const OUTBOX_MAX: usize = 10_000;

/// The JSON of `result`, or of a `failed` / `result_too_large` stand-in naming what was large.
pub fn encode(result: CheckResult) -> (CheckResult, Vec<u8>) {
    let body = serde_json::to_vec(&result).expect("results serialise");
    if body.len() <= MAX_RESULT_BYTES {
        return (result, body);
    }
    let what = largest_part(&result);
    let small = CheckResult {
        status: ResultStatus::Failed,
        error: Some(ProbeError::new(
            ProbeErrorCode::ResultTooLarge,
            format!(
                "the result was {} bytes, over the {} KiB an agent reports{what}",
                body.len(),
                MAX_RESULT_BYTES / 1024
            ),
        )),
        data: None,
        ..result
    };
    let body = serde_json::to_vec(&small).expect("results serialise");
    (small, body)
}

/// ": most of it in `headers` (300 123 bytes)", from the result's largest field.
fn largest_part(result: &CheckResult) -> String {
    let Some(serde_json::Value::Object(fields)) = result
        .data
        .as_ref()
        .and_then(|d| serde_json::to_value(d).ok())
    else {
        return String::new();
    };
    fields
        .iter()
        .map(|(k, v)| (k, v.to_string().len()))
        .max_by_key(|(_, n)| *n)
        .map(|(k, n)| format!(": most of it in `{k}` ({n} bytes)"))
        .unwrap_or_default()
}

/// A result waiting for a later publish.
struct Kept {
    result: CheckResult,
    attempts: u32,
}

/// Results whose publish failed (broker gone or refusing), by check.
#[derive(Default)]
pub struct Outbox(Mutex<HashMap<Uuid, Kept>>);

impl Outbox {
    /// Keeps `result` after a failed attempt; drops it (with a log line) after the last one.
    pub fn keep(&self, result: CheckResult, attempts: u32, error: &PublishError) {
        if attempts >= MAX_ATTEMPTS {
            tracing::error!(check_id = %result.check_id, %error, attempts,
                "dropping a result the broker would not take");
            return;
        }
        tracing::warn!(check_id = %result.check_id, %error, attempts,
            "could not publish result; keeping it for another attempt");
        let mut kept = self.0.lock().expect("outbox lock");
        if kept.len() < OUTBOX_MAX {
            kept.insert(result.check_id, Kept { result, attempts });
        }
    }

    /// Takes a kept result back, with the attempts it has had.
    pub fn take(&self, check_id: &Uuid) -> Option<(CheckResult, u32)> {
        self.0
            .lock()
            .expect("outbox lock")
            .remove(check_id)
            .map(|k| (k.result, k.attempts))
    }

    /// Takes every kept result.
    pub fn drain(&self) -> Vec<(CheckResult, u32)> {
        self.0
            .lock()
            .expect("outbox lock")
            .drain()
            .map(|(_, k)| (k.result, k.attempts))
            .collect()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netcheck_proto::result::{HttpResult, HttpTimings, ResultData};

    fn http_result(header_bytes: usize) -> CheckResult {
        let mut headers = std::collections::BTreeMap::new();
        headers.insert("location".to_string(), "x".repeat(header_bytes));
        CheckResult {
            protocol_version: 1,
            check_id: Uuid::now_v7(),
            agent_id: Uuid::now_v7(),
            status: ResultStatus::Ok,
            error: None,
            started_at: chrono::Utc::now(),
            duration_ms: 1.0,
            data: Some(ResultData::Http(Box::new(HttpResult {
                resolved_address: None,
                status_code: Some(302),
                http_version: None,
                headers,
                headers_truncated: false,
                body_bytes: None,
                timings_ms: HttpTimings::default(),
                tls: None,
                redirect_to: None,
                redirects: 0,
                assertions: vec![],
            }))),
        }
    }

    #[test]
    fn a_result_over_the_limit_is_replaced_by_one_naming_the_large_part() {
        let (r, body) = encode(http_result(1000));
        assert_eq!(r.status, ResultStatus::Ok);
        assert!(body.len() < 2000);
        let (r, body) = encode(http_result(300_000));
        assert!(body.len() < 1000, "{}", body.len());
        assert_eq!(r.status, ResultStatus::Failed);
        let e = r.error.unwrap();
        assert_eq!(e.code, ProbeErrorCode::ResultTooLarge);
        assert!(e.message.contains("`headers`"), "{}", e.message);
        assert!(r.data.is_none());
    }

    #[test]
    fn a_result_is_dropped_after_its_last_attempt() {
        let outbox = Outbox::default();
        let r = http_result(10);
        let id = r.check_id;
        outbox.keep(r.clone(), 1, &PublishError::Nacked);
        let (back, attempts) = outbox.take(&id).unwrap();
        assert_eq!(attempts, 1);
        outbox.keep(back, MAX_ATTEMPTS, &PublishError::Nacked);
        assert_eq!(outbox.len(), 0);
    }
}
