//! A bare AMQP client for tests that act as an agent (or an attacker) on the broker.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use amqprs::callbacks::{ChannelCallback, ConnectionCallback};
use amqprs::channel::{Channel, ConfirmSelectArguments};
use amqprs::connection::{Connection, OpenConnectionArguments};
use amqprs::{Ack, BasicProperties, Cancel, Close, CloseChannel, Nack, Return};
use serde_json::Value;
use tokio::sync::mpsc;

/// Records why and when the broker closed things.
#[derive(Clone, Default)]
pub struct Closes {
    pub channel: Arc<Mutex<Vec<String>>>,
    pub connection: Option<mpsc::UnboundedSender<(Instant, String)>>,
}

#[async_trait::async_trait]
impl ConnectionCallback for Closes {
    async fn close(&mut self, _: &Connection, close: Close) -> Result<(), amqprs::error::Error> {
        if let Some(tx) = &self.connection {
            let _ = tx.send((Instant::now(), close.to_string()));
        }
        Ok(())
    }
    async fn blocked(&mut self, _: &Connection, _: String) {}
    async fn unblocked(&mut self, _: &Connection) {}
    async fn secret_updated(&mut self, _: &Connection) {}
}

#[async_trait::async_trait]
impl ChannelCallback for Closes {
    async fn close(
        &mut self,
        _: &Channel,
        close: CloseChannel,
    ) -> Result<(), amqprs::error::Error> {
        self.channel.lock().unwrap().push(close.to_string());
        Ok(())
    }
    async fn cancel(&mut self, _: &Channel, _: Cancel) -> Result<(), amqprs::error::Error> {
        Ok(())
    }
    async fn flow(&mut self, _: &Channel, active: bool) -> Result<bool, amqprs::error::Error> {
        Ok(active)
    }
    async fn publish_ack(&mut self, _: &Channel, _: Ack) {}
    async fn publish_nack(&mut self, _: &Channel, _: Nack) {}
    async fn publish_return(&mut self, _: &Channel, _: Return, _: BasicProperties, _: Vec<u8>) {}
}

/// Opens a connection with the credentials of a registration answer. Returns the connection
/// and a receiver of (instant, reason) for when the broker closes it.
pub async fn connect_as(
    reg: &Value,
) -> Result<(Connection, mpsc::UnboundedReceiver<(Instant, String)>), amqprs::error::Error> {
    let a = &reg["amqp"];
    let mut args = OpenConnectionArguments::new(
        a["host"].as_str().unwrap(),
        a["port"].as_u64().unwrap() as u16,
        a["username"].as_str().unwrap(),
        a["password"].as_str().unwrap(),
    );
    args.virtual_host(a["vhost"].as_str().unwrap());
    let conn = Connection::open(&args).await?;
    let (tx, rx) = mpsc::unbounded_channel();
    conn.register_callback(Closes {
        connection: Some(tx),
        ..Default::default()
    })
    .await?;
    Ok((conn, rx))
}

/// Opens a channel whose broker-side closes are recorded in the returned list.
pub async fn channel(conn: &Connection) -> (Channel, Arc<Mutex<Vec<String>>>) {
    let ch = conn.open_channel(None).await.unwrap();
    let closes = Closes::default();
    let list = closes.channel.clone();
    ch.register_callback(closes).await.unwrap();
    (ch, list)
}

/// Connects as the agent of a registration answer and opens a channel in confirm mode, to
/// publish results as that agent does.
pub async fn publishing_as(reg: &Value) -> (Connection, Channel) {
    let (conn, _) = connect_as(reg).await.unwrap();
    let (ch, _) = channel(&conn).await;
    ch.confirm_select(ConfirmSelectArguments::default())
        .await
        .unwrap();
    (conn, ch)
}

/// Opens a connection as the server does (its administrator account, its vhost).
pub async fn connect_server(
    settings: &netcheck::config::Settings,
) -> (Connection, mpsc::UnboundedReceiver<(Instant, String)>) {
    use secrecy::ExposeSecret;
    let mut args = OpenConnectionArguments::try_from(settings.amqp.url.expose_secret()).unwrap();
    args.virtual_host(&settings.amqp.vhost);
    let conn = Connection::open(&args).await.unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    conn.register_callback(Closes {
        connection: Some(tx),
        ..Default::default()
    })
    .await
    .unwrap();
    (conn, rx)
}

/// Publishes `body` to the results exchange on a channel of its own, stamped with `user_id`,
/// and returns why the broker then closed that channel (it must refuse the message).
pub async fn refused_publish(conn: &Connection, user_id: &str, body: Vec<u8>) -> String {
    use amqprs::channel::BasicPublishArguments;
    let (ch, closes) = channel(conn).await;
    let mut props = BasicProperties::default();
    ch.basic_publish(
        props.with_user_id(user_id).finish(),
        body,
        BasicPublishArguments::new("netcheck.results", ""),
    )
    .await
    .ok();
    // (This file is shared with the benches, which lack the test helpers' `eventually`.)
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(reason) = closes.lock().unwrap().first().cloned() {
            return reason;
        }
        assert!(
            Instant::now() < deadline,
            "the broker did not refuse the message"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
