//! Downloads one list from one URL over HTTP(S) and hands its unpacked text
//! to the caller as a stream, within a byte limit and a deadline.

use std::error::Error;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use flate2::bufread::{GzDecoder, MultiGzDecoder};
use ureq::config::RedirectAuthHeaders;
use ureq::http::{StatusCode, Uri};

use crate::config::Archive;

/// Enough for a CDN hop or two; a feed that bounces further is misconfigured.
const MAX_REDIRECTS: u32 = 5;
const USER_AGENT: &str = concat!("lollipop/", env!("CARGO_PKG_VERSION"), " (list updater)");
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const BUFFER: usize = 64 * 1024;

/// An `Authorization` header value. Debug never shows it, so it cannot reach
/// a log by accident.
pub(super) struct Credential(String);

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credential(<redacted>)")
    }
}

impl Credential {
    /// Read at every update so a renewed licence key takes effect without a
    /// restart. Errors name the file, never what is in it.
    pub(super) fn read(path: &Path) -> Result<Self, String> {
        // Bounded in case the path points at something endless by mistake.
        let mut raw = String::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(64 * 1024).read_to_string(&mut raw))
            .map_err(|e| format!("cannot read credential file {}: {e}", path.display()))?;
        let text = raw.trim();
        let bad = |why: &str| format!("credential file {} {why}", path.display());
        if text.is_empty() {
            return Err(bad("is empty"));
        }
        let value = if text
            .get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("bearer "))
        {
            text.to_owned()
        } else if text.contains(':') {
            format!("Basic {}", base64(text.as_bytes()))
        } else {
            return Err(bad("holds neither 'Bearer TOKEN' nor 'user:password'"));
        };
        // Checked here so the HTTP library never gets to quote a bad value.
        if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(bad("holds characters not allowed in an HTTP header"));
        }
        Ok(Credential(value))
    }
}

/// Standard base64 with padding, for HTTP basic auth.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> shift & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Validators from the last good copy, for a conditional GET.
#[derive(Debug, Default)]
pub(super) struct Validators<'a> {
    pub etag: Option<&'a str>,
    pub last_modified: Option<&'a str>,
}

/// One download from one URL.
#[derive(Debug)]
pub(super) struct Request<'a> {
    pub url: &'a str,
    pub archive: &'a Archive,
    pub credential: Option<&'a Credential>,
    pub validators: Option<Validators<'a>>,
    pub max_bytes: u64,
    pub timeout: Duration,
}

/// What the server sent, after the caller consumed the body.
#[derive(Debug)]
pub(super) enum Fetched<T> {
    NotModified,
    Body {
        consumed: T,
        etag: Option<String>,
        last_modified: Option<String>,
    },
}

/// Downloads a small file whole (no archive, no credential): at most
/// `max_bytes`, within `timeout`. Errors are one short phrase.
pub fn download_small(url: &str, max_bytes: u64, timeout: Duration) -> Result<Vec<u8>, String> {
    let request = Request {
        url,
        archive: &Archive::None,
        credential: None,
        validators: None,
        max_bytes,
        timeout,
    };
    let fetched = fetch(&request, |body| {
        let mut bytes = Vec::new();
        body.read_to_end(&mut bytes)
            .map_err(|error| describe(&error))?;
        Ok(bytes)
    })?;
    match fetched {
        Fetched::Body { consumed, .. } => Ok(consumed),
        Fetched::NotModified => Err("server answered 304 Not Modified".into()),
    }
}

