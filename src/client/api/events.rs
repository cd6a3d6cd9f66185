//! A check's live event stream, read one event at a time.

use std::collections::VecDeque;

use super::{ClientError, ClientResult};
use crate::client::sse;
use netcheck_proto::api::checks::{CheckEvent, CheckResultView};

/// The events of one check's stream, in order.
pub struct CheckEvents {
    resp: reqwest::Response,
    base: String,
    decoder: sse::Decoder,
    queue: VecDeque<CheckEvent>,
}

impl CheckEvents {
    /// Reads the stream `resp` (already answered 200) from the server at `base`.
    pub(super) fn new(resp: reqwest::Response, base: &str) -> Self {
        Self {
            resp,
            base: base.to_string(),
            decoder: sse::Decoder::default(),
            queue: VecDeque::new(),
        }
    }

    /// The stream's `Content-Type`.
    pub fn content_type(&self) -> Option<&str> {
        self.resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
    }

    /// The next event; `None` when the server closed the stream.
    pub async fn next(&mut self) -> ClientResult<Option<CheckEvent>> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Ok(Some(event));
            }
            let status = self.resp.status();
            let chunk = self
                .resp
                .chunk()
                .await
                .map_err(|e| ClientError::transport(&self.base, e))?;
            let Some(chunk) = chunk else {
                return Ok(None);
            };
            for raw in self.decoder.push(&chunk) {
                let event = CheckEvent::from_sse(&raw.name, &raw.data).map_err(|e| {
                    ClientError::Unexpected {
                        status,
                        reason: e.to_string(),
                        text: raw.data.clone(),
                    }
                })?;
                self.queue.extend(event);
            }
        }
    }

    /// Reads to `finished`; returns the results in the order they came.
    pub async fn results(mut self) -> ClientResult<Vec<CheckResultView>> {
        let mut results = Vec::new();
        while let Some(event) = self.next().await? {
            match event {
                CheckEvent::Result(r) => results.push(*r),
                CheckEvent::Finished(_) => return Ok(results),
            }
        }
        Err(ClientError::Unexpected {
            status: self.resp.status(),
            reason: "the stream ended before `finished`".into(),
            text: String::new(),
        })
    }
}
