//! The verdict on one question: what each stage of the pipeline decided,
//! in order, with the trace of why. The answer, the block log, Check on
//! the page and in the API, and the CLI's `check` all read this one record,
//! so they cannot disagree.

use hickory_resolver::proto::rr::{Name, RecordType};

use crate::dns::protocol::{EDE_BLOCKED, EDE_FILTERED};
use crate::name::ReversedName;
use crate::policy::Explanation;
use crate::policy::clients::ProfileId;
use crate::policy::decision::Decision;
use crate::policy::safesearch::Rewrite;
use crate::policy::special::SpecialAnswer;

use super::answer::{Answer, ExtendedError};
use super::cache::Lease;
use super::settings::Settings;

/// Stages 1 to 4 decide before the upstream is asked; stage 5 (`alias`)
/// after, from the upstream's answer.
pub struct Verdict<'s> {
    /// The profile the asker gets.
    pub profile: ProfileId,
    /// The name asked, reversed for the policy.
    pub name: ReversedName,
    /// Stage 1: a name Lollipop answers itself (the DoH canary, DDR...).
    pub special: Option<SpecialAnswer>,
    /// Stage 2: the policy's decision on the name.
    pub decision: Decision,
    /// Stage 3: the staff unlock that releases the blocked name, if any.
    pub unlock: Option<i64>,
    /// Stage 4: where safe search sends the name, if it does.
    pub rewrite: Option<Rewrite<'s>>,
    /// Stage 5: an alias in the upstream's answer that is blocked (CNAME
    /// cloaking), with its decision. Boxed: rare, and it keeps the
    /// verdict that every query carries small.
    pub alias: Option<Box<(ReversedName, Decision)>>,
    /// The response cache's lease on the answer it gave at once, if it
    /// gave one: how long the stage answering repeated questions may give
    /// it again.
    pub cached: Option<Lease>,
}

impl Verdict<'_> {
    /// Whether the asker gets a blocked answer.
    pub fn is_blocked(&self) -> bool {
        self.special.is_none()
            && ((self.decision.is_blocked() && self.unlock.is_none()) || self.alias.is_some())
    }

    /// Whether the upstream is asked at all: not for special names or
    /// names blocked before it.
    pub fn asks_upstream(&self) -> bool {
        self.special.is_none() && !(self.decision.is_blocked() && self.unlock.is_none())
    }

    /// Why the name was blocked or allowed, in the policy's words: the
    /// blocked alias when one gave it away, else the name itself.
    pub fn explain(&self, settings: &Settings) -> Explanation {
        match self.alias.as_deref() {
            Some((alias, decision)) => settings.policy.explain(self.profile, alias, decision),
            None => settings
                .policy
                .explain(self.profile, &self.name, &self.decision),
        }
    }

    /// The blocked answer for `name`, explaining the verdict (on the name
    /// itself, or on the alias that gave it away).
    pub fn blocked_answer(
        &self,
        settings: &Settings,
        name: &Name,
        record_type: RecordType,
    ) -> Answer {
        let explanation = self.explain(settings);
        let code = if explanation.locked {
            EDE_BLOCKED
        } else {
            EDE_FILTERED
        };
        let extended_error = ExtendedError {
            code,
            text: explanation.ede_text(),
        };
        Answer::blocked(
            name,
            record_type,
            &settings.blocking,
            extended_error,
            explanation,
        )
    }
}
