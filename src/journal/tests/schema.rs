//! Tests that journal files survive upgrades, that files we must not touch
//! are refused, and that retention removes only what is old.

use super::super::read::{BLOCKED_COLUMNS, blocked_row, select_blocked, tally_blocked_sql};
use super::*;
use rusqlite::Connection;

/// The schema exactly as the first release wrote it; frozen here on
/// purpose, so that changing a migration cannot also change this test.
const V1_AS_RELEASED: &str = "
    CREATE TABLE blocked (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL,
        client_ip TEXT NOT NULL, device_name TEXT, mac TEXT,
        profile TEXT NOT NULL, name TEXT NOT NULL, query_type TEXT NOT NULL,
        category TEXT, list TEXT, rule TEXT, action TEXT NOT NULL,
        locked INTEGER NOT NULL DEFAULT 0);
    CREATE INDEX blocked_at ON blocked(at);
    CREATE INDEX blocked_device ON blocked(device_name, at);
    CREATE INDEX blocked_profile ON blocked(profile, at);
    CREATE INDEX blocked_category ON blocked(category, at);
    CREATE TABLE queries (
        id INTEGER PRIMARY KEY, at INTEGER NOT NULL, client_ip TEXT NOT NULL,
        profile TEXT NOT NULL, name TEXT NOT NULL, query_type TEXT NOT NULL,
        blocked INTEGER NOT NULL, category TEXT);
    CREATE INDEX queries_at ON queries(at);
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL,
        actor TEXT NOT NULL, action TEXT NOT NULL, detail TEXT NOT NULL, reason TEXT);
    CREATE INDEX audit_at ON audit(at);";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_one_file_is_migrated_with_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let path = cfg.path.clone();
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL;")
            .unwrap();
        conn.execute_batch(V1_AS_RELEASED).unwrap();
        conn.execute_batch(
            "INSERT INTO blocked (at, client_ip, device_name, mac, profile, name, query_type,
                 category, list, rule, action, locked)
             VALUES (1000, '10.0.0.1', 'old-laptop', 'aa:bb:cc:dd:ee:ff', 'pupils',
                 'old.example', 'A', 'adult', 'l', 'old.example', 'null', 1);
             INSERT INTO audit (at, actor, action, detail) VALUES (1000, 'dsl', 'allow', 'x');
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    // A v1-shaped reader must be refused rather than misread.
    assert!(matches!(
        JournalReader::open(&path),
        Err(JournalError::SchemaMismatch { found: 1, .. })
    ));

    let (journal, task) = start(cfg, no_devices());
    journal.record_block(block(BASE_MS, ip(1), "new.example"));
    journal.record_query(query(BASE_MS, "pupils", true, Some("adult")));
    journal.flush().await;
    stop(journal, task).await;

    let conn = Connection::open(&path).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let rows = all_rows(&path);
    assert_eq!(rows.len(), 2);
    let old = &rows[0];
    assert_eq!(
        (old.name.as_str(), old.count, old.last_at_unix_ms),
        ("old.example", 1, 1000)
    );
    assert_eq!(old.device_name.as_deref(), Some("old-laptop"));
    assert!(old.locked && old.owner.is_none() && old.listener.is_none());
    assert_eq!(rows[1].name, "new.example");
    assert!(rows[1].id > old.id);
    let reader = JournalReader::open(&path).unwrap();
    assert_eq!(reader.audit(0, i64::MAX, 10).unwrap().len(), 1);
    assert_eq!(reader.hourly(0, i64::MAX).unwrap().len(), 1);
}

