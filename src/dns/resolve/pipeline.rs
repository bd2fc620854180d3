//! The request pipeline: for one question from one client, every stage in
//! order — identify the client, special names, the policy decision, staff
//! unlocks, safe search, minimal ANY, the upstream, the CNAME re-check, and
//! the rebinding guard — in
//! [`resolve`], which gives the answer and the [`Verdict`] behind it. The
//! stages before the upstream are [`decide`], which Check and the CLI run
//! alone.

use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_resolver::proto::rr::{Name, RData, RecordType};

use crate::clock::Clock;
use crate::dns::protocol::{EDE_BLOCKED, EDE_FILTERED};
use crate::name::ReversedName;
use crate::policy::clients::ProfileId;
use crate::policy::decision::{Decision, Hit, HitSource};
use crate::policy::overrides::{Asker, OverrideSet};
use crate::policy::special::{SpecialAnswer, special_answer};
use hickory_resolver::proto::op::ResponseCode;

use super::answer::{Answer, ExtendedError, UpstreamAnswer};
use super::recorder::Recorder;
use super::settings::{Client, Settings};
use super::share::Requester;
use super::upstream::Busy;
use super::verdict::Verdict;

pub struct Pipeline {
    settings: ArcSwap<Settings>,
    /// Staff overrides in force; replaced whole when one is granted or ends.
    overrides: ArcSwap<OverrideSet>,
    recorder: Recorder,
    /// "Now" for staff unlocks' expiry.
    clock: Clock,
}

impl Pipeline {
    pub fn new(mut settings: Settings, recorder: Recorder, clock: Clock) -> Pipeline {
        recorder.attach(&mut settings);
        Pipeline {
            settings: ArcSwap::from_pointee(settings),
            overrides: ArcSwap::from_pointee(OverrideSet::default()),
            recorder,
            clock,
        }
    }

    /// The clock staff unlocks are judged by.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Where the pipeline's lookups are recorded.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// The settings now in force.
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.load_full()
    }

    /// The staff overrides in force.
    pub fn overrides(&self) -> Arc<OverrideSet> {
        self.overrides.load_full()
    }

    /// Puts a new set of staff overrides in force.
    pub fn set_overrides(&self, overrides: OverrideSet) {
        self.overrides.store(Arc::new(overrides));
    }

    /// Puts new settings in force; queries in flight finish on the old ones.
    pub fn swap(&self, mut settings: Settings) {
        self.recorder.attach(&mut settings);
        self.settings.store(Arc::new(settings));
    }

    /// The answer to one question from one client: who is asking, what they
    /// get, and the record of it.
    pub async fn answer(&self, name: &Name, record_type: RecordType, client: Client) -> Answer {
        self.answer_checking(name, record_type, client, false).await
    }

    /// As [`Pipeline::answer`], for a query whose CD (checking disabled)
    /// bit is `checking_disabled`: such a client validates for itself and
    /// is given data that failed validation here (RFC 4035 3.2.2).
    pub async fn answer_checking(
        &self,
        name: &Name,
        record_type: RecordType,
        client: Client,
        checking_disabled: bool,
    ) -> Answer {
        #[cfg(any(test, feature = "testkit"))]
        if let Some(first) = name.iter().next() {
            crate::testkit::faults::panic_if_asked(first);
        }
        let settings = self.settings.load_full();
        let overrides = self.overrides.load();
        let Some(reversed) = ReversedName::from_labels(name.iter()) else {
            // Longer than a DNS name may be: nothing upstream could answer it.
            self.recorder.record_unreadable(&settings, client);
            return Answer::nxdomain(None);
        };
        let question = Question {
            client,
            name,
            record_type,
            clock: &self.clock,
            checking_disabled,
        };
        let (verdict, answer) = resolve(&settings, &overrides, reversed, question).await;
        self.recorder
            .record(&settings, &verdict, name, record_type, client, &answer);
        answer
    }
}

/// One question as it was asked.
#[derive(Clone, Copy)]
pub struct Question<'a> {
    pub client: Client,
    pub name: &'a Name,
    pub record_type: RecordType,
    /// "Now" for staff unlocks' expiry.
    pub clock: &'a Clock,
    /// The query's CD bit: the client checks DNSSEC itself.
    pub checking_disabled: bool,
}

