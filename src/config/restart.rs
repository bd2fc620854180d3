//! Which settings a reload cannot put in force: the addresses Lollipop
//! listens on (DNS, the page, `/metrics`), the page's certificate and the
//! files it keeps open. Given the config running and a newer file, says
//! what waits for a restart, and gives the config that is really in force
//! (the newer file with those settings as they are running), so that no
//! page, log line or audit entry shows a waiting change as applied.

use std::path::PathBuf;

use super::{Config, ConfigOrigin};

/// A setting whose new value waits for a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartChange {
    /// The key as written in the file (`web.listen`, `listen`).
    pub key: String,
    /// What is running, in words.
    pub in_force: String,
    /// What the file now says, in words.
    pub in_file: String,
}

impl std::fmt::Display for RestartChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {} in force, the file says {}; takes effect after a restart",
            self.key,
            plain_name(&self.key),
            self.in_force,
            self.in_file
        )
    }
}

/// What a key is, for a head teacher reading the dashboard.
pub fn plain_name(key: &str) -> &'static str {
    match key {
        "listen" => "DNS listening address",
        "web.listen" => "web page address",
        "web.enabled" => "web page on or off",
        "web.tls" => "web page over HTTPS",
        "web.metrics_listen" => "metrics address",
        "blockpage.https" => "block page over HTTPS",
        "limits.web_max_connections" => "web page connections at once",
        "limits.web_header_read_timeout_secs" => "web page request time limit",
        "server.data_dir" | "log.database" => "where the logs are kept",
        "cluster" => "HA pair",
        "ship" => "the trust's central log",
        _ => "setting",
    }
}

fn words<T: std::fmt::Debug>(value: &T) -> String {
    format!("{value:?}")
}

/// The config in force after reading `file` while `running` is in force,
/// and every change in `file` that waits for a restart. `running`'s
/// listeners keep their order (each keeps its socket); a listener's profile
/// follows its address, never its place in the file. An address no longer
/// in the file keeps answering with its old block (never a looser profile
/// by accident) and a new one waits, until a restart.
pub fn in_force(running: &Config, mut file: Config) -> (Config, Vec<RestartChange>) {
    let mut waiting = Vec::new();
    let mut aligned = Vec::with_capacity(running.listen.len());
    // An address given twice (port 0 in tests) pairs its blocks in order.
    let mut taken = vec![false; file.listen.len()];
    for bound in &running.listen {
        let address = bound.address.get_ref();
        let same = file
            .listen
            .iter()
            .enumerate()
            .position(|(i, l)| !taken[i] && l.address.get_ref() == address);
        match same {
            Some(i) => {
                taken[i] = true;
                aligned.push(file.listen[i].clone());
            }
            None => {
                waiting.push(RestartChange {
                    key: "listen".into(),
                    in_force: format!("{address} (answering with its old profile)"),
                    in_file: "no longer listed".into(),
                });
                aligned.push(bound.clone());
            }
        }
    }
    for (listen, _) in file.listen.iter().zip(&taken).filter(|(_, t)| !**t) {
        waiting.push(RestartChange {
            key: "listen".into(),
            in_force: "not listening".into(),
            in_file: format!("a new address {}", listen.address.get_ref()),
        });
    }
    file.listen = aligned;

    // Each: (key, running's value, the file's value, keep running's).
    let mut keep = |key: &str, now: String, then: String| {
        let differs = now != then;
        if differs {
            waiting.push(RestartChange {
                key: key.into(),
                in_force: now,
                in_file: then,
            });
        }
        differs
    };
    if keep(
        "web.enabled",
        words(&running.web.enabled),
        words(&file.web.enabled),
    ) {
        file.web.enabled = running.web.enabled;
    }
    if keep(
        "web.listen",
        words(&running.web_addresses()),
        words(&file.web_addresses()),
    ) {
        file.web.listen = running.web.listen.clone();
    }
    if keep("web.tls", words(&running.web.tls), words(&file.web.tls)) {
        file.web.tls = running.web.tls;
    }
    if keep(
        "web.metrics_listen",
        words(&running.web.metrics_listen.as_ref().map(|a| a.get_ref())),
        words(&file.web.metrics_listen.as_ref().map(|a| a.get_ref())),
    ) {
        file.web.metrics_listen = running.web.metrics_listen.clone();
    }
    // The HTTPS block page's sockets are bound at start, like the page's.
    if keep(
        "blockpage.https",
        words(&running.block_page_https_addresses()),
        words(&file.block_page_https_addresses()),
    ) {
        file.blockpage.https = running.blockpage.https;
        file.blockpage.https_listen = running
            .block_page_https_addresses()
            .iter()
            .map(|address| toml::Spanned::new(0..0, address.to_string()))
            .collect();
    }
    // The page's connection bounds are built into its listeners.
    if keep(
        "limits.web_max_connections",
        words(&running.limits.web_max_connections),
        words(&file.limits.web_max_connections),
    ) {
        file.limits.web_max_connections = running.limits.web_max_connections;
    }
    if keep(
        "limits.web_header_read_timeout_secs",
        words(&running.limits.web_header_read_timeout_secs),
        words(&file.limits.web_header_read_timeout_secs),
    ) {
        file.limits.web_header_read_timeout_secs = running.limits.web_header_read_timeout_secs;
    }
    // The shippers start with the service and keep their connections.
    if keep(
        "ship",
        running.ship_destinations(),
        file.ship_destinations(),
    ) {
        file.ship = running.ship.clone();
    }
    let data_dir = |c: &Config| c.resolve_path(&c.server.data_dir);
    if keep(
        "server.data_dir",
        words(&data_dir(running)),
        words(&data_dir(&file)),
    ) {
        file.server.data_dir = data_dir(running);
    }
    if keep(
        "log.database",
        words(&running.journal_path()),
        words(&file.journal_path()),
    ) {
        file.log.database = Some(running.journal_path());
    }
    // The pair's role, primary and key are read once, at start.
    let pair = |c: &Config| {
        c.origin
            .text
            .parse::<toml::Table>()
            .ok()
            .and_then(|table| table.get("cluster").map(|value| value.to_string()))
            .unwrap_or_else(|| "none".into())
    };
    if keep("cluster", pair(running), pair(&file)) {
        file.cluster = running.cluster.clone();
    }
    (file, waiting)
}

