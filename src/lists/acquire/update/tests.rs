//! The updater against a real HTTP server on loopback: what is served after
//! each update, good or rejected, and the arithmetic of when to update.

use std::io::Write;
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;
use tempfile::TempDir;

use super::*;
use crate::testkit::http::{Reply, Server};

pub(super) const NOW: u64 = 1_700_000_000;

pub(super) fn domains(n: usize) -> String {
    (0..n).map(|i| format!("site{i}.example\n")).collect()
}

pub(super) fn spec(urls: Vec<String>) -> FetchSpec {
    FetchSpec {
        timeout: Duration::from_secs(5),
        ..FetchSpec::new("adult", urls, ListFormat::Domains)
    }
}

pub(super) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn tar_gz(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in members {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, path, *data).unwrap();
    }
    gzip(&builder.into_inner().unwrap())
}

pub(super) fn copy_text(dir: &TempDir) -> Option<String> {
    std::fs::read_to_string(local_copy_path(dir.path(), "adult")).ok()
}

pub(super) fn state(dir: &TempDir) -> SourceState {
    load_state(dir.path(), "adult")
}

pub(super) fn failed(outcome: UpdateOutcome) -> (String, bool) {
    match outcome {
        UpdateOutcome::Failed {
            reason,
            kept_last_good,
        } => (reason, kept_last_good),
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// Leaves a good 100-entry copy from `/list`, as the baseline for failures.
pub(super) fn with_good_copy(server: &Server, dir: &TempDir) -> String {
    let body = domains(100);
    server.route("/list", Reply::ok(body.clone()).header("ETag", "\"v1\""));
    let outcome = update_source(&spec(vec![server.url("/list")]), dir.path(), NOW);
    assert!(matches!(
        outcome,
        UpdateOutcome::Updated { entries: 100, .. }
    ));
    body
}

/// A failure must leave the copy and what the state says about it alone.
pub(super) fn assert_kept(dir: &TempDir, body: &str, outcome: UpdateOutcome) -> String {
    let (reason, kept) = failed(outcome);
    assert!(kept, "{reason}");
    assert_eq!(copy_text(dir).as_deref(), Some(body));
    let s = state(dir);
    assert_eq!((s.entries, s.last_success), (100, Some(NOW)));
    assert_eq!(s.etag.as_deref(), Some("\"v1\""));
    assert_eq!(s.last_error.as_deref(), Some(reason.as_str()));
    assert_eq!(
        (s.consecutive_failures, s.last_attempt),
        (1, Some(NOW + 60))
    );
    assert!(!dir.path().join(".adult.list.part").exists());
    reason
}

#[test]
fn first_fetch_saves_copy_and_state() {
    let server = Server::start();
    let body = format!("# header\n{}not a domain!\n", domains(10));
    let lm = "Tue, 14 Nov 2023 22:13:20 GMT";
    server.route(
        "/list",
        Reply::ok(body.clone())
            .header("ETag", "\"abc\"")
            .header("Last-Modified", lm),
    );
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/list");
    let outcome = update_source(&spec(vec![url.clone()]), dir.path(), NOW);
    assert_eq!(
        outcome,
        UpdateOutcome::Updated {
            entries: 10,
            url: url.clone()
        }
    );
    assert_eq!(copy_text(&dir), Some(body.clone()));
    let expected = SourceState {
        etag: Some("\"abc\"".into()),
        last_modified: Some(lm.into()),
        last_attempt: Some(NOW),
        last_success: Some(NOW),
        last_error: None,
        consecutive_failures: 0,
        entries: 10,
        bad_lines: 1,
        bytes: body.len() as u64,
        url: Some(url),
    };
    assert_eq!(state(&dir), expected);
    let request = server.last_request();
    assert_eq!(request.header("if-none-match"), None);
    assert_eq!(request.header("accept-encoding"), Some("gzip"));
    assert!(
        request
            .header("user-agent")
            .unwrap()
            .starts_with("lollipop/")
    );
}

#[test]
fn not_modified_by_etag_keeps_copy_and_records_success() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let body = with_good_copy(&server, &dir);
    // Only a request carrying the right validator gets the 304.
    server.route(
        "/list",
        Reply::ok(domains(5)).when_header("If-None-Match", "\"v1\"", Reply::status(304)),
    );
    let outcome = update_source(&spec(vec![server.url("/list")]), dir.path(), NOW + 60);
    assert_eq!(outcome, UpdateOutcome::NotModified);
    assert_eq!(copy_text(&dir), Some(body));
    let s = state(&dir);
    assert_eq!(
        (s.last_attempt, s.last_success),
        (Some(NOW + 60), Some(NOW + 60))
    );
    assert_eq!((s.entries, s.etag.as_deref()), (100, Some("\"v1\"")));
}

#[test]
fn not_modified_by_last_modified() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let lm = "Wed, 01 Nov 2023 10:00:00 GMT";
    server.route("/list", Reply::ok(domains(20)).header("Last-Modified", lm));
    let url = server.url("/list");
    update_source(&spec(vec![url.clone()]), dir.path(), NOW);
    server.route(
        "/list",
        Reply::ok(domains(2)).when_header("If-Modified-Since", lm, Reply::status(304)),
    );
    let outcome = update_source(&spec(vec![url]), dir.path(), NOW + 60);
    assert_eq!(outcome, UpdateOutcome::NotModified);
    assert_eq!(copy_text(&dir), Some(domains(20)));
    assert_eq!(server.last_request().header("if-none-match"), None);
}

