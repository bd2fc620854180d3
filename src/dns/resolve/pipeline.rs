//! The request pipeline: for one question from one client, every stage in
//! order — a question asked again answered from its bytes (UDP only:
//! [`super::repeats`]), identify the client, special names, the policy
//! decision, staff unlocks, safe search, minimal ANY, the upstream, the
//! CNAME re-check, and the rebinding guard — in [`resolve`], which gives
//! the answer and the [`Verdict`] behind it. Its stages that need no
//! waiting, up to a live answer in the cache, are [`resolve_at_once`],
//! which the readers call first so that an answer ready at once costs no
//! future; what that answer may be given again as is kept after it is
//! written ([`Pipeline::remember`]) and, asked again, given by
//! [`Pipeline::answer_repeat`] before any other stage runs. The stages
//! before the upstream are [`decide`], which Check and the CLI run alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::{ArcSwap, Guard};
use hickory_resolver::proto::rr::{Name, RecordType};

use crate::clock::Clock;
use crate::dns::protocol::EDE_FILTERED;
use crate::name::ReversedName;
use crate::policy::clients::ProfileId;
use crate::policy::decision::{Decision, Hit, HitSource};
use crate::policy::overrides::{Asker, OverrideSet};
use crate::policy::special::{SpecialAnswer, special_answer};
use hickory_resolver::proto::op::ResponseCode;

use super::after_upstream::after_upstream;
use super::answer::{Answer, ExtendedError, UpstreamAnswer};
use super::recorder::Recorder;
use super::repeats::{self, Keep, Repeats};
use super::settings::{Client, Settings};
use super::share::Requester;
use super::upstream::Busy;
use super::verdict::Verdict;

/// What questions are answered with, replaced whole: the settings and the
/// staff overrides in force, and a generation no other pair has had, which
/// the answers given again from their bytes are keyed on, so that a reload,
/// a rule of time or an unlock granted or ended retires them at once.
pub struct InForce {
    pub settings: Arc<Settings>,
    pub overrides: Arc<OverrideSet>,
    pub generation: u64,
}

pub struct Pipeline {
    in_force: ArcSwap<InForce>,
    /// The last generation given out.
    generations: AtomicU64,
    /// Answers kept to be given again from their bytes; None when that
    /// stage is off.
    repeats: Option<Repeats>,
    recorder: Recorder,
    /// "Now" for staff unlocks' expiry.
    clock: Clock,
}

impl Pipeline {
    pub fn new(mut settings: Settings, recorder: Recorder, clock: Clock) -> Pipeline {
        recorder.attach(&mut settings);
        let repeats = Repeats::new(repeats::budget_for(settings.upstream.cache_budget()));
        Pipeline {
            in_force: ArcSwap::from_pointee(InForce {
                settings: Arc::new(settings),
                overrides: Arc::new(OverrideSet::default()),
                generation: 0,
            }),
            generations: AtomicU64::new(0),
            repeats: Some(repeats),
            recorder,
            clock,
        }
    }

    /// The same pipeline without the stage that answers a repeated
    /// question from its bytes: every question runs every stage (the
    /// tests' side to compare the stage against).
    #[cfg(test)]
    pub fn without_repeats(mut self) -> Pipeline {
        self.repeats = None;
        self
    }

    /// The answers kept to be given again, when that stage is on.
    pub fn repeats(&self) -> Option<&Repeats> {
        self.repeats.as_ref()
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
        self.in_force.load().settings.clone()
    }

    /// The staff overrides in force.
    pub fn overrides(&self) -> Arc<OverrideSet> {
        self.in_force.load().overrides.clone()
    }

    /// The settings and overrides in force, with their generation.
    pub fn in_force(&self) -> Guard<Arc<InForce>> {
        self.in_force.load()
    }

    /// Puts a new set of staff overrides in force.
    pub fn set_overrides(&self, overrides: OverrideSet) {
        let overrides = Arc::new(overrides);
        self.in_force.rcu(|old| InForce {
            settings: old.settings.clone(),
            overrides: overrides.clone(),
            generation: self.next_generation(),
        });
    }

    /// Puts new settings in force; queries in flight finish on the old ones.
    /// The answers kept to be given again follow the size of the response
    /// cache the settings bring.
    pub fn swap(&self, mut settings: Settings) {
        self.recorder.attach(&mut settings);
        if let Some(repeats) = &self.repeats {
            repeats.set_budget(repeats::budget_for(settings.upstream.cache_budget()));
        }
        let settings = Arc::new(settings);
        self.in_force.rcu(|old| InForce {
            settings: settings.clone(),
            overrides: old.overrides.clone(),
            generation: self.next_generation(),
        });
    }

