//! Check tells the truth in a school with one listener per VLAN: the page,
//! the API, the CLI and the block page all give a device the profile of the
//! listener serving its network, apply a room's unlock as DNS does, and take
//! a pasted web address for its host.

use std::process::Command;

use serde_json::Value;

use crate::support::web::*;
use crate::support::*;
use lollipop::admin::Role;
use lollipop::policy::rules::{OverrideScope, OverrideTarget};

/// Key Stage 2 rooms ask on 127.0.10.1, the staff room on 127.0.20.1.
fn config(web: &str) -> String {
    TestConfig::school()
        .listen_for("127.0.10.1:0", "ks2")
        .listen_for("127.0.20.1:0", "staff")
        .table("web", web)
        .blocklist("ks2", &["gambling", "video"], "")
        .blocklist("staff", &["gambling"], "")
        .toml()
}

fn api_check(school: &WebSchool, client: &WebClient, query: &str) -> Value {
    let reply = client.get(&format!("/api/v1/check?{query}"));
    assert_eq!(reply.status, 200, "{query}: {}", reply.body);
    let _ = school;
    serde_json::from_str(&reply.body).expect("json")
}

#[test]
fn every_view_of_a_check_uses_the_listener_serving_the_device_and_its_rooms_unlocks() {
    let school = WebSchool::with_config(config, SCHOOL_LISTS);
    let admin = school.signed_in("head", Role::Admin);

    // The page and the API: a staff-room device gets the staff profile
    // (YouTube allowed), a classroom device Key Stage 2's (blocked).
    let page =
        admin.get("/check?name=https%3A%2F%2Fwww.youtube.com%2Fwatch%3Fv%3Dx&client=127.0.20.7");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains("www.youtube.com is <span class=\"status-ok\">allowed</span> for Staff"),
        "{}",
        page.body
    );
    assert!(page.body.contains("asks on Staff network"), "{}", page.body);
    let json = api_check(&school, &admin, "name=www.youtube.com&client=127.0.10.7");
    assert_eq!(json["profile"], "ks2", "{json}");
    assert_eq!(json["listener"], "127.0.10.1:0", "{json}");
    assert_eq!(json["decision"], "blocked", "{json}");
    // A listener chosen by hand wins over the device's network.
    let json = api_check(
        &school,
        &admin,
        "name=www.youtube.com&client=127.0.10.7&listener=127.0.20.1:0",
    );
    assert_eq!(json["profile"], "staff", "{json}");

    // The CLI, on the same config and data directory.
    let cli = |client: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_lollipop"))
            .current_dir(school.lollipop.dir())
            .args([
                "--config",
                "lollipop.toml",
                "check",
                "https://www.youtube.com/",
                "--client",
                client,
            ])
            .output()
            .expect("lollipop runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = cli("127.0.20.7");
    assert!(
        out.contains("profile:  staff") && out.contains("decision: allowed"),
        "{out}"
    );
    let out = cli("127.0.10.7");
    assert!(
        out.contains("profile:  ks2") && out.contains("decision: blocked"),
        "{out}"
    );

    // A room unlock for Key Stage 2's listener: every view says unlocked
    // for a device in that room, and blocked still for the others' profile.
    let store = school.admin_store();
    store
        .add_override(
            &OverrideTarget::Domain("youtube.com".into()),
            &OverrideScope::Listener("127.0.10.1:0".into()),
            "the whole class watches the science video",
            "head",
            lollipop::clock::now_unix_ms() + 600_000,
        )
        .expect("override");
    school
        .lollipop
        .block_on(school.lollipop.running().reloader.apply_overrides())
        .expect("apply");
    let json = api_check(&school, &admin, "name=www.youtube.com&client=127.0.10.7");
    assert_eq!(json["decision"], "unlocked by a staff override", "{json}");
    let page = admin.get("/check?name=www.youtube.com&client=127.0.10.7");
    assert!(
        page.body.contains("unlocked by a staff override"),
        "{}",
        page.body
    );
    let out = cli("127.0.10.7");
    assert!(out.contains("unlocked: staff unlock"), "{out}");

    // Every profile at once.
    let json = api_check(&school, &admin, "name=www.bet365.com&profile=*");
    let profiles: Vec<&str> = json["profiles"]
        .as_array()
        .expect("profiles")
        .iter()
        .map(|p| p["decision"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(profiles, ["blocked", "blocked"], "{json}");
    let page = admin.get("/check?name=www.youtube.com&profile=*");
    assert!(
        page.body.contains("for Key Stage 2") && page.body.contains("for Staff"),
        "{}",
        page.body
    );
}

/// The block page `device` gets for `host`, fetched from its own address.
fn block_page(school: &WebSchool, device: &str, host: &str) -> String {
    let out = Command::new("curl")
        .args(["-s", "--interface", device, "-H", &format!("Host: {host}")])
        .arg(format!("http://{}/", school.web))
        .output()
        .expect("curl runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_block_page_explains_the_block_of_the_devices_own_listener() {
    // Key Stage 2 blocks YouTube as video; the staff room only by its own
    // deny entry, which names no group.
    let config = |web: &str| {
        TestConfig::school()
            .listen_for("127.0.10.1:0", "ks2")
            .listen_for("127.0.20.1:0", "staff")
            .table("web", web)
            .blocklist("ks2", &["gambling", "video"], "")
            .blocklist("staff", &["gambling"], "deny_domains = [\"youtube.com\"]")
            .toml()
    };
    let school = WebSchool::with_config(config, SCHOOL_LISTS);
    let classroom = block_page(&school, "127.0.10.7", "www.youtube.com");
    assert!(classroom.contains("This page is blocked"), "{classroom}");
    assert!(classroom.contains("<em>video</em> group"), "{classroom}");
    let staff_room = block_page(&school, "127.0.20.7", "www.youtube.com");
    assert!(staff_room.contains("This page is blocked"), "{staff_room}");
    assert!(
        !staff_room.contains("<em>video</em>"),
        "the staff room's own block: {staff_room}"
    );
}
