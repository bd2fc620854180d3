//! The trust dashboard against a real PostgreSQL 15 started by the test
//! (the suite's `TrustPostgres`), its tables made by the boxes' own schema
//! and holding rows as the school boxes ship them: sign-in and roles, each
//! school's health, the week's figures, device names beside self-harm for
//! the DSL only, the weekly report, the retention purge, and TLS.

use crate::support::central::{TestCertificates, TrustPostgres, trust_dashboard};
use crate::support::web::*;
use crate::support::*;

/// Two schools: Oak answering, Elm silent for two days with stale lists
/// and no alerts set up; a week of blocks, one self-harm attempt by a
/// named pupil (its alert sent by email, not delivered by webhook), one
/// outside Elm's walled garden, one on a licensed list (locked, its entry withheld), and rows older than the
/// retention.
const ROWS: &str = "
INSERT INTO boxes (box_id, school, last_seen, lists_stale, alerts_configured, version) VALUES
  ('oak-1', 'Oak Primary', now() - interval '1 minute', false, true, '0.1.0'),
  ('elm-1', 'Elm Infants', now() - interval '2 days', true, false, '0.1.0');
INSERT INTO blocked (box_id, event_id, at, client, device, owner, profile, room, name, category, rule) VALUES
  ('oak-1', 1, now() - interval '1 day', '10.0.1.7', 'Y5-iPad-07', 'Amy Pupil', 'ks2', 'Year 5', 'bet365.com', 'gambling', 'list'),
  ('oak-1', 2, now() - interval '2 days', '10.0.1.7', 'Y5-iPad-07', 'Amy Pupil', 'ks2', 'Year 5', 'bet365.com', 'gambling', 'list'),
  ('oak-1', 3, now() - interval '3 hours', '10.0.1.9', 'Y6-Laptop-03', 'Ben Pupil', 'ks2', 'Year 6', 'thinspo-cdn.example.net', 'self-harm', 'list'),
  ('oak-1', 6, now() - interval '5 hours', '10.0.1.7', 'Y5-iPad-07', 'Amy Pupil', 'ks2', 'Year 5', 'licensed-entry.example', 'iwf', NULL),
  ('elm-1', 1, now() - interval '4 days', '10.0.2.4', 'R-Tablet-01', NULL, 'under5', 'Reception', 'roblox.com', 'games', 'list'),
  ('elm-1', 3, now() - interval '1 day', '10.0.2.4', 'R-Tablet-01', NULL, 'under5', 'Reception', 'cbeebies-games.example', NULL, NULL),
  ('elm-1', 2, now() - interval '40 days', '10.0.2.4', 'R-Tablet-01', NULL, 'under5', 'Reception', 'old.example', 'games', 'list');
UPDATE blocked SET locked = true WHERE category = 'iwf';
UPDATE blocked SET action = 'walled-garden' WHERE category IS NULL;
INSERT INTO alerts (box_id, event_id, at, category, device, name, channel, outcome) VALUES
  ('oak-1', 3, now() - interval '3 hours', 'self-harm', 'Y6-Laptop-03', 'thinspo-cdn.example.net', 'email', 'sent'),
  ('oak-1', 5, now() - interval '3 hours', 'self-harm', 'Y6-Laptop-03', 'thinspo-cdn.example.net', 'webhook', 'failed'),
  ('oak-1', 4, now() - interval '50 days', 'self-harm', 'Y6-Laptop-03', 'old.example', 'email', 'sent');
INSERT INTO audit (box_id, event_id, at, who, action, detail) VALUES
  ('oak-1', 1, now() - interval '45 days', 'tech', 'allow entry added', 'old');";

/// A PostgreSQL with the boxes' own tables (`src/ship/postgres_schema.sql`)
/// holding [`ROWS`].
fn trust_with_rows(tls: Option<&TestCertificates>) -> TrustPostgres {
    let postgres = TrustPostgres::start_with(tls);
    postgres.create_central_tables();
    postgres.psql(ROWS, "trust");
    postgres
}

#[test]
fn the_dashboard_reads_a_database_over_tls_and_only_with_the_trusts_ca() {
    let certificates = TestCertificates::make();
    let postgres = trust_with_rows(Some(&certificates));
    // Boxes fold a browser's retries into one row and say how many in
    // `count`: the figures count the tries, as the school's report does.
    postgres.psql(
        "UPDATE blocked SET count = 5 WHERE box_id = 'oak-1' AND event_id = 1",
        "trust",
    );
    let url = postgres.tls_url();
    let dir = tempfile::tempdir().expect("dir");
    let ca = certificates.ca.display().to_string();
    let (_dashboard, address) = trust_dashboard(dir.path(), &url, &["--database-ca", &ca]);
    let dsl = WebClient::new(address);
    assert_eq!(dsl.sign_in("dsl", &WebSchool::password("dsl")).status, 303);
    let page = dsl.get("/");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains("<tr><td>Oak Primary</td><td>gambling</td><td>6</td></tr>"),
        "{}",
        page.body
    );
    let report = dsl.get("/report?school=Oak%20Primary");
    assert!(
        report.body.contains("<strong>8</strong> blocked attempts"),
        "{}",
        report.body
    );

    // Without the trust's CA the certificate is not trusted: nothing shown.
    let other = tempfile::tempdir().expect("dir");
    let (_untrusting, address) = trust_dashboard(other.path(), &url, &[]);
    let dsl = WebClient::new(address);
    assert_eq!(dsl.sign_in("dsl", &WebSchool::password("dsl")).status, 303);
    let page = dsl.get("/");
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(
        page.body.contains("cannot reach the trust&#39;s database"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("Oak Primary"));
}

