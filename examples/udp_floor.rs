//! The floor for a UDP DNS server on this machine: Lollipop's own batched
//! receive and send (`recvmmsg`/`sendmmsg` through `dns::transport::mmsg`,
//! one socket read by a thread per core, as the resolver runs them)
//! with no DNS work between them. Each query is answered NXDOMAIN by
//! flipping bits in its header. Whatever CPU a query costs here is the
//! kernel's UDP path and the system calls; `bench/compare.sh` runs it beside
//! the servers so their CPU per query can be read against it.
//!
//!     cargo run --release --example udp_floor -- 127.0.0.1:25389

use std::net::{SocketAddr, UdpSocket};

use lollipop::dns::transport::mmsg::{Inbox, Outbox};
use socket2::{Domain, Protocol, Socket, Type};

fn main() {
    let Some(address) = std::env::args().nth(1) else {
        eprintln!("usage: udp_floor ADDRESS:PORT");
        std::process::exit(2);
    };
    let address: SocketAddr = match address.parse() {
        Ok(address) => address,
        Err(error) => {
            eprintln!("udp_floor: {address} is not an address and port: {error}");
            std::process::exit(2);
        }
    };
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    // One socket read by a thread per core, as the resolver reads it.
    let socket = match bind(address) {
        Ok(socket) => std::sync::Arc::new(socket),
        Err(error) => {
            eprintln!("udp_floor: cannot listen on {address}: {error}");
            std::process::exit(1);
        }
    };
    let mut threads = Vec::new();
    for _ in 0..cores {
        let socket = socket.clone();
        threads.push(std::thread::spawn(move || answer_forever(&socket)));
    }
    for thread in threads {
        let _ = thread.join();
    }
}

fn bind(address: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    socket.bind(&address.into())?;
    Ok(socket.into())
}

fn answer_forever(socket: &UdpSocket) {
    let mut inbox = Inbox::new(4096);
    let mut outbox = Outbox::default();
    let mut reply = Vec::with_capacity(512);
    loop {
        let Ok(received) = inbox.receive(socket) else {
            continue;
        };
        for i in 0..received {
            let Some((query, source)) = inbox.datagram(i) else {
                continue;
            };
            if query.len() < 12 {
                continue;
            }
            reply.clear();
            reply.extend_from_slice(query);
            // QR and RD as asked; RA; RCODE 3 (NXDOMAIN).
            reply[2] |= 0x80;
            reply[3] = 0x80 | 3;
            outbox.push(&reply, source);
        }
        outbox.send(socket);
    }
}
