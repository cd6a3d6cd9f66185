//! Results that finish while one message waits for its confirm go out together as the next
//! message (a JSON array), when the server said at registration that it takes arrays.
//!
//! Each message is work for the broker on both sides (publish, confirm, delivery, ack) and
//! the broker is the largest CPU user per check (docs/benchmarks.md). One message is in
//! flight at a time: at low rates every result goes out alone and at once, under load the
//! messages grow with the backlog instead of multiplying (self-clocking, like Nagle's
//! algorithm without its timer).

use std::sync::Arc;
use std::time::Duration;

use amqprs::BasicProperties;
use tokio::sync::{mpsc, oneshot};

use super::results::MAX_RESULT_BYTES;
use crate::amqp::{PublishError, Sink};

/// What a publish came to, shared by every result of one message.
pub type Outcome = Result<(), Arc<PublishError>>;

/// How long a message waits for its confirm before its results are published again. A
/// publish in flight to a quorum leader that dies gets no confirm at all; waiting longer than
/// a check's slack (its grace, 3 s by default) turns such a result into a `timeout`, while a
/// resend lands in time and the store takes a result twice as once.
pub const CONFIRM_WAIT: Duration = Duration::from_secs(3);

/// A result waiting to be published: its JSON and who waits for the confirm.
struct Waiting {
    id: String,
    body: Vec<u8>,
    done: oneshot::Sender<Outcome>,
}

/// Publishes results on one broker session, one message per result or, when the server takes
/// them, as arrays of up to `per_message`.
pub struct ResultsOut {
    sink: Arc<Sink>,
    user: String,
    exchange: String,
    queue: Option<mpsc::UnboundedSender<Waiting>>,
}

impl ResultsOut {
    /// `per_message` is what the server announced (1 for servers that take one result per
    /// message). The coalescing task ends with the last clone of this value.
    pub fn new(sink: Arc<Sink>, user: String, exchange: String, per_message: u32) -> Self {
        let queue = (per_message > 1).then(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let (sink, user, exchange) = (sink.clone(), user.clone(), exchange.clone());
            let publish = move |id: String, body| {
                let (sink, user, exchange) = (sink.clone(), user.clone(), exchange.clone());
                async move {
                    sink.publish(props(&user, &id), body, &exchange, "", CONFIRM_WAIT)
                        .await
                        .map_err(Arc::new)
                }
            };
            tokio::spawn(coalesce(rx, per_message as usize, publish));
            tx
        });
        Self {
            sink,
            user,
            exchange,
            queue,
        }
    }

    /// Publishes one result's JSON (`id` names it in the message id) and waits for the confirm
    /// of the message that carried it.
    pub async fn publish(&self, id: String, body: Vec<u8>) -> Outcome {
        let Some(queue) = &self.queue else {
            return self
                .sink
                .publish(
                    props(&self.user, &id),
                    body,
                    &self.exchange,
                    "",
                    CONFIRM_WAIT,
                )
                .await
                .map_err(Arc::new);
        };
        let (done, outcome) = oneshot::channel();
        if queue.send(Waiting { id, body, done }).is_err() {
            return Err(Arc::new(PublishError::Closed));
        }
        // A dropped sender: the task ended with its session.
        outcome
            .await
            .unwrap_or_else(|_| Err(Arc::new(PublishError::Closed)))
    }
}

fn props(user: &str, id: &str) -> BasicProperties {
    BasicProperties::default()
        .with_persistence(true)
        .with_content_type("application/json")
        .with_user_id(user)
        .with_message_id(id)
        .with_timestamp(chrono::Utc::now().timestamp() as u64)
        .finish()
}

/// Takes the results waiting now (at most `max` and [`MAX_RESULT_BYTES`] together), publishes
/// them as one message (`publish` resolves with its confirm), tells each of them the outcome,
/// and starts over.
async fn coalesce<P, F>(mut queue: mpsc::UnboundedReceiver<Waiting>, max: usize, mut publish: P)
where
    P: FnMut(String, Vec<u8>) -> F,
    F: std::future::Future<Output = Outcome>,
{
    let mut carried = None;
    loop {
        let first = match carried.take() {
            Some(w) => w,
            None => match queue.recv().await {
                Some(w) => w,
                None => return,
            },
        };
        let mut batch = vec![first];
        let mut bytes = batch[0].body.len() + 2;
        while batch.len() < max {
            let Ok(next) = queue.try_recv() else { break };
            if bytes + next.body.len() + 1 > MAX_RESULT_BYTES {
                carried = Some(next);
                break;
            }
            bytes += next.body.len() + 1;
            batch.push(next);
        }
        let (id, body) = message(&mut batch);
        let outcome = publish(id, body).await;
        for w in batch {
            let _ = w.done.send(outcome.clone());
        }
    }
}