#[test]
fn validators_are_not_sent_without_a_local_copy() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    with_good_copy(&server, &dir);
    std::fs::remove_file(local_copy_path(dir.path(), "adult")).unwrap();
    server.route(
        "/list",
        Reply::ok(domains(7)).when_header("If-None-Match", "\"v1\"", Reply::status(304)),
    );
    let outcome = update_source(&spec(vec![server.url("/list")]), dir.path(), NOW + 60);
    assert!(matches!(outcome, UpdateOutcome::Updated { entries: 7, .. }));
    assert_eq!(server.last_request().header("if-none-match"), None);
}

#[test]
fn a_404_falls_back_to_the_mirror() {
    let server = Server::start();
    server.route("/mirror", Reply::ok(domains(4)));
    let dir = tempfile::tempdir().unwrap();
    let mirror = server.url("/mirror");
    let outcome = update_source(
        &spec(vec![server.url("/gone"), mirror.clone()]),
        dir.path(),
        NOW,
    );
    assert_eq!(
        outcome,
        UpdateOutcome::Updated {
            entries: 4,
            url: mirror.clone()
        }
    );
    assert_eq!(copy_text(&dir), Some(domains(4)));
    assert_eq!(state(&dir).url, Some(mirror));
}

#[test]
fn every_mirror_failing_keeps_the_old_copy() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let body = with_good_copy(&server, &dir);
    server.route("/list", Reply::status(404));
    server.route("/mirror", Reply::status(503));
    let urls = vec![server.url("/list"), server.url("/mirror")];
    let reason = assert_kept(
        &dir,
        &body,
        update_source(&spec(urls), dir.path(), NOW + 60),
    );
    assert!(reason.contains("/list: HTTP 404 Not Found"), "{reason}");
    assert!(
        reason.contains("/mirror: HTTP 503 Service Unavailable"),
        "{reason}"
    );
}

#[test]
fn a_list_shrunk_to_three_lines_is_rejected() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let body = with_good_copy(&server, &dir);
    server.route("/list", Reply::ok(domains(3)));
    let reason = assert_kept(
        &dir,
        &body,
        update_source(&spec(vec![server.url("/list")]), dir.path(), NOW + 60),
    );
    assert!(reason.contains("3 entries, down from 100"), "{reason}");
}