/// The keys whose values differ between two versions of a file, one level
/// into each table (`web.session_idle_minutes`, `alerts.webhook`,
/// `profiles.ks2`; arrays of tables such as `listen` as a whole).
pub fn changed_keys(older: &Config, newer: &Config) -> Vec<String> {
    let parse = |text: &str| text.parse::<toml::Table>().unwrap_or_default();
    let (old, new) = (parse(&older.origin.text), parse(&newer.origin.text));
    let mut changed = Vec::new();
    let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for key in keys {
        match (old.get(key), new.get(key)) {
            (a, b) if a == b => {}
            (Some(toml::Value::Table(a)), Some(toml::Value::Table(b))) => {
                let inner: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
                for name in inner {
                    if a.get(name) != b.get(name) {
                        changed.push(format!("{key}.{name}"));
                    }
                }
            }
            _ => changed.push(key.clone()),
        }
    }
    if older.bundle != newer.bundle {
        changed.push(match &newer.bundle {
            Some(bundle) => format!("trust: {}", bundle.describe()),
            None => "trust: no policy bundle".into(),
        });
    }
    changed
}

/// Where the running service keeps a copy of the config it started with,
/// so `lollipop config check` can say what a reload would leave waiting.
pub fn started_with_path(config: &Config) -> PathBuf {
    config
        .resolve_path(&config.server.data_dir)
        .join("config-at-start.toml")
}

/// The config the running service started with, read from its copy in
/// `file`'s data directory, its relative paths taken from `file`'s
/// directory (where the running one was read from). `None` when no copy
/// is there (never started with this data directory).
pub fn started_with(file: &Config) -> Option<Result<Config, String>> {
    let path = started_with_path(file);
    let text = std::fs::read_to_string(&path).ok()?;
    let origin = ConfigOrigin {
        display_name: path.display().to_string(),
        base_dir: file.origin.base_dir.clone(),
        path: None,
        text: text.clone(),
    };
    Some(Config::parse(&text, origin).map_err(|errors| errors.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(body: &str) -> Config {
        let text = format!(
            "[server]\ndata_dir = \"/tmp/x\"\ndefault_profile = \"ks2\"\n[[upstream]]\naddress = \"127.0.0.1:5353\"\nprotocol = \"udp\"\n{body}\n[profiles.ks2]\nmode = \"blocklist\"\n"
        );
        let origin = ConfigOrigin {
            display_name: "test".into(),
            base_dir: "/tmp".into(),
            path: None,
            text: text.clone(),
        };
        Config::parse(&text, origin).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_new_page_address_waits_and_the_running_one_stays_in_force() {
        let running = config(
            "[[listen]]\naddress = \"127.0.0.1:53\"\n[web]\nlisten = [\"127.0.0.1:8080\"]\nsession_idle_minutes = 15",
        );
        let file = config(
            "[[listen]]\naddress = \"127.0.0.1:53\"\n[web]\nlisten = [\"127.0.0.1:9090\"]\nsession_idle_minutes = 5",
        );
        let (config, waiting) = in_force(&running, file);
        assert_eq!(waiting.len(), 1, "{waiting:?}");
        assert_eq!(waiting[0].key, "web.listen");
        assert!(waiting[0].to_string().contains("web page address"));
        assert_eq!(config.web_addresses(), running.web_addresses());
        // What a reload can apply is applied.
        assert_eq!(config.web.session_idle_minutes, 5);
    }

    #[test]
    fn the_same_settings_wait_for_nothing() {
        let running = config("[[listen]]\naddress = \"127.0.0.1:53\"");
        let (_, waiting) = in_force(&running, running.clone());
        assert!(waiting.is_empty(), "{waiting:?}");
    }

    #[test]
    fn the_page_connection_bounds_wait_but_the_dns_limits_and_tcp_idle_time_apply() {
        let running = config(
            "[[listen]]\naddress = \"127.0.0.1:53\"\n[limits]\nweb_max_connections = 64\nweb_header_read_timeout_secs = 10\nper_address_qps = 500\ntcp_max_per_client = 16",
        );
        let file = config(
            "[[listen]]\naddress = \"127.0.0.1:53\"\n[limits]\nweb_max_connections = 8\nweb_header_read_timeout_secs = 2\nper_address_qps = 100\ntcp_max_per_client = 4",
        );
        let (config, waiting) = in_force(&running, file);
        let keys: Vec<&str> = waiting.iter().map(|w| w.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "limits.web_max_connections",
                "limits.web_header_read_timeout_secs"
            ]
        );
        assert_eq!(config.limits.web_max_connections, 64);
        assert_eq!(config.limits.web_header_read_timeout_secs, 10);
        assert_eq!(config.limits.per_address_qps, 100);
        assert_eq!(config.limits.tcp_max_per_client, 4);
    }
}
