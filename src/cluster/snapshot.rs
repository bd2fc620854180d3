//! The primary's policy state as one document, and its signed envelope:
//! what crosses the wire and what the secondary keeps on disk. Opening an
//! envelope checks its signature with the pair key before reading a byte
//! of the document, and refuses a version older than the one held (no
//! rollback to an old state by replaying an old snapshot).

use serde::{Deserialize, Serialize};

use super::PairKey;
use crate::admin::follow::PolicyRows;

/// The envelope's format; another is refused with a word about upgrading.
pub const FORMAT: u32 = 1;

/// The policy state of the primary at one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyState {
    /// Grows with every change (Unix milliseconds of the change, or one
    /// more than the last version if the clock is behind it).
    pub version: i64,
    pub made_at_unix_ms: i64,
    /// The primary's config settings a secondary follows, as TOML.
    pub config: String,
    /// The primary's `[[listen]]` addresses in order (rooms' unlocks are
    /// by listener).
    pub listen: Vec<String>,
    pub rows: PolicyRows,
}

impl PolicyState {
    /// The records as this box puts them in force: a room's unlock (by
    /// the primary's listener address) moves to this box's listener at the
    /// same place in `[[listen]]`. An unlock for a room this box has no
    /// listener for is left out (never widened to another room); how many
    /// were is the second value.
    pub fn rows_for(&self, own_listen: &[String]) -> (PolicyRows, usize) {
        let mut rows = self.rows.clone();
        let mut unmapped = 0;
        rows.overrides.retain_mut(|unlock| {
            if unlock.scope_kind != "listener" {
                return true;
            }
            let place = self
                .listen
                .iter()
                .position(|address| *address == unlock.scope);
            match place.and_then(|i| own_listen.get(i)) {
                Some(own) => {
                    unlock.scope = own.clone();
                    true
                }
                None => {
                    unmapped += 1;
                    false
                }
            }
        });
        (rows, unmapped)
    }
}

/// A document and its HMAC-SHA256 under the pair key. The document is
/// kept as the exact text that was signed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    pub format: u32,
    pub document: String,
    pub signature: String,
}

/// Why a snapshot was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the snapshot is damaged or not a snapshot ({0})")]
    Damaged(String),
    #[error(
        "the snapshot is in format {0}, this Lollipop reads {FORMAT}: run the same version on both boxes"
    )]
    Format(u32),
    #[error(
        "the snapshot's signature does not match the pair key: check both boxes' pair_key_file hold the same key"
    )]
    BadSignature,
    #[error(
        "the snapshot is older (version {offered}) than the state in force (version {held}), so it was refused (if the primary was rebuilt with its clock behind, delete cluster-snapshot.json on this box to follow it again)"
    )]
    Older { held: i64, offered: i64 },
}

