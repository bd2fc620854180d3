//! What an unlock may release and who may release it: a blocked name's
//! standing (nothing to unlock, releasable, in a category that alerts the
//! safeguarding lead, locked), the profiles an unlock's scope reaches, and
//! the rules a release of an alerting category must pass: a safeguarding
//! role, never a whole room or network of children, a reason the governors
//! can read.

use crate::config::Audience;
use crate::name::ReversedName;

use super::Policy;
use super::clients::ProfileId;
use super::decision::Decision;
use super::rules::OverrideScope;

/// A reason for releasing an alerting category is read by the governors and
/// the DSL: "abc" or "lesson" says nothing they can check.
pub const ALERTING_REASON_MIN_CHARS: usize = 20;
pub const ALERTING_REASON_MIN_WORDS: usize = 3;

/// Whether a name is blocked anywhere, and what an unlock of it would touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// No profile blocks it: there is nothing to unlock.
    NotBlocked,
    /// Blocked somewhere, and any member of staff with an unlock right may
    /// release it.
    Releasable,
    /// Blocked, and listed in these categories that alert the safeguarding
    /// lead: only a safeguarding role may release it, and not for children
    /// wholesale.
    Alerting(Vec<String>),
    /// In this locked category: nobody may unlock it.
    Locked(String),
}

/// Why a release of an alerting category was refused, in the words shown to
/// the person asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NeedsSafeguardingRole,
    /// `profile` as the person reads it: the page puts in its display name.
    ReachesChildren {
        profile: String,
    },
    ReasonTooShort,
}

impl Refusal {
    pub fn message(&self, site: &str, categories: &[String]) -> String {
        let categories = categories.join(", ");
        match self {
            Refusal::NeedsSafeguardingRole => format!(
                "{site} is listed as {categories}, which alerts the safeguarding lead. Only the designated safeguarding lead or the admin can unlock it: ask them."
            ),
            Refusal::ReachesChildren { profile } => format!(
                "{site} is listed as {categories}: it can be unlocked for one device or a staff room only, never for a room or network that includes children ({profile})."
            ),
            Refusal::ReasonTooShort => format!(
                "Unlocking {categories} needs a reason the governors can follow: at least {ALERTING_REASON_MIN_CHARS} characters and {ALERTING_REASON_MIN_WORDS} words, e.g. \"Year 6 RSE lesson on the NHS puberty pages\"."
            ),
        }
    }
}

impl Policy {
    /// How `name` stands across every profile.
    pub fn standing(&self, name: &ReversedName) -> Standing {
        let mut blocked = false;
        for profile in 0..self.profiles.len() {
            let decision = self.decide(profile, name);
            match decision {
                Decision::Locked { .. } => {
                    let category = self.explain(profile, name, &decision).category;
                    return Standing::Locked(
                        category.map_or_else(|| "locked".into(), |category| category.to_string()),
                    );
                }
                Decision::Blocked { .. } | Decision::NotInWalledGarden { .. } => blocked = true,
                Decision::Allowed { .. } => {}
            }
        }
        if !blocked {
            return Standing::NotBlocked;
        }
        let alerting = self.alerting_categories_of(name);
        if alerting.is_empty() {
            Standing::Releasable
        } else {
            Standing::Alerting(alerting)
        }
    }

    /// The alerting categories any list or name rule puts `name` (or a
    /// parent of it) in, whichever category decided its block: an unlock
    /// releases the name whole, so every category it is in counts.
    pub fn alerting_categories_of(&self, name: &ReversedName) -> Vec<String> {
        let mut bits = 0u64;
        self.lists.walk(name, |found| {
            bits |= self.lists.combination_categories(found.combination) & self.alerting_mask;
        });
        let mut names = Vec::new();
        while bits != 0 {
            let bit = bits.trailing_zeros() as usize;
            if let Some(category) = self.lists.categories().get(bit) {
                names.push(category.clone());
            }
            bits &= bits - 1;
        }
        // A name rule's alerting category counts too: its word is in the name.
        if let Some(hit) = self.name_rules.find(name, self.rule_alerting_mask) {
            let category = self.name_rules.category_name(hit.category);
            if !names.iter().any(|n| n == category) {
                names.push(category.to_string());
            }
        }
        names
    }

    /// Every profile a room or network `scope` may reach (none for one
    /// device).
    /// `listener_index` finds a `[[listen]]` address's place in the config.
    /// Over-approximates: a scope is safe only if every profile here is.
    pub fn profiles_reached(
        &self,
        scope: &OverrideScope,
        listener_index: impl Fn(&str) -> Option<usize>,
    ) -> Vec<ProfileId> {
        let mut reached: Vec<ProfileId> = match scope {
            // One device is one child or one adult: the DSL decides about
            // it, whatever its profile.
            OverrideScope::Device(_) => Vec::new(),
            OverrideScope::Network(net) => {
                let (mut profiles, covered) = self.clients.profiles_within(net);
                if !covered {
                    profiles.extend(self.listener_profiles.iter().flatten().copied());
                    profiles.push(self.clients.default_profile());
                }
                profiles
            }
            OverrideScope::Listener(address) => {
                // Source-network rules come first, so any of them may apply
                // to a device asking on this listener.
                let mut profiles: Vec<ProfileId> = self.clients.rule_profiles().collect();
                let own = listener_index(address)
                    .and_then(|index| self.listener_profiles.get(index).copied().flatten());
                profiles.push(own.unwrap_or(self.clients.default_profile()));
                profiles
            }
        };
        reached.sort_unstable();
        reached.dedup();
        reached
    }

    /// Whether a release of an alerting category for `scope` may go ahead.
    /// One device may be released (the DSL decides about one child); a room
    /// or the whole network only when every profile it reaches is for staff.
    pub fn check_alerting_release(
        &self,
        by_safeguarding_role: bool,
        scope: &OverrideScope,
        listener_index: impl Fn(&str) -> Option<usize>,
        reason: &str,
    ) -> Result<(), Refusal> {
        if !by_safeguarding_role {
            return Err(Refusal::NeedsSafeguardingRole);
        }
        let children = self
            .profiles_reached(scope, listener_index)
            .into_iter()
            .map(|id| self.profile(id))
            .find(|profile| profile.audience != Audience::Staff);
        if let Some(profile) = children {
            return Err(Refusal::ReachesChildren {
                profile: profile.name.clone(),
            });
        }
        let reason = reason.trim();
        let words = reason
            .split_whitespace()
            .filter(|word| word.chars().any(char::is_alphanumeric))
            .count();
        if reason.chars().count() < ALERTING_REASON_MIN_CHARS || words < ALERTING_REASON_MIN_WORDS {
            return Err(Refusal::ReasonTooShort);
        }
        Ok(())
    }
}