/// Fetches `req.url` and passes the unpacked text to `consume`, which must
/// read it to the end. Reading fails (so `consume` must fail) if the body is
/// cut short, exceeds the limit at any layer, or outlasts the deadline.
/// Errors are one short phrase for the update report.
pub(super) fn fetch<T>(
    req: &Request<'_>,
    consume: impl FnOnce(&mut dyn BufRead) -> Result<T, String>,
) -> Result<Fetched<T>, String> {
    let deadline = Instant::now() + req.timeout;
    if req.credential.is_some() {
        check_credential_transport(req.url)?;
    }
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(req.timeout))
        .max_redirects(MAX_REDIRECTS)
        // Follows a redirect with the credential only to the same host, and
        // never from https down to http.
        .redirect_auth_headers(RedirectAuthHeaders::SameHost)
        .user_agent(USER_AGENT)
        .build()
        .new_agent();
    let mut call = agent.get(req.url).header("Accept-Encoding", "gzip");
    if let Some(cred) = req.credential {
        call = call.header("Authorization", cred.0.as_str());
    }
    let conditional = req.validators.as_ref();
    if let Some(etag) = conditional.and_then(|v| v.etag) {
        call = call.header("If-None-Match", etag);
    }
    if let Some(date) = conditional.and_then(|v| v.last_modified) {
        call = call.header("If-Modified-Since", date);
    }
    let response = call.call().map_err(|e| describe_ureq(&e, req.timeout))?;

    let status = response.status();
    if status == StatusCode::NOT_MODIFIED {
        return if conditional.is_some() {
            Ok(Fetched::NotModified)
        } else {
            Err("server answered 304 Not Modified to an unconditional request".into())
        };
    }
    if !status.is_success() {
        let reason = status.canonical_reason().unwrap_or_default();
        return Err(format!("HTTP {} {reason}", status.as_u16())
            .trim_end()
            .to_owned());
    }
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let etag = header("etag");
    let last_modified = header("last-modified");
    let encoding = header("content-encoding").map(|e| e.trim().to_ascii_lowercase());
    let content_gzip = match encoding.as_deref() {
        None | Some("" | "identity") => false,
        Some("gzip" | "x-gzip") => true,
        Some(other) => return Err(format!("unsupported Content-Encoding '{other}'")),
    };
    if let Some(len) = response.body().content_length()
        && len > req.max_bytes
    {
        return Err(too_big("body", req.max_bytes));
    }

    let limits = Limits {
        max: req.max_bytes,
        deadline,
        timeout: req.timeout,
    };
    let raw = limits.guard(response.into_body().into_reader(), "download");
    let mut body: Box<dyn BufRead> = Box::new(BufReader::with_capacity(BUFFER, raw));
    if content_gzip {
        let decoded = limits.guard(MultiGzDecoder::new(body), "gzip Content-Encoding");
        body = Box::new(BufReader::with_capacity(BUFFER, decoded));
    }
    // Some servers label a `.gz` file with `Content-Encoding: gzip`; once that
    // layer is off, the archive's own gzip layer is already gone.
    let archive_gzipped = !content_gzip
        || body
            .fill_buf()
            .map_err(|e| describe(&e))?
            .starts_with(&GZIP_MAGIC);
    let consumed = match req.archive {
        Archive::None => consume_all(body, consume)?,
        Archive::Gzip if archive_gzipped => {
            let text = limits.guard(MultiGzDecoder::new(body), "gzip archive");
            consume_all(Box::new(BufReader::with_capacity(BUFFER, text)), consume)?
        }
        Archive::Gzip => consume_all(body, consume)?,
        Archive::TarGz { member } => {
            let tar: Box<dyn Read> = if archive_gzipped {
                Box::new(GzDecoder::new(body))
            } else {
                Box::new(body)
            };
            consume_tar_member(limits.guard(tar, "tar.gz"), member, consume)?
        }
    };
    Ok(Fetched::Body {
        consumed,
        etag,
        last_modified,
    })
}

/// Passes the stream to `consume`, then makes sure nothing was left unread,
/// so a short or corrupt tail is still noticed.
fn consume_all<T>(
    mut body: Box<dyn BufRead>,
    consume: impl FnOnce(&mut dyn BufRead) -> Result<T, String>,
) -> Result<T, String> {
    let out = consume(&mut body)?;
    io::copy(&mut body, &mut io::sink()).map_err(|e| describe(&e))?;
    Ok(out)
}

fn consume_tar_member<T>(
    stream: impl Read,
    member: &str,
    consume: impl FnOnce(&mut dyn BufRead) -> Result<T, String>,
) -> Result<T, String> {
    let wanted = member_path(member);
    let mut archive = tar::Archive::new(stream);
    let mut found = None;
    let entries = archive.entries().map_err(|e| describe(&e))?;
    for entry in entries {
        let entry = entry.map_err(|e| describe(&e))?;
        let path = entry.path().map_err(|e| describe(&e))?;
        if !entry.header().entry_type().is_file() || member_path(&path.to_string_lossy()) != wanted
        {
            continue;
        }
        let mut text: Box<dyn BufRead> = Box::new(BufReader::with_capacity(BUFFER, entry));
        found = Some(consume(&mut text)?);
        break;
    }
    let Some(out) = found else {
        return Err(format!("tar.gz has no file member '{member}'"));
    };
    // The gzip trailer's checksum is only checked once the stream ends.
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(|e| describe(&e))?;
    Ok(out)
}

/// Tar tools write `./lists/x`, `lists/x` or `/lists/x` for the same file.
fn member_path(path: &str) -> &str {
    path.trim_start_matches('/').trim_start_matches("./")
}

