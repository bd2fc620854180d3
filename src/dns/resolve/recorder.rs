//! The record of each lookup, fed from the pipeline's verdict to every
//! output that wants it: the `/metrics` counters, the block log (or the
//! opt-in full query log) and the safeguarding alerts, and whatever else is
//! added as a [`BlockOutput`]. Never waits: every output takes its event
//! from a bounded queue or an atomic counter.

use std::sync::Arc;

use hickory_resolver::proto::rr::{Name, RecordType};

use crate::alerts::feed::AlertFeed;
use crate::clock::Clock;
use crate::journal::{BlockEvent, Folds, Journal, QueryEvent, Repeat};
use crate::metrics::{Metrics, SCHOOL_ENTRY, WALLED_GARDEN};

use crate::policy::Explanation;
use crate::policy::clients::ProfileId;

use super::answer::Answer;
use super::repeats::BlockedRepeat;
use super::settings::{Client, Settings};
use super::verdict::Verdict;

/// Somewhere a blocked lookup is sent besides the block log, which keeps
/// the event itself: the alerts today, a central log shipper later.
pub trait BlockOutput: Send + Sync {
    /// Takes note of `event`; must not wait.
    fn blocked(&self, event: &BlockEvent);

    /// Whether blocks of `category` (`locked` or not) are taken note of:
    /// the repeats of a block no output wants may be folded into a count
    /// for the block log (see `journal::Folds`) and never built as events.
    fn wants(&self, category: Option<&str>, locked: bool) -> bool {
        let _ = (category, locked);
        true
    }
}

impl BlockOutput for AlertFeed {
    fn blocked(&self, event: &BlockEvent) {
        self.offer(event);
    }

    fn wants(&self, category: Option<&str>, locked: bool) -> bool {
        self.alerts_on(category, locked)
    }
}

pub struct Recorder {
    journal: Journal,
    metrics: Arc<Metrics>,
    outputs: Vec<Box<dyn BlockOutput>>,
    /// When each recorded lookup happened.
    clock: Clock,
}

impl Recorder {
    pub fn new(journal: Journal, metrics: Arc<Metrics>, clock: Clock) -> Recorder {
        Recorder {
            journal,
            metrics,
            outputs: Vec::new(),
            clock,
        }
    }

    /// Sends every blocked lookup to `output` too.
    pub fn with_output(mut self, output: impl BlockOutput + 'static) -> Recorder {
        self.outputs.push(Box::new(output));
        self
    }

    /// The block log written to.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The counters behind `/metrics`.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Gives `settings` the counters of their profiles: the same counter
    /// for a profile that was there before, so a reload loses no count.
    pub(super) fn attach(&self, settings: &mut Settings) {
        settings.counters = self.metrics.counters_for(&settings.policy);
        settings.lookups = self.journal.lookup_tally(
            settings
                .policy
                .profiles
                .iter()
                .map(|profile| profile.name.as_str()),
        );
    }

    /// Counts a question that could not be asked (a name no list can hold).
    pub(super) fn record_unreadable(&self, settings: &Settings, client: Client) {
        let profile = settings.policy.profile_for(client.address, client.listener);
        settings.counters.count_query(profile);
        settings.lookups.count(profile);
    }

    /// Records one lookup: counted always; a block goes to the block log
    /// and every output; an allowed lookup is only counted, unless the
    /// full query log keeps it.
    pub fn record(
        &self,
        settings: &Settings,
        verdict: &Verdict,
        name: &Name,
        record_type: RecordType,
        client: Client,
        answer: &Answer,
    ) {
        self.record_lookup(
            settings,
            verdict.profile,
            answer.explanation.as_ref(),
            |explanation| {
                let rule = explanation.and_then(Explanation::rule_with_time);
                (domain_text(name), record_type, rule)
            },
            client,
            None,
        );
    }

    /// Records a question asked again and answered from the bytes of the
    /// answer given before, exactly as [`Recorder::record`] recorded that
    /// answer: `blocked` is what its block needs, None for an allowed one.
    pub fn record_repeat(
        &self,
        settings: &Settings,
        profile: ProfileId,
        blocked: Option<BlockedRepeat>,
        client: Client,
    ) {
        match blocked {
            Some(BlockedRepeat {
                explanation,
                name,
                rule,
                record_type,
                folds,
            }) => self.record_lookup(
                settings,
                profile,
                Some(&explanation),
                |explanation| {
                    let rule = explanation.and_then(|e| e.rule_with_time_of(rule));
                    (name, record_type, rule)
                },
                client,
                Some(&folds),
            ),
            // Never kept while the full query log is on, so an allowed
            // lookup is only counted, and its name is not needed.
            None => self.record_lookup(
                settings,
                profile,
                None,
                |_| (String::new(), RecordType::NULL, None),
                client,
                None,
            ),
        }
    }

