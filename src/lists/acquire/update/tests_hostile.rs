//! The updater against a loopback server that misbehaves: slow, cut off,
//! oversized, or guarding a licensed feed.

use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::tests::{
    NOW, assert_kept, copy_text, domains, failed, gzip, spec, state, with_good_copy,
};
use super::*;
use crate::testkit::http::{Reply, Server};

#[test]
fn a_first_fetch_that_fails_has_nothing_to_keep() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 1 of loopback: connection refused.
    let outcome = update_source(&spec(vec!["http://127.0.0.1:1/x".into()]), dir.path(), NOW);
    let (reason, kept) = failed(outcome);
    assert!(
        !kept && reason.starts_with("http://127.0.0.1:1/x: "),
        "{reason}"
    );
    assert_eq!(copy_text(&dir), None);
    let s = state(&dir);
    assert_eq!((s.consecutive_failures, s.last_success), (1, None));
}

#[test]
fn a_slow_server_times_out_and_the_copy_is_kept() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let body = with_good_copy(&server, &dir);
    server.route(
        "/list",
        Reply::ok(domains(100)).delay(Duration::from_secs(3)),
    );
    let quick = FetchSpec {
        timeout: Duration::from_millis(500),
        ..spec(vec![server.url("/list")])
    };
    let started = Instant::now();
    let outcome = update_source(&quick, dir.path(), NOW + 60);
    assert!(started.elapsed() < Duration::from_secs(2));
    let reason = assert_kept(&dir, &body, outcome);
    assert!(reason.contains("timed out"), "{reason}");
}

#[test]
fn a_body_that_stalls_times_out() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let body = with_good_copy(&server, &dir);
    let slow = Reply::ok(domains(200)).pause_after(500, Duration::from_secs(3));
    server.route("/list", slow);
    let quick = FetchSpec {
        timeout: Duration::from_millis(500),
        ..spec(vec![server.url("/list")])
    };
    let started = Instant::now();
    let outcome = update_source(&quick, dir.path(), NOW + 60);
    assert!(started.elapsed() < Duration::from_secs(2));
    let reason = assert_kept(&dir, &body, outcome);
    assert!(reason.contains("timed out"), "{reason}");
}

#[test]
fn a_truncated_body_is_a_failure() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let body = with_good_copy(&server, &dir);
    server.route("/list", Reply::ok(domains(200)).cut_after(1000));
    let reason = assert_kept(
        &dir,
        &body,
        update_source(&spec(vec![server.url("/list")]), dir.path(), NOW + 60),
    );
    assert!(
        reason.contains("download ended before it was complete"),
        "{reason}"
    );
    // Without a length, only the gzip stream itself shows it was cut.
    let gz = gzip(domains(200).as_bytes());
    server.route(
        "/list.gz",
        Reply::ok(gz.clone())
            .without_length()
            .cut_after(gz.len() / 2),
    );
    let cut = FetchSpec {
        archive: Archive::Gzip,
        ..spec(vec![server.url("/list.gz")])
    };
    let (reason, kept) = failed(update_source(&cut, dir.path(), NOW + 120));
    assert!(
        kept && reason.contains("gzip archive ended before"),
        "{reason}"
    );
    assert_eq!(copy_text(&dir).as_deref(), Some(body.as_str()));
}

#[test]
fn oversize_bodies_are_rejected_at_every_layer() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let small = |path: &str, archive: Archive| FetchSpec {
        max_bytes: 4096,
        archive,
        ..spec(vec![server.url(path)])
    };
    // Refused on its Content-Length alone.
    server.route("/big", Reply::ok(domains(1000)));
    let (reason, _) = failed(update_source(
        &small("/big", Archive::None),
        dir.path(),
        NOW,
    ));
    assert!(
        reason.contains("body is larger than max_bytes (4096"),
        "{reason}"
    );
    // No length announced: cut off while reading.
    server.route("/stream", Reply::ok(domains(1000)).without_length());
    let (reason, _) = failed(update_source(
        &small("/stream", Archive::None),
        dir.path(),
        NOW,
    ));
    assert!(
        reason.contains("download is larger than max_bytes"),
        "{reason}"
    );
    // A small gzip that unpacks past the limit.
    let bomb = gzip(&vec![b'\n'; 1 << 20]);
    assert!(bomb.len() < 4096);
    server.route("/bomb.gz", Reply::ok(bomb.clone()));
    let (reason, _) = failed(update_source(
        &small("/bomb.gz", Archive::Gzip),
        dir.path(),
        NOW,
    ));
    assert!(
        reason.contains("gzip archive is larger than max_bytes"),
        "{reason}"
    );
    server.route("/bomb", Reply::ok(bomb).header("Content-Encoding", "gzip"));
    let (reason, _) = failed(update_source(
        &small("/bomb", Archive::None),
        dir.path(),
        NOW,
    ));
    assert!(
        reason.contains("gzip Content-Encoding is larger"),
        "{reason}"
    );
    assert_eq!(copy_text(&dir), None);
}

