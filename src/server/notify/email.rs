//! E-mail notifications through the operator's SMTP relay (`notify.smtp`): one message per
//! event to the channel's addresses, plain text and HTML.

use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message as Mail, Tokio1Executor};
use secrecy::ExposeSecret;

use super::message::Message;
use super::providers::email_html;
use crate::config::SmtpTls;
use crate::server::AppState;

/// Sends `m` to `to`; the relay's reply code, or why it could not be sent.
pub async fn send(state: &AppState, to: &[String], m: &Message) -> Result<u16, String> {
    let smtp = state
        .settings
        .notify
        .smtp
        .as_ref()
        .ok_or("this server sends no e-mail (notify.smtp is not set)")?;
    let from: Mailbox = smtp
        .from
        .parse()
        .map_err(|e| format!("notify.smtp.from: {e}"))?;
    let mut builder = Mail::builder().from(from).subject(&m.title);
    for a in to {
        let mailbox: Mailbox = a.parse().map_err(|e| format!("{a}: {e}"))?;
        builder = builder.to(mailbox);
    }
    let mail = builder
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(m.text()),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(email_html(m)),
                ),
        )
        .map_err(|e| e.to_string())?;
    let mut transport = match smtp.tls {
        SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host),
        SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host),
        SmtpTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
            &smtp.host,
        )),
    }
    .map_err(|e| e.to_string())?
    .port(smtp.port())
    .timeout(Some(std::time::Duration::from_secs(10)));
    if let (Some(user), Some(pass)) = (&smtp.username, &smtp.password) {
        transport = transport.credentials(Credentials::new(
            user.clone(),
            pass.expose_secret().to_string(),
        ));
    }
    let reply = transport
        .build()
        .send(mail)
        .await
        .map_err(|e| e.to_string())?;
    Ok(u16::from(reply.code()))
}
