//! One destination's shipping loop: read the rows it has not taken from the
//! block log, send them, and move its cursor only once it has acknowledged
//! them; on failure wait (doubling, up to a minute) and send the same rows
//! again. At most one batch is in memory. The DNS path never sees any of it:
//! the resolver writes the block log as it always has.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::journal::{Outbox, OutboxError, ShipBatch};
use crate::metrics::Shipping;

use super::{BoxHealth, Destination, HealthFn};

/// Rows of each kind read and sent at once.
pub const BATCH_ROWS: usize = 2_000;
/// How often an idle shipper looks for new rows.
const POLL: Duration = Duration::from_millis(500);
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Longest one send may take before it counts as failed.
const SEND_TIMEOUT: Duration = Duration::from_secs(120);
const HEARTBEAT_EVERY: Duration = Duration::from_secs(60);

/// What one loop needs besides its destination.
pub struct Loop {
    pub outbox: Arc<Mutex<Outbox>>,
    pub figures: Arc<Shipping>,
    pub health: HealthFn,
    /// A blocked row is sent only once it has been in the log this long:
    /// repeats within the block log's collapse window are added to it, and
    /// then its count is final.
    pub settle: Duration,
}

/// Runs `outbox` work on a blocking thread (SQLite waits on the disk).
async fn blocking<T: Send + 'static>(
    outbox: &Arc<Mutex<Outbox>>,
    work: impl FnOnce(&mut Outbox) -> Result<T, OutboxError> + Send + 'static,
) -> Result<T, String> {
    let outbox = outbox.clone();
    tokio::task::spawn_blocking(move || {
        let mut outbox = outbox.lock().unwrap_or_else(PoisonError::into_inner);
        let result = work(&mut outbox);
        if result.is_err() {
            outbox.close();
        }
        result
    })
    .await
    .map_err(|_| "the block log reader stopped".to_string())?
    .map_err(|error| error.to_string())
}

/// The newest blocked id that has been in the log for `settle`, from
/// (seen at, newest id then) pairs; older pairs are let go.
fn settled(seen: &mut VecDeque<(Instant, i64)>, now: Instant, settle: Duration) -> i64 {
    let mut upto = 0;
    while let Some(&(at, id)) = seen.front() {
        if now.duration_since(at) < settle {
            break;
        }
        upto = id;
        if seen.len() > 1 && now.duration_since(seen[1].0) >= settle {
            seen.pop_front();
        } else {
            break;
        }
    }
    upto
}

impl Loop {
    pub async fn run(self, mut destination: Box<dyn Destination>) {
        let name = destination.name().to_string();
        let mut backoff = FIRST_BACKOFF;
        let mut seen: VecDeque<(Instant, i64)> = VecDeque::new();
        let mut last_heartbeat: Option<Instant> = None;
        loop {
            let now = Instant::now();
            if last_heartbeat.is_none_or(|at| now.duration_since(at) >= HEARTBEAT_EVERY) {
                let health: BoxHealth = (self.health)(&self.figures.snapshot());
                match destination.heartbeat(&health).await {
                    Ok(()) => last_heartbeat = Some(now),
                    Err(error) => {
                        self.failed(&name, &error, &mut backoff).await;
                        continue;
                    }
                }
            }
            match blocking(&self.outbox, Outbox::newest_blocked).await {
                Ok(newest) => {
                    if seen.back().is_none_or(|&(_, id)| id != newest) {
                        seen.push_back((now, newest));
                    }
                }
                Err(error) => {
                    self.failed(&name, &error, &mut backoff).await;
                    continue;
                }
            }
            let upto = settled(&mut seen, now, self.settle);
            let dest = name.clone();
            let batch = match blocking(&self.outbox, move |o| o.read(&dest, BATCH_ROWS, upto)).await
            {
                Ok(batch) => batch,
                Err(error) => {
                    self.failed(&name, &error, &mut backoff).await;
                    continue;
                }
            };
            if batch.is_empty() {
                self.note_progress(&name).await;
                tokio::time::sleep(POLL).await;
                continue;
            }
            let sent = tokio::time::timeout(SEND_TIMEOUT, destination.send(&batch))
                .await
                .unwrap_or_else(|_| Err(format!("no answer in {}s", SEND_TIMEOUT.as_secs())));
            if let Err(error) = sent {
                self.failed(&name, &error, &mut backoff).await;
                continue;
            }
            backoff = FIRST_BACKOFF;
            self.acknowledged(&name, batch).await;
        }
    }

    /// The destination has `batch`: its cursor moves past it. If the move
    /// cannot be saved the rows go again, which the destination's keys make
    /// harmless.
    async fn acknowledged(&self, name: &str, batch: ShipBatch) {
        let rows = batch.len() as u64;
        let dest = name.to_string();
        let saved = blocking(&self.outbox, move |o| o.advance(&dest, &batch)).await;
        if let Err(error) = &saved {
            tracing::warn!(destination = name, %error, "central log: progress not saved; the rows will be sent again");
        }
        let now = crate::clock::now_unix_ms();
        self.figures.update(name, |f| {
            if f.error.is_some() {
                tracing::info!(destination = name, "central log reachable again");
            }
            f.shipped += rows;
            f.up = true;
            f.error = None;
            f.last_shipped_unix_ms = Some(now);
        });
    }

    async fn note_progress(&self, name: &str) {
        let dest = name.to_string();
        if let Ok(progress) = blocking(&self.outbox, move |o| o.progress(&dest)).await {
            self.figures.update(name, |f| {
                f.backlog = progress.backlog;
                f.dropped = progress.dropped;
                f.up = f.error.is_none();
            });
        }
    }

    async fn failed(&self, name: &str, error: &str, backoff: &mut Duration) {
        let first = self
            .figures
            .snapshot()
            .get(name)
            .is_none_or(|f| f.error.is_none());
        if first {
            tracing::warn!(destination = name, %error, "central log unreachable; the block log keeps every event until it is back");
        }
        self.figures.update(name, |f| {
            f.up = false;
            f.error = Some(error.to_string());
        });
        self.note_progress(name).await;
        tokio::time::sleep(*backoff).await;
        *backoff = (*backoff * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rows_seen_long_enough_ago_are_settled() {
        let start = Instant::now();
        let settle = Duration::from_secs(10);
        let mut seen = VecDeque::from([
            (start, 5),
            (start + Duration::from_secs(4), 9),
            (start + Duration::from_secs(12), 20),
        ]);
        assert_eq!(
            settled(&mut seen, start + Duration::from_secs(3), settle),
            0
        );
        assert_eq!(
            settled(&mut seen, start + Duration::from_secs(10), settle),
            5
        );
        assert_eq!(
            settled(&mut seen, start + Duration::from_secs(15), settle),
            9
        );
        assert_eq!(
            seen.len(),
            2,
            "the first pair is let go once a later one settled"
        );
        assert_eq!(
            settled(&mut seen, start + Duration::from_secs(30), settle),
            20
        );
    }
}