#[test]
fn shrink_baseline_survives_a_lost_state_file() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    with_good_copy(&server, &dir);
    std::fs::write(dir.path().join("adult.state.json"), "{ corrupt").unwrap();
    assert_eq!(state(&dir), SourceState::default());
    server.route("/list", Reply::ok(domains(3)));
    let (reason, kept) = failed(update_source(
        &spec(vec![server.url("/list")]),
        dir.path(),
        NOW + 60,
    ));
    assert!(kept && reason.contains("down from 100"), "{reason}");
}

#[test]
fn junk_is_rejected_by_parse_ratio() {
    let server = Server::start();
    let html =
        "<html>\n<head><title>Moved</title></head>\n<body>gone</body>\n</html>\nok.example\n";
    server.route("/list", Reply::ok(html));
    let dir = tempfile::tempdir().unwrap();
    let (reason, kept) = failed(update_source(
        &spec(vec![server.url("/list")]),
        dir.path(),
        NOW,
    ));
    assert!(!kept && reason.contains("of lines parsed"), "{reason}");
    assert_eq!(copy_text(&dir), None);
    assert!(!dir.path().join(".adult.list.part").exists());
}

#[test]
fn an_empty_list_is_rejected() {
    let server = Server::start();
    server.route("/list", Reply::ok("# nothing yet\n\n"));
    let dir = tempfile::tempdir().unwrap();
    let (reason, _) = failed(update_source(
        &spec(vec![server.url("/list")]),
        dir.path(),
        NOW,
    ));
    assert!(reason.contains("no entries"), "{reason}");
}

#[test]
fn gzip_archives_are_unpacked() {
    let server = Server::start();
    server.route("/list.gz", Reply::ok(gzip(domains(30).as_bytes())));
    let dir = tempfile::tempdir().unwrap();
    let gz = FetchSpec {
        archive: Archive::Gzip,
        ..spec(vec![server.url("/list.gz")])
    };
    let outcome = update_source(&gz, dir.path(), NOW);
    assert!(matches!(
        outcome,
        UpdateOutcome::Updated { entries: 30, .. }
    ));
    assert_eq!(copy_text(&dir), Some(domains(30)));

    // A server labelling the `.gz` itself as Content-Encoding: gzip.
    server.route(
        "/list.gz",
        Reply::ok(gzip(domains(31).as_bytes())).header("Content-Encoding", "gzip"),
    );
    let outcome = update_source(&gz, dir.path(), NOW + 60);
    assert!(matches!(
        outcome,
        UpdateOutcome::Updated { entries: 31, .. }
    ));
}

#[test]
fn content_encoding_gzip_is_undone() {
    let server = Server::start();
    server.route(
        "/list",
        Reply::ok(gzip(domains(12).as_bytes())).header("Content-Encoding", "gzip"),
    );
    let dir = tempfile::tempdir().unwrap();
    let outcome = update_source(&spec(vec![server.url("/list")]), dir.path(), NOW);
    assert!(matches!(
        outcome,
        UpdateOutcome::Updated { entries: 12, .. }
    ));
    assert_eq!(copy_text(&dir), Some(domains(12)));
}

#[test]
fn tar_gz_member_is_extracted() {
    let server = Server::start();
    let wanted = domains(25);
    let archive = tar_gz(&[
        ("./blacklists/gambling/domains", domains(2).as_bytes()),
        ("./blacklists/adult/domains", wanted.as_bytes()),
        ("./blacklists/adult/urls", b"site0.example/path\n"),
    ]);
    server.route("/bl.tar.gz", Reply::ok(archive));
    let dir = tempfile::tempdir().unwrap();
    let mut tgz = FetchSpec {
        archive: Archive::TarGz {
            member: "blacklists/adult/domains".into(),
        },
        ..spec(vec![server.url("/bl.tar.gz")])
    };
    let outcome = update_source(&tgz, dir.path(), NOW);
    assert!(matches!(
        outcome,
        UpdateOutcome::Updated { entries: 25, .. }
    ));
    assert_eq!(copy_text(&dir), Some(wanted.clone()));

    tgz.archive = Archive::TarGz {
        member: "blacklists/porn/domains".into(),
    };
    let (reason, kept) = failed(update_source(&tgz, dir.path(), NOW + 60));
    assert!(
        kept && reason.contains("no file member 'blacklists/porn/domains'"),
        "{reason}"
    );
    assert_eq!(copy_text(&dir), Some(wanted));
}

