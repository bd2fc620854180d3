//! A scripted HTTP/1.1 server on loopback: each path gets a canned
//! [`Reply`] (404 when none is set), and every request is recorded with its
//! method, path, headers and body. It stands in for list mirrors, feeds and
//! a school's webhook receiver. One thread accepts; each connection is
//! served on its own thread and closed after one reply.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the server sends for one path.
#[derive(Debug, Clone)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    delay: Duration,
    /// Sends only this many body bytes, then closes, still claiming the
    /// whole length.
    cut_after: Option<usize>,
    /// Sends this many body bytes, then stalls for the duration.
    pause: Option<(usize, Duration)>,
    content_length: bool,
    /// Served instead when the request has this header with this value, so
    /// a conditional reply only comes back to a conditional request.
    when: Option<(String, String, Box<Reply>)>,
}

impl Reply {
    /// `status` with an empty body.
    pub fn status(status: u16) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: Duration::ZERO,
            cut_after: None,
            pause: None,
            content_length: true,
            when: None,
        }
    }

    /// 200 with `body`.
    pub fn ok(body: impl Into<Vec<u8>>) -> Self {
        Reply::status(200).body(body)
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Waits this long before answering.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn cut_after(mut self, bytes: usize) -> Self {
        self.cut_after = Some(bytes);
        self
    }

    pub fn pause_after(mut self, bytes: usize, pause: Duration) -> Self {
        self.pause = Some((bytes, pause));
        self
    }

    /// The body ends when the connection closes, as HTTP/1.0 servers do.
    pub fn without_length(mut self) -> Self {
        self.content_length = false;
        self
    }

    pub fn when_header(mut self, name: &str, value: &str, reply: Reply) -> Self {
        self.when = Some((name.to_ascii_lowercase(), value.into(), Box::new(reply)));
        self
    }
}

/// One request as the server saw it; header names are lower-cased.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{} {}: body is not JSON ({e})", self.method, self.path))
    }
}

type Routes = Arc<Mutex<HashMap<String, Reply>>>;

/// The server; it stops when dropped.
pub struct Server {
    addr: SocketAddr,
    routes: Routes,
    seen: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start() -> Server {
        Server::start_on("127.0.0.1")
    }

    /// Any loopback address; a second one stands in for "another host".
    pub fn start_on(ip: &str) -> Server {
        let listener = TcpListener::bind((ip, 0)).expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let routes: Routes = Arc::default();
        let seen: Arc<Mutex<Vec<Request>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let (routes, seen, stop) = (routes.clone(), seen.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (routes, seen) = (routes.clone(), seen.clone());
                    std::thread::spawn(move || serve(stream, &routes, &seen));
                }
            })
        };
        Server {
            addr,
            routes,
            seen,
            stop,
            accept: Some(accept),
        }
    }

    pub fn address(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers `path` with `reply` from now on.
    pub fn route(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert(path.into(), reply);
    }

    /// Answers `path` with `status` and `body`.
    pub fn serve(&self, path: &str, status: u16, body: &str) {
        self.route(path, Reply::status(status).body(body));
    }

    /// Every request so far, in the order they arrived.
    pub fn requests(&self) -> Vec<Request> {
        self.seen.lock().unwrap().clone()
    }

    /// The requests other than the start-up notice of safeguards that are
    /// off, which every test school (no IWF feed) sends first.
    pub fn alerts(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|request| !request.body_text().contains("some safeguards are off"))
            .collect()
    }

    pub fn last_request(&self) -> Request {
        self.requests()
            .pop()
            .expect("no request reached the server")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(handle) = self.accept.take() {
            let _ = handle.join();
        }
    }
}

fn serve(stream: TcpStream, routes: &Routes, seen: &Mutex<Vec<Request>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let Some(request) = read_request(&stream) else {
        return;
    };
    seen.lock().unwrap().push(request.clone());
    let reply = routes
        .lock()
        .unwrap()
        .get(&request.path)
        .cloned()
        .unwrap_or_else(|| Reply::status(404));
    let reply = match reply.when {
        Some((name, value, alt)) if request.header(&name) == Some(value.as_str()) => *alt,
        _ => reply,
    };
    std::thread::sleep(reply.delay);
    let _ = respond(stream, &reply);
}

/// The request line, the headers, and as many body bytes as
/// `Content-Length` says; None if the client went away first.
fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).ok()? == 0 {
        return None;
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let path = parts.next().unwrap_or("/").to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return None,
            Ok(_) if line.trim().is_empty() => break,
            Ok(_) => {
                if let Some((name, value)) = line.split_once(':') {
                    headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
                }
            }
        }
    }
    let mut request = Request {
        method,
        path,
        headers,
        body: Vec::new(),
    };
    let length = request
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    request.body = vec![0; length];
    reader.read_exact(&mut request.body).ok()?;
    Some(request)
}

fn respond(mut stream: TcpStream, reply: &Reply) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} Scripted\r\nConnection: close\r\n",
        reply.status
    );
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if reply.content_length {
        head.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    let end = reply
        .cut_after
        .unwrap_or(reply.body.len())
        .min(reply.body.len());
    let (first, rest) = reply.body[..end].split_at(reply.pause.map_or(0, |(n, _)| n.min(end)));
    stream.write_all(first)?;
    stream.flush()?;
    if let Some((_, pause)) = reply.pause {
        std::thread::sleep(pause);
    }
    stream.write_all(rest)?;
    stream.flush()?;
    stream.shutdown(std::net::Shutdown::Both)
}
