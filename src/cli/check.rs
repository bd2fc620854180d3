//! `lollipop check`: what a client would get for a name, and why: the
//! pipeline's own stages before the upstream ([`decide`]), on the lists,
//! the page's allow/deny entries and the staff unlocks in force, so it
//! says what DNS does.

use std::net::IpAddr;

use anyhow::{Context, Result};

use crate::admin::AdminStore;
use crate::clock::Clock;
use crate::config::Config;
use crate::dns::resolve::check::listener_index;
use crate::dns::resolve::pipeline::decide;
use crate::dns::resolve::settings::{Client, Settings};
use crate::metrics::Metrics;
use crate::name::{ReversedName, domain_from_input};
use crate::policy::overrides::OverrideSet;
use crate::policy::special::SpecialAnswer;
use crate::service::settings::{build_settings, load_lists};

/// Prints the profile, decision, any staff unlock and any safe-search
/// rewrite for `name` asked by `client` on `listener` (a `[[listen]]`
/// address).
pub fn run(config: &Config, name: &str, client: &IpAddr, listener: Option<&String>) -> Result<()> {
    let domain = domain_from_input(name)
        .map_err(|error| anyhow::anyhow!("'{name}' is not a website name or address: {error}"))?;
    let reversed = ReversedName::from_domain(&domain)
        .ok_or_else(|| anyhow::anyhow!("'{name}' is too long for a DNS name"))?;
    let settings = settings_of(config)?;
    // Without --listener, the one serving the client's subnet, as DNS does.
    let listener_index = match listener {
        Some(address) => Some(
            listener_index(&settings.listeners, address)
                .map_err(|message| anyhow::anyhow!(message))?,
        ),
        None => settings.listener_serving(*client),
    };
    let overrides = unlocks_in_force(config, &settings.policy);
    let asker = Client {
        address: *client,
        listener: listener_index,
    };
    let profile = settings.policy.profile_for(*client, listener_index);
    let verdict = decide(
        &settings,
        &overrides,
        Some(asker),
        profile,
        reversed,
        &Clock::system(),
    );
    println!("name:     {domain}");
    println!("client:   {client}");
    if let Some(listener) = listener_index.and_then(|i| settings.listeners.get(i)) {
        println!("asks on:  {listener}");
    }
    if let Some(special) = verdict.special {
        let text = match special {
            SpecialAnswer::NxDomain(text) | SpecialAnswer::NoData(text) => text,
        };
        println!("profile:  {}", settings.policy.profile(profile).name);
        println!("decision: answered by Lollipop itself: {text}");
        return Ok(());
    }
    print!("{}", verdict.explain(&settings));
    if let Some(unlock) = verdict.unlock {
        println!("unlocked: staff unlock #{unlock} releases it for this client now");
    }
    if let Some(rewrite) = &verdict.rewrite {
        println!(
            "rewrite:  {domain} -> {} ({} safe search)",
            rewrite.target, rewrite.provider
        );
    }
    Ok(())
}

/// The settings DNS answers with, built as start-up builds them (the
/// upstream is set up but never asked).
fn settings_of(config: &Config) -> Result<Settings> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a runtime")?;
    runtime
        .block_on(async { build_settings(config, load_lists(config)?, None, &Metrics::default()) })
}

/// The staff unlocks in force, as the resolver has them; none when the
/// page's store cannot be read (the same as the resolver then).
fn unlocks_in_force(config: &Config, policy: &crate::policy::Policy) -> OverrideSet {
    let path = config.admin_db_path();
    if !path.exists() {
        return OverrideSet::default();
    }
    match AdminStore::open(&path).and_then(|store| store.live_overrides()) {
        Ok(rows) => OverrideSet::new(&policy.unlocks_in_force(rows)),
        Err(error) => {
            eprintln!("the staff unlocks could not be read ({error}): shown without them");
            OverrideSet::default()
        }
    }
}
