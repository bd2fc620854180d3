//! Sends email through the school's SMTP relay (lettre on tokio, rustls with
//! the ring provider): alerts, and the weekly report.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::notice::Outgoing;
use super::{AlertError, EmailConfig, read_secret};

/// Port on which relays speak TLS from the first byte (RFC 8314).
const IMPLICIT_TLS_PORT: u16 = 465;

pub(crate) fn validate(cfg: &EmailConfig) -> Result<(), AlertError> {
    if cfg.host.trim().is_empty() {
        return Err(AlertError::Config("email host is empty".into()));
    }
    if cfg.to.is_empty() {
        return Err(AlertError::Config("email has no recipients".into()));
    }
    if cfg.username.is_some() != cfg.password_file.is_some() {
        return Err(AlertError::Config(
            "email username and password_file must be set together".into(),
        ));
    }
    mailbox(&cfg.from)?;
    for to in &cfg.to {
        mailbox(to)?;
    }
    Ok(())
}

fn mailbox(address: &str) -> Result<Mailbox, AlertError> {
    address
        .parse()
        .map_err(|e| AlertError::Config(format!("email address {address:?}: {e}")))
}

fn compose(cfg: &EmailConfig, alert: &Outgoing) -> Result<Message, AlertError> {
    let mut builder = Message::builder()
        .from(mailbox(&cfg.from)?)
        .subject(alert.subject());
    for to in &cfg.to {
        builder = builder.to(mailbox(to)?);
    }
    builder
        .header(ContentType::TEXT_PLAIN)
        .body(alert.email_body())
        .map_err(|e| AlertError::Message(e.to_string()))
}

async fn tls_parameters(cfg: &EmailConfig) -> Result<TlsParameters, AlertError> {
    let mut builder = TlsParameters::builder(cfg.host.clone());
    if let Some(path) = &cfg.ca_file {
        let pem = tokio::fs::read(path)
            .await
            .map_err(|source| AlertError::File {
                path: path.clone(),
                source,
            })?;
        let cert = Certificate::from_pem(&pem)
            .map_err(|e| AlertError::Tls(format!("{}: {e}", path.display())))?;
        builder = builder.add_root_certificate(cert);
    }
    builder
        .build_rustls()
        .map_err(|e| AlertError::Tls(e.to_string()))
}

/// Builds a transport per message: alerts are rare, and a fresh connection
/// picks up a changed password, CA or relay address without a restart.
async fn transport(
    cfg: &EmailConfig,
    timeout: Duration,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, AlertError> {
    let params = tls_parameters(cfg).await?;
    let tls = if cfg.starttls {
        Tls::Required(params)
    } else if cfg.port == IMPLICIT_TLS_PORT {
        Tls::Wrapper(params)
    } else {
        Tls::Opportunistic(params)
    };
    // "Dangerous" only in that lettre leaves TLS to us; it is set just above.
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(cfg.host.as_str())
        .port(cfg.port)
        .tls(tls)
        .timeout(Some(timeout));
    match (&cfg.username, &cfg.password_file) {
        (Some(user), Some(file)) => {
            let password = read_secret(file).await?;
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        (None, None) => {}
        _ => {
            return Err(AlertError::Config(
                "email username and password_file must be set together".into(),
            ));
        }
    }
    Ok(builder.build())
}

/// Sends a report as a text part and an HTML part (the one mail readers show).
pub async fn send_report(
    cfg: &EmailConfig,
    subject: &str,
    text: String,
    html: String,
    timeout: Duration,
) -> Result<(), AlertError> {
    let mut builder = Message::builder()
        .from(mailbox(&cfg.from)?)
        .subject(subject);
    for to in &cfg.to {
        builder = builder.to(mailbox(to)?);
    }
    let message = builder
        .multipart(lettre::message::MultiPart::alternative_plain_html(
            text, html,
        ))
        .map_err(|e| AlertError::Message(e.to_string()))?;
    transport(cfg, timeout).await?.send(message).await?;
    Ok(())
}

pub(crate) async fn send(
    cfg: &EmailConfig,
    alert: &Outgoing,
    timeout: Duration,
) -> Result<(), AlertError> {
    let message = compose(cfg, alert)?;
    let transport = transport(cfg, timeout).await?;
    transport.send(message).await?;
    Ok(())
}
