//! A trust's signed policy bundle, end to end: the trust's key and signed
//! file made with the real `lollipop trust` commands, served over HTTP on
//! loopback, fetched by `lollipop lists update` for a running school, put
//! in force (dig sees the bundle's blocks), a tampered or older bundle
//! refused with the last good one kept (and said so in `lists status` and
//! on the dashboard), and the page's allow entry, unlock and the school's
//! own file refused where the bundle forbids them, naming the bundle.

use std::path::Path;
use std::process::Command;

use crate::support::web::*;
use crate::support::*;
use lollipop::admin::Role;
use lollipop::testkit::http::Reply as Served;

fn trust_cli(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_lollipop"))
        .args(["trust"])
        .args(args)
        .output()
        .expect("lollipop runs");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// The trust's key pair, made by `lollipop trust keygen`: the key file and
/// the public key it printed.
fn keygen(dir: &Path) -> (String, String) {
    let key = dir.join("trust.key");
    let (ok, out) = trust_cli(&["keygen", "--out", &key.display().to_string()]);
    assert!(ok, "{out}");
    let public = out
        .lines()
        .find_map(|line| line.strip_prefix("public_key = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("keygen prints the public key")
        .to_string();
    (key.display().to_string(), public)
}

/// A bundle signed with `lollipop trust sign`: ks2 blocks gambling,
/// misinformation and self-harm, from lists the trust serves.
fn signed_bundle(dir: &Path, key: &str, serial: u64, http: &TestHttp) -> Vec<u8> {
    let text = format!(
        "serial = {serial}\ntrust = \"Oak Learning Trust\"\n\
         alert_categories = [\"self-harm\"]\n\
         [local]\nallow_entries = true\nunlock = \"not-alerting\"\n\
         [[lists]]\nname = \"trust-misinformation\"\nurls = [\"{}\"]\ncategory = \"misinformation\"\n\
         [[lists]]\nname = \"trust-self-harm\"\nurls = [\"{}\"]\ncategory = \"self-harm\"\n\
         [profiles.ks2]\nmode = \"blocklist\"\nblock_categories = [\"gambling\", \"misinformation\", \"self-harm\"]\n",
        http.url("/misinformation.txt"),
        http.url("/self-harm.txt"),
    );
    let input = dir.join(format!("bundle-{serial}.toml"));
    let output = dir.join(format!("bundle-{serial}.signed"));
    std::fs::write(&input, text).expect("bundle");
    let (ok, out) = trust_cli(&[
        "sign",
        "--key",
        key,
        "--in",
        &input.display().to_string(),
        "--out",
        &output.display().to_string(),
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!(
            "Oak Learning Trust's policy bundle (serial {serial}) signed"
        )),
        "{out}"
    );
    std::fs::read(output).expect("signed file")
}

/// The school's own ks2 blocks gambling only, and its staff profile is its
/// own; it follows the trust's bundle at `http`.
fn school_following(http: &TestHttp, public_key: &str, ks2_blocks: &[&str]) -> WebSchool {
    let config = |web: &str| {
        TestConfig::school()
            .listen_for("127.0.0.1:0", "ks2")
            .listen_for("127.0.0.1:0", "staff")
            .table("log", "time_zone = \"UTC\"")
            .table("web", web)
            .table("updates", "enabled = false")
            .blocklist("ks2", ks2_blocks, "")
            .blocklist("staff", &["gambling"], "audience = \"staff\"")
            .table(
                "trust",
                &format!(
                    "bundle_url = \"{}\"\npublic_key = \"{public_key}\"",
                    http.url("/bundle.toml")
                ),
            )
            .toml()
    };
    WebSchool::with_config(config, SCHOOL_LISTS)
}

fn short(server: std::net::SocketAddr, name: &str) -> String {
    dig(server, &[name, "A", "+short"]).trim().to_string()
}

fn update(school: &WebSchool) -> String {
    let out = lollipop_cli(
        &school.lollipop.dir().join("lollipop.toml"),
        &["lists", "update"],
    );
    let reloaded = school
        .lollipop
        .block_on(school.lollipop.running().reloader.reload("test"));
    assert_eq!(
        reloaded,
        lollipop::service::reload::ReloadOutcome::Reloaded,
        "{out}"
    );
    out
}

#[test]
fn a_signed_bundle_is_put_in_force_and_a_tampered_or_older_one_keeps_it() {
    let keys = tempfile::tempdir().expect("dir");
    let (key, public) = keygen(keys.path());
    let http = TestHttp::start();
    http.serve("/misinformation.txt", 200, "news.example.org\n");
    http.serve("/self-harm.txt", 200, "thinspo-cdn.example.net\n");
    let serial_2 = signed_bundle(keys.path(), &key, 2, &http);
    http.route("/bundle.toml", Served::ok(serial_2.clone()));

    let school = school_following(&http, &public, &["gambling"]);
    // The school's own profile until the bundle arrives.
    assert_ne!(short(school.ks2(), "news.example.org"), "0.0.0.0");

    let out = update(&school);
    assert!(out.contains("Trust policy bundle: updated"), "{out}");
    assert!(
        out.contains("trust-misinformation: updated, 1 entries"),
        "{out}"
    );
    assert_eq!(short(school.ks2(), "news.example.org"), "0.0.0.0");
    assert_eq!(short(school.ks2(), "thinspo-cdn.example.net"), "0.0.0.0");
    assert_eq!(short(school.ks2(), "www.bet365.com"), "0.0.0.0");
    let config = school.lollipop.dir().join("lollipop.toml");
    let status = lollipop_cli(&config, &["lists", "status"]);
    assert!(
        status.contains("Oak Learning Trust's policy bundle (serial 2) in force; last checked"),
        "{status}"
    );

    // Serial 3, one byte changed after signing: refused, serial 2 stays.
    let mut tampered = signed_bundle(keys.path(), &key, 3, &http);
    let text = String::from_utf8(tampered.clone()).expect("text");
    let at = text.find("\"misinformation\", ").expect("category") + 1;
    tampered[at] = b'M';
    http.route("/bundle.toml", Served::ok(tampered));
    let out = update(&school);
    assert!(
        out.contains("does not match the trust's public key")
            && out.contains("Oak Learning Trust's policy bundle (serial 2) stays in force"),
        "{out}"
    );
    assert_eq!(short(school.ks2(), "news.example.org"), "0.0.0.0");
    let status = lollipop_cli(&config, &["lists", "status"]);
    assert!(
        status.contains("WARNING: Oak Learning Trust's policy bundle (serial 2) in force; the last download was not used"),
        "{status}"
    );
    let admin = school.signed_in("tech", Role::Admin);
    let dashboard = admin.get("/");
    assert!(
        dashboard.body.contains("Trust policy bundle")
            && dashboard
                .body
                .contains("does not match the trust&#39;s public key"),
        "{}",
        dashboard.body
    );

    // An older serial, properly signed: refused too.
    http.route(
        "/bundle.toml",
        Served::ok(signed_bundle(keys.path(), &key, 1, &http)),
    );
    let out = update(&school);
    assert!(
        out.contains("serial 1, older than the one in force (serial 2)"),
        "{out}"
    );
    assert_eq!(short(school.ks2(), "news.example.org"), "0.0.0.0");
    let kept = std::fs::read(school.lollipop.dir().join("data/sources/trust-bundle.toml"))
        .expect("bundle in force");
    assert_eq!(kept, serial_2);
}

#[test]
fn what_the_bundle_forbids_is_refused_on_the_page_and_in_the_schools_file() {
    let keys = tempfile::tempdir().expect("dir");
    let (key, public) = keygen(keys.path());
    let http = TestHttp::start();
    http.serve("/misinformation.txt", 200, "news.example.org\n");
    http.serve("/self-harm.txt", 200, "thinspo-cdn.example.net\n");
    http.route(
        "/bundle.toml",
        Served::ok(signed_bundle(keys.path(), &key, 5, &http)),
    );
    // Before the bundle, the school's own ks2 blocks self-harm by the name
    // rules, and its safeguarding lead unlocks the site for one device.
    let school = school_following(&http, &public, &["gambling", "self-harm"]);
    let dsl = school.signed_in("mrs.dsl", Role::Dsl);
    let unlock = [
        ("domain", "thinspo-cdn.example.net"),
        ("scope", "device"),
        ("device", "127.0.0.2"),
        ("duration", "hour"),
        ("reason", "Reviewing the site with the pastoral team today"),
    ];
    let reply = dsl.submit("/unlock", "/unlock", &unlock);
    assert_eq!(reply.status, 303, "{}", reply.body);
    let from = |source: &str| {
        dig(
            school.ks2(),
            &["-b", source, "thinspo-cdn.example.net", "A", "+short"],
        )
        .trim()
        .to_string()
    };
    assert_ne!(from("127.0.0.2"), "0.0.0.0");
    assert_eq!(from("127.0.0.1"), "0.0.0.0");

    // The bundle lets no school unlock an alerting category: that unlock
    // ends with its arrival.
    update(&school);
    assert_eq!(from("127.0.0.2"), "0.0.0.0");
    assert_eq!(short(school.ks2(), "thinspo-cdn.example.net"), "0.0.0.0");

    // An allow entry for a self-harm site: refused, even for the admin.
    let admin = school.signed_in("tech", Role::Admin);
    let reply = admin.submit(
        "/rules",
        "/rules",
        &[
            ("profile", "ks2"),
            ("domain", "thinspo-cdn.example.net"),
            ("action", "allow"),
            ("reason", "Testing what the trust allows"),
        ],
    );
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert!(
        reply.body.contains(
            "Oak Learning Trust&#39;s policy bundle (serial 5) lets no school allow such a site"
        ),
        "{}",
        reply.body
    );
    // One outside the alerting categories is the school's to allow.
    let reply = admin.submit(
        "/rules",
        "/rules",
        &[
            ("profile", "ks2"),
            ("domain", "news.example.org"),
            ("action", "allow"),
            ("reason", "Year 6 media literacy lesson"),
        ],
    );
    assert_eq!(reply.status, 303, "{}", reply.body);
    assert_ne!(short(school.ks2(), "news.example.org"), "0.0.0.0");

    // The same unlock asked for again: refused under the bundle.
    let reply = dsl.submit("/unlock", "/unlock", &unlock);
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert!(
        reply.body.contains("not even its safeguarding lead"),
        "{}",
        reply.body
    );
    // Only the unlock from before the bundle is recorded (and not in force).
    assert_eq!(
        school.admin_store().live_overrides().expect("live").len(),
        1
    );
    assert!(
        school
            .audit()
            .iter()
            .any(|a| a.action == "override refused" && a.detail.contains("policy bundle"))
    );

    // The school's own staff profile may not release an alerting category:
    // `config check` names the bundle, and a reload keeps the running config.
    let outcome = school.lollipop.reload_with(|text| {
        text.replace(
            "audience = \"staff\"",
            "audience = \"staff\"\nallow_categories = [\"self-harm\"]",
        )
    });
    let lollipop::service::reload::ReloadOutcome::Rejected(message) = outcome else {
        panic!("the conflicting edit was applied");
    };
    assert!(
        message.contains("profiles.staff.allow_categories: 'self-harm' alerts the safeguarding lead, and Oak Learning Trust's policy bundle (serial 5) lets no school release such a category"),
        "{message}"
    );
    let check = lollipop_cli(
        &school.lollipop.dir().join("lollipop.toml"),
        &["config", "check"],
    );
    assert!(
        check.contains("Oak Learning Trust's policy bundle (serial 5)"),
        "{check}"
    );
    assert_eq!(short(school.ks2(), "thinspo-cdn.example.net"), "0.0.0.0");
}
