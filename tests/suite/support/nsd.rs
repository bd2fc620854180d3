//! A small DNS hierarchy on loopback for the recursion tests: Debian's NSD
//! serving a root zone, the `test.` TLD, a signed leaf (`signed.test.`), a
//! leaf whose signatures have expired (`expired.test.`) and an unsigned one
//! (`plain.test.`), a glueless delegation and a lame one, each zone from its own NSD on its own
//! address (port 53, the only port the recursor asks), plus a delegation
//! (`silent.test.`) to an address where a socket counts queries and never
//! answers. Keys are made and zones signed here, in a tempdir (ldnsutils),
//! never committed; every server answers before `start` returns, and the
//! NSDs are killed when the hierarchy is dropped.
//!
//! Each test passes its own third octet, so hierarchies of tests running
//! side by side use different addresses (127.0.<net>.x).

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use hickory_server::proto::rr::RecordType;
use hickory_server::proto::serialize::binary::BinEncodable;

use super::{Ask, exchange_udp_within, query_message, wait_until};

/// The address records of the test zones (TEST-NET-1: public as far as
/// the rebinding guard is concerned, reachable by nothing).
pub const WWW_SIGNED: &str = "192.0.2.10";
pub const WWW_PLAIN: &str = "192.0.2.20";
/// `bad.signed.test`'s address as signed; the zone served says `.67`.
pub const BAD_SIGNED: &str = "192.0.2.66";
pub const CASINO: &str = "192.0.2.30";
pub const WWW_EXPIRED: &str = "192.0.2.40";
pub const WWW_GLUELESS: &str = "192.0.2.50";

pub struct Hierarchy {
    /// Holds the zones, keys and NSD configs while the servers run.
    _dir: tempfile::TempDir,
    net: u8,
    /// The root hints file naming this hierarchy's root server.
    pub root_hints: PathBuf,
    /// The root zone's KSK, as an ldns `.key` file.
    pub trust_anchor: PathBuf,
    /// Queries that reached the silent zone's server.
    pub silent_queries: Arc<AtomicUsize>,
    silent_stop: Arc<AtomicBool>,
    servers: Vec<std::process::Child>,
}

/// The zones, the last octet of their server's address, and whether they
/// are signed (a child before its parent, so the parent can take its DS).
const SIGNED_LEAF: u8 = 93;
const PLAIN_LEAF: u8 = 94;
const EXPIRED_LEAF: u8 = 95;
const TLD: u8 = 92;
const ROOT: u8 = 91;
const SILENT: u8 = 99;

impl Hierarchy {
    /// Starts the hierarchy on 127.0.`net`.x.
    pub fn start(net: u8) -> Hierarchy {
        Hierarchy::start_signed_with(net, &[])
    }

