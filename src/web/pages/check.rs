//! Check a name: the decision a device or a profile would get for a site
//! now, and why, as the resolver itself would decide it.

use std::net::IpAddr;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::admin::users::Right;
use crate::dns::resolve::check::{CheckFor, NameCheck};
use crate::web::WebState;
use crate::web::auth::Signed;
use crate::web::error::WebError;
use crate::web::view::{Layout, render};

#[derive(Debug, Default, Deserialize)]
pub struct CheckQuery {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub profile: String,
    /// A device's IP address; it wins over `profile`.
    #[serde(default)]
    pub client: String,
}

impl CheckQuery {
    /// Who to check for, or what is wrong with the input.
    pub fn who(&self) -> Result<Option<CheckFor>, String> {
        let client = self.client.trim();
        if !client.is_empty() {
            return client
                .parse::<IpAddr>()
                .map(|ip| Some(CheckFor::Device(ip)))
                .map_err(|_| {
                    format!(
                        "'{}' is not an IP address. Write it like 10.0.20.15, or leave it empty and pick a profile.",
                        client.chars().take(60).collect::<String>()
                    )
                });
        }
        let profile = self.profile.trim();
        Ok((!profile.is_empty()).then(|| CheckFor::Profile(profile.to_string())))
    }
}

#[derive(Template)]
#[template(path = "check.html")]
struct CheckPage {
    layout: Layout,
    query: CheckQuery,
    profiles: Vec<String>,
    result: Option<NameCheck>,
    error: Option<String>,
    can_override: bool,
}

pub async fn page(
    State(state): State<Arc<WebState>>,
    signed: Signed,
    Query(query): Query<CheckQuery>,
) -> Result<Response, WebError> {
    signed.require(Right::CheckName, "check a site")?;
    let config = state.config().await;
    let profiles: Vec<String> = config.profiles.keys().cloned().collect();
    let mut result = None;
    let mut error = None;
    if !query.name.trim().is_empty() {
        let who = query.who().map(|who| {
            who.unwrap_or_else(|| CheckFor::Profile(profiles.first().cloned().unwrap_or_default()))
        });
        match who.and_then(|who| state.pipeline.check(&query.name, &who)) {
            Ok(check) => result = Some(check),
            Err(message) => error = Some(message),
        }
    }
    let page = CheckPage {
        layout: Layout::new(&config, "Check a site", "check", &signed),
        query,
        profiles,
        result,
        can_override: signed.may(Right::UseOverride),
        error,
    };
    let status = if page.error.is_some() {
        axum::http::StatusCode::BAD_REQUEST
    } else {
        axum::http::StatusCode::OK
    };
    Ok((status, render(&page)?).into_response())
}
