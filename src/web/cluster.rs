//! The page's part in an HA pair: on the primary, the route its secondary
//! pulls the signed snapshot from (answering only to the pair key); on the
//! secondary, the guard that keeps its page read-only for policy, pointing
//! to the primary, and never makes a setup link.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::WebState;
use super::error::WebError;
use crate::cluster::Pull;
use crate::cluster::blocks::{self, BlockSummary};
use crate::cluster::follow::{NAME_HEADER, VERSION_HEADER};

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SnapshotQuery {
    /// The version the secondary holds.
    since: Option<i64>,
}

/// `GET /cluster/snapshot?since=V`: the primary's state signed with the
/// pair key, or 304 when the secondary already holds it.
pub async fn snapshot(
    State(state): State<Arc<WebState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<SnapshotQuery>,
) -> Response {
    let key = match pair_key(&state, &headers, peer, "the pair's snapshot") {
        Ok(key) => key,
        Err(refused) => return refused.into_response(),
    };
    let config = state.config().await;
    let admin = state.admin.clone();
    let cluster = state.cluster.clone();
    let now = crate::clock::now_unix_ms();
    let sealed = tokio::task::spawn_blocking(move || {
        crate::cluster::primary::snapshot(&config, &admin, &key, &cluster.versions, now)
    })
    .await;
    let (version, envelope) = match sealed {
        Ok(Ok(sealed)) => sealed,
        Ok(Err(error)) => {
            tracing::error!("the pair's snapshot could not be made: {error}");
            return WebError::Internal(error).into_response();
        }
        Err(error) => return WebError::internal(error).into_response(),
    };
    let name: String = headers
        .get(NAME_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("secondary")
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    let up_to_date = query.since == Some(version);
    state.cluster.record_pull(Pull {
        name,
        address: peer.ip().to_string(),
        at_unix_ms: now,
        up_to_date,
    });
    let version_header = [(VERSION_HEADER, version.to_string())];
    if up_to_date {
        return (StatusCode::NOT_MODIFIED, version_header).into_response();
    }
    (
        StatusCode::OK,
        version_header,
        [(header::CONTENT_TYPE, "application/json")],
        envelope.to_bytes(),
    )
        .into_response()
}

/// The pair key, when this box is a primary and the request carries the
/// pair's token; otherwise the reply refusing it.
fn pair_key(
    state: &WebState,
    headers: &HeaderMap,
    peer: SocketAddr,
    what: &str,
) -> Result<crate::cluster::PairKey, Refusal> {
    let (true, Some(key)) = (state.cluster.is_primary(), state.cluster.key.clone()) else {
        return Err(Refusal::NotPrimary);
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or("");
    if !key.admits(token) {
        if state
            .cluster
            .should_log_refusal(peer.ip(), crate::clock::now_unix_ms())
        {
            tracing::warn!(
                "refused a request for {what} from {} without the pair key (logged once every ten minutes per address)",
                peer.ip()
            );
        }
        return Err(Refusal::NoPairKey);
    }
    Ok(key)
}

/// Why a pair's route refused a request.
enum Refusal {
    /// This box is not a primary: there is no such page.
    NotPrimary,
    NoPairKey,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::NotPrimary => WebError::NotFound.into_response(),
            Refusal::NoPairKey => StatusCode::UNAUTHORIZED.into_response(),
        }
    }
}

/// `POST /cluster/blocks`: a secondary's block counts, kept for the
/// primary's reports.
pub async fn blocks(
    State(state): State<Arc<WebState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    // The key first: nobody else gets to send a body this large.
    if let Err(refused) = pair_key(&state, request.headers(), peer, "the pair's block counts") {
        return refused.into_response();
    }
    let body = match axum::body::to_bytes(request.into_body(), blocks::MAX_SUMMARY_BYTES).await {
        Ok(body) => body,
        Err(error) => {
            return WebError::BadRequest(format!("the block counts could not be read: {error}"))
                .into_response();
        }
    };
    let summary: BlockSummary = match serde_json::from_slice(&body) {
        Ok(summary) => summary,
        Err(error) => {
            return WebError::BadRequest(format!("not a secondary's block counts: {error}"))
                .into_response();
        }
    };
    let config = state.config().await;
    let kept = tokio::task::spawn_blocking(move || blocks::keep(&config, &summary)).await;
    match kept {
        Ok(Ok(())) => StatusCode::NO_CONTENT.into_response(),
        Ok(Err(error)) => {
            tracing::error!("a secondary's block counts were not kept: {error}");
            WebError::Internal(error).into_response()
        }
        Err(error) => WebError::internal(error).into_response(),
    }
}

/// Paths a secondary's page still takes a form on: signing in and out.
fn allowed_on_secondary(method: &Method, path: &str) -> bool {
    if path == "/setup" {
        return false;
    }
    *method != Method::POST || path == "/login" || path == "/logout"
}

/// On a secondary, every change of policy (entries, unlocks, users, codes,
/// tokens, reviews) and the setup page are refused with the way to the
/// primary. Pages that only show things answer as usual.
pub async fn read_only(
    State(state): State<Arc<WebState>>,
    request: Request,
    next: Next,
) -> Response {
    if state.cluster.is_secondary() && !allowed_on_secondary(request.method(), request.uri().path())
    {
        let primary = state
            .cluster
            .primary_url
            .clone()
            .unwrap_or_else(|| "the primary's page".into());
        return WebError::FollowsPrimary(primary).into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secondary_takes_only_sign_in_and_out() {
        assert!(allowed_on_secondary(&Method::GET, "/rules"));
        assert!(allowed_on_secondary(&Method::POST, "/login"));
        assert!(allowed_on_secondary(&Method::POST, "/logout"));
        for path in [
            "/rules",
            "/unlock",
            "/users",
            "/tokens",
            "/review",
            "/overrides/3/end",
        ] {
            assert!(!allowed_on_secondary(&Method::POST, path), "{path}");
        }
        assert!(!allowed_on_secondary(&Method::GET, "/setup"));
    }
}
