//! The stages after the upstream, on its answer (fresh or from the cache)
//! to the name asked: the CNAME re-check, which blocks an allowed name
//! that points at a blocked one, and the rebinding guard, which keeps the
//! school's private addresses out of public names' answers.

use std::sync::Arc;

use hickory_resolver::proto::rr::{Name, RData, RecordType};

use crate::dns::protocol::EDE_BLOCKED;
use crate::name::ReversedName;
use crate::policy::decision::{Decision, Hit, HitSource};

use super::answer::{Answer, ExtendedError, UpstreamAnswer};
use super::settings::Settings;
use super::verdict::Verdict;

/// The answer to `name` from the `upstream`'s (fresh or cached), past the
/// CNAME re-check and then the rebinding guard; `verdict` takes note of an
/// alias that gave a blocked name away.
pub fn after_upstream(
    settings: &Settings,
    verdict: &mut Verdict,
    (name, record_type): (&Name, RecordType),
    upstream: Arc<UpstreamAnswer>,
) -> Answer {
    // CNAME cloaking: a tracker or adult site hidden behind an allowed
    // name is still blocked. The walled garden is not applied to aliases
    // (CDN names would never be on it); explicit blocks are. An unlock
    // that released the name also covers where it points, except a locked
    // category.
    for record in &upstream.answers {
        let RData::CNAME(target) = &record.data else {
            continue;
        };
        let Some(alias) = ReversedName::from_labels(target.0.iter()) else {
            continue;
        };
        let decision = settings.policy.decide(verdict.profile, &alias);
        // Name rules read the name a person asked for; an alias is a
        // machine-made CDN name, and a word in it must not block a help
        // site or an allowed one.
        let by_name_rule = matches!(
            decision,
            Decision::Blocked {
                by: Hit {
                    source: HitSource::NameRule { .. },
                    ..
                }
            }
        );
        if matches!(decision, Decision::Locked { .. })
            || (matches!(decision, Decision::Blocked { .. })
                && !by_name_rule
                && verdict.unlock.is_none())
        {
            verdict.alias = Some(Box::new((alias, decision)));
            return verdict.blocked_answer(settings, name, record_type);
        }
    }

    // DNS rebinding: a public name answered with an address inside the
    // school loses that address. Checked here, on every answer, rather
    // than before caching, so cached answers are covered and a reload that
    // changes the allowed domains applies at once.
    if let Some(kept) = settings.rebinding.filter(&verdict.name, &upstream) {
        let mut answer = Answer::from_upstream(Arc::new(kept));
        answer.extended_error = Some(ExtendedError {
            code: EDE_BLOCKED,
            text: "Lollipop: private address for a public name".into(),
        });
        return answer;
    }
    Answer::from_upstream(upstream)
}
