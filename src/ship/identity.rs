//! The box's own id for the trust's central log: generated once, kept in
//! the data directory (`box-id`), never changed, so a box renamed or
//! re-addressed is still the same box and its events keep their keys.

use std::path::Path;

use anyhow::{Context, Result};

const FILE: &str = "box-id";

/// The id kept in `data_dir`, creating it on first use: 32 hex digits.
pub fn box_id(data_dir: &Path) -> Result<String> {
    let path = data_dir.join(FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim().to_string();
            if is_valid(&id) {
                return Ok(id);
            }
            anyhow::bail!(
                "{} does not hold a box id (32 hex digits); restore it from a backup, or delete it to give this box a new identity in the trust's central log",
                path.display()
            );
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => {
            return Err(error).with_context(|| format!("cannot read {}", path.display()));
        }
    }
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no randomness for the box id: {e}"))?;
    let id = hex::encode(bytes);
    // Written aside and renamed, so a crash never leaves half an id.
    let temporary = data_dir.join(format!("{FILE}.new"));
    std::fs::write(&temporary, format!("{id}\n"))
        .and_then(|()| std::fs::File::open(&temporary)?.sync_all())
        .and_then(|()| std::fs::rename(&temporary, &path))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(id)
}

fn is_valid(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = box_id(dir.path()).unwrap();
        assert!(is_valid(&first), "{first}");
        assert_eq!(box_id(dir.path()).unwrap(), first);
        std::fs::write(dir.path().join(FILE), "not an id").unwrap();
        let error = box_id(dir.path()).unwrap_err().to_string();
        assert!(error.contains("does not hold a box id"), "{error}");
    }
}