/// Migrations 2 and 3 exactly as released, frozen like [`V1_AS_RELEASED`]:
/// with it, the schema a file of version 3 has.
const V2_AND_V3_AS_RELEASED: &str = "
    ALTER TABLE blocked ADD COLUMN last_at INTEGER;
    ALTER TABLE blocked ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE blocked ADD COLUMN owner TEXT;
    ALTER TABLE blocked ADD COLUMN room TEXT;
    ALTER TABLE blocked ADD COLUMN listener TEXT;
    CREATE INDEX blocked_client ON blocked(client_ip, at);
    CREATE TABLE hourly (
        hour INTEGER NOT NULL, profile TEXT NOT NULL, category TEXT NOT NULL,
        queries INTEGER NOT NULL DEFAULT 0, blocked INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (hour, profile, category)) WITHOUT ROWID;
    CREATE TABLE alerts_sent (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL,
        alert_id INTEGER NOT NULL, channel TEXT NOT NULL, outcome TEXT NOT NULL,
        category TEXT NOT NULL, device TEXT NOT NULL, name TEXT, events INTEGER NOT NULL);
    CREATE INDEX alerts_sent_at ON alerts_sent(at);
    CREATE TABLE ship_cursor (
        destination TEXT NOT NULL, kind TEXT NOT NULL,
        last_id INTEGER NOT NULL DEFAULT 0, dropped INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (destination, kind)) WITHOUT ROWID;";

fn blocked_indexes(path: &Path) -> Vec<String> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'blocked' \
             AND sql IS NOT NULL ORDER BY name",
        )
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_three_file_keeps_its_rows_without_the_two_unused_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let path = cfg.path.clone();
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL;")
            .unwrap();
        conn.execute_batch(V1_AS_RELEASED).unwrap();
        conn.execute_batch(V2_AND_V3_AS_RELEASED).unwrap();
        conn.execute_batch(
            "INSERT INTO blocked (at, last_at, count, client_ip, device_name, mac, owner, room,
                 profile, listener, name, query_type, category, list, rule, action, locked)
             VALUES (1000, 4000, 3, '10.0.0.1', 'oak-laptop-3', 'aa:bb:cc:dd:ee:ff', 'J Smith',
                     'Oak', 'pupils', 'vlan-pupils', 'one.example', 'A', 'adult', 'l',
                     'one.example', 'null', 1),
                    (2000, NULL, 1, '10.0.0.2', NULL, NULL, NULL, NULL,
                     'staff', NULL, 'two.example', 'AAAA', NULL, NULL, NULL, 'nxdomain', 0);
             INSERT INTO ship_cursor (destination, kind, last_id) VALUES ('trust', 'blocked', 1);
             PRAGMA user_version = 3;",
        )
        .unwrap();
    }
    // Read as this build reads rows, before the journal opens the file.
    let before: Vec<BlockedRow> = Connection::open(&path)
        .unwrap()
        .prepare(&format!(
            "SELECT {BLOCKED_COLUMNS} FROM blocked ORDER BY id"
        ))
        .unwrap()
        .query_map([], blocked_row)
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(before.len(), 2);
    assert!(blocked_indexes(&path).contains(&"blocked_profile".to_string()));

    let (journal, task) = start(cfg, no_devices());
    journal.record_block(block(BASE_MS, ip(1), "new.example"));
    journal.record_block(block(BASE_MS + 1_000, ip(1), "new.example"));
    journal.flush().await;
    stop(journal, task).await;

    let conn = Connection::open(&path).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let cursor: i64 = conn
        .query_row(
            "SELECT last_id FROM ship_cursor WHERE destination = 'trust'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(cursor, 1);
    assert_eq!(
        blocked_indexes(&path),
        ["blocked_at", "blocked_category", "blocked_client"]
    );
    let rows = all_rows(&path);
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[..2], before[..]);
    assert_eq!((rows[2].name.as_str(), rows[2].count), ("new.example", 2));
    // The reads the dropped indexes served still find their rows.
    let reader = JournalReader::open(&path).unwrap();
    let find = |filter: LogFilter| -> Vec<String> {
        reader
            .query_blocked(&filter)
            .unwrap()
            .into_iter()
            .map(|row| row.name)
            .collect()
    };
    let staff = LogFilter {
        profile: Some("staff".into()),
        ..LogFilter::default()
    };
    assert_eq!(find(staff.clone()), ["two.example"]);
    assert_eq!(reader.tally_blocked(&staff).unwrap(), (1, 1));
    let oak = LogFilter {
        device: Some("oak-laptop".into()),
        newest_first: true,
        ..LogFilter::default()
    };
    assert_eq!(find(oak), ["one.example"]);
}