impl Envelope {
    /// Signs `state` with `key`.
    pub fn seal(state: &PolicyState, key: &PairKey) -> Result<Envelope, String> {
        let document = serde_json::to_string(state)
            .map_err(|error| format!("the snapshot cannot be written: {error}"))?;
        Ok(Envelope {
            format: FORMAT,
            signature: key.sign(document.as_bytes()),
            document,
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        // Strings and a number only: serialising cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The state in `bytes`, if they are an envelope signed with `key`
    /// holding a version no older than `held`.
    pub fn open(bytes: &[u8], key: &PairKey, held: Option<i64>) -> Result<PolicyState, Refused> {
        let envelope: Envelope =
            serde_json::from_slice(bytes).map_err(|error| Refused::Damaged(error.to_string()))?;
        if envelope.format != FORMAT {
            return Err(Refused::Format(envelope.format));
        }
        if !key.verifies(envelope.document.as_bytes(), &envelope.signature) {
            return Err(Refused::BadSignature);
        }
        let state: PolicyState = serde_json::from_str(&envelope.document)
            .map_err(|error| Refused::Damaged(error.to_string()))?;
        if let Some(held) = held
            && state.version < held
        {
            return Err(Refused::Older {
                held,
                offered: state.version,
            });
        }
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::follow::DomainRuleRecord;

    fn state(version: i64) -> PolicyState {
        PolicyState {
            version,
            made_at_unix_ms: version,
            config: "[server]\ndefault_profile = \"ks2\"\n".into(),
            listen: vec!["10.0.10.1:53".into()],
            rows: PolicyRows {
                domain_rules: vec![DomainRuleRecord {
                    id: 1,
                    profile: "ks2".into(),
                    domain: "bbc.co.uk".into(),
                    action: "allow".into(),
                    reason: "news".into(),
                    added_by: "head".into(),
                    added_at: 1,
                    removed_by: None,
                    removed_at: None,
                }],
                ..PolicyRows::default()
            },
        }
    }

    #[test]
    fn a_sealed_state_opens_with_its_key_and_no_other() {
        let key = PairKey::from_bytes(&[1; 32]);
        let bytes = Envelope::seal(&state(5), &key).unwrap().to_bytes();
        assert_eq!(Envelope::open(&bytes, &key, None).unwrap(), state(5));
        assert_eq!(Envelope::open(&bytes, &key, Some(5)).unwrap(), state(5));
        let wrong = PairKey::from_bytes(&[2; 32]);
        assert_eq!(
            Envelope::open(&bytes, &wrong, None),
            Err(Refused::BadSignature)
        );
    }

    #[test]
    fn a_room_unlock_moves_to_the_listener_at_the_same_place() {
        use crate::admin::follow::OverrideRecord;
        let unlock = |scope_kind: &str, scope: &str| OverrideRecord {
            id: 1,
            target_kind: "domain".into(),
            target: "youtube.com".into(),
            scope_kind: scope_kind.into(),
            scope: scope.into(),
            reason: "lesson".into(),
            granted_by: "ms.khan".into(),
            starts_at: 0,
            expires_at: 10,
            ended_at: None,
            ended_by: None,
        };
        let mut primary = state(1);
        primary.listen = vec!["10.0.10.1:53".into(), "10.0.20.1:53".into()];
        primary.rows.overrides = vec![
            unlock("listener", "10.0.20.1:53"),
            unlock("device", "10.0.20.31"),
            unlock("listener", "10.0.30.1:53"),
        ];
        let own = vec!["10.0.10.2:53".to_string(), "10.0.20.2:53".to_string()];
        let (rows, unmapped) = primary.rows_for(&own);
        let scopes: Vec<&str> = rows.overrides.iter().map(|o| o.scope.as_str()).collect();
        assert_eq!(scopes, ["10.0.20.2:53", "10.0.20.31"]);
        assert_eq!(unmapped, 1);
        // Fewer listeners here: the second room's unlock is not in force.
        let (rows, unmapped) = primary.rows_for(&own[..1]);
        assert_eq!(rows.overrides.len(), 1);
        assert_eq!(unmapped, 2);
    }

    #[test]
    fn a_tampered_or_older_snapshot_is_refused() {
        let key = PairKey::from_bytes(&[1; 32]);
        let sealed = Envelope::seal(&state(5), &key).unwrap();
        // An allow entry turned into something else, signature kept.
        let mut tampered = sealed.clone();
        tampered.document = tampered.document.replace("bbc.co.uk", "bet365.com");
        assert_eq!(
            Envelope::open(&tampered.to_bytes(), &key, None),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            Envelope::open(&sealed.to_bytes(), &key, Some(6)),
            Err(Refused::Older {
                held: 6,
                offered: 5
            })
        );
        assert!(matches!(
            Envelope::open(b"<html>", &key, None),
            Err(Refused::Damaged(_))
        ));
        let mut future = sealed;
        future.format = 2;
        assert_eq!(
            Envelope::open(&future.to_bytes(), &key, None),
            Err(Refused::Format(2))
        );
    }
}
