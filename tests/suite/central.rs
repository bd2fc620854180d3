//! The trust's central log (issue 20) with the real engines: three real
//! `lollipop` processes log 100,000 blocked lookups in all, sent by a small
//! UDP blaster through the DNS path; a real PostgreSQL 15 and a real
//! rsyslog are restarted mid-stream and one box is killed with SIGKILL
//! mid-stream and started again. Every blocked row in every box's block
//! log must then be in PostgreSQL exactly once (same key set, same count)
//! and in rsyslog's file at least once, each message carrying the key that
//! shows a repeat for what it is.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::central::{TrustPostgres, TrustRsyslog, syslog_keys, wait_long};
use crate::support::{Process, free_port};

/// Blocked lookups per box: 100,000 in all.
const PER_BOX: [usize; 3] = [33_334, 33_333, 33_333];
/// Queries in flight at once from the blaster to one box.
const WINDOW: usize = 200;

/// A DNS query for `name` (A, IN, recursion desired) with id `id`.
fn query(id: u16, name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + name.len() + 6);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.extend_from_slice(&[0, 0, 1, 0, 1]);
    out
}

/// The name of block event `i` of box `b`: each a row of its own.
fn event_name(b: usize, i: usize) -> String {
    format!("b{b}-e{i}.blocked.test")
}

/// Asks `server` for events `from..to` of box `b`, `WINDOW` at a time,
/// asking again for those not answered. Stops early when `stop` is set;
/// returns the first event not yet sent. `progress` counts answers.
fn blast(
    server: SocketAddr,
    b: usize,
    from: usize,
    to: usize,
    stop: &AtomicBool,
    progress: &AtomicUsize,
) -> usize {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let mut buffer = [0u8; 1500];
    let mut next = from;
    while next < to {
        if stop.load(Ordering::SeqCst) {
            return next;
        }
        let end = (next + WINDOW).min(to);
        let mut waiting: BTreeSet<u16> = (0..(end - next) as u16).collect();
        for _round in 0..20 {
            for id in &waiting {
                let name = event_name(b, next + *id as usize);
                let _ = socket.send_to(&query(*id, &name), server);
            }
            let deadline = Instant::now() + Duration::from_millis(1000);
            while !waiting.is_empty() && Instant::now() < deadline {
                if let Ok((n, _)) = socket.recv_from(&mut buffer)
                    && n >= 12
                    && waiting.remove(&u16::from_be_bytes([buffer[0], buffer[1]]))
                {
                    progress.fetch_add(1, Ordering::SeqCst);
                }
            }
            if waiting.is_empty() || stop.load(Ordering::SeqCst) {
                break;
            }
        }
        assert!(
            waiting.is_empty() || stop.load(Ordering::SeqCst),
            "box {b}: {} lookups never answered",
            waiting.len()
        );
        next = end;
    }
    next
}

/// One appliance: its directory, config and DNS address.
struct Appliance {
    dir: tempfile::TempDir,
    server: SocketAddr,
}