#[test]
fn newer_and_foreign_files_are_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let newer = dir.path().join("newer.db");
    let foreign = dir.path().join("foreign.db");
    {
        let conn = Connection::open(&newer).unwrap();
        conn.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;")
            .unwrap();
        let conn = Connection::open(&foreign).unwrap();
        conn.execute_batch("CREATE TABLE something_else (x);")
            .unwrap();
    }
    let open = |path: &Path| Journal::open(JournalConfig::new(path), no_devices()).map(|_| ());
    assert!(matches!(
        open(&newer),
        Err(JournalError::SchemaMismatch { found: 99, .. })
    ));
    assert!(matches!(open(&foreign), Err(JournalError::NotAJournal(_))));
    let conn = Connection::open(&newer).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 99);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_removes_only_old_rows_in_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.full_log = true;
    cfg.channel_capacity = 32_768;
    let path = cfg.path.clone();
    let (journal, task) = start(cfg, no_devices());
    let now = crate::clock::now_unix_ms();
    let day = 86_400_000i64;
    // 12,000 expired blocked rows: more than two delete chunks.
    for i in 0..12_000 {
        journal.record_block(block(
            now - 400 * day + i,
            ip(1),
            &format!("old{i}.example"),
        ));
    }
    journal.record_block(block(now - 366 * day, ip(1), "just-expired.example"));
    journal.record_block(block(now - 364 * day, ip(1), "kept.example"));
    journal.record_block(block(now - day, ip(1), "recent.example"));
    journal.record_query(query(now - 8 * day, "pupils", false, None));
    journal.record_query(query(now - 6 * day, "pupils", false, None));
    journal.record_query(query(now - 400 * day, "pupils", true, Some("adult")));
    journal.record_audit(AuditEntry {
        at_unix_ms: now - 1000 * day,
        actor: "dsl".into(),
        action: "allow".into(),
        detail: "kept forever".into(),
        reason: None,
    });
    flush_within(&journal, Duration::from_secs(60)).await;

    let report = journal.prune_now().await.unwrap();
    assert_eq!(report.blocked_deleted, 12_001);
    // The full log holds blocked lookups too: the 12,002 blocks older than
    // its 7 days, and the two old allowed lookups.
    assert_eq!(report.queries_deleted, 12_004);
    // Hours of blocks count too: the hour 400 days ago and the one 366 days ago.
    assert_eq!(report.hourly_deleted, 2);
    assert!(report.pages_freed > 0, "{report:?}");

    let names: Vec<String> = all_rows(&path).into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["kept.example", "recent.example"]);
    let conn = Connection::open(&path).unwrap();
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    // Left in the full log: the allowed lookup 6 days ago and the block 1 day ago.
    assert_eq!(count("SELECT count(*) FROM queries"), 2);
    assert_eq!(count("SELECT count(*) FROM audit"), 1);
    assert_eq!(count("PRAGMA freelist_count"), 0);
    assert_eq!(count("PRAGMA auto_vacuum"), 2);
    drop(conn);

    // New events still flow after a prune.
    journal.record_block(block(now, ip(1), "after.example"));
    journal.flush().await;
    assert_eq!(all_rows(&path).len(), 3);
    stop(journal, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_counts_its_days_from_the_journals_clock() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    let day = 86_400_000i64;
    // Monday 2026-11-30 09:00 UTC, whatever the machine's own clock says.
    let monday = crate::clock::days_from_civil(2026, 11, 30) * day + 9 * 3_600_000;
    let clock = crate::clock::Clock::set_at(monday);
    cfg.clock = clock.clone();
    cfg.blocked_retention_days = 30;
    let path = cfg.path.clone();
    let (journal, task) = start(cfg, no_devices());
    journal.record_block(block(monday - 10 * day, ip(1), "ten-days-old.example"));
    journal.record_block(block(monday - day, ip(1), "yesterday.example"));
    flush_within(&journal, Duration::from_secs(60)).await;

    // On the day they were written, nothing is old enough to go.
    let report = journal.prune_now().await.unwrap();
    assert_eq!(report.blocked_deleted, 0);
    assert_eq!(all_rows(&path).len(), 2);

    // Three weeks on, the first is past 30 days and the second is not.
    clock.advance(Duration::from_secs(21 * 86_400));
    let report = journal.prune_now().await.unwrap();
    assert_eq!(report.blocked_deleted, 1);
    let names: Vec<String> = all_rows(&path).into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["yesterday.example"]);

    // Set a year on, the rest goes too.
    clock.set(monday + 365 * day);
    let report = journal.prune_now().await.unwrap();
    assert_eq!(report.blocked_deleted, 1);
    assert!(all_rows(&path).is_empty());
    stop(journal, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeat_of_a_pruned_row_gets_a_row_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let path = cfg.path.clone();
    let (journal, task) = start(cfg, no_devices());
    // A device clock stuck far in the past (no RTC before NTP sync).
    let old = 86_400_000;
    journal.record_block(block(old, ip(1), "stale.example"));
    journal.flush().await;
    assert_eq!(journal.prune_now().await.unwrap().blocked_deleted, 1);
    journal.record_block(block(old + 1_000, ip(1), "stale.example"));
    journal.flush().await;
    let rows = all_rows(&path);
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].at_unix_ms, rows[0].count), (old + 1_000, 1));
    stop(journal, task).await;
}

