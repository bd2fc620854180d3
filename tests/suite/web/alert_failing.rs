//! An alert channel that fails is said, not hidden: with email pointing at
//! a closed port and a working webhook, an alert still arrives by webhook,
//! a notice about the email failure follows it there, and the dashboard
//! shows the failure in red.

use crate::support::web::*;
use crate::support::*;
use lollipop::admin::Role;

#[test]
fn failing_email_is_told_by_webhook_and_shown_in_red_on_the_dashboard() {
    let upstream = TestUpstream::start();
    let hook = TestHttp::start();
    hook.serve("/hook", 200, "ok");
    // Nothing listens here: every email attempt is refused.
    let closed = free_port();
    let web = free_port();
    let config = TestConfig::school()
        .list("test-adult", "adult.txt", "pornography")
        .listen_for("127.0.0.1:0", "ks2")
        .table("log", "time_zone = \"UTC\"")
        .table("alerts", "school_name = \"Hilltop Primary\"")
        .table(
            "alerts.email",
            &format!(
                "host = \"127.0.0.1\"\nport = {closed}\nstarttls = false\nfrom = \"lollipop@hilltop.sch.uk\"\nto = [\"dsl@hilltop.sch.uk\"]"
            ),
        )
        .table("alerts.webhook", &format!("url = \"{}\"", hook.url("/hook")))
        .table("web", &format!("listen = [\"127.0.0.1:{web}\"]"))
        .blocklist("ks2", &["gambling", "pornography"], "")
        .toml();
    let lists: &[(&str, &str)] = &[
        ("gambling.txt", "bet365.com\n"),
        ("video.txt", "youtube.com\n"),
        ("iwf.txt", "0.0.0.0 abuse.example.com\n"),
        ("adult.txt", "adult-site.example\n"),
    ];
    let lollipop = TestLollipop::start(&config, &upstream, lists);
    let school = WebSchool {
        upstream,
        lollipop,
        web: std::net::SocketAddr::from(([127, 0, 0, 1], web)),
    };
    assert_eq!(
        answers(&a(school.ks2(), "www.adult-site.example.")),
        ["A 0.0.0.0"]
    );

    // (a) The alert itself reaches the webhook...
    let bodies = || -> Vec<serde_json::Value> { hook.alerts().iter().map(|r| r.json()).collect() };
    wait_until("the alert by webhook", || {
        bodies()
            .iter()
            .any(|b| b["kind"] != "system" && b.to_string().contains("pornography"))
    });
    // ...and so does a notice that email is failing, naming the server
    // and counting the alert it could not deliver.
    wait_until("a notice about email by webhook", || {
        bodies().iter().any(|b| {
            b["kind"] == "system"
                && b["headline"] == "Safeguarding alerts by email are failing"
                && b["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("1 alert was not delivered by email"))
        })
    });
    let notice = bodies()
        .into_iter()
        .rfind(|b| b["headline"] == "Safeguarding alerts by email are failing")
        .expect("the notice");
    let text = notice["text"].as_str().unwrap_or_default().to_string();
    assert!(
        text.contains("Alerts to the safeguarding lead by email are failing since "),
        "{text}"
    );
    assert!(
        text.contains(&format!("could not connect to 127.0.0.1:{closed}")),
        "{text}"
    );
    assert!(text.contains("pornography"), "{text}");
    assert!(text.contains("Alerts still arrive by webhook"), "{text}");

    // (b) The dashboard says so, in red.
    let head = school.signed_in("head", Role::Viewer);
    let page = head.get("/");
    assert_eq!(page.status, 200);
    let line = page
        .body
        .lines()
        .find(|l| l.contains("Alerts to the safeguarding lead by email are failing"))
        .unwrap_or_else(|| panic!("no line on the dashboard: {}", page.body));
    assert!(line.contains("status-bad"), "{line}");
    assert!(
        line.contains(&format!("could not connect to 127.0.0.1:{closed}")),
        "{line}"
    );
}
