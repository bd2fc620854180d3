//! The UDP listeners: several SO_REUSEPORT sockets on each listen address
//! (one per core, the kernel spreads clients over them), each read by a
//! thread of its own that takes every waiting query in one system call and
//! sends the answers ready at once in one more (`mmsg`). A plain query is
//! read and answered by `wire`; any other goes through hickory-server's
//! request type and `handler`. A query whose answer is ready at once
//! (blocked, cached, special) costs no task and no channel; one that must
//! wait for the upstream becomes a task, and at most [`MAX_WAITING`] wait
//! per address.

use std::future::Future;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use hickory_server::net::NetError;
use hickory_server::net::runtime::TokioTime;
use hickory_server::net::xfer::Protocol;
use hickory_server::proto::op::MessageType;
use hickory_server::proto::rr::Record;
use hickory_server::proto::serialize::binary::BinEncoder;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponse;
use ipnet::IpNet;
use tokio::sync::Semaphore;

use super::handler::{DnsHandler, MAX_UDP_PAYLOAD};
use super::mmsg::{Inbox, Outbox};
use super::pipeline::Client;
use super::wire::{self, PlainQuery};

/// Queries waiting for the upstream at once, per listen address; beyond
/// this a query is dropped and the client asks again.
pub const MAX_WAITING: usize = 4096;

/// The largest datagram read; anything longer is not a DNS query we answer.
const RECEIVE_BUFFER: usize = 4096;

/// Who may ask: the allowed networks.
pub struct Access {
    allowed: Vec<IpNet>,
}

impl Access {
    pub fn new(allowed: Vec<IpNet>) -> Access {
        Access { allowed }
    }

    pub fn allows(&self, address: IpAddr) -> bool {
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        self.allowed.iter().any(|net| net.contains(&address))
    }
}

/// How often a reader looks up from its socket to see whether to stop.
const STOP_CHECK: Duration = Duration::from_millis(250);

/// The reading threads of one resolver; they stop when told.
pub struct UdpReaders {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl UdpReaders {
    /// Stops the readers and waits (a quarter of a second at most) for them.
    pub fn stop(mut self) {
        self.stop.store(true, Relaxed);
        for thread in std::mem::take(&mut self.threads) {
            let _ = thread.join();
        }
    }
}

impl Drop for UdpReaders {
    /// Readers never outlive their resolver, even one dropped unstopped.
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
    }
}

/// Starts one reading thread per socket (must be called inside the Tokio
/// runtime, whose tasks take the queries that wait for the upstream). The
/// threads share the handler and the bound on waiting queries.
pub fn serve(
    sockets: Vec<UdpSocket>,
    handler: Arc<DnsHandler>,
    access: Arc<Access>,
) -> std::io::Result<UdpReaders> {
    let waiting = Arc::new(Semaphore::new(MAX_WAITING));
    let stop = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Handle::current();
    let mut threads = Vec::new();
    for (i, socket) in sockets.into_iter().enumerate() {
        socket.set_read_timeout(Some(STOP_CHECK))?;
        let reader = Reader {
            socket: Arc::new(socket),
            handler: handler.clone(),
            access: access.clone(),
            waiting: waiting.clone(),
            stop: stop.clone(),
        };
        let runtime = runtime.clone();
        let thread = std::thread::Builder::new()
            .name(format!("lollipop-udp-{}-{i}", handler.listener))
            .spawn(move || {
                // Queries that must wait become tasks of the runtime.
                let _inside = runtime.enter();
                reader.run();
            })?;
        threads.push(thread);
    }
    Ok(UdpReaders { stop, threads })
}

/// One socket's reader: a blocking receive of every datagram waiting, then
/// the answers in place, sent together. A thread of its own costs one
/// system call per batch each way, with no readiness polling and no task
/// switch for the answers ready at once.
struct Reader {
    socket: Arc<UdpSocket>,
    handler: Arc<DnsHandler>,
    access: Arc<Access>,
    waiting: Arc<Semaphore>,
    stop: Arc<AtomicBool>,
}

