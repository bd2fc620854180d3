//! The primary's side: its policy state as a snapshot with a version that
//! only grows. The version is kept with a hash of the state it names
//! (`cluster-version.json` in the data directory); a state that differs
//! from the last one gets a new version: the time of the change in Unix
//! milliseconds, or one more than the last if the clock is behind it, so
//! it keeps growing across restarts and even a wiped data directory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::PairKey;
use super::snapshot::{Envelope, PolicyState};
use crate::admin::AdminStore;
use crate::config::Config;
use crate::config::cluster::policy_part;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Held {
    version: i64,
    hash: String,
}

/// The version of the primary's state, and the hash of the state it names.
pub struct Versions {
    path: PathBuf,
    /// Also keeps two pulls from giving one change two versions.
    held: Mutex<Option<Held>>,
}

impl Versions {
    pub fn new(path: PathBuf) -> Versions {
        let held = read(&path);
        Versions {
            path,
            held: Mutex::new(held),
        }
    }

    /// The version for a state hashing to `hash`: the one held if the
    /// state is the same, else a new, larger one (kept on disk first).
    pub fn version_for(&self, hash: &str, now_ms: i64) -> Result<i64, String> {
        let mut held = self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(current) = held.as_ref()
            && current.hash == hash
        {
            return Ok(current.version);
        }
        let last = held.as_ref().map_or(0, |current| current.version);
        let next = Held {
            version: now_ms.max(last + 1),
            hash: hash.to_string(),
        };
        write(&self.path, &next)?;
        let version = next.version;
        *held = Some(next);
        Ok(version)
    }
}

fn read(path: &Path) -> Option<Held> {
    let text = std::fs::read(path).ok()?;
    match serde_json::from_slice(&text) {
        Ok(held) => Some(held),
        Err(error) => {
            // The next version is then the time of the next change, still
            // newer than any the secondary holds unless the clock went back.
            tracing::warn!(
                "{} is damaged ({error}); the pair's next version starts from the clock",
                path.display()
            );
            None
        }
    }
}

fn write(path: &Path, held: &Held) -> Result<(), String> {
    let fail = |error: std::io::Error| {
        format!(
            "cannot keep the pair's version in {}: {error}",
            path.display()
        )
    };
    let text = serde_json::to_vec(held).map_err(|error| error.to_string())?;
    let temp = path.with_extension("json.tmp");
    {
        let mut file = std::fs::File::create(&temp).map_err(fail)?;
        file.write_all(&text).map_err(fail)?;
        file.sync_all().map_err(fail)?;
    }
    std::fs::rename(&temp, path).map_err(fail)
}

/// The primary's state now (`config` in force, `admin`'s records), signed,
/// with its version. Reads the store: call off the async runtime.
pub fn snapshot(
    config: &Config,
    admin: &AdminStore,
    key: &PairKey,
    versions: &Versions,
    now_ms: i64,
) -> Result<(i64, Envelope), String> {
    let policy = policy_part(&config.origin.text)?;
    let policy_text = toml::to_string(&policy)
        .map_err(|error| format!("the config cannot be written out: {error}"))?;
    let rows = admin
        .policy_rows()
        .map_err(|error| format!("the page's records cannot be read: {error}"))?;
    let listen = config.listen_addresses();
    let mut state = PolicyState {
        version: 0,
        made_at_unix_ms: 0,
        config: policy_text,
        listen,
        rows,
    };
    // The hash covers what a secondary follows, not the version or time.
    let hash = hex::encode(Sha256::digest(
        serde_json::to_vec(&state).map_err(|error| error.to_string())?,
    ));
    state.version = versions.version_for(&hash, now_ms)?;
    state.made_at_unix_ms = state.version.min(now_ms);
    Ok((state.version, Envelope::seal(&state, key)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_grows_with_each_change_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster-version.json");
        let versions = Versions::new(path.clone());
        assert_eq!(versions.version_for("a", 1000).unwrap(), 1000);
        assert_eq!(versions.version_for("a", 2000).unwrap(), 1000);
        // The clock behind the last version: still one more.
        assert_eq!(versions.version_for("b", 500).unwrap(), 1001);
        let restarted = Versions::new(path.clone());
        assert_eq!(restarted.version_for("b", 3000).unwrap(), 1001);
        assert_eq!(restarted.version_for("c", 3000).unwrap(), 3000);
        // A damaged file starts from the clock.
        std::fs::write(&path, b"{").unwrap();
        assert_eq!(Versions::new(path).version_for("c", 4000).unwrap(), 4000);
    }
}