/// The pipeline's stages for one question, in order: [`decide`] (special
/// names, the policy decision, staff unlocks, safe search), then the
/// upstream (within the client's share of lookups in flight), the CNAME
/// re-check of what it said, and the rebinding guard.
pub async fn resolve<'s>(
    settings: &'s Settings,
    overrides: &OverrideSet,
    reversed: ReversedName,
    question: Question<'_>,
) -> (Verdict<'s>, Answer) {
    let Question {
        client,
        name,
        record_type,
        clock,
        checking_disabled,
    } = question;
    // Filtering applies to what a CD client gets just as to the rest.
    let unvalidated_if_asked = |answer: Arc<UpstreamAnswer>| {
        if checking_disabled {
            answer.for_checking_disabled()
        } else {
            answer
        }
    };
    let profile = settings.policy.profile_for(client.address, client.listener);
    let mut verdict = decide(settings, overrides, Some(client), profile, reversed, clock);

    if let Some(special) = verdict.special {
        let extended_error = |text: &str| {
            Some(ExtendedError {
                code: EDE_FILTERED,
                text: format!("Lollipop: {text}"),
            })
        };
        let answer = match special {
            SpecialAnswer::NxDomain(text) => Answer::nxdomain(extended_error(text)),
            SpecialAnswer::NoData(text) => Answer::nodata(extended_error(text)),
        };
        return (verdict, answer);
    }
    if !verdict.asks_upstream() {
        let answer = blocked(settings, &verdict, name, record_type);
        return (verdict, answer);
    }
    // After the block: a blocked name asked ANY still gets the block
    // answer; an allowed one gets the small RFC 8482 answer and costs no
    // upstream fan-out.
    if record_type == RecordType::ANY && settings.limits.minimal_any {
        return (verdict, Answer::minimal_any(name));
    }
    let requester = Requester {
        address: client.address,
        exempt: &settings.upstream_share_exempt,
    };
    if let Some(rewrite) = verdict.rewrite
        && let Ok(target) = Name::from_ascii(rewrite.target)
    {
        let answer = match settings
            .upstream
            .resolve(&target, record_type, requester)
            .await
        {
            Ok(resolved) => Answer::rewritten(
                name,
                &target,
                settings.blocking.ttl_secs,
                unvalidated_if_asked(resolved),
            ),
            Err(busy) => refused(busy),
        };
        return (verdict, answer);
    }

    let upstream = match settings
        .upstream
        .resolve(name, record_type, requester)
        .await
    {
        Ok(upstream) => unvalidated_if_asked(upstream),
        Err(busy) => return (verdict, refused(busy)),
    };

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
        let decision = settings.policy.decide(profile, &alias);
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
            let answer = blocked(settings, &verdict, name, record_type);
            return (verdict, answer);
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
        return (verdict, answer);
    }
    (verdict, Answer::from_upstream(upstream))
}

/// SERVFAIL at once for a lookup that could not be asked upstream.
fn refused(busy: Busy) -> Answer {
    let mut answer = Answer::code(ResponseCode::ServFail);
    answer.extended_error = Some(busy.extended_error());
    answer
}

/// The stages before the upstream, in order: special names, the policy
/// decision, staff unlocks for `client` (none without one), and safe
/// search. What Check and the CLI show is exactly this.
pub fn decide<'s>(
    settings: &'s Settings,
    overrides: &OverrideSet,
    client: Option<Client>,
    profile: ProfileId,
    name: ReversedName,
    clock: &Clock,
) -> Verdict<'s> {
    let policy = &settings.policy;
    let mut verdict = Verdict {
        profile,
        special: special_answer(&name, &settings.circumvention),
        decision: Decision::Allowed { by: None },
        unlock: None,
        rewrite: None,
        alias: None,
        name,
    };
    if verdict.special.is_some() {
        return verdict;
    }
    verdict.decision = policy.decide(profile, &verdict.name);
    if verdict.decision.is_blocked() {
        verdict.unlock = client.and_then(|client| {
            unlock_for(
                settings,
                overrides,
                client,
                &verdict.name,
                &verdict.decision,
                clock,
            )
        });
        if verdict.unlock.is_none() {
            return verdict;
        }
    }
    let mut domain = [0u8; 256];
    verdict.rewrite = verdict.name.domain_in(&mut domain).and_then(|domain| {
        policy
            .safe_search
            .rewrite(domain, policy.profile(profile).safe_search)
    });
    verdict
}

/// The staff unlock that releases `name`, blocked by `decision`, for
/// `client`, if one does. Locked categories are never released.
fn unlock_for(
    settings: &Settings,
    overrides: &OverrideSet,
    client: Client,
    name: &ReversedName,
    decision: &Decision,
    clock: &Clock,
) -> Option<i64> {
    // Until the clock is trusted nothing is unlocked: a Pi that booted in
    // 1970 would otherwise take every unlock ever granted as still live.
    if overrides.is_empty() || !settings.policy.time.trusted {
        return None;
    }
    let category = match decision {
        Decision::Blocked {
            by:
                Hit {
                    source: HitSource::List { category, .. },
                    ..
                },
        } => settings
            .policy
            .lists
            .categories()
            .get(*category as usize)
            .map(String::as_str),
        Decision::Blocked {
            by:
                Hit {
                    source: HitSource::NameRule { category, .. },
                    ..
                },
        } => Some(settings.policy.name_rules.category_name(*category)),
        Decision::Blocked { .. } | Decision::NotInWalledGarden { .. } => None,
        Decision::Locked { .. } | Decision::Allowed { .. } => return None,
    };
    let asker = Asker {
        address: client.address,
        listener: client
            .listener
            .and_then(|i| settings.listeners.get(i))
            .map(String::as_str),
    };
    overrides.releases(clock.now_unix_ms(), asker, name, category)
}

/// The blocked answer for `name`, explaining the verdict (on the name
/// itself, or on the alias that gave it away).
fn blocked(settings: &Settings, verdict: &Verdict, name: &Name, record_type: RecordType) -> Answer {
    let explanation = verdict.explain(settings);
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
