//! A real SMTP server on 127.0.0.1 for the alerter's tests: speaks EHLO,
//! STARTTLS (rustls, self-signed certificate), AUTH PLAIN/LOGIN, MAIL, RCPT,
//! DATA and QUIT, and records every message and command it saw.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// One accepted message and how it got here.
#[derive(Debug, Clone, Default)]
pub struct Mail {
    /// Command verbs in the order this connection sent them.
    pub commands: Vec<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub from: String,
    pub rcpt: Vec<String>,
    pub data: String,
}

impl Mail {
    pub fn before(&self, first: &str, then: &str) -> bool {
        let at = |verb: &str| self.commands.iter().position(|c| c == verb);
        matches!((at(first), at(then)), (Some(a), Some(b)) if a < b)
    }

    pub fn subject(&self) -> Option<&str> {
        self.data
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .map(str::trim)
    }
}

#[derive(Debug, Default)]
struct Recorded {
    mails: Mutex<Vec<Mail>>,
    /// Commands of every connection, including ones that never delivered.
    sessions: Mutex<Vec<Vec<String>>>,
    refuse: AtomicUsize,
    refused: AtomicUsize,
}

pub struct SmtpSink {
    pub port: u16,
    recorded: Arc<Recorded>,
}

pub struct Options {
    pub refuse_first: usize,
    pub offer_starttls: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            refuse_first: 0,
            offer_starttls: true,
        }
    }
}

impl SmtpSink {
    pub async fn start(cert: &rcgen::CertifiedKey<rcgen::KeyPair>, opts: Options) -> SmtpSink {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));
        let chain: Vec<CertificateDer<'static>> = vec![cert.cert.der().clone()];
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server certificate");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind smtp");
        let port = listener.local_addr().expect("addr").port();
        let recorded = Arc::new(Recorded {
            refuse: AtomicUsize::new(opts.refuse_first),
            ..Recorded::default()
        });
        let rec = Arc::clone(&recorded);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let rec = Arc::clone(&rec);
                let acceptor = acceptor.clone();
                let starttls = opts.offer_starttls;
                tokio::spawn(async move {
                    let mut session = Session::default();
                    let upgraded = serve(tcp, false, starttls, &mut session, &rec).await;
                    if let Ok(Some(tcp)) = upgraded
                        && let Ok(tls) = acceptor.accept(tcp).await
                    {
                        let _ = serve(tls, true, false, &mut session, &rec).await;
                    }
                    rec.sessions.lock().expect("lock").push(session.commands);
                });
            }
        });
        SmtpSink { port, recorded }
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.recorded.mails.lock().expect("lock").clone()
    }

    pub fn sessions(&self) -> Vec<Vec<String>> {
        self.recorded.sessions.lock().expect("lock").clone()
    }

    pub fn refused(&self) -> usize {
        self.recorded.refused.load(Ordering::SeqCst)
    }
}

#[derive(Debug, Default)]
struct Session {
    commands: Vec<String>,
    user: Option<String>,
    password: Option<String>,
    from: String,
    rcpt: Vec<String>,
}

async fn reply<S: AsyncWrite + Unpin>(s: &mut S, text: &str) -> std::io::Result<()> {
    s.write_all(text.as_bytes()).await?;
    s.flush().await
}

async fn read_line<S: AsyncRead + Unpin>(r: &mut BufReader<S>) -> std::io::Result<Option<String>> {
    let mut line = String::new();
    if r.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_string()))
}

