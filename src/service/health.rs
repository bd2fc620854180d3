//! Keeping the process up and systemd told the truth about it: the panic
//! hook (every panic counted in /metrics, logged at most once a minute), the
//! descriptor limit raised to what the unit allows, READY once the listeners
//! answer, and watchdog pings only while a real lookup through the process's
//! own listener is answered.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::sync::Once;
use std::time::{Duration, Instant};

use hickory_resolver::proto::op::{Message, MessageType, OpCode, Query};
use hickory_resolver::proto::rr::{Name, RecordType};
use hickory_resolver::proto::serialize::binary::BinEncodable;

use crate::metrics::count_panic;

/// How often a panic's message reaches the log at most: a message that
/// reaches a bug must not fill an SD card with backtraces.
const PANIC_LOG_EVERY: Duration = Duration::from_secs(60);

/// How long the watchdog's own lookup may take before that ping is skipped.
const SELF_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Counts every panic and passes one a minute to the default hook (which
/// prints where it happened). Installed once per process.
pub fn install_panic_hook() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let default_hook = std::panic::take_hook();
        let last_logged: Mutex<Option<Instant>> = Mutex::new(None);
        std::panic::set_hook(Box::new(move |info| {
            count_panic();
            let due = match last_logged.lock() {
                Ok(mut last) => {
                    let due = last.is_none_or(|at| at.elapsed() >= PANIC_LOG_EVERY);
                    if due {
                        *last = Some(Instant::now());
                    }
                    due
                }
                Err(_) => false,
            };
            if due {
                default_hook(info);
                tracing::error!(
                    "a panic was caught and the resolver kept answering; further panics this minute are only counted (lollipop_panics_total)"
                );
            }
        }));
    });
}

/// Raises the soft limit on open files to the hard limit (systemd's
/// `LimitNOFILE`), so TCP clients cannot run the process out of
/// descriptors at the kernel's default of 1024.
pub fn raise_descriptor_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 || limit.rlim_cur >= limit.rlim_max
        {
            return;
        }
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            tracing::debug!("could not raise the open-file limit");
        }
    }
}

/// Tells systemd the resolver is ready and, if the unit has a watchdog,
/// pings it for as long as `first_listener` answers a lookup. Does nothing
/// outside systemd.
pub fn notify_ready_and_watch(first_listener: Option<SocketAddr>) {
    if let Err(error) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
        tracing::debug!(%error, "could not tell systemd the resolver is ready");
    }
    let (Some(every), Some(listener)) = (sd_notify::watchdog_enabled(), first_listener) else {
        return;
    };
    // Three checks per watchdog period: one slow check is not a restart.
    let every = every / 3;
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            match answers(listener).await {
                Ok(()) => {
                    if let Err(error) = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]) {
                        tracing::debug!(%error, "could not ping the systemd watchdog");
                    }
                }
                Err(error) => tracing::warn!(
                    "the resolver did not answer its own lookup on {listener} ({error}); the watchdog was not pinged"
                ),
            }
        }
    });
}

/// Asks `listener` for `_dns.resolver.arpa` SVCB (answered by Lollipop
/// itself) and waits for any reply with the same id.
async fn answers(listener: SocketAddr) -> std::io::Result<()> {
    let target = match listener.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), listener.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), listener.port())
        }
        _ => listener,
    };
    let bind: SocketAddr = if target.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = tokio::net::UdpSocket::bind(bind).await?;
    let mut query = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    query.metadata.recursion_desired = true;
    // `_dns.resolver.arpa` is a constant name; SVCB is type 64.
    if let Ok(name) = Name::from_ascii("_dns.resolver.arpa.") {
        query.add_query(Query::query(name, RecordType::SVCB));
    }
    let id = query.metadata.id;
    let query = query.to_bytes().map_err(std::io::Error::other)?;
    socket.send_to(&query, target).await?;
    let mut reply = [0u8; 1500];
    let waited = tokio::time::timeout(SELF_CHECK_TIMEOUT, async {
        loop {
            let (n, from) = socket.recv_from(&mut reply).await?;
            if from == target && n >= 2 && reply[..2] == id.to_be_bytes() {
                return Ok::<(), std::io::Error>(());
            }
        }
    })
    .await;
    match waited {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "no reply in 5 s",
        )),
    }
}

fn rand_id() -> u16 {
    let mut bytes = [0u8; 2];
    if getrandom::fill(&mut bytes).is_err() {
        return 0x4c50;
    }
    u16::from_be_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_self_check_fails_when_nothing_answers() {
        // A bound socket that never replies.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let address = silent.local_addr().expect("address");
        let started = Instant::now();
        let result = tokio::time::timeout(Duration::from_secs(10), answers(address)).await;
        assert!(matches!(result, Ok(Err(_))), "{result:?}");
        assert!(started.elapsed() >= SELF_CHECK_TIMEOUT);
    }
}
