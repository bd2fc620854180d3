//! Tests of the parent module.

use super::*;

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::parse(
        text,
        ConfigOrigin {
            display_name: "test.toml".into(),
            base_dir: PathBuf::from("."),
            path: None,
            text: String::new(),
        },
    )
}

#[test]
fn embedded_default_is_valid() {
    let config = Config::embedded_default().expect("embedded default must parse");
    for profile in ["under5", "ks1", "ks2", "staff"] {
        assert!(config.profiles.contains_key(profile), "missing {profile}");
    }
    assert_eq!(
        config.profiles["under5"].mode,
        ProfileMode::Allowlist,
        "under-5s get the walled garden"
    );
}

#[test]
fn a_typo_in_a_key_names_the_line() {
    let text = EMBEDDED_DEFAULT.replace("tcp_idle_timeout_secs", "tcp_idle_timout_secs");
    let errors = parse(&text).expect_err("unknown key must fail");
    let message = errors.to_string();
    let line = text
        .lines()
        .position(|l| l.starts_with("tcp_idle_timout_secs"))
        .expect("line")
        + 1;
    assert!(
        message.starts_with(&format!("test.toml:{line}:")),
        "{message}"
    );
    assert!(message.contains("tcp_idle_timout_secs"), "{message}");
}

#[test]
fn an_unknown_profile_is_reported_with_its_key_and_line() {
    let text = EMBEDDED_DEFAULT.replace(
        "address = \"127.0.0.1:5353\"",
        "address = \"127.0.0.1:5353\"\nprofile = \"ks3\"",
    );
    let errors = parse(&text).expect_err("unknown profile must fail");
    let message = errors.to_string();
    assert!(message.contains("listen[0].profile"), "{message}");
    assert!(message.contains("no profile named 'ks3'"), "{message}");
    let line = text
        .lines()
        .position(|l| l.contains("\"ks3\""))
        .expect("line")
        + 1;
    assert!(message.contains(&format!("test.toml:{line}:")), "{message}");
}

#[test]
fn several_problems_are_all_reported() {
    let text = EMBEDDED_DEFAULT
        .replace("default_profile = \"ks2\"", "default_profile = \"nope\"")
        .replace(
            "\"lists/bypass.txt\"\ncategory = \"bypass\"",
            "\"x\"\ncategory = \"Bad Name\"",
        )
        .replace(
            "allowed_networks = []",
            "allowed_networks = [\"10.0.0.0/33\"]",
        );
    let errors = parse(&text).expect_err("must fail");
    let message = errors.to_string();
    assert!(message.contains("server.default_profile"), "{message}");
    assert!(message.contains("server.allowed_networks[0]"), "{message}");
    assert!(message.contains("lists[0].category"), "{message}");
}

#[test]
fn networks_and_upstream_addresses_parse() {
    assert_eq!(
        parse_network("10.0.20.7/24").expect("net").to_string(),
        "10.0.20.0/24"
    );
    assert_eq!(
        parse_network("fd00::1").expect("host").to_string(),
        "fd00::1/128"
    );
    assert!(parse_network("10.0.0/24").is_err());
    assert_eq!(
        parse_upstream_address("9.9.9.9", 853).expect("ip"),
        "9.9.9.9:853".parse().expect("addr")
    );
    assert_eq!(
        parse_upstream_address("[::1]:5300", 53).expect("ip port"),
        "[::1]:5300".parse().expect("addr")
    );
    assert!(parse_upstream_address("dns.quad9.net", 853).is_err());
}

#[test]
fn changed_sections_name_what_a_reload_changed() {
    let old = parse(EMBEDDED_DEFAULT).expect("old");
    let text = EMBEDDED_DEFAULT
        .replace("ttl_secs = 60", "ttl_secs = 30")
        .replace("youtube = \"moderate\"", "youtube = \"off\"");
    let new = parse(&text).expect("new");
    assert_eq!(old.changed_sections(&new), ["blocking", "profiles.staff"]);
    assert!(old.changed_sections(&old).is_empty());
}

/// The package's /etc/lollipop/lollipop.toml must follow the schema as it
/// changes, and name only lists the package ships (the repo's lists/).
#[test]
fn appliance_config_is_valid() {
    let config =
        parse(include_str!("../../image/lollipop.toml")).expect("appliance config must parse");
    assert!(config.updates.enabled, "the appliance downloads its lists");
    assert_eq!(config.server.data_dir, PathBuf::from("/var/lib/lollipop"));
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    for list in &config.lists {
        if let Some(path) = &list.path {
            let shipped = path
                .strip_prefix("/usr/share/lollipop/lists")
                .unwrap_or_else(|_| {
                    panic!("{} is not under /usr/share/lollipop/lists", path.display())
                });
            assert!(
                repo.join("lists").join(shipped).is_file(),
                "{} is not in lists/",
                shipped.display()
            );
        }
    }
}

#[test]
fn an_old_cache_entries_key_is_still_read_as_a_byte_budget() {
    let text = EMBEDDED_DEFAULT.replace("cache_mb = 32", "cache_entries = 8192");
    let config = parse(&text).expect("an upgraded school's config still loads");
    assert_eq!(config.resolver.cache_bytes(), 16 << 20, "2 KiB an entry");
    let default = parse(&EMBEDDED_DEFAULT.replace("cache_mb = 32\n", "")).expect("loads");
    assert_eq!(default.resolver.cache_bytes(), 32 << 20);
}