fn credential_spec(dir: &TempDir, url: String, content: &str) -> FetchSpec {
    let path = dir.path().join("feed.credential");
    std::fs::write(&path, content).unwrap();
    FetchSpec {
        credential_file: Some(path),
        ..spec(vec![url])
    }
}

#[test]
fn credentials_are_sent_but_never_reported() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    server.route("/feed", Reply::ok(domains(3)));
    let bearer = credential_spec(&dir, server.url("/feed"), "Bearer s3cret-token\n");
    assert!(matches!(
        update_source(&bearer, dir.path(), NOW),
        UpdateOutcome::Updated { .. }
    ));
    let auth = server.last_request();
    assert_eq!(auth.header("authorization"), Some("Bearer s3cret-token"));

    let basic = credential_spec(&dir, server.url("/feed"), "school:pa55word");
    update_source(&basic, dir.path(), NOW + 60);
    // base64("school:pa55word")
    let expected = Some("Basic c2Nob29sOnBhNTV3b3Jk");
    assert_eq!(server.last_request().header("authorization"), expected);

    server.route("/feed", Reply::status(401));
    let bearer = credential_spec(&dir, server.url("/feed"), "Bearer s3cret-token");
    let (reason, _) = failed(update_source(&bearer, dir.path(), NOW + 120));
    assert!(
        reason.contains("401") && !reason.contains("s3cret"),
        "{reason}"
    );

    let junk = credential_spec(&dir, server.url("/feed"), "s3cret-without-colon");
    let (reason, _) = failed(update_source(&junk, dir.path(), NOW + 180));
    assert!(
        reason.contains("feed.credential") && !reason.contains("s3cret"),
        "{reason}"
    );
    let missing = FetchSpec {
        credential_file: Some(dir.path().join("absent.credential")),
        ..spec(vec![server.url("/feed")])
    };
    let (reason, _) = failed(update_source(&missing, dir.path(), NOW + 240));
    assert!(reason.contains("absent.credential"), "{reason}");
}

#[test]
fn credentials_follow_redirects_only_on_the_same_host() {
    let server = Server::start();
    let other = Server::start_on("127.0.0.2");
    let dir = tempfile::tempdir().unwrap();
    server.route("/here", Reply::status(302).header("Location", "/real"));
    server.route("/real", Reply::ok(domains(3)));
    let same = credential_spec(&dir, server.url("/here"), "Bearer tok");
    assert!(matches!(
        update_source(&same, dir.path(), NOW),
        UpdateOutcome::Updated { .. }
    ));
    assert_eq!(server.last_request().path, "/real");
    assert_eq!(
        server.last_request().header("authorization"),
        Some("Bearer tok")
    );

    other.route("/elsewhere", Reply::ok(domains(3)));
    server.route(
        "/away",
        Reply::status(302).header("Location", &other.url("/elsewhere")),
    );
    let away = credential_spec(&dir, server.url("/away"), "Bearer tok");
    update_source(&away, dir.path(), NOW + 60);
    let seen = other.last_request();
    assert_eq!(seen.path, "/elsewhere");
    assert_eq!(seen.header("authorization"), None);
}

#[test]
fn https_to_a_server_without_tls_is_an_error_not_a_panic() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/list").replacen("http://", "https://", 1);
    let (reason, kept) = failed(update_source(&spec(vec![url]), dir.path(), NOW));
    assert!(
        !kept && reason.starts_with("https://127.0.0.1:"),
        "{reason}"
    );
}

#[test]
fn a_second_update_of_the_same_list_waits_its_turn() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let body = with_good_copy(&server, &dir);
    let held = std::fs::File::create(dir.path().join(".adult.lock")).unwrap();
    held.try_lock().unwrap();
    server.route("/list", Reply::ok(domains(150)));
    let (reason, kept) = failed(update_source(
        &spec(vec![server.url("/list")]),
        dir.path(),
        NOW + 60,
    ));
    assert!(kept && reason.contains("already running"), "{reason}");
    // Not counted against the list: the running update records its own result.
    assert_eq!(state(&dir).last_attempt, Some(NOW));
    drop(held);
    let outcome = update_source(&spec(vec![server.url("/list")]), dir.path(), NOW + 60);
    assert!(matches!(
        outcome,
        UpdateOutcome::Updated { entries: 150, .. }
    ));
    assert_ne!(copy_text(&dir).as_deref(), Some(body.as_str()));
}