/// What SQLite plans to do for `sql`, its steps joined by " | ".
fn plan(conn: &Connection, (sql, args): (String, Vec<rusqlite::types::Value>)) -> String {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let steps: Vec<String> = stmt
        .query_map(rusqlite::params_from_iter(args), |r| r.get(3))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    steps.join(" | ")
}

/// Each index on `blocked` costs every new row a B-tree insert, so each
/// one kept must serve a read, and no read may lose the index it needs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_read_of_the_block_log_has_the_index_it_needs() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let path = cfg.path.clone();
    let (journal, task) = start(cfg, no_devices());
    journal.record_block(block(BASE_MS, ip(1), "one.example"));
    journal.flush().await;
    stop(journal, task).await;
    let conn = Connection::open(&path).unwrap();
    let day = 86_400_000;
    let week = LogFilter {
        from_unix_ms: Some(BASE_MS - 7 * day),
        to_unix_ms: Some(BASE_MS),
        newest_first: true,
        limit: Some(50),
        ..LogFilter::default()
    };
    let newest = LogFilter {
        newest_first: true,
        limit: Some(50),
        ..LogFilter::default()
    };
    let category_week = LogFilter {
        category: Some("self-harm".into()),
        limit: Some(10),
        ..week.clone()
    };
    let profile = LogFilter {
        profile: Some("staff".into()),
        ..newest.clone()
    };
    let profile_week = LogFilter {
        profile: Some("staff".into()),
        ..week.clone()
    };
    // The history beside one entry: one device's week.
    let one_device = LogFilter {
        client_ip: Some("10.0.0.1".into()),
        from_unix_ms: Some(BASE_MS - 7 * day),
        limit: Some(20),
        ..newest.clone()
    };
    let uses = |query, index: &str| {
        let plan = plan(&conn, query);
        assert!(plan.contains(index), "{plan} does not use {index}");
    };
    uses(select_blocked(&week), "INDEX blocked_at ");
    uses(tally_blocked_sql(&week), "INDEX blocked_at ");
    uses(select_blocked(&category_week), "INDEX blocked_category ");
    uses(tally_blocked_sql(&category_week), "INDEX blocked_category ");
    uses(select_blocked(&one_device), "INDEX blocked_client ");
    uses(select_blocked(&profile_week), "INDEX blocked_at ");
    uses(tally_blocked_sql(&profile_week), "INDEX blocked_at ");
    uses(
        (
            super::super::retention::oldest_ids("blocked"),
            vec![rusqlite::types::Value::Integer(BASE_MS)],
        ),
        "COVERING INDEX blocked_at ",
    );
    // Newest first with no time asked for: the table itself, read from
    // its end until the page is full, never a sort of every row.
    for filter in [newest, profile] {
        let plan = plan(&conn, select_blocked(&filter));
        assert!(
            plan.starts_with("SCAN blocked") && !plan.contains("TEMP B-TREE"),
            "{plan}"
        );
    }
}
