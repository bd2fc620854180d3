//! Measures how many blocked events per second the journal writer commits,
//! whether it keeps up with a steady 20,000/s without dropping, what one
//! record_block call costs the resolver, and the database bytes per event.
//! Prints figures; `cargo bench --bench journal`.

use lollipop::journal::{BlockEvent, DeviceDirectory, Journal, JournalConfig};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant};

const CATEGORIES: [&str; 5] = ["adult", "gambling", "social", "games", "malware"];

/// A realistic worst case: every event a distinct name, so nothing collapses.
fn event(i: u64, at_unix_ms: i64) -> BlockEvent {
    BlockEvent {
        at_unix_ms,
        client: IpAddr::V4(Ipv4Addr::new(10, 0, (i % 4) as u8, (i % 250) as u8)),
        listener: Some("vlan-pupils".into()),
        profile: "pupils".into(),
        name: format!("cdn{}.tracker-{}.example.com", i % 9973, i),
        query_type: if i.is_multiple_of(3) { "AAAA" } else { "A" },
        category: Some(CATEGORIES[(i % 5) as usize].into()),
        list: Some("school-blocklist".into()),
        rule: Some(format!("tracker-{i}.example.com")),
        action: "blockpage",
        locked: false,
    }
}

fn open(path: &Path, capacity: usize) -> (Journal, tokio::task::JoinHandle<()>) {
    let mut config = JournalConfig::new(path);
    config.channel_capacity = capacity;
    config.pending_max = config.pending_max.max(capacity);
    match Journal::open(config, DeviceDirectory::new(Vec::new()).with_arp_path(None)) {
        Ok((journal, task)) => (journal, tokio::spawn(task.run())),
        Err(e) => panic!("cannot open journal: {e}"),
    }
}

fn file_bytes(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

async fn burst(dir: &Path) {
    const N: u64 = 300_000;
    let path = dir.join("burst.db");
    let (journal, task) = open(&path, N as usize + 1);
    let events: Vec<BlockEvent> = (0..N)
        .map(|i| event(i, 1_750_000_000_000 + i as i64))
        .collect();
    let start = Instant::now();
    for ev in events {
        journal.record_block(ev);
    }
    let sent = start.elapsed();
    journal.flush().await;
    let total = start.elapsed();
    let stats = journal.stats();
    drop(journal);
    let _ = task.await;
    println!(
        "burst: {} events committed in {:.2} s = {:.0} events/s (record_block {:.0} ns/call, dropped {})",
        stats.written,
        total.as_secs_f64(),
        stats.written as f64 / total.as_secs_f64(),
        sent.as_nanos() as f64 / N as f64,
        stats.dropped
    );
    // Closed and checkpointed: the WAL is folded into the file.
    let bytes = file_bytes(&path);
    println!(
        "size: {bytes} bytes for {} rows = {:.0} bytes/event (no collapsing)",
        stats.written,
        bytes as f64 / stats.written.max(1) as f64
    );
}

async fn sustained(dir: &Path, rate: u64, seconds: u64) {
    let path = dir.join(format!("sustained-{rate}.db"));
    let (journal, task) = open(&path, 65_536);
    let start = Instant::now();
    let tick = Duration::from_millis(10);
    let per_tick = rate / 100;
    let mut i = 0u64;
    let mut worst_call = Duration::ZERO;
    for t in 0..seconds * 100 {
        for _ in 0..per_tick {
            let ev = event(i, 1_750_000_000_000 + i as i64);
            let call = Instant::now();
            journal.record_block(ev);
            worst_call = worst_call.max(call.elapsed());
            i += 1;
        }
        tokio::time::sleep_until((start + tick * (t as u32 + 1)).into()).await;
    }
    let offered = start.elapsed();
    journal.flush().await;
    let lag = start.elapsed() - offered;
    let stats = journal.stats();
    drop(journal);
    let _ = task.await;
    println!(
        "sustained {rate}/s for {seconds} s: written {}, dropped {}, batches {}, \
         drain after last event {:.0} ms, slowest record_block {:?}",
        stats.written,
        stats.dropped,
        stats.batches,
        lag.as_secs_f64() * 1000.0,
        worst_call
    );
}

fn main() {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => panic!("no temp dir: {e}"),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("no runtime: {e}"),
    };
    runtime.block_on(async {
        burst(dir.path()).await;
        sustained(dir.path(), 20_000, 5).await;
        sustained(dir.path(), 40_000, 5).await;
    });
}