#[test]
fn the_trust_dashboard_shows_each_school_to_each_role_and_purges_old_rows() {
    let postgres = trust_with_rows(None);
    let dir = tempfile::tempdir().expect("dir");
    let (_dashboard, address) = trust_dashboard(dir.path(), &postgres.url(), &[]);
    // Rows older than 30 days are gone; this week's stay.
    wait_until("the retention purge", || postgres.count("blocked") == 6);
    assert_eq!(postgres.count("alerts"), 2);
    assert_eq!(postgres.count("audit"), 0);

    let anonymous = WebClient::new(address);
    let reply = anonymous.get("/");
    assert_eq!(reply.status, 303);
    assert_eq!(reply.location(), "/login");
    let reply = anonymous.sign_in("dsl", "wrong password entirely");
    assert_eq!(reply.status, 401, "{}", reply.body);
    let teacher = WebClient::new(address);
    let reply = teacher.sign_in("teacher", &WebSchool::password("teacher"));
    assert_eq!(reply.status, 403, "{}", reply.body);

    let dsl = WebClient::new(address);
    let reply = dsl.sign_in("dsl", &WebSchool::password("dsl"));
    assert_eq!(reply.status, 303, "{}", reply.body);
    let page = dsl.get("/");
    assert_eq!(page.status, 200, "{}", page.body);
    let body = &page.body;
    assert!(
        body.contains("Oak Primary") && body.contains("Elm Infants"),
        "{body}"
    );
    // Elm: silent for two days, lists out of date, nobody told: all red.
    assert!(
        body.contains("<span class=\"status-bad\">✖ 2 days ago: not answering?</span>"),
        "{body}"
    );
    // Oak is fine, and shown so.
    assert!(
        body.contains("<span class=\"status-ok\">✔ 1 min ago</span>"),
        "{body}"
    );
    assert!(
        body.contains("<span class=\"status-bad\">✖ out of date</span>"),
        "{body}"
    );
    assert!(
        body.contains("<span class=\"status-bad\">✖ not set up: nobody is told</span>"),
        "{body}"
    );
    // This week's figures by school and category.
    assert!(
        body.contains("<tr><td>Oak Primary</td><td>gambling</td><td>2</td></tr>"),
        "{body}"
    );
    assert!(
        body.contains("<tr><td>Elm Infants</td><td>games</td><td>1</td></tr>"),
        "{body}"
    );
    // Outside the under-5 walled garden: no category, named as the school's
    // own log names it.
    assert!(
        body.contains("<tr><td>Elm Infants</td><td>not on the approved list</td><td>1</td></tr>"),
        "{body}"
    );
    // The DSL sees who tried the self-harm site.
    assert!(body.contains("Y6-Laptop-03 (Ben Pupil)"), "{body}");
    // The alert's deliveries as the box shipped them: one failed.
    assert!(
        body.contains("<span class=\"status-ok\">✔ sent by email</span>"),
        "{body}"
    );
    assert!(
        body.contains(
            "<span class=\"status-bad\">✖ not delivered by webhook: check the school&#39;s alert settings</span>"
        ),
        "{body}"
    );

    let governor = WebClient::new(address);
    let reply = governor.sign_in("governor", &WebSchool::password("governor"));
    assert_eq!(reply.status, 303, "{}", reply.body);
    let page = governor.get("/");
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("<td>Oak Primary</td><td>self-harm</td><td>1</td>"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("Y6-Laptop-03"), "{}", page.body);
    assert!(!page.body.contains("Ben Pupil"), "{}", page.body);
    assert!(page.body.contains("shown to the safeguarding lead"));

    // The weekly report, for one school and for the trust.
    let oak = governor.get("/report?school=Oak%20Primary");
    assert_eq!(oak.status, 200);
    assert!(
        oak.body.contains("Oak Primary: the last seven days"),
        "{}",
        oak.body
    );
    assert!(
        oak.body.contains(
            "<strong>4</strong> blocked attempts; <strong>1</strong> safeguarding alert."
        ),
        "{}",
        oak.body
    );
    let trust = governor.get("/report");
    assert!(
        trust.body.contains("<strong>6</strong> blocked attempts"),
        "{}",
        trust.body
    );
    // The licensed list's attempt is counted, its name never listed.
    for report in [&oak.body, &trust.body] {
        assert!(!report.contains("licensed-entry.example"), "{report}");
    }
    assert!(
        trust
            .body
            .contains("<tr><td>bet365.com</td><td>2</td></tr>"),
        "{}",
        trust.body
    );
    assert_eq!(governor.get("/report?school=nowhere").status, 404);

    // Signing out ends the session.
    let page = governor.get("/");
    let reply = governor.post("/logout", &[("csrf", &csrf_in(&page.body))]);
    assert_eq!(reply.status, 303);
    assert_eq!(governor.get("/").status, 303);
}