    /// As [`Hierarchy::start`], every signed zone (the root and `test.`
    /// too) signed with `ldns-signzone` options `signing` (e.g. `-i`/`-e`
    /// for a validity window in the past, as a Pi in 1970 might take).
    pub fn start_signed_with(net: u8, signing: &[&str]) -> Hierarchy {
        let dir = tempfile::tempdir().expect("tempdir");
        let ip = |last: u8| format!("127.0.{net}.{last}");
        let serial = "2026010101";
        let soa = |zone: &str| {
            format!("{zone} 3600 IN SOA ns.{zone} hostmaster.{zone} {serial} 3600 900 604800 300\n")
                .replace("ns.. ", "ns.root-servers.test. ")
                .replace("hostmaster.. ", "hostmaster.test. ")
        };

        let signed = format!(
            "$ORIGIN signed.test.\n{}\
             signed.test. 3600 IN NS ns.signed.test.\n\
             ns 3600 IN A {}\n\
             www 300 IN A {WWW_SIGNED}\n\
             bad 300 IN A {BAD_SIGNED}\n\
             nokey 300 IN A 192.0.2.68\n\
             casino 300 IN A {CASINO}\n\
             alias 300 IN CNAME www.plain.test.\n\
             ns1 3600 IN A {}\n",
            soa("signed.test."),
            ip(SIGNED_LEAF),
            ip(PLAIN_LEAF)
        );
        let plain = format!(
            "$ORIGIN plain.test.\n{}\
             plain.test. 3600 IN NS ns.plain.test.\n\
             ns 3600 IN A {}\n\
             www 300 IN A {WWW_PLAIN}\n\
             chain 300 IN CNAME alias.signed.test.\n\
             tobad 300 IN CNAME casino.signed.test.\n\
             host.ent 300 IN A {WWW_PLAIN}\n",
            soa("plain.test."),
            ip(PLAIN_LEAF)
        );
        // Delegated without glue: its server's name is in another zone
        // (`signed.test`), which the recursor must resolve first. Served by
        // the plain zone's NSD.
        let glueless = format!(
            "$ORIGIN glueless.test.\n{}\
             glueless.test. 3600 IN NS ns1.signed.test.\n\
             www 300 IN A {WWW_GLUELESS}\n",
            soa("glueless.test."),
        );
        let expired = format!(
            "$ORIGIN expired.test.\n{}\
             expired.test. 3600 IN NS ns.expired.test.\n\
             ns 3600 IN A {}\n\
             www 300 IN A {WWW_EXPIRED}\n",
            soa("expired.test."),
            ip(EXPIRED_LEAF)
        );
        let tld = format!(
            "$ORIGIN test.\n{}\
             test. 3600 IN NS ns.test.\n\
             ns 3600 IN A {}\n\
             ns.root-servers 3600 IN A {}\n\
             signed 3600 IN NS ns.signed.test.\n\
             ns.signed 3600 IN A {}\n\
             plain 3600 IN NS ns.plain.test.\n\
             ns.plain 3600 IN A {}\n\
             expired 3600 IN NS ns.expired.test.\n\
             ns.expired 3600 IN A {}\n\
             glueless 3600 IN NS ns1.signed.test.\n\
             lame 3600 IN NS ns.lame.test.\n\
             ns.lame 3600 IN A {}\n\
             silent 3600 IN NS ns.silent.test.\n\
             ns.silent 3600 IN A {}\n",
            soa("test."),
            ip(TLD),
            ip(ROOT),
            ip(SIGNED_LEAF),
            ip(PLAIN_LEAF),
            ip(EXPIRED_LEAF),
            ip(PLAIN_LEAF),
            ip(SILENT)
        );
        let root = format!(
            "$ORIGIN .\n{}\
             . 3600 IN NS ns.root-servers.test.\n\
             test. 3600 IN NS ns.test.\n\
             ns.test. 3600 IN A {}\n\
             ns.root-servers.test. 3600 IN A {}\n",
            soa("."),
            ip(TLD),
            ip(ROOT)
        );

        // Sign from the leaf up, each parent given its child's DS.
        let signed_file = sign(dir.path(), "signed.test.", &signed, "", signing);
        // Signed for a year that ended long ago.
        let expired_file = sign(
            dir.path(),
            "expired.test.",
            &expired,
            "",
            &["-i", "20200101000000", "-e", "20200201000000"],
        );
        // The tampered record: its address changed after signing.
        let text = std::fs::read_to_string(&signed_file).expect("signed zone");
        let tampered = text.replace(BAD_SIGNED, "192.0.2.67");
        assert_ne!(text, tampered, "the record to tamper with is in the zone");
        // A signature naming a key the zone does not publish (DNSKEY
        // Missing): the key tag of `nokey`'s RRSIG changed.
        let tampered = tampered
            .lines()
            .map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                if fields.first() == Some(&"nokey.signed.test.")
                    && fields.get(3) == Some(&"RRSIG")
                    && fields.get(4) == Some(&"A")
                {
                    let mut fields: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
                    // RRSIG rdata: type alg labels ttl expiration inception tag signer sig.
                    fields[10] = "1".into();
                    fields.join(" ")
                } else {
                    line.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            tampered.contains("nokey.signed.test. 300 IN RRSIG A 13 3 300"),
            "the RRSIG to change is in the zone"
        );
        std::fs::write(&signed_file, tampered).expect("tamper");
        let signed_ds = ds_of(dir.path(), "signed.test.");
        let expired_ds = ds_of(dir.path(), "expired.test.");
        let tld_file = sign(
            dir.path(),
            "test.",
            &tld,
            &format!("{signed_ds}{expired_ds}"),
            signing,
        );
        let tld_ds = ds_of(dir.path(), "test.");
        let root_file = sign(dir.path(), ".", &root, &tld_ds, signing);
        let plain_file = dir.path().join("plain.test.zone");
        std::fs::write(&plain_file, plain).expect("write zone");
        let glueless_file = dir.path().join("glueless.test.zone");
        std::fs::write(&glueless_file, glueless).expect("write zone");

        let servers = vec![
            nsd(dir.path(), &ip(ROOT), &[(".", &root_file)]),
            nsd(dir.path(), &ip(TLD), &[("test.", &tld_file)]),
            nsd(
                dir.path(),
                &ip(SIGNED_LEAF),
                &[("signed.test.", &signed_file)],
            ),
            // Also the server `lame.test` is delegated to, which it does not
            // serve (a lame delegation: REFUSED).
            nsd(
                dir.path(),
                &ip(PLAIN_LEAF),
                &[
                    ("plain.test.", &plain_file),
                    ("glueless.test.", &glueless_file),
                ],
            ),
            nsd(
                dir.path(),
                &ip(EXPIRED_LEAF),
                &[("expired.test.", &expired_file)],
            ),
        ];
        for (last, zone) in [
            (ROOT, "."),
            (TLD, "test."),
            (SIGNED_LEAF, "signed.test."),
            (PLAIN_LEAF, "plain.test."),
            (EXPIRED_LEAF, "expired.test."),
        ] {
            let server: SocketAddr = format!("{}:53", ip(last)).parse().expect("addr");
            let bytes = query_message(zone, RecordType::SOA, Ask::default())
                .to_bytes()
                .expect("encode");
            wait_until(&format!("NSD for {zone} answering on {server}"), || {
                exchange_udp_within(server, &bytes, Duration::from_millis(200)).is_some()
            });
        }

        let (silent_queries, silent_stop) = silent_server(&ip(SILENT));
        let root_hints = dir.path().join("root.hints");
        std::fs::write(
            &root_hints,
            format!(
                ". 3600000 NS ns.root-servers.test.\nns.root-servers.test. 3600000 A {}\n",
                ip(ROOT)
            ),
        )
        .expect("hints");
        let trust_anchor = dir.path().join("root.key");
        std::fs::copy(key_file(dir.path(), ".", "key"), &trust_anchor).expect("anchor");
        Hierarchy {
            _dir: dir,
            net,
            root_hints,
            trust_anchor,
            silent_queries,
            silent_stop,
            servers,
        }
    }