    /// The one record of a lookup by `client` of `profile`; `lookup`
    /// gives the name, as the logs keep it, the type asked and, for a
    /// block (its explanation given), the rule that blocked it. A repeat
    /// of a kept blocked answer comes with its `folds`: counted there when
    /// its row is open for it, instead of sent as an event.
    fn record_lookup(
        &self,
        settings: &Settings,
        profile: ProfileId,
        explanation: Option<&Explanation>,
        lookup: impl FnOnce(Option<&Explanation>) -> (String, RecordType, Option<String>),
        client: Client,
        folds: Option<&Folds>,
    ) {
        settings.counters.count_query(profile);
        if explanation.is_none() && !settings.full_query_log {
            settings.lookups.count(profile);
            return;
        }
        let at_unix_ms = self.clock.now_unix_ms();
        let Some(explanation) = explanation else {
            let (domain, record_type, _) = lookup(None);
            let profile_name = &settings.policy.profile(profile).name;
            // Only the full query log (opt-in) keeps names of allowed lookups.
            self.journal.record_query(QueryEvent {
                at_unix_ms,
                client: client.address,
                profile: profile_name.clone(),
                name: domain,
                query_type: <&str>::from(record_type).to_owned(),
                blocked: false,
                category: None,
            });
            return;
        };
        let category = match (&explanation.category, explanation.walled_garden) {
            (_, true) => WALLED_GARDEN,
            (Some(category), false) => category,
            (None, false) => SCHOOL_ENTRY,
        };
        settings.counters.count_block(profile, category);
        let ticket = match folds {
            Some(folds) if !self.wanted(explanation) => match folds.count(
                client.address,
                at_unix_ms,
                &explanation.profile,
                &explanation.category,
            ) {
                Repeat::Counted => return,
                Repeat::Send(ticket) => ticket,
            },
            _ => None,
        };
        let (domain, record_type, rule) = lookup(Some(explanation));
        let event = BlockEvent {
            at_unix_ms,
            client: client.address,
            listener: client
                .listener
                .and_then(|i| settings.listeners.get(i).cloned()),
            // Shared with the policy: only the name and the rule are
            // this lookup's own.
            profile: explanation.profile.clone(),
            name: domain,
            query_type: record_type.into(),
            category: explanation.category.clone(),
            list: explanation.list.clone(),
            rule,
            action: if explanation.walled_garden {
                "walled-garden"
            } else {
                settings.blocking.answer.as_str()
            },
            locked: explanation.locked,
        };
        for output in &self.outputs {
            output.blocked(&event);
        }
        // The journal counts the block as a lookup in the hourly figures.
        self.journal.record_block_folding(event, ticket);
    }

    /// Whether any output takes note of blocks explained by `explanation`.
    fn wanted(&self, explanation: &Explanation) -> bool {
        let category = explanation.category.as_deref();
        self.outputs
            .iter()
            .any(|output| output.wants(category, explanation.locked))
    }
}

/// `name` as the logs keep it: as hickory's `to_ascii` writes it, without
/// the trailing dot. A name of plain labels (letters, digits, `_`, `-` not
/// first), which is nearly every name, is copied label by label, sparing
/// the escaping formatter that otherwise runs for every byte.
pub(super) fn domain_text(name: &Name) -> String {
    let plain = |label: &[u8]| {
        !label.is_empty()
            && label.iter().enumerate().all(|(i, &byte)| {
                byte.is_ascii_alphanumeric() || byte == b'_' || (byte == b'-' && i > 0)
            })
    };
    let escaped = || {
        let mut text = name.to_ascii();
        if text.len() > 1 && text.ends_with('.') {
            text.pop();
        }
        text
    };
    if name.is_root() {
        return escaped();
    }
    // One pass: copied while checked, given up at the first label that
    // is not plain.
    let mut text = Vec::with_capacity(name.len());
    for (i, label) in name.iter().enumerate() {
        if !plain(label) {
            return escaped();
        }
        if i > 0 {
            text.push(b'.');
        }
        text.extend_from_slice(label);
    }
    // Plain labels are ASCII, so this never falls back.
    String::from_utf8(text).unwrap_or_else(|_| name.to_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::proto::rr::domain::Label;

    #[test]
    fn a_logged_name_reads_as_hickorys_ascii_form_without_the_dot() {
        let hickory = |name: &Name| {
            let mut text = name.to_ascii();
            if text.len() > 1 && text.ends_with('.') {
                text.pop();
            }
            text
        };
        let mut names: Vec<Name> = [
            "WwW.Example.org.",
            "_dmarc.school-website.sch.uk.",
            "xn--bcher-kva.example.",
            "*.wild.example.",
            "a.b",
            ".",
        ]
        .iter()
        .map(|text| Name::from_ascii(text).expect("a name"))
        .collect();
        // Labels no plain name has: a leading dash, a space, a dot and a
        // byte above ASCII inside a label.
        for raw in [&b"-lead"[..], b"sp ace", b"do.t", b"hi\xc3\xa9"] {
            let label = Label::from_raw_bytes(raw).expect("a label");
            let tail = Name::from_ascii("example.").expect("a name");
            names.push(
                Name::from_labels([label])
                    .expect("a name")
                    .append_name(&tail)
                    .expect("short enough"),
            );
        }
        for name in &names {
            assert_eq!(domain_text(name), hickory(name), "{name:?}");
        }
        assert_eq!(domain_text(&names[0]), "WwW.Example.org");
    }
}
