//! Repeats folded where they are answered: the rows, counts, times and
//! hourly figures are the ones their events would have made, counts from
//! many threads add up exactly, and nothing counted is lost to a row the
//! writer forgets or to a clean stop.

use super::super::folds::{Folds, Repeat};
use super::super::store::{Item, Store};
use super::*;
use proptest::prelude::*;
use std::sync::Arc;

fn hourly(path: &Path) -> Vec<(i64, String, String, i64, i64)> {
    let conn = rusqlite::Connection::open(path).expect("open");
    let mut stmt = conn
        .prepare("SELECT hour, profile, category, queries, blocked FROM hourly ORDER BY 1, 2, 3")
        .expect("prepare");
    stmt.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .expect("query")
    .map(|row| row.expect("row"))
    .collect()
}

/// The rows as the head teacher reads them: who, what, first, last, how many.
fn rows(path: &Path) -> Vec<(String, String, i64, i64, i64)> {
    let mut rows: Vec<_> = all_rows(path)
        .into_iter()
        .map(|r| {
            (
                r.client_ip,
                r.name,
                r.at_unix_ms,
                r.last_at_unix_ms,
                r.count,
            )
        })
        .collect();
    rows.sort();
    rows
}

/// What the answering side does with a repeat of `event`: folded into
/// its count, or an event to send (with a ticket for a count).
fn offer(folds: &Folds, event: &BlockEvent) -> Option<Item> {
    match folds.count(
        event.client,
        event.at_unix_ms,
        &event.profile,
        &event.category,
    ) {
        Repeat::Counted => None,
        Repeat::Send(ticket) => Some(Item::Block(event.clone(), ticket)),
    }
}

#[test]
fn counts_from_many_threads_add_up_exactly_in_the_row_and_the_hour() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let mut store = Store::new(path.clone(), no_devices(), 10_000, false);
    let folds = Arc::new(Folds::default());
    let first = block(BASE_MS, ip(1), "games.example");
    let Some(item) = offer(&folds, &first) else {
        panic!("the first lookup has no count to go into");
    };
    // Before its row exists nothing is counted: the repeat goes as an event.
    let early = block(BASE_MS + 1, ip(1), "games.example");
    let early = offer(&folds, &early).expect("sent, not counted");
    assert!(matches!(early, Item::Block(_, None)));
    store.write(&[item, early]).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let folds = folds.clone();
            std::thread::spawn(move || {
                let mut sent = 0;
                for i in 0..10_000 {
                    let at = BASE_MS + 2 + (i * 4 + t) % 9_000;
                    if offer(&folds, &block(at, ip(1), "games.example")).is_some() {
                        sent += 1;
                    }
                }
                sent
            })
        })
        .collect();
    let sent: i32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(sent, 0, "every repeat in the window was counted");
    // Taken with a batch while the window is open: held for the row.
    let outcome = store
        .write(&[Item::Repeats {
            now_unix_ms: BASE_MS + 9_500,
        }])
        .unwrap();
    assert_eq!((outcome.events, outcome.blocked_events), (40_000, 40_000));
    assert!(outcome.folds_open && outcome.repeats_unwritten);
    assert_eq!(rows(&path)[0].4, 2);
    // The window ends: written, and the count closes.
    let outcome = store
        .write(&[Item::Repeats {
            now_unix_ms: BASE_MS + 10_000,
        }])
        .unwrap();
    assert!(!outcome.folds_open && !outcome.repeats_unwritten);
    assert_eq!(
        rows(&path),
        [(
            "10.0.0.1".into(),
            "games.example".into(),
            BASE_MS,
            BASE_MS + 9_001,
            40_002
        )]
    );
    assert_eq!(
        hourly(&path),
        [(BASE_MS, "pupils".into(), "adult".into(), 40_002, 40_002)]
    );
    // The next repeat asks for a new count, for the row it makes.
    let next = block(BASE_MS + 10_000, ip(1), "games.example");
    assert!(matches!(
        offer(&folds, &next),
        Some(Item::Block(_, Some(_)))
    ));
}

