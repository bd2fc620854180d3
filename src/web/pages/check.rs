//! Check a name: the decision a device (on its listener) or a profile, or
//! every profile at once, would get for a site now, and why, as the
//! resolver itself would decide it.

use std::net::IpAddr;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::admin::users::Right;
use crate::config::Config;
use crate::dns::resolve::check::{CheckFor, NameCheck, listener_index};
use crate::web::WebState;
use crate::web::auth::Signed;
use crate::web::error::WebError;
use crate::web::view::{Layout, render};

#[derive(Debug, Default, Deserialize)]
pub struct CheckQuery {
    #[serde(default)]
    pub name: String,
    /// A profile's name, or [`EVERY_PROFILE`].
    #[serde(default)]
    pub profile: String,
    /// A device's IP address; it wins over `profile`.
    #[serde(default)]
    pub client: String,
    /// The `[[listen]]` address the device asks on; empty: the one serving
    /// its subnet.
    #[serde(default)]
    pub listener: String,
}

/// The profile choice that shows the answer for every profile at once.
pub const EVERY_PROFILE: &str = "*";

impl CheckQuery {
    /// Who to check for (None: every profile), or what is wrong with the input.
    /// `listeners` are the `[[listen]]` addresses a device may be checked on.
    pub fn who(&self, listeners: &[Arc<str>]) -> Result<Option<CheckFor>, String> {
        let client = self.client.trim();
        if !client.is_empty() {
            let address = client.parse::<IpAddr>().map_err(|_| {
                format!(
                    "'{}' is not an IP address. Write it like 10.0.20.15, or leave it empty and pick a profile.",
                    client.chars().take(60).collect::<String>()
                )
            })?;
            let listener = match self.listener.trim() {
                "" => None,
                chosen => Some(listener_index(listeners, chosen)?),
            };
            return Ok(Some(CheckFor::Device { address, listener }));
        }
        match self.profile.trim() {
            "" | EVERY_PROFILE => Ok(None),
            profile => Ok(Some(CheckFor::Profile(profile.to_string()))),
        }
    }
}

#[derive(Template)]
#[template(path = "check.html")]
struct CheckPage {
    layout: Layout,
    query: CheckQuery,
    /// (id, what people call it).
    profiles: Vec<(String, String)>,
    /// (address, the room it serves).
    listeners: Vec<(String, String)>,
    results: Vec<NameCheck>,
    error: Option<String>,
    can_override: bool,
    config: Config,
}

impl CheckPage {
    fn profile_name(&self, id: &str) -> String {
        self.config.profile_name(id)
    }

    fn room_name(&self, address: &str) -> String {
        self.config
            .listener_name(address)
            .unwrap_or_else(|| "a network no longer in the settings".into())
    }

    fn category_name(&self, id: &str) -> String {
        crate::config::category_name(id)
    }
}

pub async fn page(
    State(state): State<Arc<WebState>>,
    signed: Signed,
    Query(query): Query<CheckQuery>,
) -> Result<Response, WebError> {
    signed.require(Right::CheckName, "check a site")?;
    let config = state.config().await;
    let profiles = config
        .profiles
        .keys()
        .map(|id| (id.clone(), config.profile_name(id)))
        .collect();
    let listeners = state.pipeline.settings().listeners.clone();
    let mut results = Vec::new();
    let mut error = None;
    if !query.name.trim().is_empty() {
        let checked = query.who(&listeners).and_then(|who| match who {
            Some(who) => state.pipeline.check(&query.name, &who).map(|c| vec![c]),
            None => state.pipeline.check_every_profile(&query.name),
        });
        match checked {
            Ok(checks) => results = checks,
            Err(message) => error = Some(message),
        }
    }
    let page = CheckPage {
        layout: Layout::new(&config, "Check a site", "check", &signed),
        query,
        profiles,
        listeners: listeners
            .iter()
            .map(|address| {
                let room = config
                    .listener_name(address)
                    .unwrap_or_else(|| "a network no longer in the settings".into());
                (address.to_string(), room)
            })
            .collect(),
        results,
        can_override: signed.may(Right::UseOverride),
        error,
        config,
    };
    let status = if page.error.is_some() {
        axum::http::StatusCode::BAD_REQUEST
    } else {
        axum::http::StatusCode::OK
    };
    Ok((status, render(&page)?).into_response())
}