    fn next_generation(&self) -> u64 {
        self.generations.fetch_add(1, Ordering::Relaxed) + 1
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
        let in_force = self.in_force.load_full();
        let Some(reversed) = self.begin(&in_force, name, client) else {
            return Answer::nxdomain(None);
        };
        let question = self.question(name, record_type, client, checking_disabled);
        let (verdict, answer) =
            resolve(&in_force.settings, &in_force.overrides, reversed, question).await;
        self.recorder.record(
            &in_force.settings,
            &verdict,
            name,
            record_type,
            client,
            &answer,
        );
        answer
    }

    /// As [`Pipeline::answer_checking`] when the answer is ready at once
    /// (special, blocked, cached), recorded the same way; None when it must
    /// wait for the upstream, with nothing recorded, counted or begun: then
    /// `answer_checking` gives it, running the stages before the upstream
    /// again (an upstream's round trip costs far more than they do).
    pub fn answer_at_once(
        &self,
        name: &Name,
        record_type: RecordType,
        client: Client,
        checking_disabled: bool,
    ) -> Option<Answer> {
        let in_force = self.in_force.load();
        let question = (name, record_type);
        self.answer_at_once_in(&in_force, question, client, checking_disabled, false)
            .map(|(answer, _)| answer)
    }

    /// As [`Pipeline::answer_at_once`], on `in_force` as the caller loaded
    /// it; when `keeping` (the question has a key to be kept under), also
    /// whether and how the answer may be given again from its bytes to the
    /// same question ([`Pipeline::remember`]).
    pub fn answer_at_once_in(
        &self,
        in_force: &InForce,
        (name, record_type): (&Name, RecordType),
        client: Client,
        checking_disabled: bool,
        keeping: bool,
    ) -> Option<(Answer, Option<Keep>)> {
        let Some(reversed) = self.begin(in_force, name, client) else {
            return Some((Answer::nxdomain(None), None));
        };
        let settings = &in_force.settings;
        let question = self.question(name, record_type, client, checking_disabled);
        match resolve_at_once(settings, &in_force.overrides, reversed, question) {
            AtOnce::Ready(verdict, answer) => {
                self.recorder
                    .record(settings, &verdict, name, record_type, client, &answer);
                // Only for a question that can be kept: what a blocked
                // answer's repeats record is built here, for nothing else.
                let keep = (keeping && self.repeats.is_some())
                    .then(|| Keep::of(&verdict, &answer, &in_force.overrides, (name, record_type)))
                    .flatten();
                Some((answer, keep))
            }
            AtOnce::MustWait(..) => None,
        }
    }

