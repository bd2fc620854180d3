//! Debian's Unbound, started by a test as the reference recursor: the same
//! root hints and trust anchor as Lollipop, on loopback, in the foreground,
//! killed (SIGTERM, then SIGKILL) when dropped.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hickory_server::proto::rr::RecordType;
use hickory_server::proto::serialize::binary::BinEncodable;

use super::nsd::Hierarchy;
use super::{Ask, exchange_udp_within, free_port, query_message, wait_until};

pub struct Unbound {
    pub address: SocketAddr,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Unbound {
    /// Unbound recursing through `hierarchy`, validating with its root key.
    pub fn start(hierarchy: &Hierarchy) -> Unbound {
        Unbound::start_with_modules(hierarchy, "validator iterator")
    }

    /// Unbound recursing through `hierarchy` without validating: an
    /// upstream that passes tampered data on, for a validating forwarder
    /// to catch.
    pub fn start_not_validating(hierarchy: &Hierarchy) -> Unbound {
        Unbound::start_with_modules(hierarchy, "iterator")
    }

    fn start_with_modules(hierarchy: &Hierarchy, modules: &str) -> Unbound {
        let dir = tempfile::tempdir().expect("tempdir");
        let address: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let conf = dir.path().join("unbound.conf");
        std::fs::write(
            &conf,
            format!(
                "server:\n  interface: {ip}\n  port: {port}\n  do-daemonize: no\n  username: \"\"\n  \
                 chroot: \"\"\n  directory: \"{dir}\"\n  pidfile: \"{dir}/unbound.pid\"\n  \
                 use-syslog: no\n  logfile: \"{dir}/unbound.log\"\n  verbosity: 1\n  do-ip6: no\n  \
                 access-control: 127.0.0.0/8 allow\n  do-not-query-localhost: no\n  \
                 root-hints: \"{hints}\"\n  trust-anchor-file: \"{anchor}\"\n  \
                 module-config: \"{modules}\"\n  qname-minimisation: yes\n  \
                 local-zone: \"test.\" nodefault\n\
                 remote-control:\n  control-enable: no\n",
                ip = address.ip(),
                port = address.port(),
                dir = dir.path().display(),
                hints = hierarchy.root_hints.display(),
                anchor = hierarchy.trust_anchor.display(),
            ),
        )
        .expect("unbound.conf");
        let child = Command::new("/usr/sbin/unbound")
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("unbound starts (apt-get install unbound)");
        let mut unbound = Unbound {
            address,
            child,
            _dir: dir,
        };
        let bytes = query_message("localhost.", RecordType::A, Ask::default())
            .to_bytes()
            .expect("encode");
        wait_until("Unbound answering", || {
            if let Ok(Some(status)) = unbound.child.try_wait() {
                panic!("unbound exited: {status}");
            }
            exchange_udp_within(address, &bytes, Duration::from_millis(200)).is_some()
        });
        unbound
    }
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
