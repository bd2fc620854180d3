//! `lollipop check`: what a client would get for a name, and why.

use std::net::IpAddr;

use anyhow::Result;

use crate::config::Config;
use crate::name::{ReversedName, normalise_domain};
use crate::policy::special::special_answer;
use crate::service::settings::{build_policy, load_lists};

/// Prints the profile, decision and any safe-search rewrite for `name`
/// asked by `client` on `listener` (a `[[listen]]` address).
pub fn run(config: &Config, name: &str, client: &IpAddr, listener: Option<&String>) -> Result<()> {
    let domain = normalise_domain(name)
        .map_err(|error| anyhow::anyhow!("'{name}' is not a domain name: {error}"))?;
    let reversed = ReversedName::from_domain(&domain)
        .ok_or_else(|| anyhow::anyhow!("'{name}' is too long for a DNS name"))?;
    let listener_index = match listener {
        None => None,
        Some(address) => Some(
            config
                .listen
                .iter()
                .position(|l| l.address.get_ref() == address)
                .ok_or_else(|| {
                    anyhow::anyhow!("no [[listen]] address is {address} in the config")
                })?,
        ),
    };
    let policy = build_policy(config, load_lists(config)?)?;
    let profile = policy.profile_for(*client, listener_index);
    println!("name:     {domain}");
    println!("client:   {client}");
    if let Some(special) = special_answer(&reversed, &config.circumvention) {
        println!("profile:  {}", policy.profile(profile).name);
        println!("decision: answered by Lollipop itself: {special:?}");
        return Ok(());
    }
    let decision = policy.decide(profile, &reversed);
    print!("{}", policy.explain(profile, &reversed, &decision));
    if !decision.is_blocked() {
        let safe_search = policy.profile(profile).safe_search;
        if let Some(rewrite) = policy.safe_search.rewrite(&domain, safe_search) {
            println!(
                "rewrite:  {domain} -> {} ({} safe search)",
                rewrite.target, rewrite.provider
            );
        }
    }
    Ok(())
}
