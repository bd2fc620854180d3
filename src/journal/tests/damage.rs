//! Tests that a block log damaged while running (junk written over the
//! file, as an SD card can after a power cut) is set aside, a fresh log
//! started, and the events that could not be written retried into it.

use super::*;

/// Overwrites the whole file with bytes that are not SQLite.
fn junk_over(path: &Path) {
    let len = std::fs::metadata(path).map_or(8192, |m| m.len().max(8192)) as usize;
    let junk: Vec<u8> = (0..len).map(|i| (i * 7 + 13) as u8).collect();
    if let Err(e) = std::fs::write(path, junk) {
        panic!("cannot write junk over {}: {e}", path.display());
    }
}

fn damaged_copies(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                        n.starts_with("journal.db.damaged-")
                            && !n.ends_with("-wal")
                            && !n.ends_with("-shm")
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_over_the_log_while_running_is_set_aside_and_a_fresh_log_keeps_new_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.set_aside_damaged = true;
    let path = cfg.path.clone();
    let (journal, task) = start(cfg, no_devices());
    journal.record_block(block(BASE_MS, ip(1), "before.example"));
    flush_within(&journal, Duration::from_secs(10)).await;
    assert_eq!(all_rows(&path).len(), 1);

    junk_over(&path);
    for i in 0..20 {
        journal.record_block(block(
            BASE_MS + 1000 + i,
            ip(2),
            &format!("after-{i}.example"),
        ));
    }
    flush_within(&journal, Duration::from_secs(20)).await;

    let kept = damaged_copies(dir.path());
    assert_eq!(kept.len(), 1, "the damaged log is kept once: {kept:?}");
    let rows = all_rows(&path);
    assert_eq!(
        rows.len(),
        20,
        "the events after the damage are in the fresh log"
    );
    // The fresh log's ids start far above the damaged one's: ids key rows
    // in the trust's central log, so none is used twice by one box.
    assert!(
        rows.iter().all(|row| row.id >= 1_000_000_000_000),
        "{:?}",
        rows.iter().map(|row| row.id).collect::<Vec<_>>()
    );
    let stats = journal.stats();
    let damage = stats
        .damage
        .clone()
        .unwrap_or_else(|| panic!("no damage reported: {stats:?}"));
    assert_eq!(damage.kept_as.as_deref(), Some(kept[0].as_path()));
    assert!(!stats.degraded(), "{stats:?}");
    let reader = JournalReader::open(&path).unwrap();
    let audit = reader.audit(0, i64::MAX, 10).unwrap();
    assert!(
        audit.iter().any(|row| row.action == "block log set aside"),
        "{audit:?}"
    );
    assert_eq!(stats.blocked_dropped, 0, "{stats:?}");
    stop(journal, task).await;
}

/// `dir` bound over itself read-only: the files already open stay open
/// (as on a disk the kernel turned read-only), but nothing can be renamed or
/// created. Writable again with [`ReadOnly::writable`]; unmounted on drop.
struct ReadOnly(PathBuf);

impl ReadOnly {
    fn mount(dir: &Path) -> ReadOnly {
        let bound = Command::new("mount")
            .arg("--bind")
            .arg(dir)
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(bound, "bind mount failed");
        let guard = ReadOnly(dir.to_path_buf());
        guard.remount("ro");
        guard
    }

    fn remount(&self, mode: &str) {
        let done = Command::new("mount")
            .args(["-o", &format!("remount,{mode},bind")])
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        assert!(done, "remount {mode} failed");
    }

