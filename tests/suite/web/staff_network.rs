//! The staff pages answer only on the staff network; the child's block
//! page and the unlock form answer on every filtered network. Loopback
//! addresses stand in for the networks: 127.0.0.3 is the staff network,
//! 127.0.0.2 a classroom.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use lollipop::service::reload::ReloadOutcome;
use socket2::{Domain, Socket, Type};

use crate::support::web::WebSchool;
use crate::support::*;

/// `GET path` with `Host: host`, sent from the loopback address `source`;
/// the status code and the body.
fn get_from(source: &str, web: SocketAddr, path: &str, host: &str) -> (u16, String) {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let from: SocketAddr = format!("{source}:0").parse().expect("address");
    socket.bind(&from.into()).expect("bind the client address");
    socket.connect(&web.into()).expect("connect");
    let mut stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    let status = reply
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("an HTTP reply: {reply}"));
    (status, reply)
}

#[test]
fn staff_pages_answer_only_on_the_staff_network_and_the_block_page_everywhere() {
    let school = WebSchool::start_at(
        "staff_networks = [\"127.0.0.3/32\"]",
        Clock::system(),
        |_| {},
    );
    let web = school.web;
    let host = web.to_string();

    for path in ["/", "/login", "/log", "/settings", "/api/v1/status"] {
        let (status, body) = get_from("127.0.0.2", web, path, &host);
        assert_eq!(status, 403, "{path} from a classroom: {body}");
        if !path.starts_with("/api/") {
            assert!(
                body.contains("The staff pages are only available on the staff network."),
                "{body}"
            );
        }
    }
    let (status, body) = get_from("127.0.0.2", web, "/", "www.bet365.com");
    assert_eq!(status, 200, "the block page: {body}");
    assert!(body.contains("blocked at school"), "{body}");
    let (status, body) = get_from("127.0.0.2", web, "/unlock?domain=www.bet365.com", &host);
    assert_eq!(status, 200, "the unlock form: {body}");
    assert!(body.contains("override code"), "{body}");

    let (status, body) = get_from("127.0.0.3", web, "/login", &host);
    assert_eq!(status, 200, "sign-in on the staff network: {body}");

    // A reload moves the staff network at once.
    let outcome = school
        .lollipop
        .reload_with(|text| text.replace("127.0.0.3/32", "127.0.0.2/32"));
    assert_eq!(outcome, ReloadOutcome::Reloaded);
    assert_eq!(get_from("127.0.0.2", web, "/login", &host).0, 200);
    assert_eq!(get_from("127.0.0.3", web, "/login", &host).0, 403);
}
