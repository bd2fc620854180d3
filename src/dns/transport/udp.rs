//! The UDP listeners: one socket on each listen address, read by one thread
//! per core. Each thread takes every waiting query in one system call and
//! sends the answers ready at once in one more (`mmsg`). The threads share
//! the socket rather than each owning one (SO_REUSEPORT) so that whichever
//! thread has a core takes the next queries: a thread held off its core by
//! another process (the block log's disk work, a web page, a backup) never
//! holds up the clients the kernel would have tied to its socket, which is
//! what made the slowest answers at half load several milliseconds. After
//! the access check and the rate limit, a question asked again is answered
//! from the bytes of the answer given to it before (`resolve::repeats`);
//! otherwise the codec reads the datagram and writes the answer. A query
//! whose answer is ready at once
//! (blocked, cached, special: the pipeline's synchronous part) costs no
//! task, no future and no channel; one that must wait for the upstream
//! becomes a task, and at most [`MAX_WAITING`] wait per address.

use std::future::Future;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::config::QueryLimits;
use crate::dns::codec::{self, FORMERR, Incoming, Query, REFUSED, Transport};
use crate::dns::resolve::answer::Answer;
use crate::dns::resolve::pipeline::Pipeline;
use crate::dns::resolve::settings::Client;
use crate::metrics::Metrics;

use super::Access;
use super::limits::{OverLimit, RateLimiter};
use super::mmsg::{Inbox, Outbox};

/// Queries waiting for the upstream at once, per listen address; beyond
/// this a query is dropped and the client asks again.
pub const MAX_WAITING: usize = 4096;

/// The largest datagram read; anything longer is not a DNS query we answer.
const RECEIVE_BUFFER: usize = 4096;

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

/// Starts `readers` threads reading `socket` (must be called inside the
/// Tokio runtime, whose tasks take the queries that wait for the
/// upstream). The threads share the pipeline and the bound on waiting
/// queries.
pub fn serve(
    socket: UdpSocket,
    readers: usize,
    pipeline: Arc<Pipeline>,
    listener: usize,
    access: Arc<Access>,
    limiter: Arc<RateLimiter>,
    metrics: Arc<Metrics>,
) -> std::io::Result<UdpReaders> {
    let waiting = Arc::new(Semaphore::new(MAX_WAITING));
    let stop = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Handle::current();
    let mut threads = Vec::new();
    socket.set_read_timeout(Some(STOP_CHECK))?;
    let socket = Arc::new(socket);
    for i in 0..readers.max(1) {
        let reader = Reader {
            socket: socket.clone(),
            pipeline: pipeline.clone(),
            listener,
            access: access.clone(),
            limiter: limiter.clone(),
            metrics: metrics.clone(),
            waiting: waiting.clone(),
            stop: stop.clone(),
        };
        let runtime = runtime.clone();
        let thread = std::thread::Builder::new()
            .name(format!("lollipop-udp-{listener}-{i}"))
            .spawn(move || {
                // Queries that must wait become tasks of the runtime.
                let _inside = runtime.enter();
                // A panic outside one message's answer (receiving,
                // sending) loses the batch in hand, never the socket: the
                // reader starts again. The panic hook has counted and
                // logged it.
                while std::panic::catch_unwind(AssertUnwindSafe(|| reader.run())).is_err() {
                    std::thread::sleep(Duration::from_millis(1));
                }
            })?;
        threads.push(thread);
    }
    Ok(UdpReaders { stop, threads })
}