impl Reader {
    fn run(&self) {
        let mut inbox = Inbox::new(RECEIVE_BUFFER);
        let mut outbox = Outbox::default();
        while !self.stop.load(Relaxed) {
            let received = match inbox.receive(&self.socket) {
                Ok(received) => received,
                Err(error) => {
                    match error.kind() {
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted => {}
                        // ICMP errors from earlier replies: about one
                        // client, not the socket.
                        ErrorKind::ConnectionRefused | ErrorKind::ConnectionReset => {}
                        // Anything else is paced, so a broken socket cannot
                        // spin a core.
                        _ => {
                            tracing::debug!(%error, "UDP receive failed");
                            std::thread::sleep(Duration::from_millis(10));
                        }
                    }
                    continue;
                }
            };
            for i in 0..received {
                if let Some((datagram, src)) = inbox.datagram(i) {
                    self.answer(datagram, src, &mut outbox);
                }
            }
            outbox.send(&self.socket);
        }
    }

    /// Answers one datagram: into `outbox` if the answer is ready at once,
    /// else from a task when it is.
    fn answer(&self, datagram: &[u8], src: SocketAddr, outbox: &mut Outbox) {
        // A query is at least a header; port 0 cannot be answered.
        if datagram.len() < 12 || src.port() == 0 || is_response(datagram) {
            return;
        }
        if !self.access.allows(src.ip()) {
            send_error(&self.socket, datagram, src, REFUSED);
            return;
        }
        if let Some(query) = PlainQuery::read(datagram) {
            let client = Client {
                address: src.ip(),
                listener: Some(self.handler.listener),
            };
            let pipeline = self.handler.pipeline.clone();
            let mut answering = Box::pin(async move {
                let answer = pipeline
                    .answer(&query.name, query.record_type, client)
                    .await;
                (query, answer)
            });
            let mut ready = Context::from_waker(Waker::noop());
            if let Poll::Ready((query, answer)) = answering.as_mut().poll(&mut ready) {
                wire::respond(&query, &answer, |bytes| outbox.push(bytes, src));
                return;
            }
            let socket = self.socket.clone();
            self.wait(Box::pin(async move {
                let (query, answer) = answering.await;
                wire::respond(&query, &answer, |bytes| send(&socket, bytes, src));
            }));
            return;
        }
        let max_size = response_size_limit(datagram);
        let request = match Request::from_bytes(datagram.to_vec(), src, Protocol::Udp) {
            Ok(request) => request,
            Err(_) => {
                send_error(&self.socket, datagram, src, FORMERR);
                return;
            }
        };
        if request.metadata.message_type == MessageType::Response {
            return;
        }
        let reply = UdpReply {
            socket: self.socket.clone(),
            destination: src,
            max_size,
        };
        let handler = self.handler.clone();
        let mut answering = Box::pin(async move {
            handler
                .handle_request::<_, TokioTime>(&request, reply)
                .await;
        });
        let mut ready = Context::from_waker(Waker::noop());
        if answering.as_mut().poll(&mut ready).is_pending() {
            self.wait(answering);
        }
    }

    /// Finishes `answering`, which is waiting (for the upstream), as a
    /// task, while at most [`MAX_WAITING`] wait; beyond that the query is
    /// dropped and the client asks again. The task polls again with its own
    /// waker, which replaces the no-op one wherever the query is waiting.
    fn wait(&self, answering: Pin<Box<dyn Future<Output = ()> + Send>>) {
        match self.waiting.clone().try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(async move {
                    answering.await;
                    drop(permit);
                });
            }
            Err(_) => {
                tracing::debug!("too many queries waiting for the upstream: one dropped");
            }
        }
    }
}

/// Sends without waiting long: a full socket buffer drops the response, as
/// the network would, and the client asks again.
fn send(socket: &UdpSocket, bytes: &[u8], destination: SocketAddr) {
    if let Err(error) = socket.send_to(bytes, destination) {
        tracing::debug!(%error, %destination, "could not send a response");
    }
}

/// Sends one response encoded by hickory-server straight from the socket.
#[derive(Clone)]
struct UdpReply {
    socket: Arc<UdpSocket>,
    destination: SocketAddr,
    max_size: u16,
}

#[async_trait::async_trait]
impl ResponseHandler for UdpReply {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let mut bytes = Vec::with_capacity(512);
        let mut encoder = BinEncoder::new(&mut bytes);
        encoder.set_max_size(self.max_size);
        let info = response.destructive_emit(&mut encoder)?;
        self.socket.send_to(&bytes, self.destination)?;
        Ok(info)
    }
}

const FORMERR: u8 = 1;
const REFUSED: u8 = 5;

