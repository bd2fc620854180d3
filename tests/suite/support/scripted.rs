//! A scripted upstream on loopback UDP whose behaviour a test switches while
//! it runs: answering, silent, answering late, replying with the wrong ID,
//! answering SERVFAIL, or its port closed. It records every question it is
//! sent (ID and name), so a test can count the sends behind one lookup.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use hickory_server::proto::op::{Message, MessageType, ResponseCode};
use hickory_server::proto::rr::rdata::A;
use hickory_server::proto::rr::{RData, Record, RecordType};

/// The address every answered A question gets.
pub const SCRIPTED_ADDRESS: &str = "192.0.2.55";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// A records for every A question, with this TTL.
    Answer {
        ttl: u32,
    },
    Silent,
    /// The answer, this long after the question.
    Late(Duration),
    /// A reply whose ID is not the question's.
    WrongId,
    ServFail,
    /// The port closed: questions get ICMP port unreachable.
    Closed,
}

pub struct ScriptedUpstream {
    pub address: SocketAddr,
    behaviour: Arc<Mutex<Behaviour>>,
    seen: Arc<Mutex<Vec<(u16, String)>>>,
}

impl ScriptedUpstream {
    pub fn start(behaviour: Behaviour) -> ScriptedUpstream {
        ScriptedUpstream::answering(behaviour, SCRIPTED_ADDRESS.parse().expect("address"))
    }

    /// As [`ScriptedUpstream::start`], answering A questions with `address`.
    pub fn answering(behaviour: Behaviour, address: Ipv4Addr) -> ScriptedUpstream {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind scripted upstream");
        let answer = address;
        let address = socket.local_addr().expect("address");
        let upstream = ScriptedUpstream {
            address,
            behaviour: Arc::new(Mutex::new(behaviour)),
            seen: Arc::default(),
        };
        let (behaviour, seen) = (upstream.behaviour.clone(), upstream.seen.clone());
        thread::spawn(move || serve(socket, address, answer, &behaviour, &seen));
        upstream
    }

    pub fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().expect("behaviour") = behaviour;
    }

    /// Every name it was asked about, in order.
    pub fn names(&self) -> Vec<String> {
        self.seen
            .lock()
            .expect("seen")
            .iter()
            .map(|(_, name)| name.clone())
            .collect()
    }

    /// The IDs of the questions sent for `name` (lower case, with the dot).
    pub fn ids_for(&self, name: &str) -> Vec<u16> {
        self.seen
            .lock()
            .expect("seen")
            .iter()
            .filter(|(_, asked)| asked.eq_ignore_ascii_case(name))
            .map(|(id, _)| *id)
            .collect()
    }
}

fn serve(
    socket: UdpSocket,
    address: SocketAddr,
    answer: Ipv4Addr,
    behaviour: &Mutex<Behaviour>,
    seen: &Mutex<Vec<(u16, String)>>,
) {
    let mut socket = Some(socket);
    let mut buffer = [0u8; 4096];
    loop {
        let now = *behaviour.lock().expect("behaviour");
        if now == Behaviour::Closed {
            // Closing the socket closes the port; it opens again (same
            // port) when the behaviour changes.
            socket = None;
            thread::sleep(Duration::from_millis(20));
            continue;
        }
        let open = match socket.take() {
            Some(open) => open,
            None => match UdpSocket::bind(address) {
                Ok(open) => open,
                Err(_) => {
                    thread::sleep(Duration::from_millis(20));
                    continue;
                }
            },
        };
        let _ = open.set_read_timeout(Some(Duration::from_millis(20)));
        let received = open.recv_from(&mut buffer);
        let reply_socket = open.try_clone().ok();
        socket = Some(open);
        let Ok((n, from)) = received else { continue };
        let Ok(question) = Message::from_vec(&buffer[..n]) else {
            continue;
        };
        let Some(query) = question.queries.first() else {
            continue;
        };
        seen.lock()
            .expect("seen")
            .push((question.metadata.id, query.name().to_ascii()));
        let mut reply = question.clone();
        reply.metadata.message_type = MessageType::Response;
        reply.metadata.recursion_available = true;
        let (delay, ttl) = match now {
            Behaviour::Silent | Behaviour::Closed => continue,
            Behaviour::Answer { ttl } => (None, ttl),
            Behaviour::Late(delay) => (Some(delay), 60),
            Behaviour::WrongId => {
                reply.metadata.id = question.metadata.id.wrapping_add(1);
                (None, 60)
            }
            Behaviour::ServFail => {
                reply.metadata.response_code = ResponseCode::ServFail;
                (None, 0)
            }
        };
        if ttl > 0 && query.query_type() == RecordType::A {
            reply.add_answer(Record::from_rdata(
                query.name().clone(),
                ttl,
                RData::A(A(answer)),
            ));
        }
        let Ok(bytes) = reply.to_vec() else { continue };
        let Some(reply_socket) = reply_socket else {
            continue;
        };
        match delay {
            None => {
                let _ = reply_socket.send_to(&bytes, from);
            }
            Some(delay) => {
                thread::spawn(move || {
                    thread::sleep(delay);
                    let _ = reply_socket.send_to(&bytes, from);
                });
            }
        }
    }
}
