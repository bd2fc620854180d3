//! `/metrics`: what `dig` asked shows up as counts (queries by profile,
//! blocks by category, cache hits, upstream latency, list ages); the status
//! page's copy needs a sign-in or API token; `metrics_listen` serves it open.

use crate::support::web::*;
use crate::support::*;
use lollipop::admin::Role;

/// The school of the web tests, with `/metrics` also open on its own port.
fn school_with_open_metrics() -> (WebSchool, std::net::SocketAddr) {
    let upstream = TestUpstream::start();
    let web_port = free_port();
    let metrics_port = free_port();
    let config = school(&format!(
        "listen = [\"127.0.0.1:{web_port}\"]\nmetrics_listen = \"127.0.0.1:{metrics_port}\""
    ));
    let lollipop = TestLollipop::start(&config, &upstream, SCHOOL_LISTS);
    let school = WebSchool {
        upstream,
        lollipop,
        web: ([127, 0, 0, 1], web_port).into(),
    };
    (school, ([127, 0, 0, 1], metrics_port).into())
}

/// The value of the sample line starting with `series` (name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

#[test]
fn queries_blocks_and_cache_hits_are_counted() {
    let (school, metrics) = school_with_open_metrics();
    for _ in 0..2 {
        assert_eq!(
            dig(school.ks2(), &["www.example.com", "A", "+short"]).trim(),
            "192.0.2.10"
        );
    }
    assert_eq!(
        dig(school.ks2(), &["www.bet365.com", "A", "+short"]).trim(),
        "0.0.0.0"
    );
    assert_eq!(
        dig(school.staff(), &["www.bet365.com", "A", "+short"]).trim(),
        "0.0.0.0"
    );
    // The repeat came from Lollipop's cache: the upstream was asked once.
    assert_eq!(school.upstream.query_count(), 1);

    let open = WebClient::new(metrics).get("/metrics");
    assert_eq!(open.status, 200, "{}", open.body);
    assert!(
        open.header("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        open.headers
    );
    let text = &open.body;
    assert_eq!(
        sample(text, "lollipop_queries_total{profile=\"ks2\"}"),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(text, "lollipop_queries_total{profile=\"staff\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(
            text,
            "lollipop_blocked_total{profile=\"ks2\",category=\"gambling\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            text,
            "lollipop_blocked_total{profile=\"staff\",category=\"gambling\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            text,
            "lollipop_blocked_total{profile=\"ks2\",category=\"video\"}"
        ),
        Some(0.0)
    );
    assert_eq!(sample(text, "lollipop_cache_hits_total"), Some(1.0));
    assert_eq!(sample(text, "lollipop_cache_misses_total"), Some(1.0));
    assert_eq!(
        sample(text, "lollipop_upstream_duration_seconds_count"),
        Some(1.0)
    );
    assert_eq!(
        sample(
            text,
            "lollipop_upstream_duration_seconds_bucket{le=\"+Inf\"}"
        ),
        Some(1.0)
    );
    assert!(sample(text, "lollipop_log_dropped_total{kind=\"blocked\"}").is_some());
    assert_eq!(sample(text, "lollipop_lists_domains"), Some(3.0));
    let age = sample(
        text,
        "lollipop_list_age_seconds{list=\"test-gambling\",category=\"gambling\"}",
    )
    .expect("the gambling list's age");
    assert!((0.0..600.0).contains(&age), "{age}");

    // Counts only grow: one more blocked lookup shows at the next scrape.
    dig(school.ks2(), &["bet365.com", "AAAA", "+short"]);
    let again = WebClient::new(metrics).get("/metrics").body;
    assert_eq!(
        sample(
            &again,
            "lollipop_blocked_total{profile=\"ks2\",category=\"gambling\"}"
        ),
        Some(2.0)
    );
}

#[test]
fn the_status_page_copy_needs_a_sign_in_or_a_token() {
    let (school, _) = school_with_open_metrics();
    dig(school.ks2(), &["www.bet365.com", "A", "+short"]);

    let anonymous = school.client().get("/metrics");
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    assert!(!anonymous.body.contains("lollipop_queries_total"));
    let wrong = school
        .client()
        .get_with("/metrics", &[("Authorization", "Bearer not-a-token")]);
    assert_eq!(wrong.status, 401);

    let viewer = school.signed_in("head", Role::Viewer);
    let page = viewer.get("/metrics");
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        sample(
            &page.body,
            "lollipop_blocked_total{profile=\"ks2\",category=\"gambling\"}"
        ),
        Some(1.0)
    );

    let token = school
        .admin_store()
        .new_api_token("prometheus", Role::Viewer, "test")
        .expect("token");
    let scraped = school.client().get_with(
        "/metrics",
        &[("Authorization", format!("Bearer {token}").as_str())],
    );
    assert_eq!(scraped.status, 200, "{}", scraped.body);
    assert!(
        scraped
            .body
            .contains("lollipop_queries_total{profile=\"ks2\"} 1")
    );
}
