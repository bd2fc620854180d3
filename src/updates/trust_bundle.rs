//! Fetching a trust's policy bundle with the lists: downloaded from
//! `[trust] bundle_url`, its signature checked against the trust's key, its
//! serial compared with the bundle in force (never back to an older one),
//! and merged with the school's own file to be sure the school can use it.
//! Only then is it written where the config reads it; anything else keeps
//! the last good bundle, and the dashboard and `lists status` say why.

use std::time::Duration;

use crate::clock::age;
use crate::config::Config;
use crate::config::ListFormat;
use crate::config::bundle::{self, Bundle};
use crate::lists::acquire::fetch::download_small;
use crate::lists::acquire::sources::downloads_dir;
use crate::lists::acquire::update::{FetchSpec, UpdateOutcome, load_state};

/// The name the download's state is kept under, beside the lists'.
pub const STATE_NAME: &str = "trust-bundle";
/// What `lists status`, the dashboard and the log call it.
pub const LABEL: &str = "Trust policy bundle";
/// Ample for profiles and rules; lists themselves are downloaded apart.
const MAX_BYTES: u64 = 4 * 1024 * 1024;
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// The schedule's view of the download, as for a list: `None` without
/// `[trust]`.
pub fn spec(config: &Config) -> Option<FetchSpec> {
    let trust = config.trust.as_ref()?;
    let mut spec = FetchSpec::new(
        STATE_NAME,
        vec![trust.bundle_url.get_ref().trim().to_string()],
        ListFormat::Domains,
    );
    spec.cadence = Duration::from_secs(trust.cadence_hours.max(1) * 3600);
    Some(spec)
}

/// Fetches the bundle if the school follows a trust and (with `only_due`)
/// it is due. Blocking. `None` when there was nothing to do.
pub fn update_trust_bundle(
    config: &Config,
    only_due: bool,
    now: u64,
) -> Option<(String, UpdateOutcome)> {
    let spec = spec(config)?;
    super::renew_file(config, &spec, LABEL, only_due, now, |url| {
        renew(config, url)
    })
}

/// Downloads, checks and writes the bundle: its serial, and whether the
/// bundle in force changed.
fn renew(config: &Config, url: &str) -> Result<(u64, bool), String> {
    let trust = config
        .trust
        .as_ref()
        .ok_or_else(|| "no [trust] in the config".to_string())?;
    let in_force = config.read_trust_bundle().ok().flatten();
    let kept = match &in_force {
        Some(bundle) => format!("{} stays in force", bundle.describe()),
        None => "no trust bundle is in force yet".to_string(),
    };
    let signed = download_small(url, MAX_BYTES, DOWNLOAD_TIMEOUT)?;
    let candidate = bundle::verify(&signed, trust.public_key.get_ref())
        .map_err(|why| format!("{url} refused: {why}; {kept}"))?;
    if let Some(in_force) = &in_force {
        acceptable_serial(&candidate, in_force).map_err(|why| format!("{why}; {kept}"))?;
        if in_force.signed == candidate.signed {
            return Ok((candidate.file.serial, false));
        }
    }
    if let Err(errors) = config.with_candidate_bundle(&candidate) {
        return Err(format!(
            "{} does not fit this school's config, so it is not used: {}; {kept}",
            candidate.describe(),
            errors.to_string().replace('\n', "; ")
        ));
    }
    let text = String::from_utf8(candidate.signed.clone())
        .map_err(|_| "the bundle is not UTF-8 text".to_string())?;
    super::write_atomically(&config.trust_bundle_path(), &text)?;
    tracing::info!("{LABEL}: {} in force, from {url}", candidate.describe());
    Ok((candidate.file.serial, true))
}

/// A new bundle must carry a higher serial than the one in force; the same
/// serial is fine only for the very same bundle.
pub fn acceptable_serial(candidate: &Bundle, in_force: &Bundle) -> Result<(), String> {
    let (new, old) = (candidate.file.serial, in_force.file.serial);
    if new < old {
        return Err(format!(
            "the bundle offered has serial {new}, older than the one in force (serial {old}): refused, a school never goes back to an older bundle"
        ));
    }
    if new == old && candidate.signed != in_force.signed {
        return Err(format!(
            "the bundle offered has the serial in force ({new}) but different contents: refused, a changed bundle needs a higher serial"
        ));
    }
    Ok(())
}

/// How the bundle stands, in the words the dashboard and `lists status`
/// use, and whether it needs the technician (`true`: the last download was
/// refused or failed). `None` when the school follows no trust.
pub fn status(config: &Config, now: u64) -> Option<(String, bool)> {
    config.trust.as_ref()?;
    let state = load_state(&downloads_dir(config), STATE_NAME);
    let in_force = match &config.bundle {
        Some(bundle) => format!("{} in force", bundle.describe()),
        None => "no bundle in force yet".to_string(),
    };
    let checked = state
        .last_success
        .map(|at| format!("last checked {}", age(now.saturating_sub(at))))
        .unwrap_or_else(|| "not fetched yet".into());
    // A success clears the error, so an error kept is the last attempt's,
    // even one in the same second as the success before it.
    Some(match &state.last_error {
        Some(error) => (
            format!("{in_force}; the last download was not used: {error}"),
            true,
        ),
        _ => (format!("{in_force}; {checked}"), config.bundle.is_none()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(private: &str, serial: u64, extra: &str) -> Bundle {
        let text = format!("serial = {serial}\ntrust = \"Oak Trust\"\n{extra}");
        let bytes = bundle::sign(private, &text).expect("signs");
        Bundle {
            file: toml::from_str(&text).expect("reads"),
            signed: bytes,
        }
    }

    #[test]
    fn only_a_higher_serial_or_the_same_bundle_is_accepted() {
        let (private, _) = bundle::generate_key().expect("key");
        let five = signed(&private, 5, "");
        assert!(acceptable_serial(&signed(&private, 6, ""), &five).is_ok());
        assert!(acceptable_serial(&five, &five).is_ok());
        let error = acceptable_serial(&signed(&private, 4, ""), &five).unwrap_err();
        assert!(
            error.contains("older than the one in force (serial 5)"),
            "{error}"
        );
        let changed = signed(&private, 5, "locked_categories = [\"gambling\"]\n");
        let error = acceptable_serial(&changed, &five).unwrap_err();
        assert!(error.contains("needs a higher serial"), "{error}");
    }
}