/// A credential sent in clear text over the internet is a leaked licence; the
/// loopback exemption is for a local mirror on the appliance itself.
fn check_credential_transport(url: &str) -> Result<(), String> {
    let uri: Uri = url.parse().map_err(|_| "not a valid URL".to_owned())?;
    if uri.scheme_str() == Some("https") {
        return Ok(());
    }
    let host = uri.host().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err("refusing to send the credential over plain http; use https".into())
    }
}

/// The URL as it may appear in reports: no user info, no query string, since
/// either may hold a licence key.
pub(super) fn display_url(url: &str) -> String {
    match url.parse::<Uri>() {
        Ok(uri) => {
            let scheme = uri.scheme_str().unwrap_or("?");
            let host = uri.host().unwrap_or_default();
            let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
            let query = if uri.query().is_some() { "?…" } else { "" };
            format!("{scheme}://{host}{port}{}{query}", uri.path())
        }
        Err(_) => {
            let cut = url.find(['?', '@']).unwrap_or(url.len());
            format!("{}…", &url[..cut])
        }
    }
}

fn describe_ureq(e: &ureq::Error, timeout: Duration) -> String {
    match e {
        ureq::Error::Timeout(_) => timed_out(timeout),
        ureq::Error::TooManyRedirects => format!("more than {MAX_REDIRECTS} redirects"),
        ureq::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}

fn timed_out(timeout: Duration) -> String {
    format!("timed out after {}s", timeout.as_secs_f64())
}

fn too_big(what: &str, max: u64) -> String {
    format!("{what} is larger than max_bytes ({max} bytes)")
}

/// Turns an error from reading the body into the report's phrase. Every
/// layer's guard has phrased its errors; only the tar parser's own are bare.
pub(super) fn describe(e: &io::Error) -> String {
    match e.get_ref() {
        Some(inner) if inner.is::<Described>() => inner.to_string(),
        _ => format!("tar.gz: {e}"),
    }
}

/// An error already phrased for the report, passed up through the decoders
/// untouched.
#[derive(Debug)]
struct Described(String);

impl fmt::Display for Described {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for Described {}

fn described(text: String) -> io::Error {
    io::Error::other(Described(text))
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    max: u64,
    deadline: Instant,
    timeout: Duration,
}

impl Limits {
    fn guard<R: Read>(&self, inner: R, stage: &'static str) -> Guard<R> {
        Guard {
            inner,
            read: 0,
            limits: *self,
            stage,
        }
    }
}

/// Applies the byte limit and the deadline to one layer of the stream, and
/// names the layer in its errors. Every layer is limited: a few megabytes of
/// gzip can unpack to gigabytes.
struct Guard<R> {
    inner: R,
    read: u64,
    limits: Limits,
    stage: &'static str,
}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if Instant::now() >= self.limits.deadline {
            return Err(described(timed_out(self.limits.timeout)));
        }
        // One byte past the limit is enough to know it was exceeded.
        let room = self.limits.max.saturating_add(1).saturating_sub(self.read);
        let take = usize::try_from(room).unwrap_or(usize::MAX).min(buf.len());
        let n = match self.inner.read(&mut buf[..take]) {
            Ok(n) => n,
            Err(e) => return Err(self.label(e)),
        };
        self.read += n as u64;
        if self.read > self.limits.max {
            return Err(described(too_big(self.stage, self.limits.max)));
        }
        Ok(n)
    }
}

impl<R> Guard<R> {
    fn label(&self, e: io::Error) -> io::Error {
        let inner = e.get_ref();
        if e.kind() == io::ErrorKind::Interrupted || inner.is_some_and(|i| i.is::<Described>()) {
            return e;
        }
        let text = match inner.and_then(|i| i.downcast_ref::<ureq::Error>()) {
            Some(ureq::Error::Timeout(_)) => timed_out(self.limits.timeout),
            _ if e.kind() == io::ErrorKind::UnexpectedEof => {
                format!("{} ended before it was complete", self.stage)
            }
            _ => format!("{}: {e}", self.stage),
        };
        described(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn urls_in_reports_hide_keys() {
        assert_eq!(
            display_url("https://user:pw@feed.example:8443/list.txt?key=secret"),
            "https://feed.example:8443/list.txt?…"
        );
        assert_eq!(display_url("http://127.0.0.1/x"), "http://127.0.0.1/x");
        assert!(!display_url("not a url?key=secret").contains("secret"));
    }

    #[test]
    fn credential_needs_https_unless_loopback() {
        assert!(check_credential_transport("https://feed.example/x").is_ok());
        assert!(check_credential_transport("http://127.0.0.1:8080/x").is_ok());
        assert!(check_credential_transport("http://[::1]/x").is_ok());
        assert!(check_credential_transport("http://localhost/x").is_ok());
        assert!(check_credential_transport("http://feed.example/x").is_err());
    }
}