    /// One question as the client asked it, on this pipeline's clock.
    fn question<'a>(
        &'a self,
        name: &'a Name,
        record_type: RecordType,
        client: Client,
        checking_disabled: bool,
    ) -> Question<'a> {
        Question {
            client,
            name,
            record_type,
            clock: &self.clock,
            checking_disabled,
        }
    }

    /// The name asked, reversed for the policy; None for a name longer than
    /// a DNS name may be, already recorded, whose answer is NXDOMAIN
    /// (nothing upstream could answer it).
    fn begin(&self, in_force: &InForce, name: &Name, client: Client) -> Option<ReversedName> {
        #[cfg(any(test, feature = "testkit"))]
        if let Some(first) = name.iter().next() {
            crate::testkit::faults::panic_if_asked(first);
        }
        let Some(reversed) = ReversedName::from_labels(name.iter()) else {
            self.recorder.record_unreadable(&in_force.settings, client);
            return None;
        };
        Some(reversed)
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

/// What the stages that need no waiting made of one question.
pub enum AtOnce<'s> {
    /// The answer is ready now.
    Ready(Verdict<'s>, Answer),
    /// The answer must wait for the upstream (or for a lookup of the same
    /// question already on its way).
    MustWait(Verdict<'s>, Waiting),
}

/// What a question that must wait asks the upstream for.
pub enum Waiting {
    /// The name asked, whose answer then goes through [`after_upstream`].
    Name,
    /// The safe-search target the name is rewritten to.
    Rewritten(Name),
}

/// The pipeline's stages for one question, in order: [`decide`] (special
/// names, the policy decision, staff unlocks, safe search), then the
/// upstream (within the client's share of lookups in flight), the CNAME
/// re-check of what it said, and the rebinding guard. The stages that need
/// no waiting are [`resolve_at_once`]'s; this only asks the upstream when
/// that says the answer must wait, then runs the same [`after_upstream`].
pub async fn resolve<'s>(
    settings: &'s Settings,
    overrides: &OverrideSet,
    reversed: ReversedName,
    question: Question<'_>,
) -> (Verdict<'s>, Answer) {
    let (mut verdict, waiting) = match resolve_at_once(settings, overrides, reversed, question) {
        AtOnce::Ready(verdict, answer) => return (verdict, answer),
        AtOnce::MustWait(verdict, waiting) => (verdict, waiting),
    };
    let Question {
        client,
        name,
        record_type,
        checking_disabled,
        ..
    } = question;
    let requester = Requester {
        address: client.address,
        exempt: &settings.upstream_share_exempt,
    };
    let answer = match waiting {
        Waiting::Rewritten(target) => match settings
            .upstream
            .resolve(&target, record_type, requester)
            .await
        {
            Ok(resolved) => Answer::rewritten(
                name,
                &target,
                settings.blocking.ttl_secs,
                unvalidated_if_asked(resolved, checking_disabled),
            ),
            Err(busy) => refused(busy),
        },
        Waiting::Name => match settings
            .upstream
            .resolve(name, record_type, requester)
            .await
        {
            Ok(upstream) => after_upstream(
                settings,
                &mut verdict,
                (name, record_type),
                unvalidated_if_asked(upstream, checking_disabled),
            ),
            Err(busy) => refused(busy),
        },
    };
    (verdict, answer)
}

/// The stages of [`resolve`] that need no waiting: [`decide`], the
/// answers made here (special names, blocked names, minimal ANY), and the
/// response cache, whose live answer goes through [`after_upstream`] as
/// the upstream's would. Nothing is counted, begun or recorded for a
/// question that must wait, so [`resolve`] can follow as if this had not
/// run.
pub fn resolve_at_once<'s>(
    settings: &'s Settings,
    overrides: &OverrideSet,
    reversed: ReversedName,
    question: Question<'_>,
) -> AtOnce<'s> {
    let Question {
        client,
        name,
        record_type,
        clock,
        checking_disabled,
    } = question;
    let profile = settings.policy.profile_for(client.address, client.listener);
    let mut verdict = decide(settings, overrides, Some(client), profile, reversed, clock);

    if let Some(special) = verdict.special {
        let extended_error = |text: &str| {
            Some(ExtendedError {
                code: EDE_FILTERED,
                text: format!("Lollipop: {text}").into(),
            })
        };
        let answer = match special {
            SpecialAnswer::NxDomain(text) => Answer::nxdomain(extended_error(text)),
            SpecialAnswer::NoData(text) => Answer::nodata(extended_error(text)),
        };
        return AtOnce::Ready(verdict, answer);
    }
    if !verdict.asks_upstream() {
        let answer = verdict.blocked_answer(settings, name, record_type);
        return AtOnce::Ready(verdict, answer);
    }
    // After the block: a blocked name asked ANY still gets the block
    // answer; an allowed one gets the small RFC 8482 answer and costs no
    // upstream fan-out.
    if record_type == RecordType::ANY && settings.limits.minimal_any {
        return AtOnce::Ready(verdict, Answer::minimal_any(name));
    }
    if let Some(rewrite) = verdict.rewrite
        && let Ok(target) = Name::from_ascii(rewrite.target)
    {
        return match settings.upstream.resolve_at_once(&target, record_type) {
            Some((resolved, lease)) => {
                verdict.cached = Some(lease);
                let answer = Answer::rewritten(
                    name,
                    &target,
                    settings.blocking.ttl_secs,
                    unvalidated_if_asked(resolved, checking_disabled),
                );
                AtOnce::Ready(verdict, answer)
            }
            None => AtOnce::MustWait(verdict, Waiting::Rewritten(target)),
        };
    }
    match settings.upstream.resolve_at_once(name, record_type) {
        Some((upstream, lease)) => {
            verdict.cached = Some(lease);
            let upstream = unvalidated_if_asked(upstream, checking_disabled);
            let answer = after_upstream(settings, &mut verdict, (name, record_type), upstream);
            AtOnce::Ready(verdict, answer)
        }
        None => AtOnce::MustWait(verdict, Waiting::Name),
    }
}

/// Filtering applies to what a CD client gets just as to the rest: the
/// data that failed validation, for a client that checks for itself.
fn unvalidated_if_asked(
    answer: Arc<UpstreamAnswer>,
    checking_disabled: bool,
) -> Arc<UpstreamAnswer> {
    if checking_disabled {
        answer.for_checking_disabled()
    } else {
        answer
    }
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
        cached: None,
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
            .map(|listener| &**listener),
    };
    overrides.releases(clock.now_unix_ms(), asker, name, category)
}