/// Runs one phase of a connection. Returns the stream back when the client
/// asks for STARTTLS, so the caller can wrap it in TLS and carry on.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    secure: bool,
    offer_starttls: bool,
    session: &mut Session,
    rec: &Recorded,
) -> std::io::Result<Option<S>> {
    let mut r = BufReader::new(stream);
    if !secure {
        reply(r.get_mut(), "220 sink.lollipop.test ESMTP ready\r\n").await?;
    }
    while let Some(line) = read_line(&mut r).await? {
        let mut words = line.split_whitespace();
        let verb = words.next().unwrap_or("").to_ascii_uppercase();
        session.commands.push(verb.clone());
        match verb.as_str() {
            "EHLO" | "HELO" => {
                let mut text = String::from("250-sink.lollipop.test\r\n");
                if offer_starttls && !secure {
                    text.push_str("250-STARTTLS\r\n");
                }
                text.push_str("250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n");
                reply(r.get_mut(), &text).await?;
            }
            "STARTTLS" if offer_starttls && !secure => {
                reply(r.get_mut(), "220 2.0.0 go ahead\r\n").await?;
                return Ok(Some(r.into_inner()));
            }
            "AUTH" => {
                let mech = words.next().unwrap_or("").to_ascii_uppercase();
                let initial = words.next().map(str::to_string);
                match mech.as_str() {
                    "PLAIN" => {
                        let b64 = match initial {
                            Some(b) => b,
                            None => {
                                reply(r.get_mut(), "334 \r\n").await?;
                                read_line(&mut r).await?.unwrap_or_default()
                            }
                        };
                        let raw = super::fixtures::base64_decode(&b64);
                        let mut parts = raw.split(|b| *b == 0).skip(1);
                        let text = |p: Option<&[u8]>| {
                            String::from_utf8_lossy(p.unwrap_or(&[])).into_owned()
                        };
                        session.user = Some(text(parts.next()));
                        session.password = Some(text(parts.next()));
                    }
                    "LOGIN" => {
                        reply(r.get_mut(), "334 VXNlcm5hbWU6\r\n").await?;
                        let user = read_line(&mut r).await?.unwrap_or_default();
                        reply(r.get_mut(), "334 UGFzc3dvcmQ6\r\n").await?;
                        let pass = read_line(&mut r).await?.unwrap_or_default();
                        let text = |b: &str| {
                            String::from_utf8_lossy(&super::fixtures::base64_decode(b)).into_owned()
                        };
                        session.user = Some(text(&user));
                        session.password = Some(text(&pass));
                    }
                    _ => {
                        reply(r.get_mut(), "504 unknown mechanism\r\n").await?;
                        continue;
                    }
                }
                reply(r.get_mut(), "235 2.7.0 authenticated\r\n").await?;
            }
            "MAIL" => {
                let refuse = rec
                    .refuse
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if refuse {
                    rec.refused.fetch_add(1, Ordering::SeqCst);
                    reply(r.get_mut(), "451 4.3.0 temporary failure, try later\r\n").await?;
                } else {
                    session.from = line[4..].trim().to_string();
                    session.rcpt.clear();
                    reply(r.get_mut(), "250 2.1.0 ok\r\n").await?;
                }
            }
            "RCPT" => {
                session.rcpt.push(line[4..].trim().to_string());
                reply(r.get_mut(), "250 2.1.5 ok\r\n").await?;
            }
            "DATA" => {
                reply(r.get_mut(), "354 end with <CRLF>.<CRLF>\r\n").await?;
                let mut data = String::new();
                while let Some(l) = read_line(&mut r).await? {
                    if l == "." {
                        break;
                    }
                    // Undo dot-stuffing (RFC 5321 4.5.2).
                    let l = l
                        .strip_prefix('.')
                        .filter(|_| l.starts_with(".."))
                        .unwrap_or(&l);
                    data.push_str(l);
                    data.push('\n');
                }
                rec.mails.lock().expect("lock").push(Mail {
                    commands: session.commands.clone(),
                    user: session.user.clone(),
                    password: session.password.clone(),
                    from: session.from.clone(),
                    rcpt: session.rcpt.clone(),
                    data,
                });
                reply(r.get_mut(), "250 2.0.0 queued\r\n").await?;
            }
            "RSET" | "NOOP" => reply(r.get_mut(), "250 2.0.0 ok\r\n").await?,
            "QUIT" => {
                reply(r.get_mut(), "221 2.0.0 bye\r\n").await?;
                return Ok(None);
            }
            _ => reply(r.get_mut(), "502 5.5.2 not implemented\r\n").await?,
        }
    }
    Ok(None)
}
