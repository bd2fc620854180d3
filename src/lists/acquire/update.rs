//! Keeps each list's local copy fresh: downloads it, verifies it, and only
//! then replaces the last good copy, recording how each attempt went.
//!
//! Per list, the store directory holds `<name>.list` (the decompressed text,
//! as served) and `<name>.state.json` ([`SourceState`]). A failed or stale
//! source keeps its last good copy; the failure shows in the state. Hidden
//! `.<name>.lock` and `.*.part` files are the updater's working files.

use std::fs::{File, TryLockError};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::fetch::{self, Credential, Fetched, Request, Validators};
use crate::config::{Archive, ListFormat, check_list_name};
use crate::lists::parse::{LineParser, LineResult};

pub const DEFAULT_MAX_BYTES: u64 = 256 * 1024 * 1024;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
pub const DEFAULT_MIN_PARSE_RATIO: f64 = 0.5;
pub const DEFAULT_MAX_SHRINK: f64 = 0.5;
pub const DEFAULT_CADENCE: Duration = Duration::from_secs(24 * 60 * 60);
/// First retry after a failure; doubles per consecutive failure, up to the
/// cadence, so a broken feed isn't hammered but a blip recovers quickly.
pub const RETRY_BASE: Duration = Duration::from_secs(5 * 60);
/// With no success for this many cadences a list counts as stale.
pub const STALE_CADENCES: u32 = 3;

/// Where one list comes from and what counts as a good copy of it.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchSpec {
    /// Also the file name in the store; see [`check_list_name`].
    pub name: String,
    /// Primary first, then mirrors, tried in order.
    pub urls: Vec<String>,
    pub format: ListFormat,
    pub archive: Archive,
    /// For licensed feeds: a file holding `Bearer TOKEN` or `user:password`.
    pub credential_file: Option<PathBuf>,
    /// Limit on the body, both as sent and once unpacked.
    pub max_bytes: u64,
    /// For the whole download from one URL.
    pub timeout: Duration,
    /// `entries / (entries + bad lines)` must reach this.
    pub min_parse_ratio: f64,
    /// The new copy needs at least `(1 - max_shrink)` times the old entries.
    pub max_shrink: f64,
    /// How often [`is_due`] asks for a refresh.
    pub cadence: Duration,
}

impl FetchSpec {
    /// A spec with every limit at its default.
    pub fn new(name: impl Into<String>, urls: Vec<String>, format: ListFormat) -> Self {
        FetchSpec {
            name: name.into(),
            urls,
            format,
            archive: Archive::None,
            credential_file: None,
            max_bytes: DEFAULT_MAX_BYTES,
            timeout: DEFAULT_TIMEOUT,
            min_parse_ratio: DEFAULT_MIN_PARSE_RATIO,
            max_shrink: DEFAULT_MAX_SHRINK,
            cadence: DEFAULT_CADENCE,
        }
    }
}

/// What is known about a list's local copy and its last update, stored as
/// JSON beside the copy. Times are unix seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SourceState {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub last_attempt: Option<u64>,
    pub last_success: Option<u64>,
    pub last_error: Option<String>,
    pub consecutive_failures: u32,
    /// Entries and bad lines in the local copy.
    pub entries: u64,
    pub bad_lines: u64,
    pub bytes: u64,
    /// The URL that served the local copy.
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum UpdateOutcome {
    Updated {
        entries: u64,
        url: String,
    },
    NotModified,
    /// `kept_last_good` says whether an older copy is still there to serve.
    Failed {
        reason: String,
        kept_last_good: bool,
    },
}

pub fn local_copy_path(store_dir: &Path, name: &str) -> PathBuf {
    store_dir.join(format!("{name}.list"))
}

fn state_path(store_dir: &Path, name: &str) -> PathBuf {
    store_dir.join(format!("{name}.state.json"))
}