    fn writable(&self) {
        self.remount("rw");
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

async fn wait_for(journal: &Journal, what: &str, done: impl Fn(&JournalStats) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done(&journal.stats()) {
        assert!(
            Instant::now() < deadline,
            "{what} never happened: {:?}",
            journal.stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_log_that_cannot_be_moved_holds_blocks_in_memory_until_it_can() {
    let Some(fs) = Tmpfs::mount("8m") else {
        return;
    };
    let mut cfg = config(&fs.dir);
    cfg.set_aside_damaged = true;
    let path = cfg.path.clone();
    let (journal, task) = start(cfg, no_devices());
    journal.record_block(block(BASE_MS, ip(1), "before.example"));
    flush_within(&journal, Duration::from_secs(10)).await;

    junk_over(&path);
    // A read-only disk: the damaged file cannot be renamed.
    let read_only = ReadOnly::mount(&fs.dir);
    for i in 0..20 {
        journal.record_block(block(
            BASE_MS + 1000 + i,
            ip(2),
            &format!("held-{i}.example"),
        ));
    }
    wait_for(&journal, "degraded", JournalStats::degraded).await;
    let stats = journal.stats();
    let damage = stats.damage.clone().unwrap_or_else(|| panic!("{stats:?}"));
    assert!(damage.set_aside_error.is_some(), "{damage:?}");
    assert_eq!(stats.blocked_dropped, 0, "held, not dropped: {stats:?}");
    assert!(damaged_copies(&fs.dir).is_empty());

    read_only.writable();
    wait_for(&journal, "recovery", |s| !s.degraded()).await;
    flush_within(&journal, Duration::from_secs(20)).await;
    assert_eq!(damaged_copies(&fs.dir).len(), 1);
    assert_eq!(
        all_rows(&path).len(),
        20,
        "every held block reached the fresh log"
    );
    assert_eq!(journal.stats().blocked_dropped, 0);
    stop(journal, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_log_that_cannot_be_moved_at_start_does_not_fail_the_open() {
    let Some(fs) = Tmpfs::mount("8m") else {
        return;
    };
    let mut cfg = config(&fs.dir);
    cfg.set_aside_damaged = true;
    let path = cfg.path.clone();
    junk_over(&path);
    let read_only = ReadOnly::mount(&fs.dir);
    let (journal, task) = start(cfg, no_devices());
    assert!(journal.stats().degraded(), "{:?}", journal.stats());
    journal.record_block(block(BASE_MS, ip(1), "held.example"));
    read_only.writable();
    flush_within(&journal, Duration::from_secs(20)).await;
    assert!(!journal.stats().degraded());
    assert_eq!(damaged_copies(&fs.dir).len(), 1);
    assert_eq!(all_rows(&path).len(), 1);
    stop(journal, task).await;
}

/// A log whose WAL is deleted while it is open (a clean-up script, a
/// second instance closing on the same data directory) goes on writing
/// where readers see it: nothing the WAL held is lost, and every later
/// row reaches the file the pages and reports read.
#[test]
fn a_wal_deleted_while_open_is_reopened_and_nothing_is_lost() {
    use super::super::store::{Item, Store};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let mut store = Store::new(path.clone(), no_devices(), 10_000, false);
    let client: IpAddr = "10.0.0.7".parse().unwrap();
    store
        .write(&[Item::Block(block(1_000, client, "first.example"), None)])
        .unwrap();
    for suffix in ["-wal", "-shm"] {
        let mut file = path.clone().into_os_string();
        file.push(suffix);
        std::fs::remove_file(&file).unwrap();
    }
    store
        .write(&[Item::Block(block(60_000, client, "second.example"), None)])
        .unwrap();
    // Read by another connection while the log is still open, as the
    // status page and the reports do.
    let names: Vec<String> = all_rows(&path).into_iter().map(|row| row.name).collect();
    assert!(names.contains(&"first.example".to_string()), "{names:?}");
    assert!(names.contains(&"second.example".to_string()), "{names:?}");
}

/// A log deleted whole while open starts afresh, its ids above the
/// deleted log's (the trust's central log keys rows by box and id).
#[test]
fn a_log_deleted_while_open_starts_afresh_with_new_ids() {
    use super::super::store::{Item, Store};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let mut store = Store::new(path.clone(), no_devices(), 10_000, false);
    let client: IpAddr = "10.0.0.7".parse().unwrap();
    store
        .write(&[Item::Block(block(1_000, client, "first.example"), None)])
        .unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.clone().into_os_string();
        file.push(suffix);
        std::fs::remove_file(&file).unwrap();
    }
    store
        .write(&[Item::Block(block(60_000, client, "second.example"), None)])
        .unwrap();
    let rows = all_rows(&path);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].name, "second.example");
    assert!(
        rows[0].id >= 1_000_000_000_000,
        "id {} not reseeded",
        rows[0].id
    );
}
