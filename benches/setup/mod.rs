//! The policy the decision benches measure: a compiled 1,000,000-domain
//! list, and one profile blocking malware and the name rules' categories,
//! built twice (name rules off and on).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use lollipop::config::{Config, ConfigOrigin};
use lollipop::lists::store::CompiledLists;
use lollipop::policy::Policy;
use lollipop::policy::clients::ProfileId;
use lollipop::policy::safesearch::SafeSearchMap;

/// The names the rules are measured on: they run only where no list
/// entry or allow decided, so unlisted names are their worst case.
pub const UNLISTED_SHORT: &str = "assets.school-website.sch.uk.";
pub const UNLISTED_LONG: &str = "cdn-07.assets-2024.static.school-website-1.sch.uk.";
pub const FLAGGED: &str = "www.su1c1de-methods.example.";

/// `LOLLIPOP_BENCH_LIST` if set (any plain-domain file), else the 1M
/// domains `bench/gen-list.py` generates (fixed seed) under `target/bench/`.
pub fn bench_list() -> PathBuf {
    if let Some(path) = std::env::var_os("LOLLIPOP_BENCH_LIST") {
        return PathBuf::from(path);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root.join("target/bench/list-1m.txt");
    if !path.exists() {
        std::fs::create_dir_all(root.join("target/bench")).expect("target/bench");
        let status = Command::new("python3")
            .arg(root.join("bench/gen-list.py"))
            .args(["--domains", "1000000", "--out"])
            .arg(&path)
            .status()
            .expect("python3 runs bench/gen-list.py");
        assert!(status.success(), "gen-list.py failed");
    }
    path
}

fn config_text_for(dir: &Path, list: &Path, rules: bool) -> String {
    format!(
        r#"
[server]
data_dir = "{data}"
default_profile = "ks2"
[[listen]]
address = "127.0.0.1:0"
[[upstream]]
address = "127.0.0.1"
protocol = "udp"
[[lists]]
name = "bench"
path = "{list}"
category = "malware"
[[lists]]
name = "garden"
path = "{garden}"
category = "child-safe"
[name_rules]
enabled = {rules}
[profiles.ks2]
mode = "blocklist"
block_categories = ["malware", "self-harm", "extremism", "pornography"]
allow_categories = ["child-safe"]
allow_domains = ["example.org"]
deny_domains = ["example.net"]
"#,
        data = dir.display(),
        list = list.display(),
        garden = dir.join("garden.txt").display(),
    )
}

/// The policies with the name rules off and on, and the profile, over
/// `list` compiled into `dir` (compiled again only when `recompile` or
/// when `dir` holds none yet).
pub fn policies(dir: &Path, list: &Path, recompile: bool) -> (Policy, Policy, ProfileId) {
    std::fs::write(dir.join("garden.txt"), "cbeebies.com\nbbc.co.uk\n").expect("garden");
    let parse = |rules| {
        Config::parse(&config_text_for(dir, list, rules), ConfigOrigin::default()).expect("config")
    };
    let config = parse(false);
    if recompile || !config.compiled_lists_path().exists() {
        let started = Instant::now();
        let report = lollipop::service::settings::compile_lists(&config).expect("compile");
        eprintln!(
            "compile: {} domains in {:.2} s, fst {} bytes = {:.2} bytes/domain",
            report.unique_domains,
            started.elapsed().as_secs_f64(),
            report.fst_bytes,
            report.bytes_per_domain
        );
    }
    let lists = Arc::new(CompiledLists::open(&config.compiled_lists_path()).expect("open"));
    let safe_search = Arc::new(SafeSearchMap::embedded().expect("map"));
    let off = Policy::build(&config, lists.clone(), safe_search.clone(), &[]).expect("policy");
    let on = Policy::build(&parse(true), lists, safe_search, &[]).expect("policy");
    let profile = off.profile_id("ks2").expect("ks2");
    (off, on, profile)
}