/// The temporary file a new copy is written to before the rename. Hidden, so
/// nothing globbing `*.list` picks up a half-written download.
fn partial_path(target: &Path) -> PathBuf {
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    target.with_file_name(format!(".{name}.part"))
}

/// The stored state, or a fresh one if it is missing or unreadable: a lost
/// state file costs one unconditional download, nothing more.
pub fn load_state(store_dir: &Path, name: &str) -> SourceState {
    std::fs::read(state_path(store_dir, name))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Never fetched, or the cadence has passed since the last attempt; after
/// failures, retries come sooner, backing off from [`RETRY_BASE`].
pub fn is_due(spec: &FetchSpec, state: &SourceState, now_unix: u64) -> bool {
    let Some(last) = state.last_attempt else {
        return true;
    };
    let wait = if state.consecutive_failures == 0 {
        spec.cadence
    } else {
        let doublings = (state.consecutive_failures - 1).min(20);
        RETRY_BASE.saturating_mul(1 << doublings).min(spec.cadence)
    };
    // An attempt "in the future" means the clock was set back; waiting for
    // it to catch up could leave a list unrefreshed for years.
    last > now_unix || now_unix - last >= wait.as_secs()
}

/// No success for [`STALE_CADENCES`] cadences, or never a success despite
/// trying: the copy in use (if any) is too old to trust without a warning.
pub fn is_stale(spec: &FetchSpec, state: &SourceState, now_unix: u64) -> bool {
    match state.last_success {
        Some(ok) => {
            let limit = spec.cadence.saturating_mul(STALE_CADENCES).as_secs();
            now_unix.saturating_sub(ok) > limit
        }
        None => state.last_attempt.is_some(),
    }
}

/// Held for the whole update so that two updates of one list, from this
/// process or another (a manual run beside the service), never write the
/// same partial file. `None` if another holds it. A filesystem without locks
/// gets no lock rather than no updates.
fn lock(store_dir: &Path, name: &str) -> Result<Option<File>, String> {
    let path = store_dir.join(format!(".{name}.lock"));
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    match file.try_lock() {
        Err(TryLockError::WouldBlock) => Ok(None),
        Ok(()) | Err(TryLockError::Error(_)) => Ok(Some(file)),
    }
}

/// Tries each URL in turn and replaces the local copy with the first one
/// that downloads and verifies. Blocking: run it on a blocking thread.
pub fn update_source(spec: &FetchSpec, store_dir: &Path, now_unix: u64) -> UpdateOutcome {
    let copy = local_copy_path(store_dir, &spec.name);
    let failed = |reason| UpdateOutcome::Failed {
        reason,
        kept_last_good: copy.is_file(),
    };
    let held = check_list_name(&spec.name)
        .and_then(|()| {
            std::fs::create_dir_all(store_dir)
                .map_err(|e| format!("cannot create {}: {e}", store_dir.display()))
        })
        .and_then(|()| lock(store_dir, &spec.name));
    // None of these reaches the state: a bad name has no safe state file, a
    // store that can't be created can't hold one, and an update already
    // running records its own result.
    let _lock = match held {
        Ok(Some(lock)) => lock,
        Ok(None) => return failed(format!("an update of '{}' is already running", spec.name)),
        Err(reason) => return failed(reason),
    };
    let has_copy = copy.is_file();
    let mut state = load_state(store_dir, &spec.name);
    state.last_attempt = Some(now_unix);
    let outcome = match try_urls(spec, &copy, has_copy, &state) {
        Ok(got) => {
            state.last_success = Some(now_unix);
            state.last_error = None;
            state.consecutive_failures = 0;
            match got {
                Got::NotModified => UpdateOutcome::NotModified,
                Got::Replaced(new) => new.record(&mut state),
            }
        }
        Err(reason) => {
            state.last_error = Some(reason.clone());
            state.consecutive_failures = state.consecutive_failures.saturating_add(1);
            failed(reason)
        }
    };
    match save_state(store_dir, &spec.name, &state) {
        Ok(()) => outcome,
        // A failure even if the copy was replaced: a state that doesn't
        // describe the copy sends wrong validators and shrink baselines.
        Err(e) => match outcome {
            UpdateOutcome::Failed { reason, .. } => failed(format!("{reason}; also {e}")),
            _ => failed(e),
        },
    }
}

enum Got {
    NotModified,
    Replaced(NewCopy),
}

struct NewCopy {
    url: String,
    tally: Tally,
    bytes: u64,
    etag: Option<String>,
    last_modified: Option<String>,
}

impl NewCopy {
    fn record(self, state: &mut SourceState) -> UpdateOutcome {
        state.etag = self.etag;
        state.last_modified = self.last_modified;
        state.entries = self.tally.entries;
        state.bad_lines = self.tally.bad;
        state.bytes = self.bytes;
        state.url = Some(self.url.clone());
        UpdateOutcome::Updated {
            entries: self.tally.entries,
            url: self.url,
        }
    }
}

fn try_urls(
    spec: &FetchSpec,
    copy: &Path,
    has_copy: bool,
    state: &SourceState,
) -> Result<Got, String> {
    if spec.urls.is_empty() {
        return Err("no URL configured".into());
    }
    let credential = match &spec.credential_file {
        Some(path) => Some(Credential::read(path)?),
        None => None,
    };
    let previous_entries = has_copy.then(|| match state.entries {
        0 => count_entries(copy, spec.format),
        n => n,
    });
    let mut failures = Vec::new();
    for url in &spec.urls {
        // Validators belong to the URL that produced them; a mirror's 304
        // would vouch for content it never served.
        let validators = (has_copy && state.url.as_deref() == Some(url)).then_some(Validators {
            etag: state.etag.as_deref(),
            last_modified: state.last_modified.as_deref(),
        });
        let req = Request {
            url,
            archive: &spec.archive,
            credential: credential.as_ref(),
            validators,
            max_bytes: spec.max_bytes,
            timeout: spec.timeout,
        };
        match try_url(spec, &req, copy, previous_entries) {
            Ok(got) => return Ok(got),
            Err(e) => failures.push(format!("{}: {e}", fetch::display_url(url))),
        }
    }
    Err(failures.join("; "))
}

fn try_url(
    spec: &FetchSpec,
    req: &Request<'_>,
    copy: &Path,
    previous_entries: Option<u64>,
) -> Result<Got, String> {
    let part = partial_path(copy);
    let fetched = fetch::fetch(req, |body| write_and_count(body, &part, spec.format));
    let result = fetched.and_then(|fetched| match fetched {
        Fetched::NotModified => Ok(Got::NotModified),
        Fetched::Body {
            consumed: (file, tally, bytes),
            etag,
            last_modified,
        } => {
            verify(spec, &tally, previous_entries)?;
            commit(file, &part, copy)?;
            Ok(Got::Replaced(NewCopy {
                url: req.url.to_owned(),
                tally,
                bytes,
                etag,
                last_modified,
            }))
        }
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    result
}

/// Counts of what the parser made of a copy.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    entries: u64,
    bad: u64,
}

impl Tally {
    fn add(&mut self, result: &LineResult) {
        match result {
            r if is_entry(r) => self.entries += 1,
            LineResult::Bad(_) => self.bad += 1,
            // Blank lines, comments, and anything else that is not an entry.
            _ => {}
        }
    }
}

fn is_entry(result: &LineResult) -> bool {
    matches!(result, LineResult::Entry { .. })
}

/// Streams the body to the partial file while parsing it, so a large list is
/// never held in memory.
fn write_and_count(
    body: &mut dyn BufRead,
    part: &Path,
    format: ListFormat,
) -> Result<(File, Tally, u64), String> {
    let write_err = |e: io::Error| format!("cannot write {}: {e}", part.display());
    let mut out = BufWriter::with_capacity(1 << 16, File::create(part).map_err(write_err)?);
    let (tally, bytes) = scan(body, format, |line| out.write_all(line).map_err(write_err))?;
    let file = out.into_inner().map_err(|e| write_err(e.into_error()))?;
    Ok((file, tally, bytes))
}

/// Parses every line, handing each on to `each` as it was read.
fn scan(
    input: &mut dyn BufRead,
    format: ListFormat,
    mut each: impl FnMut(&[u8]) -> Result<(), String>,
) -> Result<(Tally, u64), String> {
    let (mut tally, mut bytes) = (Tally::default(), 0u64);
    let mut line = Vec::with_capacity(256);
    // One parser for the whole file: RPZ carries $ORIGIN between lines.
    let mut parser = LineParser::new(format);
    loop {
        line.clear();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => return Ok((tally, bytes)),
            Ok(n) => bytes += n as u64,
            Err(e) => return Err(fetch::describe(&e)),
        }
        each(&line)?;
        // Invalid UTF-8 becomes U+FFFD, which no domain contains, so the
        // line counts as bad rather than stopping the read.
        parser.parse_line(&String::from_utf8_lossy(&line), |r| tally.add(&r));
    }
}

/// Entries in an existing copy whose state was lost, so the shrink check
/// still has a baseline. An unreadable copy has none.
fn count_entries(copy: &Path, format: ListFormat) -> u64 {
    File::open(copy)
        .ok()
        .and_then(|f| scan(&mut BufReader::new(f), format, |_| Ok(())).ok())
        .map_or(0, |(tally, _)| tally.entries)
}

fn verify(spec: &FetchSpec, tally: &Tally, previous_entries: Option<u64>) -> Result<(), String> {
    if tally.entries == 0 {
        return Err(format!("rejected: no entries ({} bad lines)", tally.bad));
    }
    let ratio = tally.entries as f64 / (tally.entries + tally.bad) as f64;
    if ratio < spec.min_parse_ratio {
        return Err(format!(
            "rejected: only {:.0}% of lines parsed ({} entries, {} bad; min_parse_ratio {})",
            ratio * 100.0,
            tally.entries,
            tally.bad,
            spec.min_parse_ratio
        ));
    }
    if let Some(previous) = previous_entries {
        let floor = (1.0 - spec.max_shrink) * previous as f64;
        if (tally.entries as f64) < floor {
            return Err(format!(
                "rejected: {} entries, down from {previous} (max_shrink {})",
                tally.entries, spec.max_shrink
            ));
        }
    }
    Ok(())
}

/// Makes the partial file durable and renames it over `dest`, so a reader
/// (or a power cut) sees the old copy or the new one, whole.
fn commit(file: File, part: &Path, dest: &Path) -> Result<(), String> {
    let err = |e: io::Error| format!("cannot replace {}: {e}", dest.display());
    let replaced = file.sync_all().and_then(|()| {
        drop(file);
        std::fs::rename(part, dest)
    });
    if let Err(e) = replaced {
        let _ = std::fs::remove_file(part);
        return Err(err(e));
    }
    // Makes the rename itself durable. Some filesystems refuse to fsync a
    // directory; the data is already synced, so that isn't worth failing for.
    if let Some(dir) = dest.parent().filter(|p| !p.as_os_str().is_empty())
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

pub fn save_state(store_dir: &Path, name: &str, state: &SourceState) -> Result<(), String> {
    let path = state_path(store_dir, name);
    let part = partial_path(&path);
    let err = |e: io::Error| format!("cannot save {}: {e}", path.display());
    let json = serde_json::to_vec_pretty(state).map_err(|e| err(e.into()))?;
    let write = || -> io::Result<File> {
        let mut file = File::create(&part)?;
        file.write_all(&json)?;
        Ok(file)
    };
    match write() {
        Ok(file) => commit(file, &part, &path),
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            Err(err(e))
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_hostile;
