//! Tests that a full or read-only disk never stalls the resolver: record_*
//! stays fast, the error is visible in stats, events wait in memory (up to
//! a bound), and writing resumes once the disk is usable again.

use super::*;
use std::io::Write;

/// The hot path's budget for one record_* call.
const HOT_PATH_LIMIT: Duration = Duration::from_millis(50);

/// Fills the filesystem, then gives back `leave` bytes.
fn fill(path: &Path, leave: u64) {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0x5au8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match file.write(&chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => written += n as u64,
        }
    }
    let _ = file.sync_all();
    file.set_len(written.saturating_sub(leave)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_is_reported_and_writing_resumes() {
    let Some(fs) = Tmpfs::mount("8m") else {
        return;
    };
    let mut cfg = config(&fs.dir);
    cfg.batch_max = 500;
    cfg.pending_max = 3_000;
    let path = cfg.path.clone();
    let (journal, task) = start(cfg, no_devices());
    journal.record_block(block(BASE_MS - 1, ip(1), "before.example"));
    journal.flush().await;
    let filler = fs.dir.join("filler");
    fill(&filler, 96 * 1024);

    let mut worst = Duration::ZERO;
    let mut sent = 0i64;
    let deadline = Instant::now() + Duration::from_secs(30);
    while journal.stats().failing_since_unix_ms.is_none() {
        assert!(
            Instant::now() < deadline,
            "disk never filled: {:?}",
            journal.stats()
        );
        for _ in 0..200 {
            let name = format!("while-filling-{sent:08}.a-rather-long-name.example");
            timed(&mut worst, || {
                journal.record_block(block(BASE_MS + sent, ip(2), &name))
            });
            sent += 1;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Keep the resolver busy while the disk is full: far more than the
    // memory bound, so some must be counted as dropped.
    for i in 0..10_000 {
        let name = format!("while-full-{i}.example");
        timed(&mut worst, || {
            journal.record_block(block(BASE_MS + sent + i, ip(3), &name))
        });
        if i % 1_000 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let stats = journal.stats();
    let error = stats.last_error.clone().unwrap_or_default();
    assert!(error.contains("disk full"), "{stats:?}");
    assert!(stats.dropped > 0 && stats.pending > 0, "{stats:?}");
    assert!(worst < HOT_PATH_LIMIT, "a record_block call took {worst:?}");

    std::fs::remove_file(&filler).unwrap();
    // Events keep coming while the writer notices and drains its backlog.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut i = 0;
    while journal.stats().failing_since_unix_ms.is_some() || journal.stats().pending > 0 {
        assert!(
            Instant::now() < deadline,
            "writing never resumed: {:?}",
            journal.stats()
        );
        timed(&mut worst, || {
            journal.record_block(block(
                BASE_MS + 900_000 + i,
                ip(5),
                &format!("recovering-{i}.example"),
            ))
        });
        i += 1;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let recovering = i;
    eprintln!("disk full: {stats:?}; {recovering} sent while recovering");
    for i in 0..100 {
        timed(&mut worst, || {
            journal.record_block(block(
                BASE_MS + 1_000_000 + i,
                ip(4),
                &format!("after-{i}.example"),
            ))
        });
    }
    flush_within(&journal, Duration::from_secs(60)).await;
    let stats = journal.stats();
    assert!(stats.failing_since_unix_ms.is_none(), "{stats:?}");
    assert!(stats.last_error.is_some(), "the outage stays on record");
    assert_eq!(stats.pending, 0);
    assert!(worst < HOT_PATH_LIMIT, "a record_block call took {worst:?}");

    let rows = all_rows(&path);
    let after: Vec<&str> = rows
        .iter()
        .map(|r| r.name.as_str())
        .filter(|n| n.starts_with("after-"))
        .collect();
    assert_eq!(after.len(), 100, "later events arrive");
    assert_eq!(rows[0].name, "before.example");
    // Whatever was kept is in the order it was sent.
    for w in rows.windows(2) {
        assert!(
            w[0].at_unix_ms < w[1].at_unix_ms,
            "out of order: {} {} then {} {}",
            w[0].id,
            w[0].name,
            w[1].id,
            w[1].name
        );
    }
    assert_eq!(
        rows.len() as u64 + stats.blocked_dropped,
        1 + sent as u64 + 10_000 + recovering as u64 + 100,
        "every event is either written or counted as dropped: {stats:?}"
    );
    stop(journal, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_disk_is_reported_and_writing_resumes() {
    let Some(fs) = Tmpfs::mount("8m") else {
        return;
    };
    let cfg = config(&fs.dir);
    let path = cfg.path.clone();
    let (journal, task) = start(cfg.clone(), no_devices());
    for i in 0..100 {
        journal.record_block(block(BASE_MS + i, ip(1), &format!("rw-{i}.example")));
    }
    journal.flush().await;
    stop(journal, task).await;

    // As after an fsck problem at boot: the filesystem comes up read-only.
    fs.remount("ro");
    let (journal, task) = start(cfg, no_devices());
    let stats = journal.stats();
    let error = stats.last_error.clone().unwrap_or_default();
    assert!(error.contains("read-only"), "{stats:?}");
    assert!(stats.failing_since_unix_ms.is_some());
    let mut worst = Duration::ZERO;
    for i in 100..200 {
        timed(&mut worst, || {
            journal.record_block(block(BASE_MS + i, ip(1), &format!("ro-{i}.example")))
        });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stats = journal.stats();
    assert_eq!(stats.pending, 100, "{stats:?}");
    assert!(stats.failing_since_unix_ms.is_some(), "{stats:?}");
    assert!(worst < HOT_PATH_LIMIT, "a record_block call took {worst:?}");

    fs.remount("rw");
    flush_within(&journal, Duration::from_secs(30)).await;
    let stats = journal.stats();
    assert!(stats.failing_since_unix_ms.is_none(), "{stats:?}");
    assert_eq!(stats.dropped, 0);
    let rows = all_rows(&path);
    assert_eq!(rows.len(), 200);
    assert_eq!(rows[199].name, "ro-199.example");
    stop(journal, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_on_a_full_disk_gives_up_instead_of_hanging() {
    let Some(fs) = Tmpfs::mount("1m") else {
        return;
    };
    let (journal, task) = start(config(&fs.dir), no_devices());
    journal.record_block(block(BASE_MS, ip(1), "before.example"));
    journal.flush().await;
    fill(&fs.dir.join("filler"), 0);
    for i in 0..2_000 {
        journal.record_block(block(BASE_MS + 1 + i, ip(1), &format!("lost-{i}.example")));
    }
    let started = Instant::now();
    stop(journal, task).await;
    assert!(started.elapsed() < Duration::from_secs(20));
    std::fs::remove_file(fs.dir.join("filler")).unwrap();
    let rows = all_rows(&fs.dir.join("journal.db"));
    assert!(rows.len() < 2_001, "the disk was not full after all");
    eprintln!(
        "gave up after {:?} with {} rows",
        started.elapsed(),
        rows.len()
    );
}
