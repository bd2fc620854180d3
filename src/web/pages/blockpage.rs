//! The block page: what a child sees when a blocked name was answered with
//! this appliance's address and their browser asked us for the site. Any
//! request whose Host is a blocked name gets a friendly page (what happened,
//! tell an adult) with a small link for staff to unlock it; requests for
//! our own names and addresses go on to the status page.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use askama::Template;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::name::{ReversedName, normalise_domain};
use crate::policy::decision::Decision;
use crate::web::WebState;
use crate::web::blockhttps::InterceptedName;
use crate::web::error::{WebError, urlencode};

#[derive(Template)]
#[template(path = "blockpage.html")]
struct BlockPage {
    school: String,
    name: String,
    /// The category in plain words, when it may be said.
    group: Option<String>,
    /// Where staff unlock it; None for locked categories.
    unlock: Option<String>,
}

/// What a blocked name looks like to the page.
struct Blocked {
    locked: bool,
    category: Option<String>,
}

pub async fn divert(State(state): State<Arc<WebState>>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    // The block page's stylesheet, and the unlock form its link opens,
    // are served whatever name the browser used.
    if path.starts_with("/static/") || path == "/unlock" {
        return next.run(request).await;
    }
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip().to_canonical());
    // Over the HTTPS block page the certificate was made for one blocked
    // name: that name's page, whatever the Host header says, and never the
    // status page under a certificate for someone else's site.
    if let Some(InterceptedName(name)) = request.extensions().get::<InterceptedName>() {
        let name = name.clone();
        return match blocked(&state, &name, client) {
            Some(blocked) => block_page(&state, name, client, blocked).await,
            None => StatusCode::MISDIRECTED_REQUEST.into_response(),
        };
    }
    let Some(host) = foreign_host(&state, &request) else {
        return next.run(request).await;
    };
    match blocked(&state, &host, client) {
        Some(blocked) => block_page(&state, host, client, blocked).await,
        None => next.run(request).await,
    }
}

/// The request's host name if it is not one of ours (nor an address).
fn foreign_host(state: &WebState, request: &Request) -> Option<String> {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| request.uri().host())?;
    // `name:port`, or `[v6]:port`.
    let name = if host.starts_with('[') {
        return None;
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    if name.parse::<IpAddr>().is_ok() {
        return None;
    }
    let name = normalise_domain(name).ok()?;
    (!state.own_hosts.contains(&name)).then_some(name)
}

/// How `name` is blocked: for the asking device's profile if it blocks
/// it, else for any profile. None if no profile blocks it (then it is a
/// name of ours the config does not know, and the status page answers).
fn blocked(state: &WebState, name: &str, client: Option<IpAddr>) -> Option<Blocked> {
    let settings = state.pipeline.settings();
    let policy = &settings.policy;
    let reversed = ReversedName::from_domain(name)?;
    // The device's own profile first, on the listener serving its subnet.
    let own = client.map(|ip| policy.profile_for(ip, settings.listener_serving(ip)));
    let mut candidates = own.into_iter().chain(0..policy.profiles.len());
    candidates.find_map(|profile| {
        let decision = policy.decide(profile, &reversed);
        decision.is_blocked().then(|| {
            let explanation = policy.explain(profile, &reversed, &decision);
            Blocked {
                locked: matches!(decision, Decision::Locked { .. }),
                category: explanation.category.map(|category| category.to_string()),
            }
        })
    })
}

async fn block_page(
    state: &WebState,
    name: String,
    client: Option<IpAddr>,
    blocked: Blocked,
) -> Response {
    let config = state.config().await;
    let school = if config.alerts.school_name.trim().is_empty() {
        "your school".to_string()
    } else {
        config.alerts.school_name.clone()
    };
    let unlock = (!blocked.locked).then(|| {
        let mut link = format!(
            "{}?domain={}",
            unlock_base(config.web.public_url.as_deref()),
            urlencode(&name)
        );
        if let Some(ip) = client {
            link.push_str(&format!("&client={}", urlencode(&ip.to_string())));
        }
        link
    });
    // A locked list's category is not named: its entries are confidential.
    let group = if blocked.locked {
        None
    } else {
        blocked.category.as_deref().map(group_name)
    };
    let page = BlockPage {
        school,
        name,
        group,
        unlock,
    };
    let mut response = match page.render() {
        Ok(html) => (StatusCode::OK, axum::response::Html(html)).into_response(),
        Err(error) => return WebError::internal(error).into_response(),
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, max-age=0"),
    );
    headers.insert(header::EXPIRES, HeaderValue::from_static("0"));
    response
}

/// The unlock form's address: on the configured public URL when there is
/// one, else on whatever name and address reached us (the divert lets
/// /unlock through), which the pupil's device can surely reach.
fn unlock_base(public_url: Option<&str>) -> String {
    match public_url {
        Some(url) if url.starts_with("http") => {
            format!("{}/unlock", url.trim_end_matches('/'))
        }
        _ => "/unlock".into(),
    }
}

/// A category as a child reads it: "video", or a service's own name.
fn group_name(category: &str) -> String {
    if category.starts_with("service-") {
        crate::config::category_name(category)
    } else {
        category.replace('-', " ")
    }
}

pub async fn fallback() -> WebError {
    WebError::NotFound
}
