//! The block page CA's certificate (its public half only), for an
//! administrator to deploy to the school's managed devices. There is no
//! route to its key: it never leaves the box.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::admin::Role;
use crate::web::WebState;
use crate::web::auth::Signed;
use crate::web::blockca::BlockCa;
use crate::web::error::WebError;

/// Only an administrator deploys a trust anchor to the school's devices.
fn ca_for_admin<'s>(state: &'s WebState, signed: &Signed) -> Result<&'s BlockCa, WebError> {
    if signed.role != Role::Admin {
        return Err(WebError::Forbidden(
            "download the block page's certificate (administrators only)",
        ));
    }
    state.block_ca.as_deref().ok_or(WebError::NotFound)
}

fn download(body: Vec<u8>, content_type: &'static str, file: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static(file));
    response
}

/// PEM: Chromebooks (Google Admin console), iPads and Macs.
pub async fn pem(State(state): State<Arc<WebState>>, signed: Signed) -> Result<Response, WebError> {
    let ca = ca_for_admin(&state, &signed)?;
    Ok(download(
        ca.certificate_pem().as_bytes().to_vec(),
        "application/x-pem-file",
        "attachment; filename=\"lollipop-block-ca.pem\"",
    ))
}

/// DER (`.cer`): Windows Group Policy and Intune.
pub async fn der(State(state): State<Arc<WebState>>, signed: Signed) -> Result<Response, WebError> {
    let ca = ca_for_admin(&state, &signed)?;
    Ok(download(
        ca.certificate_der().to_vec(),
        "application/pkix-cert",
        "attachment; filename=\"lollipop-block-ca.cer\"",
    ))
}