impl Appliance {
    fn new(b: usize, postgres_url: &str, syslog: &str) -> Appliance {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("lists")).expect("lists dir");
        std::fs::write(dir.path().join("lists/blocked.txt"), "blocked.test\n").expect("list");
        let port = free_port();
        let config = format!(
            r#"
[server]
data_dir = "data"
default_profile = "ks2"

[[listen]]
address = "127.0.0.1:{port}"

[[upstream]]
address = "127.0.0.1:9"
protocol = "udp"

[[lists]]
name = "test-gambling"
path = "lists/blocked.txt"
category = "gambling"

[limits]
per_address_qps = 0
per_network_qps = 0

[web]
enabled = false

[profiles.ks2]
mode = "blocklist"
block_categories = ["gambling"]

[ship]
school = "School {b}"

[ship.postgres]
url = "{postgres_url}"

[ship.syslog]
address = "{syslog}"
"#
        );
        std::fs::write(dir.path().join("lollipop.toml"), config).expect("config");
        Appliance {
            dir,
            server: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    fn spawn(&self) -> Process {
        let child = Command::new(env!("CARGO_BIN_EXE_lollipop"))
            .current_dir(self.dir.path())
            .args(["--config", "lollipop.toml", "run"])
            .env_remove("LOLLIPOP_CONFIG")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.path().join("lollipop.stderr"))
                    .expect("stderr file"),
            ))
            .spawn()
            .expect("lollipop starts");
        let process = Process(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let mut buffer = [0u8; 512];
        loop {
            let _ = socket.send_to(&query(1, "www.example.com"), self.server);
            if socket.recv_from(&mut buffer).is_ok() {
                return process;
            }
            assert!(Instant::now() < deadline, "lollipop never answered");
        }
    }

    fn journal(&self) -> PathBuf {
        self.dir.path().join("data/lollipop.db")
    }

    fn box_id(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("data/box-id"))
            .expect("the box made its id")
            .trim()
            .to_string()
    }

    /// The ids of every blocked row in the box's block log.
    fn blocked_ids(&self) -> BTreeSet<i64> {
        let conn = rusqlite::Connection::open_with_flags(
            self.journal(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("block log opens");
        conn.busy_timeout(Duration::from_secs(5)).expect("busy");
        let mut statement = conn.prepare("SELECT id FROM blocked").expect("select");
        statement
            .query_map([], |r| r.get(0))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("ids")
    }
}

impl Appliance {
    /// Whether the box has logged `words` (its stderr, kept in its directory).
    fn said(&self, words: &str) -> bool {
        std::fs::read_to_string(self.dir.path().join("lollipop.stderr"))
            .unwrap_or_default()
            .contains(words)
    }

    /// How many different names the box's block log holds.
    fn distinct_names(&self) -> usize {
        let conn = rusqlite::Connection::open_with_flags(
            self.journal(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("block log opens");
        conn.query_row("SELECT count(DISTINCT name) FROM blocked", [], |r| {
            r.get::<_, i64>(0)
        })
        .expect("count") as usize
    }
}

/// Event ids PostgreSQL holds for `box_id`, with how often each appears.
fn central_ids(postgres: &TrustPostgres, box_id: &str) -> BTreeMap<i64, usize> {
    let mut found = BTreeMap::new();
    // Empty until the first box has created the tables.
    let out = postgres
        .try_psql(
            &format!("SELECT event_id FROM blocked WHERE box_id = '{box_id}'"),
            "trust",
        )
        .unwrap_or_default();
    for line in out.lines().filter(|l| !l.is_empty()) {
        *found
            .entry(line.parse::<i64>().expect("event id"))
            .or_default() += 1;
    }
    found
}

fn wait_for(progress: &AtomicUsize, at_least: usize) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while progress.load(Ordering::SeqCst) < at_least {
        assert!(Instant::now() < deadline, "the blaster stalled");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Blasts events `from[b]..to[b]` at every box at once; returns where each
/// stopped.
fn blast_all(
    boxes: &[Appliance],
    from: [usize; 3],
    to: [usize; 3],
    stop: &[Arc<AtomicBool>; 3],
    progress: &[Arc<AtomicUsize>; 3],
    during: impl FnOnce(),
) -> [usize; 3] {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..3)
            .map(|b| {
                let server = boxes[b].server;
                let (stop, progress) = (stop[b].clone(), progress[b].clone());
                scope.spawn(move || blast(server, b, from[b], to[b], &stop, &progress))
            })
            .collect();
        during();
        let reached: Vec<usize> = handles
            .into_iter()
            .map(|h| h.join().expect("blaster"))
            .collect();
        [reached[0], reached[1], reached[2]]
    })
}

#[test]
fn a_hundred_thousand_blocks_from_three_boxes_reach_postgres_once_and_rsyslog_at_least_once() {
    let mut postgres = TrustPostgres::start();
    let mut rsyslog = TrustRsyslog::start();
    let boxes: Vec<Appliance> = (0..3)
        .map(|b| Appliance::new(b, &postgres.url(), &rsyslog.address()))
        .collect();
    let mut running: Vec<Process> = boxes.iter().map(Appliance::spawn).collect();
    let stop: [Arc<AtomicBool>; 3] = Default::default();
    let progress: [Arc<AtomicUsize>; 3] = Default::default();
    let half = PER_BOX.map(|n| n / 2);
    let three_quarters = PER_BOX.map(|n| n * 3 / 4);

    // 1: half of each box's events, everything up.
    blast_all(&boxes, [0; 3], half, &stop, &progress, || {});

    // 2: once the boxes are shipping (rows wait 12 s to settle), PostgreSQL
    // and rsyslog go down mid-stream; the boxes log another quarter, and
    // every shipper has found the central log gone before it comes back.
    let box_ids: Vec<String> = boxes.iter().map(Appliance::box_id).collect();
    wait_long("box 0 starts shipping", || {
        !central_ids(&postgres, &box_ids[0]).is_empty()
    });
    postgres.stop();
    rsyslog.stop();
    blast_all(&boxes, half, three_quarters, &stop, &progress, || {});
    wait_long("every shipper finds the central log gone", || {
        boxes.iter().all(|b| b.said("central log unreachable"))
    });
    postgres.restart();
    rsyslog.restart();

    // 3: the rest. Box 1 goes halfway through its part, then, while its
    // block log holds rows PostgreSQL has not (rows wait 12 s to settle),
    // is killed with SIGKILL as it takes more lookups, and started again.
    let halfway = three_quarters[1] + (PER_BOX[1] - three_quarters[1]) / 2;
    blast_all(
        &boxes,
        three_quarters,
        [PER_BOX[0], halfway, PER_BOX[2]],
        &stop,
        &progress,
        || {},
    );
    wait_long("box 1 is mid-stream", || {
        let shipped = central_ids(&postgres, &box_ids[1]).len();
        shipped > 0 && shipped < boxes[1].blocked_ids().len()
    });
    let before = progress[1].load(Ordering::SeqCst);
    let reached = std::thread::scope(|scope| {
        let (server, halt, answered) = (boxes[1].server, &stop[1], &progress[1]);
        let blaster = scope.spawn(move || blast(server, 1, halfway, PER_BOX[1], halt, answered));
        wait_for(answered, before + 2 * WINDOW);
        halt.store(true, Ordering::SeqCst);
        let _ = running[1].0.kill();
        let _ = running[1].0.wait();
        blaster.join().expect("blaster")
    });
    assert!(reached < PER_BOX[1], "box 1 was killed mid-stream");
    stop[1].store(false, Ordering::SeqCst);
    running[1] = boxes[1].spawn();
    // Lookups answered in the moment before the kill may not have reached
    // the block log (it commits every 200 ms): never acknowledged, so not
    // the shipper's to keep. The blaster asks those again, as a device
    // would, and so some events are logged twice, as two rows.
    let survived = boxes[1].blocked_ids().len();
    let again = reached.saturating_sub(5_000);
    blast(
        boxes[1].server,
        1,
        again,
        PER_BOX[1],
        &stop[1],
        &progress[1],
    );

    // Every box's block log, then the central copies until they agree (a
    // generous bound for a shared machine: not a speed check).
    let deadline = Instant::now() + Duration::from_secs(600);
    let logged = loop {
        let logged: Vec<BTreeSet<i64>> = boxes.iter().map(Appliance::blocked_ids).collect();
        let central_done =
            (0..3).all(|b| central_ids(&postgres, &box_ids[b]).len() >= logged[b].len());
        let syslog = syslog_keys(&rsyslog.file());
        let syslog_done = (0..3).all(|b| {
            logged[b]
                .iter()
                .all(|id| syslog.contains_key(&(box_ids[b].clone(), *id)))
        });
        if central_done && syslog_done {
            break logged;
        }
        assert!(
            Instant::now() < deadline,
            "the central log never caught up: {:?} logged",
            logged.iter().map(BTreeSet::len).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_secs(1));
    };
    rsyslog.stop();

    // Boxes 0 and 2 logged every event once (each name is its own row).
    assert_eq!(logged[0].len(), PER_BOX[0]);
    assert_eq!(logged[2].len(), PER_BOX[2]);
    // Box 1 logged every event at least once, some twice around the kill.
    assert_eq!(boxes[1].distinct_names(), PER_BOX[1]);
    assert!(logged[1].len() >= PER_BOX[1]);
    eprintln!(
        "box 1: {survived} rows survived the SIGKILL; {} lookups sent before it were not in its block log",
        reached.saturating_sub(survived)
    );
    let syslog = syslog_keys(&rsyslog.file());
    let mut repeats = 0;
    for b in 0..3 {
        let central = central_ids(&postgres, &box_ids[b]);
        let central_set: BTreeSet<i64> = central.keys().copied().collect();
        assert_eq!(
            central_set, logged[b],
            "box {b}: PostgreSQL holds exactly the block log"
        );
        assert!(
            central.values().all(|n| *n == 1),
            "box {b}: a row twice in PostgreSQL"
        );
        for id in &logged[b] {
            let seen = syslog.get(&(box_ids[b].clone(), *id)).copied().unwrap_or(0);
            assert!(seen >= 1, "box {b} event {id} never reached rsyslog");
            repeats += seen - 1;
        }
    }
    let in_file: usize = syslog.keys().filter(|(b, _)| box_ids.contains(b)).count();
    let total: usize = logged.iter().map(BTreeSet::len).sum();
    assert_eq!(in_file, total, "rsyslog holds nothing but the boxes' rows");
    eprintln!(
        "central log: {total} blocked rows from 3 boxes; PostgreSQL exactly once; rsyslog {repeats} repeats, each identified by its key"
    );
    // `lists status` says nothing waits and nothing was lost.
    let status = crate::support::lollipop_cli(
        &boxes[0].dir.path().join("lollipop.toml"),
        &["lists", "status"],
    );
    assert!(
        status.contains("postgres: 0 records waiting, 0 deleted by retention"),
        "{status}"
    );
    // Each box's heartbeat named it in `boxes`.
    let schools = postgres.psql("SELECT school FROM boxes ORDER BY school", "trust");
    assert_eq!(
        schools.lines().collect::<Vec<_>>(),
        ["School 0", "School 1", "School 2"]
    );
}
