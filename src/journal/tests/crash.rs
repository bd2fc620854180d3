//! Tests that a writer killed with SIGKILL mid-stream leaves a sound
//! database holding a prefix of what was sent, short by at most the batch
//! in flight. The child is this test binary, re-run with an env var.

use super::*;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;

const CHILD_DB: &str = "LOLLIPOP_JOURNAL_CRASH_DB";
const TEST_NAME: &str = "journal::tests::crash::sigkill_mid_stream_leaves_a_prefix";
const REPORT_EVERY: i64 = 1_000;
const KILL_AFTER: i64 = 20_000;

/// The child: streams numbered events forever, saying after each flush
/// how many are known committed.
fn child(db: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut cfg = JournalConfig::new(db);
        cfg.flush_interval = Duration::from_millis(20);
        cfg.batch_max = 700;
        let (journal, task) = start(cfg, no_devices());
        for i in 0.. {
            journal.record_block(block(BASE_MS + i, ip(1), &format!("e{i}")));
            if (i + 1) % REPORT_EVERY == 0 {
                journal.flush().await;
                println!("committed {}", i + 1);
            }
        }
        drop(task);
    });
}

#[test]
fn sigkill_mid_stream_leaves_a_prefix() {
    if let Ok(db) = std::env::var(CHILD_DB) {
        child(&db);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("journal.db");
    let exe = std::env::current_exe().unwrap();
    let mut proc = Command::new(exe)
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DB, &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = proc.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(n) = line.strip_prefix("committed ") {
                let _ = tx.send(n.trim().parse::<i64>().unwrap_or(0));
            }
        }
    });
    let mut committed = 0;
    while committed < KILL_AFTER {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(n) => committed = n,
            Err(_) => {
                let _ = proc.kill();
                panic!("child stopped reporting at {committed}");
            }
        }
    }
    // Child::kill sends SIGKILL: no destructors, no final checkpoint.
    proc.kill().unwrap();
    let _ = proc.wait();

    let conn = rusqlite::Connection::open(&db).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(conn);
    let rows = all_rows(&db);
    assert!(
        rows.len() as i64 >= committed,
        "{} rows but {committed} were reported committed",
        rows.len()
    );
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(
            row.name,
            format!("e{i}"),
            "rows are not a prefix of what was sent"
        );
        assert_eq!(row.count, 1);
    }
    eprintln!(
        "killed after {committed} committed; {} rows survived",
        rows.len()
    );

    // And the journal carries on from there.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (journal, task) = start(JournalConfig::new(&db), no_devices());
        journal.record_block(block(BASE_MS - 1, ip(1), "after-restart"));
        journal.flush().await;
        stop(journal, task).await;
    });
    let rows_after = all_rows(&db);
    assert_eq!(rows_after.len(), rows.len() + 1);
}