#[test]
fn a_count_never_crosses_its_rows_window_or_the_hour() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let mut store = Store::new(path.clone(), no_devices(), 10_000, false);
    let folds = Folds::default();
    // Five seconds before the hour ends.
    let start = BASE_MS + 3_600_000 - 5_000;
    let at = |ms| block(start + ms, ip(2), "chat.example");
    store.write(&[offer(&folds, &at(0)).unwrap()]).unwrap();
    assert!(
        offer(&folds, &at(4_999)).is_none(),
        "within the hour: counted"
    );
    // Past the hour, still within the row's window: an event, whose hour
    // the writer counts it in.
    let past_hour = offer(&folds, &at(5_000)).expect("sent");
    // Before the row's first attempt (the clock went back): an event.
    let before = offer(&folds, &at(-1)).expect("sent");
    store
        .write(&[
            past_hour,
            before,
            Item::Repeats {
                now_unix_ms: i64::MAX,
            },
        ])
        .unwrap();
    assert_eq!(
        rows(&path),
        [
            (
                "10.0.0.2".into(),
                "chat.example".into(),
                start - 1,
                start - 1,
                1
            ),
            (
                "10.0.0.2".into(),
                "chat.example".into(),
                start,
                start + 5_000,
                3
            ),
        ]
    );
    let hours: Vec<(i64, i64)> = hourly(&path).iter().map(|h| (h.0, h.4)).collect();
    assert_eq!(hours, [(BASE_MS, 3), (BASE_MS + 3_600_000, 1)]);
}

#[test]
fn an_event_that_never_reaches_its_row_closes_its_count() {
    let folds = Folds::default();
    let event = block(BASE_MS, ip(3), "games.example");
    let Some(Item::Block(_, Some(ticket))) = offer(&folds, &event) else {
        panic!("no ticket");
    };
    assert_eq!(folds.len(), 1);
    drop(ticket);
    assert!(folds.is_empty(), "the dropped event's count is gone");
    assert!(matches!(
        offer(&folds, &event),
        Some(Item::Block(_, Some(_)))
    ));
}