    /// The `[resolver]` keys that make Lollipop recurse through this
    /// hierarchy (and ask its loopback servers).
    pub fn resolver_keys(&self) -> String {
        format!(
            "mode = \"recursive\"\nroot_hints = \"{}\"\ntrust_anchor = \"{}\"\nallow_servers = [\"127.0.{}.0/24\"]",
            self.root_hints.display(),
            self.trust_anchor.display(),
            self.net
        )
    }
}

impl Drop for Hierarchy {
    fn drop(&mut self) {
        self.silent_stop.store(true, Ordering::Relaxed);
        // SIGTERM, so each NSD stops its own server and xfrd children (a
        // SIGKILL would leave them holding port 53); SIGKILL if it lingers.
        for server in &mut self.servers {
            let _ = Command::new("kill")
                .args(["-TERM", &server.id().to_string()])
                .status();
        }
        for server in &mut self.servers {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while matches!(server.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}

/// A socket on `ip`:53 that counts what it is sent and never answers.
fn silent_server(ip: &str) -> (Arc<AtomicUsize>, Arc<AtomicBool>) {
    let socket = UdpSocket::bind((ip.parse::<Ipv4Addr>().expect("ip"), 53)).expect("bind :53");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let count = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (counted, stopped) = (count.clone(), stop.clone());
    std::thread::spawn(move || {
        let mut buffer = [0u8; 1500];
        while !stopped.load(Ordering::Relaxed) {
            if socket.recv_from(&mut buffer).is_ok() {
                counted.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    (count, stop)
}

/// The `K<zone>+013+<tag>` base name of the zone's key of `kind` ("ksk"
/// or "zsk"), made on first use.
fn key_base(dir: &Path, zone: &str, kind: &str) -> String {
    let marker = dir.join(format!("{zone}{kind}.name"));
    if let Ok(name) = std::fs::read_to_string(&marker) {
        return name;
    }
    let mut command = Command::new("ldns-keygen");
    command.current_dir(dir).args(["-a", "ECDSAP256SHA256"]);
    if kind == "ksk" {
        command.arg("-k");
    }
    let output = command
        .arg(zone)
        .output()
        .expect("ldns-keygen runs (apt-get install ldnsutils)");
    assert!(output.status.success(), "ldns-keygen {zone}: {output:?}");
    let name = String::from_utf8_lossy(&output.stdout).trim().to_string();
    std::fs::write(&marker, &name).expect("marker");
    name
}

fn key_file(dir: &Path, zone: &str, extension: &str) -> PathBuf {
    dir.join(format!("{}.{extension}", key_base(dir, zone, "ksk")))
}

/// The DS record of `zone`'s KSK, for its parent.
fn ds_of(dir: &Path, zone: &str) -> String {
    std::fs::read_to_string(key_file(dir, zone, "ds")).expect("ds")
}

/// Writes `text` (and `extra`, a child's DS) as `zone`'s file, signs it
/// with a new KSK and ZSK (NSEC; `options` for ldns-signzone, e.g. the
/// validity dates), and returns the signed file.
fn sign(dir: &Path, zone: &str, text: &str, extra: &str, options: &[&str]) -> PathBuf {
    let file_name = if zone == "." { "root" } else { zone };
    let unsigned = dir.join(format!("{file_name}zone"));
    std::fs::write(&unsigned, format!("{text}{extra}")).expect("write zone");
    let ksk = key_base(dir, zone, "ksk");
    let zsk = key_base(dir, zone, "zsk");
    let output = Command::new("ldns-signzone")
        .current_dir(dir)
        .args(["-o", zone])
        .args(options)
        .arg(&unsigned)
        .args([&ksk, &zsk])
        .output()
        .expect("ldns-signzone runs (apt-get install ldnsutils)");
    assert!(output.status.success(), "ldns-signzone {zone}: {output:?}");
    dir.join(format!("{file_name}zone.signed"))
}

/// NSD serving each (zone, file) of `zones` on `ip`:53, in the foreground.
fn nsd(dir: &Path, ip: &str, zones: &[(&str, &PathBuf)]) -> std::process::Child {
    let run = dir.join(format!("nsd-{ip}"));
    std::fs::create_dir_all(&run).expect("mkdir");
    let conf = run.join("nsd.conf");
    std::fs::write(
        &conf,
        format!(
            "server:\n  ip-address: {ip}\n  port: 53\n  server-count: 1\n  username: \"\"\n  chroot: \"\"\n  \
             database: \"\"\n  zonelistfile: \"{run}/zone.list\"\n  xfrdfile: \"{run}/xfrd.state\"\n  \
             xfrdir: \"{run}\"\n  pidfile: \"{run}/nsd.pid\"\n  logfile: \"{run}/nsd.log\"\n  \
             do-ip6: no\n  verbosity: 1\n\
             remote-control:\n  control-enable: no\n{}",
            zones
                .iter()
                .map(|(zone, file)| format!(
                    "zone:\n  name: \"{zone}\"\n  zonefile: \"{}\"\n",
                    file.display()
                ))
                .collect::<String>(),
            run = run.display(),
        ),
    )
    .expect("nsd.conf");
    Command::new("/usr/sbin/nsd")
        .arg("-d")
        .arg("-c")
        .arg(&conf)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("nsd starts (apt-get install nsd)")
}
