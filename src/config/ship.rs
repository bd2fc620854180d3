//! `[ship]`: the trust's central log (issue 20). Where a box sends its block
//! log, alerts and audit trail: a PostgreSQL database the trust runs, and/or
//! an rsyslog or syslog-ng server (RFC 5424 over TCP, TLS optional). The
//! settings and their checks; the shipping itself is `crate::ship`.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::{Config, Problems};

/// `[ship]`. Nothing is sent unless `postgres` or `syslog` is set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShipConfig {
    /// The school as the trust's dashboard names it; `[alerts]
    /// school_name` when not given.
    #[serde(default)]
    pub school: Option<Spanned<String>>,
    pub postgres: Option<ShipPostgresConfig>,
    pub syslog: Option<ShipSyslogConfig>,
}

/// `[ship.postgres]`: the trust's PostgreSQL.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShipPostgresConfig {
    /// "postgres://lollipop@db.trust.example/lollipop?sslmode=require".
    pub url: Spanned<String>,
    /// Holds the password, so it stays out of the config file.
    pub password_file: Option<PathBuf>,
    /// Extra CA certificates (PEM) trusted for TLS besides the public roots.
    pub ca_file: Option<PathBuf>,
}

/// `[ship.syslog]`: an rsyslog or syslog-ng server taking RFC 5424 over TCP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShipSyslogConfig {
    /// "logs.trust.example:6514".
    pub address: Spanned<String>,
    #[serde(default)]
    pub tls: bool,
    /// Extra CA certificates (PEM) trusted besides the public roots.
    pub ca_file: Option<PathBuf>,
}

impl Config {
    /// The school's name for the central log: `[ship] school`, else
    /// `[alerts] school_name`.
    pub fn ship_school(&self) -> String {
        self.ship
            .school
            .as_ref()
            .map(|s| s.get_ref().trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| self.alerts.school_name.trim().to_string())
    }

    /// Where shipping goes, in words (for "waits for a restart").
    pub fn ship_destinations(&self) -> String {
        let mut out = Vec::new();
        if let Some(pg) = &self.ship.postgres {
            out.push(format!("PostgreSQL {}", redact_url(pg.url.get_ref())));
        }
        if let Some(syslog) = &self.ship.syslog {
            let tls = if syslog.tls { " over TLS" } else { "" };
            out.push(format!("syslog {}{tls}", syslog.address.get_ref()));
        }
        if out.is_empty() {
            "nowhere".into()
        } else {
            format!("{} for {}", out.join(" and "), self.ship_school())
        }
    }

    pub(super) fn validate_ship(&self, problems: &mut Problems<'_>) {
        let ship = &self.ship;
        if ship.postgres.is_none() && ship.syslog.is_none() {
            return;
        }
        if self.ship_school().is_empty() {
            let span = ship.school.as_ref().map_or(0..0, |s| s.span());
            problems.at(
                &span,
                "ship.school".into(),
                "the trust's central log needs the school's name: write e.g. school = \"Oak Primary\" under [ship]".into(),
            );
        }
        if let Some(pg) = &ship.postgres {
            if let Err(error) = pg.url.get_ref().parse::<tokio_postgres::Config>() {
                problems.at(
                    &pg.url.span(),
                    "ship.postgres.url".into(),
                    format!(
                        "'{}' is not a PostgreSQL address ({error}): write e.g. \"postgres://lollipop@db.trust.example/lollipop?sslmode=require\"",
                        redact_url(pg.url.get_ref())
                    ),
                );
            }
            self.check_readable(problems, "ship.postgres.password_file", &pg.password_file);
            self.check_readable(problems, "ship.postgres.ca_file", &pg.ca_file);
        }
        if let Some(syslog) = &ship.syslog {
            if let Err(message) = split_host_port(syslog.address.get_ref()) {
                problems.at(
                    &syslog.address.span(),
                    "ship.syslog.address".into(),
                    message,
                );
            }
            self.check_readable(problems, "ship.syslog.ca_file", &syslog.ca_file);
        }
    }

    fn check_readable(&self, problems: &mut Problems<'_>, key: &str, path: &Option<PathBuf>) {
        let Some(path) = path else { return };
        let path = self.resolve_path(path);
        if let Err(error) = std::fs::metadata(&path) {
            problems.at(
                &(0..0),
                key.into(),
                format!("cannot read {}: {error}", path.display()),
            );
        }
    }
}

/// "host:port" (a name or an address; IPv6 in brackets) split in two.
pub fn split_host_port(address: &str) -> Result<(String, u16), String> {
    let hint = "write a host and port, e.g. \"logs.trust.example:6514\"";
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| format!("'{address}' has no port: {hint}"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("'{address}' has no valid port: {hint}"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || port == 0 {
        return Err(format!("'{address}' is not a host and port: {hint}"));
    }
    Ok((host.to_string(), port))
}

/// The URL without its password, for messages and pages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{scheme}://{name}:***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_need_a_host_and_port() {
        assert_eq!(
            split_host_port("logs.trust.example:6514").unwrap(),
            ("logs.trust.example".to_string(), 6514)
        );
        assert_eq!(
            split_host_port("[::1]:514").unwrap(),
            ("::1".to_string(), 514)
        );
        assert!(split_host_port("logs.trust.example").is_err());
        assert!(split_host_port(":514").is_err());
        assert!(split_host_port("host:0").is_err());
    }

    #[test]
    fn passwords_are_not_repeated() {
        assert_eq!(
            redact_url("postgres://box:secret@db/lollipop"),
            "postgres://box:***@db/lollipop"
        );
        assert_eq!(redact_url("postgres://box@db/x"), "postgres://box@db/x");
    }
}