/// Whether the QR bit says this is a response (never answered: reflection).
fn is_response(datagram: &[u8]) -> bool {
    datagram.get(2).is_some_and(|flags| flags & 0x80 != 0)
}

/// The response size the client can take: its EDNS payload size (clamped
/// as the handler clamps it) or 512 bytes without EDNS (RFC 1035 4.2.1).
fn response_size_limit(datagram: &[u8]) -> u16 {
    opt_payload_size(datagram).map_or(512, |size| size.clamp(512, MAX_UDP_PAYLOAD))
}

/// The payload size in the query's OPT record, read without decoding the
/// message: skip the question, find a record of type 41 among the additionals.
fn opt_payload_size(datagram: &[u8]) -> Option<u16> {
    let count = |at: usize| -> Option<u16> {
        Some(u16::from_be_bytes([
            *datagram.get(at)?,
            *datagram.get(at + 1)?,
        ]))
    };
    let (questions, answers, authorities, additionals) =
        (count(4)?, count(6)?, count(8)?, count(10)?);
    if questions != 1 || answers != 0 || authorities != 0 || additionals == 0 {
        return None;
    }
    let mut at = skip_name(datagram, 12)? + 4;
    for _ in 0..additionals {
        at = skip_name(datagram, at)?;
        let record_type = count(at)?;
        if record_type == 41 {
            return count(at + 2);
        }
        let rdata_len = usize::from(count(at + 8)?);
        at += 10 + rdata_len;
    }
    None
}

/// The offset just past the (possibly compressed) name at `at`.
fn skip_name(datagram: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *datagram.get(at)?;
        match len {
            0 => return Some(at + 1),
            l if l & 0xC0 == 0xC0 => return Some(at + 2),
            l if l & 0xC0 == 0 => at += 1 + usize::from(l),
            _ => return None,
        }
    }
}

/// A bare error response: the query's ID, opcode and RD, the code, and the
/// question when it can be found.
fn send_error(socket: &UdpSocket, datagram: &[u8], destination: SocketAddr, code: u8) {
    let Some(header) = datagram.get(..12) else {
        return;
    };
    let question_end = (header[4..6] == [0, 1])
        .then(|| skip_name(datagram, 12).map(|end| end + 4))
        .flatten()
        .filter(|&end| end <= datagram.len());
    let mut reply = Vec::with_capacity(question_end.unwrap_or(12));
    reply.extend_from_slice(&header[..2]);
    // QR set; opcode and RD kept; RA set.
    reply.push(0x80 | (header[2] & 0x79));
    reply.push(0x80 | code);
    reply.extend_from_slice(&[0, u8::from(question_end.is_some()), 0, 0, 0, 0, 0, 0]);
    if let Some(end) = question_end {
        reply.extend_from_slice(&datagram[12..end]);
    }
    let _ = socket.send_to(&reply, destination);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(with_opt: Option<u16>) -> Vec<u8> {
        let mut q = vec![
            0x12,
            0x34,
            0x01,
            0x00,
            0,
            1,
            0,
            0,
            0,
            0,
            0,
            u8::from(with_opt.is_some()),
        ];
        q.extend_from_slice(b"\x03www\x07example\x03org\x00\x00\x01\x00\x01");
        if let Some(size) = with_opt {
            q.extend_from_slice(&[0, 0, 41]);
            q.extend_from_slice(&size.to_be_bytes());
            q.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        }
        q
    }

    #[test]
    fn the_response_limit_follows_the_clients_edns() {
        assert_eq!(response_size_limit(&query(None)), 512);
        assert_eq!(response_size_limit(&query(Some(4096))), MAX_UDP_PAYLOAD);
        assert_eq!(response_size_limit(&query(Some(100))), 512);
        assert_eq!(response_size_limit(&query(Some(1000))), 1000);
        // Damaged: the OPT record is cut short.
        let mut cut = query(Some(1000));
        cut.truncate(cut.len() - 8);
        assert_eq!(response_size_limit(&cut), 512);
    }

    #[test]
    fn access_covers_mapped_addresses() {
        let access = Access::new(vec!["10.0.0.0/8".parse().unwrap()]);
        assert!(access.allows("10.1.2.3".parse().unwrap()));
        assert!(access.allows("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!access.allows("192.0.2.1".parse().unwrap()));
    }
}
