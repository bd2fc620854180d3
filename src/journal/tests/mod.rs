//! Tests of the journal against real SQLite files in temporary directories,
//! and helpers they share (event builders, a tmpfs mount for disk faults).

mod crash;
mod damage;
mod devices;
mod faults;
mod folds;
mod outbox;
mod pipeline;
mod schema;

use super::*;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// 2025-06-14T10:00:00Z, a Saturday in BST.
pub const BASE_MS: i64 = 1_749_895_200_000;

pub fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
}

pub fn block(at_unix_ms: i64, client: IpAddr, name: &str) -> BlockEvent {
    BlockEvent {
        at_unix_ms,
        client,
        listener: Some("vlan-pupils".into()),
        profile: "pupils".into(),
        name: name.into(),
        query_type: "A",
        category: Some("adult".into()),
        list: Some("school-list".into()),
        rule: Some(name.into()),
        action: "blockpage",
        locked: false,
    }
}

pub fn query(at_unix_ms: i64, profile: &str, blocked: bool, category: Option<&str>) -> QueryEvent {
    QueryEvent {
        at_unix_ms,
        client: ip(9),
        profile: profile.into(),
        name: "example.org".into(),
        query_type: "A".into(),
        blocked,
        category: category.map(str::to_string),
    }
}

pub fn config(dir: &Path) -> JournalConfig {
    let mut config = JournalConfig::new(dir.join("journal.db"));
    config.flush_interval = Duration::from_millis(50);
    config.retry_max_backoff = Duration::from_millis(300);
    config
}

/// A directory with no ARP table, so results do not depend on the host.
pub fn no_devices() -> DeviceDirectory {
    DeviceDirectory::new(Vec::new()).with_arp_path(None)
}

pub fn start(
    config: JournalConfig,
    devices: DeviceDirectory,
) -> (Journal, tokio::task::JoinHandle<()>) {
    match Journal::open(config, devices) {
        Ok((journal, task)) => (journal, tokio::spawn(task.run())),
        Err(e) => panic!("journal did not open: {e}"),
    }
}

/// Drops the handle and waits for the writer to finish.
pub async fn stop(journal: Journal, task: tokio::task::JoinHandle<()>) {
    drop(journal);
    let finished = tokio::time::timeout(Duration::from_secs(30), task).await;
    assert!(finished.is_ok(), "writer did not stop");
}

pub async fn flush_within(journal: &Journal, limit: Duration) {
    let flushed = tokio::time::timeout(limit, journal.flush()).await;
    assert!(
        flushed.is_ok(),
        "flush did not finish: {:?}",
        journal.stats()
    );
}

pub fn all_rows(path: &Path) -> Vec<BlockedRow> {
    match query_blocked(path, &LogFilter::default()) {
        Ok(rows) => rows,
        Err(e) => panic!("cannot read journal: {e}"),
    }
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A small tmpfs, unmounted when dropped (also when a test panics).
pub struct Tmpfs {
    pub dir: PathBuf,
    _holder: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` (the test is skipped) when not root: mounting needs it.
    pub fn mount(size: &str) -> Option<Tmpfs> {
        if !is_root() {
            eprintln!("skipped: mounting a tmpfs needs root");
            return None;
        }
        let holder = tempfile::tempdir().ok()?;
        let dir = holder.path().join("mnt");
        std::fs::create_dir(&dir).ok()?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status();
        assert!(status.is_ok_and(|s| s.success()), "mount tmpfs failed");
        Some(Tmpfs {
            dir,
            _holder: holder,
        })
    }

    pub fn remount(&self, mode: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&self.dir)
            .status();
        assert!(status.is_ok_and(|s| s.success()), "remount {mode} failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let plain = Command::new("umount").arg(&self.dir).status();
        if !plain.is_ok_and(|s| s.success()) {
            // Still busy (a panicking test left the journal open): detach it.
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// Calls `f` and fails the test if it took longer than the hot path allows.
pub fn timed(worst: &mut Duration, f: impl FnOnce()) {
    let t = Instant::now();
    f();
    *worst = (*worst).max(t.elapsed());
}