#[test]
fn a_bad_name_is_refused_before_touching_disk() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["../escape", ".hidden", "", "a/b", "with space"] {
        let bad = FetchSpec::new(
            name,
            vec!["http://127.0.0.1:1/".into()],
            ListFormat::Domains,
        );
        let (reason, kept) = failed(update_source(&bad, dir.path(), NOW));
        assert!(!kept && reason.contains("list name"), "{reason}");
    }
    assert!(check_list_name("ut1-adult_v2.domains").is_ok());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn due_and_backoff_arithmetic() {
    let hour = Duration::from_secs(3600);
    let spec = FetchSpec {
        cadence: hour,
        ..spec(vec![])
    };
    let at = |last: u64, failures: u32| SourceState {
        last_attempt: Some(last),
        consecutive_failures: failures,
        ..SourceState::default()
    };
    assert!(is_due(&spec, &SourceState::default(), NOW));
    assert!(!is_due(&spec, &at(NOW, 0), NOW + 3599));
    assert!(is_due(&spec, &at(NOW, 0), NOW + 3600));
    // Retries after 5, 10, 20, 40 minutes, then never later than the cadence.
    for (failures, wait) in [
        (1, 300),
        (2, 600),
        (3, 1200),
        (4, 2400),
        (5, 3600),
        (40, 3600),
    ] {
        assert!(
            !is_due(&spec, &at(NOW, failures), NOW + wait - 1),
            "{failures}"
        );
        assert!(is_due(&spec, &at(NOW, failures), NOW + wait), "{failures}");
    }
    // A clock set back must not stall updates.
    assert!(is_due(&spec, &at(NOW + 1000, 0), NOW));
}

#[test]
fn stale_after_three_cadences_without_success() {
    let spec = FetchSpec {
        cadence: Duration::from_secs(3600),
        ..spec(vec![])
    };
    let ok_at = |t: u64| SourceState {
        last_success: Some(t),
        last_attempt: Some(t),
        ..SourceState::default()
    };
    assert!(!is_stale(&spec, &ok_at(NOW), NOW + 3 * 3600));
    assert!(is_stale(&spec, &ok_at(NOW), NOW + 3 * 3600 + 1));
    assert!(!is_stale(&spec, &ok_at(NOW + 50), NOW));
    assert!(!is_stale(&spec, &SourceState::default(), NOW));
    let never_worked = SourceState {
        last_attempt: Some(NOW),
        consecutive_failures: 1,
        ..SourceState::default()
    };
    assert!(is_stale(&spec, &never_worked, NOW));
}

#[test]
fn archive_toml_shapes() {
    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct Source {
        #[serde(default)]
        archive: Archive,
    }
    let parse = |text: &str| toml::from_str::<Source>(text).map(|s| s.archive);
    assert_eq!(parse(""), Ok(Archive::None));
    assert_eq!(parse("archive = \"none\""), Ok(Archive::None));
    assert_eq!(parse("archive = \"gzip\""), Ok(Archive::Gzip));
    let tgz = Archive::TarGz {
        member: "blacklists/adult/domains".into(),
    };
    assert_eq!(
        parse("archive = { tar_gz = \"blacklists/adult/domains\" }"),
        Ok(tgz.clone())
    );
    assert!(parse("archive = \"zip\"").is_err());
    let written = toml::to_string(&Source { archive: tgz }).unwrap();
    assert!(
        written.contains("tar_gz = \"blacklists/adult/domains\""),
        "{written}"
    );
}