/// A new row taking the lookup's place before the old row's repeats were
/// written (an attempt just after the window, before the writer's round)
/// leaves the old row's count whole.
#[test]
fn repeats_of_a_row_replaced_before_its_round_are_still_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let mut store = Store::new(path.clone(), no_devices(), 10_000, false);
    let hit = |at| Item::Block(block(at, ip(4), "games.example"), None);
    store.write(&[hit(BASE_MS)]).unwrap();
    store
        .write(&[hit(BASE_MS + 3_000), hit(BASE_MS + 6_000)])
        .unwrap();
    let outcome = store.write(&[hit(BASE_MS + 10_500)]).unwrap();
    assert!(outcome.repeats_unwritten);
    store
        .write(&[Item::Repeats {
            now_unix_ms: BASE_MS + 10_600,
        }])
        .unwrap();
    assert_eq!(
        rows(&path),
        [
            (
                "10.0.0.4".into(),
                "games.example".into(),
                BASE_MS,
                BASE_MS + 6_000,
                3
            ),
            (
                "10.0.0.4".into(),
                "games.example".into(),
                BASE_MS + 10_500,
                BASE_MS + 10_500,
                1
            ),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_in_flight_at_a_clean_stop_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    // The writer's clock far behind: no window ends before the stop.
    cfg.clock = crate::clock::Clock::set_at(BASE_MS);
    let path = cfg.path.clone();
    let (journal, task) = start(cfg, no_devices());
    let folds = Folds::default();
    let send = |event: BlockEvent| match folds.count(
        event.client,
        event.at_unix_ms,
        &event.profile,
        &event.category,
    ) {
        Repeat::Counted => true,
        Repeat::Send(ticket) => {
            journal.record_block_folding(event, ticket);
            false
        }
    };
    assert!(!send(block(BASE_MS, ip(5), "games.example")));
    // The writer opens the count once the row is written.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut counted = 0;
    let mut at = BASE_MS + 1;
    while counted < 50 {
        if send(block(at, ip(5), "games.example")) {
            counted += 1;
        }
        at += 1;
        assert!(Instant::now() < deadline, "the count was never opened");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let all = at - BASE_MS;
    stop(journal, task).await;
    assert_eq!(
        rows(&path),
        [(
            "10.0.0.5".into(),
            "games.example".into(),
            BASE_MS,
            at - 1,
            all
        )]
    );
    assert_eq!(hourly(&path)[0].4, all);
}

/// One answered lookup: when, from which client, which name.
#[derive(Clone, Debug)]
enum Step {
    Lookup {
        after_ms: i64,
        client: u8,
        name: u8,
    },
    /// The writer takes a batch (with a round, at the time of the last
    /// lookup plus `late_ms`, or without).
    Batch {
        round: bool,
        late_ms: i64,
    },
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        6 => (0..4_000i64, 0..3u8, 0..3u8)
            .prop_map(|(after_ms, client, name)| Step::Lookup { after_ms, client, name }),
        1 => (any::<bool>(), 0..12_000i64).prop_map(|(round, late_ms)| Step::Batch { round, late_ms }),
    ];
    proptest::collection::vec(step, 1..120)
}

/// The same lookups, batched the same way, written once as events and
/// once folded where they are answered, end as the same rows and hours.
fn folded_and_sent_agree(steps: &[Step]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let (sent_path, folded_path) = (dir.path().join("sent.db"), dir.path().join("folded.db"));
    let mut sent = Store::new(sent_path.clone(), no_devices(), 10_000, false);
    let mut folded = Store::new(folded_path.clone(), no_devices(), 10_000, false);
    let folds: Vec<Folds> = (0..3).map(|_| Folds::default()).collect();
    let (mut sent_batch, mut folded_batch) = (Vec::new(), Vec::new());
    let mut now = BASE_MS;
    let mut write =
        |sent_batch: &mut Vec<Item>, folded_batch: &mut Vec<Item>, round: Option<i64>| {
            sent_batch.extend(round.map(|now_unix_ms| Item::Repeats { now_unix_ms }));
            folded_batch.extend(round.map(|now_unix_ms| Item::Repeats { now_unix_ms }));
            sent.write(sent_batch).expect("sent batch");
            folded.write(folded_batch).expect("folded batch");
            sent_batch.clear();
            folded_batch.clear();
        };
    for step in steps {
        match *step {
            Step::Lookup {
                after_ms,
                client,
                name,
            } => {
                now += after_ms;
                let event = block(now, ip(client), &format!("n{name}.example"));
                sent_batch.push(Item::Block(event.clone(), None));
                folded_batch.extend(offer(&folds[usize::from(name)], &event));
            }
            Step::Batch { round, late_ms } => {
                write(
                    &mut sent_batch,
                    &mut folded_batch,
                    round.then_some(now + late_ms),
                );
            }
        }
    }
    write(&mut sent_batch, &mut folded_batch, Some(i64::MAX));
    write(&mut sent_batch, &mut folded_batch, Some(i64::MAX));
    // With no lookup at all, neither log is made.
    prop_assert_eq!(folded_path.exists(), sent_path.exists());
    if !sent_path.exists() {
        return Ok(());
    }
    prop_assert_eq!(rows(&folded_path), rows(&sent_path));
    prop_assert_eq!(hourly(&folded_path), hourly(&sent_path));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn lookups_folded_where_answered_make_the_rows_their_events_make(steps in steps()) {
        folded_and_sent_agree(&steps)?;
    }
}