/// One reading thread: a blocking receive of every datagram waiting, then
/// the answers in place, sent together. A thread of its own costs one
/// system call per batch each way, with no readiness polling and no task
/// switch for the answers ready at once.
struct Reader {
    socket: Arc<UdpSocket>,
    pipeline: Arc<Pipeline>,
    /// Which `[[listen]]` address the socket is bound to.
    listener: usize,
    access: Arc<Access>,
    /// Who may ask how fast; shared by every listener.
    limiter: Arc<RateLimiter>,
    /// Where unreadable and rate-limited messages are counted.
    metrics: Arc<Metrics>,
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
            // The limits in force and the time, once per batch.
            let settings = self.pipeline.settings();
            let now = Instant::now();
            for i in 0..received {
                if let Some((datagram, src)) = inbox.datagram(i) {
                    // A panic (a bug reached by some message) loses that
                    // one message, never the other clients' in the batch:
                    // the hook has counted and logged it.
                    let answered = std::panic::catch_unwind(AssertUnwindSafe(|| {
                        self.answer(datagram, src, (&settings.limits, now), &mut outbox)
                    }));
                    drop(answered);
                }
            }
            outbox.send(&self.socket);
        }
    }

    /// A query from a client over its rate limit: dropped or, one in
    /// `slip`, answered empty with TC set (into `outbox`); counted either
    /// way, never logged.
    fn over_limit(&self, datagram: &[u8], src: SocketAddr, slip: u32, outbox: &mut Outbox) {
        let reply = match self.limiter.over_limit(slip) {
            OverLimit::Slip => codec::truncated(datagram),
            OverLimit::Drop => None,
        };
        match reply {
            Some(reply) => {
                self.metrics.limits.slipped.inc();
                outbox.push(&reply, src);
            }
            None => {
                self.metrics.limits.dropped.inc();
            }
        }
    }

    /// Answers one datagram: into `outbox` if the answer is ready at once,
    /// else from a task when it is.
    fn answer(
        &self,
        datagram: &[u8],
        src: SocketAddr,
        (limits, now): (&QueryLimits, Instant),
        outbox: &mut Outbox,
    ) {
        // Port 0 cannot be answered; a response is never answered.
        if src.port() == 0 || !codec::is_query(datagram) {
            return;
        }
        if !self.access.allows(src.ip()) {
            if let Some(reply) = codec::bare_error(datagram, REFUSED) {
                outbox.push(&reply, src);
            }
            return;
        }
        if !self.limiter.allows(src.ip(), limits, now) {
            self.over_limit(datagram, src, limits.slip, outbox);
            return;
        }
        let client = Client {
            address: src.ip(),
            listener: Some(self.listener),
        };
        let Some(query) =
            answer_at_once(&self.pipeline, &self.metrics, datagram, client, |bytes| {
                outbox.push(bytes, src)
            })
        else {
            return;
        };
        let pipeline = self.pipeline.clone();
        let socket = self.socket.clone();
        self.wait(Box::pin(async move {
            let answer = pipeline
                .answer_checking(
                    &query.name,
                    query.record_type,
                    client,
                    query.checking_disabled(),
                )
                .await;
            codec::respond(&query, &answer, Transport::Udp, |bytes| {
                send(&socket, bytes, src)
            });
        }));
    }

    /// Runs `answering`, a query that must wait (for the upstream), as a
    /// task, while at most [`MAX_WAITING`] wait; beyond that the query is
    /// dropped and the client asks again.
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

/// Answers one datagram that passed the access check and the rate limit,
/// when its answer is ready at once, handing the response to `reply`: a
/// question asked again from the bytes of the answer given before, else
/// through the codec and the pipeline, keeping what may be given again.
/// The query, read, when its answer must wait for the upstream.
pub(super) fn answer_at_once(
    pipeline: &Pipeline,
    metrics: &Metrics,
    datagram: &[u8],
    client: Client,
    mut reply: impl FnMut(&[u8]),
) -> Option<Query> {
    let in_force = pipeline.in_force();
    let repeat = codec::repeatable(datagram)
        .and_then(|question| pipeline.repeat_key(&in_force, question, client));
    if let Some(key) = &repeat
        && pipeline.answer_repeat(
            &in_force,
            key,
            [datagram[0], datagram[1]],
            client,
            &mut reply,
        )
    {
        metrics.repeated.inc();
        return None;
    }
    let query = match codec::read(datagram) {
        Incoming::Question(query) => query,
        Incoming::Error(query, code) => {
            metrics.malformed.inc();
            codec::respond(&query, &Answer::code(code), Transport::Udp, reply);
            return None;
        }
        Incoming::Malformed => {
            metrics.malformed.inc();
            if let Some(bytes) = codec::bare_error(datagram, FORMERR) {
                reply(&bytes);
            }
            return None;
        }
        Incoming::Ignored => return None,
    };
    let Some((answer, keep)) = pipeline.answer_at_once_in(
        &in_force,
        (&query.name, query.record_type),
        client,
        query.checking_disabled(),
        repeat.is_some(),
    ) else {
        return Some(query);
    };
    codec::respond(&query, &answer, Transport::Udp, |bytes| {
        reply(bytes);
        if let (Some(key), Some(keep)) = (&repeat, keep) {
            pipeline.remember(key, keep, bytes, codec::record_ttl_offsets(bytes));
        }
    });
    None
}

/// Sends without waiting long: a full socket buffer drops the response, as
/// the network would, and the client asks again.
fn send(socket: &UdpSocket, bytes: &[u8], destination: SocketAddr) {
    if let Err(error) = socket.send_to(bytes, destination) {
        tracing::debug!(%error, %destination, "could not send a response");
    }
}