#[test]
fn cache_mb_and_cache_entries_together_are_refused_naming_the_key_to_remove() {
    let text = EMBEDDED_DEFAULT.replace("cache_mb = 32", "cache_mb = 32\ncache_entries = 100");
    let message = parse(&text).expect_err("both keys").to_string();
    assert!(message.contains("resolver.cache_entries"), "{message}");
    assert!(message.contains("remove cache_entries"), "{message}");
    let zero = EMBEDDED_DEFAULT.replace("cache_mb = 32", "cache_mb = 0");
    let message = parse(&zero).expect_err("no cache").to_string();
    assert!(message.contains("resolver.cache_mb"), "{message}");
}

#[test]
fn the_per_client_share_defaults_to_a_sixteenth_of_the_pool_and_is_checked() {
    let config = Config::embedded_default().expect("default");
    assert_eq!(config.resolver.per_client_share(), 256);
    let small = parse(&EMBEDDED_DEFAULT.replace("# max_in_flight = 4096", "max_in_flight = 8"))
        .expect("loads");
    assert_eq!(small.resolver.per_client_share(), 8, "never above the pool");
    let text = EMBEDDED_DEFAULT.replace(
        "# max_in_flight_per_client = 256",
        "max_in_flight_per_client = 5000",
    );
    let message = parse(&text).expect_err("above the pool").to_string();
    assert!(
        message.contains("resolver.max_in_flight_per_client"),
        "{message}"
    );
    let text = EMBEDDED_DEFAULT.replace(
        "# share_exempt_networks = [\"10.0.10.5\"]",
        "share_exempt_networks = [\"10.0.10.300\"]",
    );
    let message = parse(&text).expect_err("bad network").to_string();
    assert!(
        message.contains("resolver.share_exempt_networks[0]"),
        "{message}"
    );
}

#[test]
fn rebinding_is_on_by_default_and_its_allowed_domains_are_checked() {
    let config = Config::embedded_default().expect("default");
    assert!(config.rebinding.enabled);
    let text = EMBEDDED_DEFAULT.replace("allow_domains = []", "allow_domains = [\"not a domain\"]");
    let message = parse(&text).expect_err("bad domain").to_string();
    assert!(message.contains("rebinding.allow_domains[0]"), "{message}");
}

#[test]
fn recursion_needs_no_upstream_and_validates_by_default() {
    let text = "[server]\ndata_dir = \"/tmp/none\"\ndefault_profile = \"ks2\"\n\
                [[listen]]\naddress = \"0.0.0.0:53\"\n[resolver]\nmode = \"recursive\"\n\
                [profiles.ks2]\nmode = \"blocklist\"\n";
    let config = parse(text).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(config.resolver.mode, ResolverMode::Recursive);
    assert_eq!(config.resolver.dnssec_mode(), DnssecMode::Validate);
    assert_eq!(
        config.resolver.root_hints_in(Path::new("lists")),
        Path::new("lists/dns/root.hints")
    );
    let forwarding = text.replace("mode = \"recursive\"\n", "");
    let errors = parse(&forwarding).expect_err("forwarding needs an upstream");
    assert!(errors.to_string().contains("[[upstream]]"), "{errors}");
}

#[test]
fn validation_when_forwarding_is_asked_for_not_assumed() {
    let text = "[server]\ndata_dir = \"/tmp/none\"\ndefault_profile = \"ks2\"\n\
                [[listen]]\naddress = \"0.0.0.0:53\"\n[[upstream]]\naddress = \"9.9.9.9\"\nprotocol = \"udp\"\n\
                [resolver]\ndnssec = \"validate\"\n[profiles.ks2]\nmode = \"blocklist\"\n";
    let config = parse(text).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(config.resolver.dnssec_mode(), DnssecMode::Validate);
    // Off by default when forwarding: an LA's filtering resolver rewrites
    // answers, which validation would turn into failures.
    let unset = text.replace("dnssec = \"validate\"\n", "");
    let config = parse(&unset).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(config.resolver.dnssec_mode(), DnssecMode::Off);
}

#[test]
fn the_central_log_settings_are_checked_with_their_keys() {
    let unnamed = EMBEDDED_DEFAULT.replace("school_name = \"Lollipop development\"", "");
    let text = format!(
        "{unnamed}\n[ship.postgres]\nurl = \"postgres://box:secret@db/trust?sslmode=sometimes\"\n\
         ca_file = \"/nonexistent/trust-ca.pem\"\n[ship.syslog]\naddress = \"logs.trust.example\"\n"
    );
    let message = parse(&text).expect_err("bad [ship] must fail").to_string();
    assert!(message.contains("ship.school"), "{message}");
    assert!(message.contains("ship.postgres.url"), "{message}");
    assert!(
        !message.contains("secret"),
        "the password is never repeated: {message}"
    );
    assert!(message.contains("ship.postgres.ca_file"), "{message}");
    assert!(message.contains("/nonexistent/trust-ca.pem"), "{message}");
    assert!(message.contains("ship.syslog.address"), "{message}");
    assert!(message.contains("has no port"), "{message}");

    let good = format!(
        "{EMBEDDED_DEFAULT}\n[ship]\nschool = \"Oak Primary\"\n[ship.postgres]\n\
         url = \"postgres://lollipop@db.trust.example/trust?sslmode=require\"\n\
         [ship.syslog]\naddress = \"logs.trust.example:6514\"\ntls = true\n"
    );
    let config = parse(&good).expect("a good [ship] parses");
    assert_eq!(config.ship_school(), "Oak Primary");
    assert!(
        config
            .ship_destinations()
            .contains("syslog logs.trust.example:6514 over TLS"),
        "{}",
        config.ship_destinations()
    );
}
