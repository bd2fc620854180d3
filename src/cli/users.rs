//! `lollipop setup-link` and `lollipop passwd`: the status page's users,
//! managed from the appliance's console when no one can sign in.

use std::io::{BufRead, IsTerminal};

use anyhow::{Context, Result, bail};

use crate::admin::{AdminStore, Role};
use crate::config::Config;
use crate::web::{public_url, setup_url};

/// Prints a one-time link that creates the first administrator.
pub fn setup_link(config: &Config) -> Result<String> {
    refuse_on_secondary(config, "no setup link is made here")?;
    let store = AdminStore::open(&config.admin_db_path())?;
    let token = store.new_setup_token()?;
    Ok(setup_url(&public_url(config), &token))
}

/// Sets `name`'s password (creating the user with `role` if new), reading
/// it from the terminal without echo, or as one line from standard input.
pub fn passwd(config: &Config, name: &str, role: Option<&str>) -> Result<String> {
    refuse_on_secondary(config, "passwords are set there")?;
    passwd_in(&config.admin_db_path(), name, role)
}

/// [`passwd`] in the users' file at `path` (also the trust dashboard's).
pub fn passwd_in(path: &std::path::Path, name: &str, role: Option<&str>) -> Result<String> {
    let store = AdminStore::open(path)?;
    let existing = store.user(name)?;
    let role = match (role, &existing) {
        (Some(role), _) => Role::parse(role)?,
        (None, Some(user)) => user.role,
        (None, None) => {
            bail!("there is no user '{name}' yet: give --role viewer, teacher, dsl or admin")
        }
    };
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("New password for {name}: "))?;
        let again = rpassword::prompt_password("The same again: ")?;
        if first != again {
            bail!("the two passwords were not the same; nothing was changed");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("could not read the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    store.set_user(name, role, &password, "lollipop passwd (console)")?;
    Ok(match existing {
        Some(_) => format!("password changed for {name} ({})", role.as_str()),
        None => format!("user {name} created ({})", role.as_str()),
    })
}

/// The users of a secondary are the primary's, replaced by each snapshot:
/// one made here would be lost, or be an account the primary never knew.
fn refuse_on_secondary(config: &Config, what: &str) -> Result<()> {
    if let Some(cluster) = config.secondary_of() {
        let primary = cluster
            .primary
            .as_ref()
            .map_or("the primary", |url| url.get_ref().as_str());
        bail!(
            "this box is the secondary of a pair and follows the users of {primary}: {what}. Run the command on the primary's console"
        );
    }
    Ok(())
}