/// The message id and body of a batch: a lone result as itself (what every server takes),
/// several as a JSON array of them.
fn message(batch: &mut [Waiting]) -> (String, Vec<u8>) {
    if let [one] = batch {
        return (std::mem::take(&mut one.id), std::mem::take(&mut one.body));
    }
    let mut body = Vec::with_capacity(batch.iter().map(|w| w.body.len() + 1).sum::<usize>() + 1);
    body.push(b'[');
    for (i, w) in batch.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&w.body);
    }
    body.push(b']');
    (format!("{}+{}", batch[0].id, batch.len() - 1), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Sent = (String, Vec<u8>, oneshot::Sender<Outcome>);

    fn waiting(id: &str, body: &str) -> Waiting {
        Waiting {
            id: id.into(),
            body: body.as_bytes().to_vec(),
            done: oneshot::channel().0,
        }
    }

    #[test]
    fn one_result_goes_as_itself_and_several_as_an_array() {
        let (id, body) = message(&mut [waiting("a", r#"{"x":1}"#)]);
        assert_eq!(
            (id.as_str(), body.as_slice()),
            ("a", br#"{"x":1}"#.as_slice())
        );
        let (id, body) = message(&mut [
            waiting("a", r#"{"x":1}"#),
            waiting("b", r#"{"x":2}"#),
            waiting("c", r#"{"x":3}"#),
        ]);
        assert_eq!(id, "a+2");
        let parsed: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[2]["x"], 3);
    }

    /// A coalescing task whose publishes the test confirms by hand: what it sends arrives on
    /// the returned receiver with the sender of its confirm.
    fn task(
        max: usize,
    ) -> (
        mpsc::UnboundedSender<Waiting>,
        mpsc::UnboundedReceiver<Sent>,
    ) {
        let (queue, rx) = mpsc::unbounded_channel();
        let (sent_tx, sent) = mpsc::unbounded_channel();
        tokio::spawn(coalesce(rx, max, move |id, body| {
            let sent_tx = sent_tx.clone();
            async move {
                let (confirm, confirmed) = oneshot::channel();
                sent_tx.send((id, body, confirm)).unwrap();
                confirmed.await.unwrap()
            }
        }));
        (queue, sent)
    }

    fn submit(
        queue: &mpsc::UnboundedSender<Waiting>,
        id: &str,
        body: Vec<u8>,
    ) -> oneshot::Receiver<Outcome> {
        let (done, outcome) = oneshot::channel();
        queue
            .send(Waiting {
                id: id.into(),
                body,
                done,
            })
            .unwrap();
        outcome
    }

    #[tokio::test]
    async fn results_finished_during_a_confirm_go_out_together_and_share_its_outcome() {
        let (queue, mut sent) = task(3);
        let a = submit(&queue, "a", br#"{"r":"a"}"#.to_vec());
        let (id, body, confirm) = sent.recv().await.unwrap();
        assert_eq!(
            (id.as_str(), body.as_slice()),
            ("a", br#"{"r":"a"}"#.as_slice())
        );
        // Four finish while `a` waits for its confirm: the next message takes three (the
        // most per message), the one after the last.
        let later: Vec<_> = ["b", "c", "d", "e"]
            .iter()
            .map(|r| submit(&queue, r, format!(r#"{{"r":"{r}"}}"#).into_bytes()))
            .collect();
        assert!(sent.try_recv().is_err(), "nothing more before the confirm");
        confirm.send(Ok(())).unwrap();
        assert!(a.await.unwrap().is_ok());
        let (id, body, confirm) = sent.recv().await.unwrap();
        assert_eq!(id, "b+2");
        let parsed: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!([{"r": "b"}, {"r": "c"}, {"r": "d"}])
                .as_array()
                .unwrap()
                .clone()
        );
        confirm.send(Err(Arc::new(PublishError::Nacked))).unwrap();
        let (id, _, confirm) = sent.recv().await.unwrap();
        assert_eq!(id, "e");
        confirm.send(Ok(())).unwrap();
        let mut outcomes = Vec::new();
        for o in later {
            outcomes.push(o.await.unwrap().map_err(|e| e.to_string()));
        }
        let nacked = Err(PublishError::Nacked.to_string());
        assert_eq!(outcomes, [nacked.clone(), nacked.clone(), nacked, Ok(())]);
    }

    #[tokio::test]
    async fn a_message_stays_under_the_size_an_agent_may_publish() {
        let (queue, mut sent) = task(64);
        let big = |c: char| format!(r#""{}""#, c.to_string().repeat(40 * 1024)).into_bytes();
        let _first = submit(&queue, "a", big('a'));
        let (_, _, confirm) = sent.recv().await.unwrap();
        let _rest: Vec<_> = ['b', 'c', 'd']
            .map(|c| submit(&queue, &c.to_string(), big(c)))
            .into();
        confirm.send(Ok(())).unwrap();
        let (id, body, confirm) = sent.recv().await.unwrap();
        assert_eq!(id, "b+1", "two of 40 KiB fit in 96 KiB, three do not");
        assert!(body.len() <= MAX_RESULT_BYTES);
        confirm.send(Ok(())).unwrap();
        let (id, _, _) = sent.recv().await.unwrap();
        assert_eq!(id, "d", "the one that did not fit goes next");
    }
}
