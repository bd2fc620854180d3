//! The shippers' view of the block log: rows after a destination's cursor,
//! progress that survives a new connection, alerts kept as delivered, and
//! retention counting what it deletes before a destination took it.

use super::*;

fn alert(at_unix_ms: i64, id: u64) -> AlertSent {
    AlertSent {
        at_unix_ms,
        alert_id: id,
        channel: "email".into(),
        outcome: "sent".into(),
        category: "self-harm".into(),
        device: "Year 6 iPad".into(),
        name: Some("bad.example".into()),
        events: 2,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_reads_after_its_cursor_and_keeps_its_progress() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let path = cfg.path.clone();
    let (journal, task) = start(cfg, no_devices());
    for i in 0..5 {
        journal.record_block(block(BASE_MS + i, ip(1), &format!("n{i}.example")));
    }
    journal.record_alert(alert(BASE_MS, 7));
    journal.record_audit(AuditEntry {
        at_unix_ms: BASE_MS,
        actor: "dsl".into(),
        action: "allow".into(),
        detail: "x".into(),
        reason: Some("lesson".into()),
    });
    flush_within(&journal, Duration::from_secs(30)).await;

    let destinations = vec!["postgres".to_string(), "syslog".to_string()];
    let mut outbox = Outbox::new(&path, destinations.clone());
    let newest = outbox.newest_blocked().unwrap();
    // Blocked rows only up to the settled id; the rest wait.
    let batch = outbox.read("postgres", 3, newest - 2).unwrap();
    let names: Vec<&str> = batch.blocked.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["n0.example", "n1.example", "n2.example"]);
    assert_eq!(batch.alerts.len(), 1);
    assert_eq!(batch.alerts[0].device, "Year 6 iPad");
    assert_eq!(batch.alerts[0].name.as_deref(), Some("bad.example"));
    assert_eq!(batch.audit.len(), 1);
    assert_eq!(batch.audit[0].reason.as_deref(), Some("lesson"));
    outbox.advance("postgres", &batch).unwrap();
    assert_eq!(outbox.progress("postgres").unwrap().backlog, 2);
    // Another destination has its own cursor.
    assert_eq!(outbox.progress("syslog").unwrap().backlog, 7);

    // A new connection (a restart) carries on after the cursor.
    let mut again = Outbox::new(&path, destinations);
    let rest = again.read("postgres", 100, newest).unwrap();
    let names: Vec<&str> = rest.blocked.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["n3.example", "n4.example"]);
    assert!(rest.alerts.is_empty() && rest.audit.is_empty());
    again.advance("postgres", &rest).unwrap();
    assert_eq!(again.progress("postgres").unwrap().backlog, 0);

    // A destination taken out of the config is forgotten.
    let mut only_syslog = Outbox::new(&path, vec!["syslog".to_string()]);
    assert_eq!(only_syslog.progress("syslog").unwrap().backlog, 7);
    assert_eq!(
        only_syslog.progress("postgres").unwrap().backlog,
        7,
        "no cursor: all of it"
    );
    stop(journal, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_counts_the_rows_it_deletes_before_they_were_shipped() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let path = cfg.path.clone();
    let (journal, task) = start(cfg, no_devices());
    let now = crate::clock::now_unix_ms();
    let day = 86_400_000i64;
    for i in 0..10 {
        journal.record_block(block(
            now - 400 * day + i,
            ip(1),
            &format!("old{i}.example"),
        ));
    }
    journal.record_alert(alert(now - 400 * day, 1));
    journal.record_block(block(now - day, ip(1), "recent.example"));
    flush_within(&journal, Duration::from_secs(30)).await;

    let mut outbox = Outbox::new(&path, vec!["postgres".to_string()]);
    // Four of the old rows reached the trust before the central server
    // went away; the rest had not.
    let batch = outbox.read("postgres", 4, i64::MAX).unwrap();
    let shipped = ShipBatch {
        blocked: batch.blocked,
        ..ShipBatch::default()
    };
    outbox.advance("postgres", &shipped).unwrap();

    let report = journal.prune_now().await.unwrap();
    assert_eq!(report.blocked_deleted, 10);
    assert_eq!(report.alerts_deleted, 1);
    assert_eq!(report.unshipped_deleted, 7, "{report:?}");
    let progress = outbox.progress("postgres").unwrap();
    assert_eq!(progress.dropped, 7);
    assert_eq!(progress.backlog, 1, "the recent row still waits");
    stop(journal, task).await;
}
