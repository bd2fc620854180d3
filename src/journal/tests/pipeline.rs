//! End-to-end tests of the normal path: events in, rows out, in order,
//! with retries collapsed, aggregates kept, and searches and CSV exports
//! reading them back.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_events_arrive_complete_in_order_and_collapsed() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    // The test sends faster than any resolver could; room for all of it.
    cfg.channel_capacity = 131_072;
    let path = cfg.path.clone();
    let (journal, task) = start(cfg, no_devices());

    // 25,000 lookups, each repeated four times 1 ms apart, as browsers do.
    let started = Instant::now();
    for i in 0..25_000i64 {
        for r in 0..4 {
            let client = ip((i % 200) as u8);
            journal.record_block(block(
                BASE_MS + i * 4 + r,
                client,
                &format!("site{i}.example"),
            ));
        }
    }
    let send_time = started.elapsed();
    flush_within(&journal, Duration::from_secs(60)).await;
    let stats = journal.stats();
    assert_eq!(stats.dropped, 0, "{stats:?}");
    assert_eq!(stats.written, 100_000);
    assert_eq!(stats.blocked_written, 100_000);
    assert!(stats.batches >= 1 && stats.db_bytes > 0);

    let rows = all_rows(&path);
    assert_eq!(rows.len(), 25_000);
    for (i, row) in rows.iter().enumerate() {
        let i = i as i64;
        assert_eq!(row.name, format!("site{i}.example"));
        assert_eq!(row.count, 4, "row {i}");
        assert_eq!(row.at_unix_ms, BASE_MS + i * 4);
        assert_eq!(row.last_at_unix_ms, BASE_MS + i * 4 + 3);
    }
    assert!(
        rows.windows(2)
            .all(|w| w[0].id < w[1].id && w[0].at_unix_ms < w[1].at_unix_ms)
    );
    eprintln!(
        "sent 100,000 in {send_time:?}, committed in {:?}",
        started.elapsed()
    );
    stop(journal, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collapsing_spans_batches_and_ends_with_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let path = cfg.path.clone();
    let (journal, task) = start(cfg, no_devices());
    let a = || block(BASE_MS, ip(1), "retry.example");

    journal.record_block(a());
    journal.flush().await;
    // Committed already: the repeat must bump the existing row.
    journal.record_block(BlockEvent {
        at_unix_ms: BASE_MS + 5_000,
        ..a()
    });
    journal.flush().await;
    // Ten seconds after the first: a new row.
    journal.record_block(BlockEvent {
        at_unix_ms: BASE_MS + 10_000,
        ..a()
    });
    // Same lookup from another device, another type, another action.
    journal.record_block(BlockEvent {
        at_unix_ms: BASE_MS + 10_001,
        client: ip(2),
        ..a()
    });
    journal.record_block(BlockEvent {
        at_unix_ms: BASE_MS + 10_002,
        query_type: "AAAA",
        ..a()
    });
    journal.record_block(BlockEvent {
        at_unix_ms: BASE_MS + 10_003,
        action: "nxdomain",
        ..a()
    });
    journal.record_block(BlockEvent {
        at_unix_ms: BASE_MS + 10_004,
        ..a()
    });
    journal.flush().await;

    let rows = all_rows(&path);
    let summary: Vec<(i64, i64, i64)> = rows
        .iter()
        .map(|r| (r.at_unix_ms - BASE_MS, r.last_at_unix_ms - BASE_MS, r.count))
        .collect();
    assert_eq!(
        summary,
        vec![
            (0, 5_000, 2),
            (10_000, 10_004, 2),
            (10_001, 10_001, 1),
            (10_002, 10_002, 1),
            (10_003, 10_003, 1),
        ]
    );
    assert_eq!(rows[3].query_type, "AAAA");
    assert_eq!(rows[4].action, "nxdomain");
    assert_eq!(journal.stats().blocked_written, 7);
    stop(journal, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregates_full_log_and_audit() {
    for full_log in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.full_log = full_log;
        let path = cfg.path.clone();
        let (journal, task) = start(cfg, no_devices());
        let hour = BASE_MS;
        for _ in 0..3 {
            journal.record_query(query(hour + 10, "pupils", false, None));
        }
        journal.record_query(query(hour + 20, "pupils", true, Some("adult")));
        journal.record_query(query(hour + 30, "pupils", true, Some("adult")));
        journal.record_query(query(hour + 40, "staff", true, None));
        journal.record_query(query(hour + 3_600_000, "pupils", false, None));
        journal.record_audit(AuditEntry {
            at_unix_ms: hour + 50,
            actor: "head@school".into(),
            action: "allow".into(),
            detail: "allowed bbc.co.uk for staff".into(),
            reason: Some("lesson".into()),
        });
        journal.flush().await;
        // A second batch adds to the same hour.
        journal.record_query(query(hour + 60, "pupils", false, None));
        journal.flush().await;
        assert_eq!(journal.stats().written, 9);

        let reader = JournalReader::open(&path).unwrap();
        let hourly: Vec<(i64, String, Option<String>, i64, i64)> = reader
            .hourly(hour, hour + 7_200_000)
            .unwrap()
            .into_iter()
            .map(|h| {
                (
                    h.hour_unix_ms - hour,
                    h.profile,
                    h.category,
                    h.queries,
                    h.blocked,
                )
            })
            .collect();
        assert_eq!(
            hourly,
            vec![
                (0, "pupils".into(), None, 4, 0),
                (0, "pupils".into(), Some("adult".into()), 2, 2),
                (0, "staff".into(), None, 1, 1),
                (3_600_000, "pupils".into(), None, 1, 0),
            ]
        );
        let audit = reader.audit(0, i64::MAX, 10).unwrap();
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].reason.as_deref(), Some("lesson"));
        let conn = rusqlite::Connection::open(&path).unwrap();
        let logged: i64 = conn
            .query_row("SELECT count(*) FROM queries", [], |r| r.get(0))
            .unwrap();
        assert_eq!(logged, if full_log { 8 } else { 0 });
        drop(conn);
        stop(journal, task).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeats_reach_their_row_when_its_window_ends_without_a_flush() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    let clock = crate::clock::Clock::set_at(BASE_MS + 500);
    cfg.clock = clock.clone();
    let path = cfg.path.clone();
    let (journal, task) = start(cfg, no_devices());
    journal.record_block(block(BASE_MS, ip(9), "games.example"));
    journal.flush().await;
    for r in 1..=3 {
        journal.record_block(block(BASE_MS + r * 100, ip(9), "games.example"));
    }
    // The row may take more repeats for 10 s: the writer's rounds (one a
    // second) hold them, so the row gets one UPDATE, not one a second.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let rows = all_rows(&path);
    assert_eq!((rows.len(), rows[0].count), (1, 1), "{rows:?}");
    // The window ends: the next round writes all three, no flush needed.
    clock.set(BASE_MS + 10_000);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = all_rows(&path);
        assert_eq!(rows.len(), 1);
        if rows[0].count == 4 {
            assert_eq!(rows[0].last_at_unix_ms, BASE_MS + 300);
            break;
        }
        assert!(Instant::now() < deadline, "repeats not written: {rows:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop(journal, task).await;
}

/// The store's side of the rounds: a row's repeats wait for the end of
/// its window, a clock set back before the row does not hold them, and a
/// flush (every row) writes them all.
#[test]
fn repeats_wait_for_their_window_unless_the_clock_is_behind_or_a_flush_asks() {
    use super::super::store::{Item, Store};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let mut store = Store::new(path.clone(), no_devices(), 10_000, false);
    let hit = |at, name: &str| Item::Block(block(at, ip(1), name), None);
    let round = |now_unix_ms| Item::Repeats { now_unix_ms };
    let counts = || -> Vec<(String, i64)> {
        all_rows(&path)
            .into_iter()
            .map(|row| (row.name, row.count))
            .collect()
    };
    store
        .write(&[hit(BASE_MS, "a.example"), hit(BASE_MS, "b.example")])
        .unwrap();
    store.write(&[hit(BASE_MS + 1_000, "a.example")]).unwrap();
    // A repeat and a round in one batch, the window still open: held.
    let outcome = store
        .write(&[hit(BASE_MS + 2_000, "a.example"), round(BASE_MS + 2_500)])
        .unwrap();
    assert!(outcome.repeats_unwritten);
    assert_eq!(counts(), [("a.example".into(), 1), ("b.example".into(), 1)]);
    // The window has ended: both repeats at once.
    let outcome = store.write(&[round(BASE_MS + 10_000)]).unwrap();
    assert!(!outcome.repeats_unwritten);
    assert_eq!(counts()[0], ("a.example".into(), 3));

    // A row dated after the writer's clock (the clock was set back).
    store.write(&[hit(BASE_MS + 20_000, "c.example")]).unwrap();
    store.write(&[hit(BASE_MS + 21_000, "c.example")]).unwrap();
    let outcome = store.write(&[round(BASE_MS + 5_000)]).unwrap();
    assert!(!outcome.repeats_unwritten);
    assert_eq!(counts()[2], ("c.example".into(), 2));

    // A flush asks for every row, windows open or not.
    store.write(&[hit(BASE_MS + 21_500, "c.example")]).unwrap();
    store.write(&[round(BASE_MS + 22_000)]).unwrap();
    assert_eq!(counts()[2], ("c.example".into(), 2));
    let outcome = store.write(&[round(i64::MAX)]).unwrap();
    assert!(!outcome.repeats_unwritten);
    assert_eq!(counts()[2], ("c.example".into(), 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_lookups_counted_without_events_reach_the_hourly_figures() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let path = cfg.path.clone();
    let (journal, task) = start(cfg, no_devices());
    let tally = journal.lookup_tally(["pupils", "staff"]);
    for _ in 0..5 {
        tally.count(0);
    }
    tally.count(1);
    tally.count(7); // not a profile of this policy: ignored
    journal.flush().await;
    // A reload's new tally keeps counting into the same profile.
    let reloaded = journal.lookup_tally(["staff", "pupils"]);
    reloaded.count(1);
    journal.flush().await;
    // Each lookup counts as written, as its own event did.
    assert_eq!(journal.stats().written, 7);
    let now = crate::clock::now_unix_ms();
    let reader = JournalReader::open(&path).unwrap();
    let mut totals: Vec<(String, i64, i64)> = reader
        .hourly(now - 7_200_000, now + 3_600_000)
        .unwrap()
        .into_iter()
        .map(|h| (h.profile, h.queries, h.blocked))
        .collect();
    // Taken in the hour it is now, or the next if the hour turned meanwhile.
    totals.sort();
    totals.dedup_by(|b, a| {
        let same = a.0 == b.0;
        if same {
            a.1 += b.1;
        }
        same
    });
    assert_eq!(
        totals,
        vec![("pupils".into(), 6, 0), ("staff".into(), 1, 0)]
    );
    stop(journal, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_filter_page_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let path = cfg.path.clone();
    let devices = DeviceDirectory::new(vec![DeviceEntry {
        ip: Some(ip(5)),
        mac: None,
        name: "=HYPERLINK(\"x\") iPad, \"Class 3\"\nspare".into(),
        owner: Some("Ms O'Neill".into()),
        room: Some("Class 3".into()),
    }])
    .with_arp_path(None);
    let (journal, task) = start(cfg, devices);
    journal.record_block(block(BASE_MS, ip(5), "games.example"));
    journal.record_block(BlockEvent {
        profile: "staff".into(),
        category: Some("gambling".into()),
        ..block(BASE_MS + 1_000, ip(6), "bet_100%.example")
    });
    journal.record_block(block(BASE_MS + 2_000, ip(5), "video.example"));
    journal.record_block(block(BASE_MS + 3_000, ip(7), "games.example"));
    journal.flush().await;

    let reader = JournalReader::open(&path).unwrap();
    let names = |f: LogFilter| -> Vec<String> {
        reader
            .query_blocked(&f)
            .unwrap()
            .into_iter()
            .map(|r| r.name)
            .collect()
    };
    assert_eq!(
        names(LogFilter {
            device: Some("ipad".into()),
            ..Default::default()
        }),
        ["games.example", "video.example"]
    );
    assert_eq!(
        names(LogFilter {
            device: Some("o'neill".into()),
            ..Default::default()
        })
        .len(),
        2
    );
    assert_eq!(
        names(LogFilter {
            device: Some("10.0.0.7".into()),
            ..Default::default()
        }),
        ["games.example"]
    );
    assert_eq!(
        names(LogFilter {
            profile: Some("staff".into()),
            ..Default::default()
        }),
        ["bet_100%.example"]
    );
    assert_eq!(
        names(LogFilter {
            category: Some("gambling".into()),
            ..Default::default()
        })
        .len(),
        1
    );
    // % and _ are literal, not wildcards.
    assert_eq!(
        names(LogFilter {
            name_contains: Some("_100%".into()),
            ..Default::default()
        })
        .len(),
        1
    );
    assert!(
        names(LogFilter {
            name_contains: Some("t%1".into()),
            ..Default::default()
        })
        .is_empty()
    );
    let window = LogFilter {
        from_unix_ms: Some(BASE_MS + 1_000),
        to_unix_ms: Some(BASE_MS + 3_000),
        ..Default::default()
    };
    assert_eq!(names(window.clone()), ["bet_100%.example", "video.example"]);
    assert_eq!(reader.count_blocked(&window).unwrap(), 2);
    let page = LogFilter {
        newest_first: true,
        limit: Some(2),
        offset: 1,
        ..Default::default()
    };
    assert_eq!(names(page), ["video.example", "bet_100%.example"]);

    let rows = reader.query_blocked(&LogFilter::default()).unwrap();
    let mut out = Vec::new();
    write_csv(&rows, TimeZone::EuropeLondon, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert!(lines[0].starts_with("Ref,Time (Europe/London),Time (UTC),"));
    assert!(lines[1].starts_with("1,2025-06-14T11:00:00+01:00,2025-06-14T10:00:00Z,"));
    assert!(
        text.contains(",\"'=HYPERLINK(\"\"x\"\") iPad, \"\"Class 3\"\"\nspare\",10.0.0.5,"),
        "{text}"
    );
    assert!(text.contains(",Ms O'Neill,Class 3,pupils,vlan-pupils,games.example,A,adult,"));
    assert_eq!(
        lines.len(),
        6,
        "header, four rows, and the empty tail after CRLF"
    );
    stop(journal, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_writer_costs_drops_not_waits() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.channel_capacity = 100;
    // The writer task is never spawned: the queue can only fill up.
    let (journal, _task) = Journal::open(cfg, no_devices()).unwrap();
    let mut worst = Duration::ZERO;
    for i in 0..150 {
        timed(&mut worst, || {
            journal.record_block(block(BASE_MS + i, ip(1), "x.example"))
        });
    }
    journal.record_query(query(BASE_MS, "pupils", false, None));
    let stats = journal.stats();
    assert_eq!((stats.dropped, stats.blocked_dropped), (51, 50));
    assert!(worst < Duration::from_millis(50));
}

/// The address column reads as the standard form of the client's address
/// (an IPv4-mapped IPv6 address as IPv4), written by hand or not.
#[test]
fn a_clients_address_is_written_as_its_standard_text() {
    use super::super::store::address_text;
    use std::net::Ipv6Addr;
    for octet in 0..=255u8 {
        for ip in [
            Ipv4Addr::new(octet, 0, 255, 9),
            Ipv4Addr::new(10, octet, 100, 99),
            Ipv4Addr::new(192, 168, octet, 1),
            Ipv4Addr::new(172, 16, 5, octet),
        ] {
            assert_eq!(address_text(IpAddr::V4(ip)), ip.to_string());
            let mapped = IpAddr::V6(ip.to_ipv6_mapped());
            assert_eq!(address_text(mapped), ip.to_string());
        }
    }
    let v6: Ipv6Addr = "fd00:5c0:0:20::7".parse().unwrap();
    assert_eq!(address_text(IpAddr::V6(v6)), "fd00:5c0:0:20::7");
}
