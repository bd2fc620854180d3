//! The school's own names over real sockets: its Active Directory domain and
//! reverse zone go to its domain controller (a scripted server on loopback),
//! private and special-use names never leave the appliance, the appliance
//! answers for its own name, and filtering still applies inside a zone unless
//! the config exempts it (locked categories even then).

use hickory_server::proto::op::ResponseCode;

use crate::support::scripted::{Behaviour, SCRIPTED_ADDRESS, ScriptedUpstream};
use crate::support::*;

const DC_ADDRESS: &str = "10.0.10.20";

fn domain_controller() -> ScriptedUpstream {
    ScriptedUpstream::answering(
        Behaviour::Answer { ttl: 60 },
        DC_ADDRESS.parse().expect("ip"),
    )
}

fn config(upstream: &ScriptedUpstream, dc: &ScriptedUpstream, zone_extra: &str) -> String {
    TestConfig::new()
        .server("school_domain = \"stmarys.internal\"")
        .listen("127.0.0.1:0")
        .section(&format!(
            "[[upstream]]\naddress = \"{}\"\nprotocol = \"udp\"\n",
            upstream.address
        ))
        .section(&format!(
            "[[zones]]\ndomain = \"stmarys.internal\"\nservers = [\"{}\"]\n{zone_extra}\n\
             [[zones]]\ndomain = \"10.in-addr.arpa\"\nservers = [\"{}\"]\n",
            dc.address, dc.address
        ))
        .table(
            "blocking",
            "answer = \"null\"\nlocked_categories = [\"iwf\"]",
        )
        .list("gambling", "gambling.txt", "gambling")
        .list("iwf", "iwf.txt", "iwf")
        .blocklist("ks2", &["gambling", "iwf"], "")
        .table("web", "enabled = false\npublic_url = \"https://10.0.10.2\"")
        .toml()
}

const LISTS: &[(&str, &str)] = &[
    ("gambling.txt", "games.stmarys.internal\nbet365.com\n"),
    ("iwf.txt", "bad.stmarys.internal\n"),
];

#[test]
fn the_schools_zones_go_to_its_domain_controller_and_private_names_stay_here() {
    let upstream = ScriptedUpstream::start(Behaviour::Answer { ttl: 60 });
    let dc = domain_controller();
    let unused = TestUpstream::start();
    let lollipop = TestLollipop::start(&config(&upstream, &dc, ""), &unused, LISTS);

    // The AD domain: answered by the DC, its inside address kept (no
    // rebinding filter on the school's own zone).
    let dc_answer = a(lollipop.address(), "dc01.stmarys.internal.");
    assert_eq!(answers(&dc_answer), [format!("A {DC_ADDRESS}")]);
    assert!(extended_error(&dc_answer).is_none());
    let public = a(lollipop.address(), "www.bbc.co.uk.");
    assert_eq!(answers(&public), [format!("A {SCRIPTED_ADDRESS}")]);
    // The school's reverse zone goes to the DC too (dig -x, a real client).
    let out = dig(lollipop.address(), &["-x", "10.0.10.5"]);
    assert!(out.contains("status: NOERROR"), "{out}");

    // Private reverse zones and special-use names are answered here.
    let out = dig(lollipop.address(), &["-x", "192.168.1.1"]);
    assert!(out.contains("status: NXDOMAIN"), "{out}");
    assert!(
        out.contains("168.192.in-addr.arpa."),
        "the empty zone's SOA: {out}"
    );
    for name in [
        "printer.local.",
        "nas.home.arpa.",
        "x.invalid.",
        "shop.internal.",
    ] {
        let reply = a(lollipop.address(), name);
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NXDomain,
            "{name}"
        );
    }
    let localhost = a(lollipop.address(), "localhost.");
    assert_eq!(answers(&localhost), ["A 127.0.0.1"]);
    let own = a(lollipop.address(), "lollipop.stmarys.internal.");
    assert_eq!(answers(&own), ["A 10.0.10.2"]);

    // Who was asked what: nothing private reached the public upstream.
    let to_upstream = upstream.names();
    assert_eq!(to_upstream, ["www.bbc.co.uk."], "{to_upstream:?}");
    let to_dc = dc.names();
    assert!(
        to_dc.contains(&"dc01.stmarys.internal.".to_string()),
        "{to_dc:?}"
    );
    assert!(
        to_dc.contains(&"5.10.0.10.in-addr.arpa.".to_string()),
        "{to_dc:?}"
    );
    assert_eq!(to_dc.len(), 2, "{to_dc:?}");
}

#[test]
fn filtering_applies_inside_a_zone_unless_exempted_and_locked_categories_always() {
    let upstream = ScriptedUpstream::start(Behaviour::Answer { ttl: 60 });
    let dc = domain_controller();
    let unused = TestUpstream::start();
    let filtered = TestLollipop::start(&config(&upstream, &dc, ""), &unused, LISTS);
    let blocked = a(filtered.address(), "games.stmarys.internal.");
    assert_eq!(answers(&blocked), ["A 0.0.0.0"]);
    assert!(dc.ids_for("games.stmarys.internal.").is_empty());

    let exempt = TestLollipop::start(&config(&upstream, &dc, "filter = false"), &unused, LISTS);
    let allowed = a(exempt.address(), "games.stmarys.internal.");
    assert_eq!(answers(&allowed), [format!("A {DC_ADDRESS}")]);
    let locked = a(exempt.address(), "bad.stmarys.internal.");
    assert_eq!(
        answers(&locked),
        ["A 0.0.0.0"],
        "a locked category is never exempt"
    );
    // Names outside the zone are filtered as ever.
    let outside = a(exempt.address(), "www.bet365.com.");
    assert_eq!(answers(&outside), ["A 0.0.0.0"]);
}
