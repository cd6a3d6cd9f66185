//! A check's live event stream, read one event at a time.

use std::collections::VecDeque;

use super::{ClientError, ClientResult};
use crate::client::sse;
use crate::proto::api::checks::{CheckEvent, CheckResultView};

/// The events of one check's stream, in order.
pub struct CheckEvents {
    pub(super) resp: reqwest::Response,
    pub(super) base: String,
    pub(super) decoder: sse::Decoder,
    pub(super) queue: VecDeque<CheckEvent>,
}

impl CheckEvents {
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
                .map_err(|source| ClientError::Transport {
                    base: self.base.clone(),
                    source,
                })?;
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
