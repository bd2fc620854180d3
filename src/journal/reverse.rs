//! Asks the school's router for a device's name (a PTR lookup of its address)
//! when neither the config nor a lease file names it. Blocking, with a short
//! timeout: it runs on the log writer's thread, never on the query path.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use hickory_resolver::proto::op::{Message, MessageType, OpCode, Query};
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::proto::serialize::binary::{BinDecodable, BinEncodable};

use super::ReverseLookup;

/// Long enough for a router on the LAN, short enough not to stall the log.
const TIMEOUT: Duration = Duration::from_millis(300);

/// A lookup that asks the DNS server at `router` for PTR records.
pub fn router_lookup(router: SocketAddr) -> ReverseLookup {
    Box::new(move |ip| ask_ptr(router, ip))
}

fn ask_ptr(router: SocketAddr, ip: IpAddr) -> Option<String> {
    let mut query = Message::new(rand_id(ip), MessageType::Query, OpCode::Query);
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(Name::from(ip), RecordType::PTR));
    let bytes = query.to_bytes().ok()?;
    let bind: SocketAddr = if router.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(bind).ok()?;
    socket.set_read_timeout(Some(TIMEOUT)).ok()?;
    socket.send_to(&bytes, router).ok()?;
    let mut buf = [0u8; 1500];
    let (len, from) = socket.recv_from(&mut buf).ok()?;
    if from != router {
        return None;
    }
    let reply = Message::from_bytes(buf.get(..len)?).ok()?;
    if reply.metadata.id != query.metadata.id {
        return None;
    }
    reply.answers.iter().find_map(|record| match &record.data {
        RData::PTR(name) => {
            let text = name.0.to_ascii();
            let text = text.strip_suffix('.').unwrap_or(&text);
            (!text.is_empty()).then(|| text.to_string())
        }
        _ => None,
    })
}

/// A query id that differs between addresses and over time.
fn rand_id(ip: IpAddr) -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let seed = match ip {
        IpAddr::V4(v4) => u32::from(v4),
        IpAddr::V6(v6) => v6.segments().iter().map(|s| u32::from(*s)).sum(),
    };
    (nanos ^ seed.rotate_left(7)) as u16
}
