//! The secondary's side of the wire: asks the primary's page for its
//! snapshot over TLS, talking only to the certificate whose SHA-256 the
//! config pins (no CA needed, and no other server is believed), and keeps
//! the last good snapshot in the data directory so a restart while the
//! primary is away still has it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::Config;
use crate::config::cluster::PrimaryAddress;

/// The route the primary serves its snapshot on.
pub const SNAPSHOT_PATH: &str = "/cluster/snapshot";
/// The header naming the version a reply holds (also on "unchanged").
pub const VERSION_HEADER: &str = "x-lollipop-version";
/// The header naming the secondary on the primary's page.
pub const NAME_HEADER: &str = "x-lollipop-box";
/// The most of a reply read: a school's records are far smaller.
const MAX_REPLY_BYTES: usize = 64 * 1024 * 1024;
/// Connecting, the handshake and the whole reply each get this long.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Where the secondary keeps the last good snapshot.
pub fn stored_path(config: &Config) -> PathBuf {
    config
        .resolve_path(&config.server.data_dir)
        .join("cluster-snapshot.json")
}

/// The last good snapshot's bytes, if any.
pub fn read_stored(path: &Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}

/// Keeps `bytes` as the last good snapshot: whole or not at all.
pub fn store(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let fail = |error: std::io::Error| {
        format!(
            "cannot keep the primary's snapshot in {}: {error}",
            path.display()
        )
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let temp = path.with_extension("json.tmp");
    {
        let mut file = std::fs::File::create(&temp).map_err(fail)?;
        file.write_all(bytes).map_err(fail)?;
        file.sync_all().map_err(fail)?;
    }
    std::fs::rename(&temp, path).map_err(fail)?;
    if let Some(dir) = path.parent()
        && let Ok(dir) = std::fs::File::open(dir)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// What the primary answered.
#[derive(Debug)]
pub enum Fetched {
    /// The secondary already holds `version`.
    Unchanged { version: i64 },
    /// A snapshot (still to be opened and checked).
    Snapshot(Vec<u8>),
}

/// How to reach the primary.
pub struct Primary {
    pub address: PrimaryAddress,
    pub pin: [u8; 32],
    /// The bearer token the pull is authorised with.
    pub token: String,
    /// This box, as the primary's page names it.
    pub name: String,
}

impl Primary {
    /// Asks the primary for its state, saying which version is held.
    pub async fn fetch(&self, since: Option<i64>) -> Result<Fetched, String> {
        let query = since.map(|v| format!("?since={v}")).unwrap_or_default();
        let target = format!("{SNAPSHOT_PATH}{query}");
        let reply = tokio::time::timeout(TIMEOUT * 3, self.exchange("GET", &target, &[]))
            .await
            .map_err(|_| format!("{} did not answer in time", self.address.url()))??;
        match reply.status {
            304 => Ok(Fetched::Unchanged {
                version: reply.version.unwrap_or_default(),
            }),
            200 => Ok(Fetched::Snapshot(reply.body)),
            401 | 403 => Err(format!(
                "{} refused this box ({}): check both boxes' pair_key_file hold the same key",
                self.address.url(),
                reply.status
            )),
            404 => Err(format!(
                "{} is not a primary (404): set [cluster] role = \"primary\" there",
                self.address.url()
            )),
            other => Err(format!(
                "{} answered {other}: see its log",
                self.address.url()
            )),
        }
    }

    /// Sends this box's block counts for the primary's reports.
    pub async fn send_blocks(&self, body: &[u8]) -> Result<(), String> {
        let reply = tokio::time::timeout(
            TIMEOUT * 3,
            self.exchange("POST", super::blocks::BLOCKS_PATH, body),
        )
        .await
        .map_err(|_| format!("{} did not answer in time", self.address.url()))??;
        match reply.status {
            204 | 200 => Ok(()),
            other => Err(format!(
                "{} did not take this box's block counts ({other})",
                self.address.url()
            )),
        }
    }

    async fn exchange(&self, method: &str, target: &str, body: &[u8]) -> Result<Reply, String> {
        let url = self.address.url();
        let dial = (self.address.host.as_str(), self.address.port);
        let tcp = tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect(dial))
            .await
            .map_err(|_| format!("{url} did not accept a connection in time"))?
            .map_err(|error| format!("cannot reach {url}: {error}"))?;
        let tls = tls_config(self.pin);
        // The pin decides who the primary is; the name only fills SNI.
        let server_name = ServerName::try_from(self.address.host.clone())
            .unwrap_or_else(|_| ServerName::try_from("lollipop").expect("a valid name"));
        let mut stream = tokio::time::timeout(
            TIMEOUT,
            tokio_rustls::TlsConnector::from(tls).connect(server_name, tcp),
        )
        .await
        .map_err(|_| format!("{url} did not finish the TLS handshake in time"))?
        .map_err(|error| {
            format!("no trusted TLS connection to {url}: {error} (is primary_certificate_sha256 the primary's current certificate?)")
        })?;
        let mut request = format!(
            "{method} {target} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n{NAME_HEADER}: {}\r\nConnection: close\r\n",
            self.address.host, self.token, self.name
        )
        .into_bytes();
        if method != "GET" {
            request.extend_from_slice(
                format!(
                    "Content-Type: application/json\r\nContent-Length: {}\r\n",
                    body.len()
                )
                .as_bytes(),
            );
        }
        request.extend_from_slice(b"\r\n");
        request.extend_from_slice(body);
        stream
            .write_all(&request)
            .await
            .map_err(|error| format!("cannot ask {url}: {error}"))?;
        read_reply(&mut stream)
            .await
            .map_err(|error| format!("{url} sent a reply that cannot be read: {error}"))
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    version: Option<i64>,
    body: Vec<u8>,
}

/// An HTTP/1.1 reply with a `Content-Length` (the primary's page sends
/// one), read only as far as that length.
async fn read_reply(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> Result<Reply, String> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(end) = find(&buffer, b"\r\n\r\n") {
            break end;
        }
        if buffer.len() > 64 * 1024 {
            return Err("the headers are too long".into());
        }
        let read = stream
            .read(&mut chunk)
            .await
            .map_err(|error| error.to_string())?;
        if read == 0 {
            return Err("the connection closed before the headers ended".into());
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or("no status line")?;
    let mut length = None;
    let mut version = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        if name == "content-length" {
            length = Some(value.parse::<usize>().map_err(|_| "a bad Content-Length")?);
        } else if name == VERSION_HEADER {
            version = value.parse().ok();
        } else if name == "transfer-encoding" {
            return Err("a chunked reply (expected a Content-Length)".into());
        }
    }
    let length = length.unwrap_or(0);
    if length > MAX_REPLY_BYTES {
        return Err(format!("a reply of {length} bytes is too large"));
    }
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let read = stream
            .read(&mut chunk)
            .await
            .map_err(|error| error.to_string())?;
        if read == 0 {
            return Err("the connection closed before the reply ended".into());
        }
        body.extend_from_slice(&chunk[..read]);
    }
    body.truncate(length);
    Ok(Reply {
        status,
        version,
        body,
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// The SHA-256 of a certificate's DER, as the pin is written.
pub fn certificate_pin(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

fn tls_config(pin: [u8; 32]) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(PinnedCertificate {
        pin,
        provider: provider.clone(),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|builder| {
            builder
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth()
        });
    // The ring provider's default versions are always available.
    Arc::new(config.expect("TLS 1.2 and 1.3 with ring"))
}

/// Believes exactly one certificate: the one whose SHA-256 is `pin`. The
/// handshake's signatures are still checked against it, so only the
/// holder of its private key gets through.
#[derive(Debug)]
struct PinnedCertificate {
    pin: [u8; 32],
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        // A certificate is public: no need to compare in constant time.
        if seen == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "the primary's certificate is {}, not the pinned one",
                hex::encode(seen)
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_reply_is_read_to_its_length_and_no_further() {
        let mut reply: &[u8] =
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nX-Lollipop-Version: 42\r\n\r\nhello and more";
        let read = read_reply(&mut reply).await.unwrap();
        assert_eq!((read.status, read.version), (200, Some(42)));
        assert_eq!(read.body, b"hello");
        let mut cut: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\nhello";
        assert!(
            read_reply(&mut cut)
                .await
                .unwrap_err()
                .contains("before the reply ended")
        );
        let mut chunked: &[u8] = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello";
        assert!(read_reply(&mut chunked).await.is_err());
    }
}
