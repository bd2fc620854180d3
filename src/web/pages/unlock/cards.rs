//! Printable unlock cards, one per room or VLAN: the unlock form's address
//! with that room chosen, as a link and a QR code a teacher scans. Most
//! blocked sites are HTTPS-only, so a child's browser shows a certificate
//! error instead of the block page and its unlock link; the card on the
//! classroom wall is the short way in that always works.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use qrcode::QrCode;
use qrcode::render::svg;

use crate::admin::users::Right;
use crate::config::Config;
use crate::web::WebState;
use crate::web::auth::Signed;
use crate::web::error::WebError;
use crate::web::view::{Layout, render};

use super::choices;

pub struct Card {
    pub label: String,
    pub link: String,
    /// The link as a QR code, an SVG drawing (empty if it could not be made).
    pub qr_svg: String,
}

#[derive(Template)]
#[template(path = "unlock_cards.html")]
struct CardsPage {
    layout: Layout,
    cards: Vec<Card>,
    has_public_url: bool,
}

/// The unlock form's full address for `room`.
fn link(config: &Config, room: &str) -> String {
    let base = config
        .web
        .public_url
        .as_deref()
        .unwrap_or("")
        .trim_end_matches('/');
    let room: String = form_urlencoded::byte_serialize(room.as_bytes()).collect();
    format!("{base}/unlock?room={room}")
}

fn qr_svg(text: &str) -> String {
    match QrCode::new(text.as_bytes()) {
        Ok(code) => code
            .render::<svg::Color<'_>>()
            .min_dimensions(160, 160)
            .quiet_zone(true)
            .build(),
        Err(_) => String::new(),
    }
}

/// One card for each room and VLAN the config offers.
pub fn cards(config: &Config) -> Vec<Card> {
    choices::scopes(config)
        .into_iter()
        .map(|choice| {
            let link = link(config, &choice.value);
            Card {
                label: choice.label,
                qr_svg: qr_svg(&link),
                link,
            }
        })
        .collect()
}

pub async fn page(
    State(state): State<Arc<WebState>>,
    signed: Signed,
) -> Result<Response, WebError> {
    signed.require(Right::UseOverride, "print the unlock cards")?;
    let config = state.config().await;
    Ok(render(&CardsPage {
        layout: Layout::new(&config, "Unlock cards for each room", "unlock", &signed),
        cards: cards(&config),
        has_public_url: config.web.public_url.is_some(),
    })?
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigOrigin;

    #[test]
    fn each_room_gets_a_link_with_its_room_chosen_and_a_qr_code() {
        let text = format!(
            "{}\n[[clients]]\nnetwork = \"10.0.20.0/24\"\nprofile = \"ks2\"\n",
            crate::config::EMBEDDED_DEFAULT
        )
        .replace(
            "# public_url = ",
            "public_url = \"https://10.0.10.2\"\n# was = ",
        );
        let config =
            Config::parse(&text, ConfigOrigin::default()).unwrap_or_else(|e| panic!("{e}"));
        let cards = cards(&config);
        assert!(cards.len() >= 2, "a listener and a network");
        let network = cards
            .iter()
            .find(|card| card.label == "Key Stage 2 devices on 10.0.20.x")
            .expect("the network's card");
        assert!(
            network
                .link
                .ends_with("/unlock?room=network%3A10.0.20.0%2F24"),
            "{}",
            network.link
        );
        assert!(
            network.qr_svg.starts_with("<?xml") && network.qr_svg.contains("<svg"),
            "{}",
            &network.qr_svg[..60]
        );
    }
}
