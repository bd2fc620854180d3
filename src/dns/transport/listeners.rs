//! The listeners: a UDP socket (read by one thread per core, see `udp`) and a TCP listener
//! (see `tcp`) on every configured address, each knowing its address (so
//! the query keeps its VLAN), behind the allowed-networks rule that keeps
//! Lollipop from being an open resolver.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use ipnet::IpNet;
use socket2::{Domain, Protocol, Socket, Type};

use crate::config::{Config, parse_network};
use crate::dns::resolve::pipeline::Pipeline;
use crate::metrics::Metrics;

use super::Access;
use super::limits::{RateLimiter, TcpConnections};
use super::tcp::{self, TcpServer};
use super::udp;

/// Networks that may always ask: private, loopback and link-local ranges.
pub const ALWAYS_ALLOWED: [&str; 8] = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
];

/// Kernel receive buffer of each UDP socket: room for a burst of queries
/// while the readers are busy.
const UDP_RECEIVE_BUFFER: usize = 4 << 20;

/// Threads reading each address's UDP socket: one per core, within reason.
fn udp_readers_per_address() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(16))
}

pub struct DnsServers {
    tcp_servers: Vec<TcpServer>,
    udp_readers: Vec<udp::UdpReaders>,
    /// The addresses actually bound (port 0 in the config becomes a real port).
    pub addresses: Vec<SocketAddr>,
    /// The allowed networks every listener checks; a reload sets them.
    pub access: Arc<Access>,
}

impl DnsServers {
    /// Binds every `[[listen]]` address, UDP and TCP, and starts serving.
    pub fn start(
        config: &Config,
        pipeline: Arc<Pipeline>,
        metrics: Arc<Metrics>,
    ) -> Result<DnsServers> {
        let access = Arc::new(Access::new(allowed_networks(config)?));
        let limiter = Arc::new(RateLimiter::default());
        let connections = Arc::new(TcpConnections::default());
        let mut tcp_servers = Vec::new();
        let mut udp_readers = Vec::new();
        let mut addresses = Vec::new();
        for (listener, listen) in config.listen.iter().enumerate() {
            let address: SocketAddr = listen
                .address
                .get_ref()
                .parse()
                .with_context(|| format!("listen[{listener}].address"))?;
            let (udp, tcp, address) = bind_pair(address)?;
            udp_readers.push(
                udp::serve(
                    udp,
                    udp_readers_per_address(),
                    pipeline.clone(),
                    listener,
                    access.clone(),
                    limiter.clone(),
                    metrics.clone(),
                )
                .with_context(|| format!("cannot start the UDP readers for {address}"))?,
            );
            tcp_servers.push(tcp::serve(
                tcp,
                pipeline.clone(),
                listener,
                access.clone(),
                tcp::Limiters {
                    rate: limiter.clone(),
                    connections: connections.clone(),
                },
                metrics.clone(),
            ));
            tracing::info!(%address, profile = ?listen.profile.as_ref().map(|p| p.get_ref()), "listening (UDP and TCP)");
            addresses.push(address);
        }
        Ok(DnsServers {
            tcp_servers,
            udp_readers,
            addresses,
            access,
        })
    }

    /// Stops accepting queries and waits for those in flight.
    pub async fn shutdown(mut self) {
        let readers = std::mem::take(&mut self.udp_readers);
        let _ = tokio::task::spawn_blocking(move || {
            for reader in readers {
                reader.stop();
            }
        })
        .await;
        for server in std::mem::take(&mut self.tcp_servers) {
            server.shutdown().await;
        }
    }
}

fn cannot_listen(protocol: &str, address: SocketAddr) -> String {
    let hint = if address.port() < 1024 {
        " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
    } else {
        ""
    };
    format!(
        "cannot listen on {protocol} {address}{hint}: is another DNS server running there, and is the address on this machine?"
    )
}

/// The networks that may ask under `config`: the private ranges and
/// `server.allowed_networks`.
pub fn allowed_networks(config: &Config) -> Result<Vec<IpNet>> {
    let mut allowed: Vec<IpNet> = ALWAYS_ALLOWED
        .iter()
        .filter_map(|net| net.parse().ok())
        .collect();
    for network in &config.server.allowed_networks {
        allowed.push(parse_network(network.get_ref()).map_err(anyhow::Error::msg)?);
    }
    Ok(allowed)
}

/// Binds UDP and TCP on one address. Port 0 (tests) picks a port free for
/// both, trying again when the port UDP got is taken for TCP.
fn bind_pair(
    address: SocketAddr,
) -> Result<(std::net::UdpSocket, tokio::net::TcpListener, SocketAddr)> {
    let tries = if address.port() == 0 { 50 } else { 1 };
    let mut last_error = None;
    for _ in 0..tries {
        let udp = bind_udp(address).with_context(|| cannot_listen("UDP", address))?;
        let bound = udp.local_addr()?;
        match bind_tcp(bound) {
            Ok(tcp) => return Ok((udp, tcp, bound)),
            Err(error) => last_error = Some(error.context(cannot_listen("TCP", bound))),
        }
    }
    Err(last_error.unwrap_or_else(|| anyhow::anyhow!(cannot_listen("TCP", address))))
}

fn new_socket(address: SocketAddr, kind: Type, protocol: Protocol) -> Result<Socket> {
    let socket = Socket::new(Domain::for_address(address), kind, Some(protocol))?;
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// The UDP socket of one address. No SO_REUSEPORT: a second resolver
/// started on the same address by mistake fails to bind instead of
/// silently taking a share of the school's queries.
fn bind_udp(address: SocketAddr) -> Result<std::net::UdpSocket> {
    let socket = new_socket(address, Type::DGRAM, Protocol::UDP)?;
    // Read by blocking threads (see `udp`).
    socket.set_nonblocking(false)?;
    // A smaller buffer than asked for is still a working socket.
    let _ = socket.set_recv_buffer_size(UDP_RECEIVE_BUFFER);
    socket.bind(&address.into())?;
    Ok(socket.into())
}

fn bind_tcp(address: SocketAddr) -> Result<tokio::net::TcpListener> {
    let socket = new_socket(address, Type::STREAM, Protocol::TCP)?;
    socket.bind(&address.into())?;
    socket.listen(1024)?;
    Ok(tokio::net::TcpListener::from_std(socket.into())?)
}
