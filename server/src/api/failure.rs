//! Every error the HTTP API answers: a status and `{"error": "…"}` ([`ApiFailure`]), the JSON body and query
//! extractors whose rejections become such answers ([`JsonBody`], [`QueryParams`]), and [`json_errors`], which turns
//! the plain-text errors of the layers below the handlers (axum's 404 and 405, the body limit's 413) into JSON too.

use std::time::Duration;

use axum::{
    Json,
    body::Body,
    extract::{FromRequest, FromRequestParts, Query, Request, rejection::JsonRejection},
    http::{HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use protocol::{api, reasons};
use serde::de::DeserializeOwned;

use crate::store::StoreError;

/// `WWW-Authenticate` for a request without a key (RFC 6750 §3).
const CHALLENGE: &str = "Bearer realm=\"parley\"";
/// `WWW-Authenticate` for a key that is not (or no longer) valid.
const CHALLENGE_INVALID: &str = "Bearer realm=\"parley\", error=\"invalid_token\"";

/// An error answer of the API.
#[derive(Debug)]
pub(crate) struct ApiFailure {
    status: StatusCode,
    error: &'static str,
    headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl ApiFailure {
    pub(crate) fn new(status: StatusCode, error: &'static str) -> Self {
        Self { status, error, headers: Vec::new() }
    }

    /// 401: no `Authorization: Bearer` header.
    pub(crate) fn missing_key() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, api::UNAUTHORIZED)
            .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static(CHALLENGE))
    }

    /// 401: a key that is unknown or revoked (the answer does not say which).
    pub(crate) fn invalid_key() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, api::UNAUTHORIZED)
            .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static(CHALLENGE_INVALID))
    }

    /// 429 with the whole seconds until a retry can succeed.
    pub(crate) fn rate_limited(retry_after: Duration) -> Self {
        let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        Self::new(StatusCode::TOO_MANY_REQUESTS, reasons::RATE_LIMITED)
            .with_header(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)))
    }

    /// 503: the store cannot serve the request; nothing was stored, the caller may retry.
    pub(crate) fn unavailable(error: &StoreError) -> Self {
        tracing::warn!(%error, "api: store unavailable");
        Self::new(StatusCode::SERVICE_UNAVAILABLE, reasons::UNAVAILABLE)
    }

    fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(api::ApiError::new(self.error))).into_response();
        response.headers_mut().extend(self.headers);
        response
    }
}

/// A JSON request body; a body that is not JSON, not `application/json`, of the wrong shape or too large is an
/// [`ApiFailure`] with axum's status (400, 415, 422, 413).
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiFailure;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(body_failure(&rejection)),
        }
    }
}

fn body_failure(rejection: &JsonRejection) -> ApiFailure {
    let status = rejection.status();
    let error = if status == StatusCode::PAYLOAD_TOO_LARGE { api::BODY_TOO_LARGE } else { api::INVALID_PAYLOAD };
    ApiFailure::new(status, error)
}

/// Query parameters; ones that do not parse are a 400 [`api::INVALID_QUERY`].
pub(crate) struct QueryParams<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiFailure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(_) => Err(ApiFailure::new(StatusCode::BAD_REQUEST, api::INVALID_QUERY)),
        }
    }
}

/// Replaces a non-JSON error answer from below the handlers with `{"error": "…"}`, keeping its status and headers
/// (`Allow` on a 405). Handlers' own errors are JSON already and pass untouched.
pub(crate) async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let error = match status {
        StatusCode::NOT_FOUND => api::NOT_FOUND,
        StatusCode::METHOD_NOT_ALLOWED => api::METHOD_NOT_ALLOWED,
        StatusCode::PAYLOAD_TOO_LARGE => api::BODY_TOO_LARGE,
        StatusCode::BAD_REQUEST | StatusCode::UNSUPPORTED_MEDIA_TYPE | StatusCode::UNPROCESSABLE_ENTITY => {
            api::INVALID_PAYLOAD
        }
        _ => status.canonical_reason().unwrap_or("error"),
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let body = serde_json::to_vec(&api::ApiError::new(&error.to_lowercase())).unwrap_or_default();
    Response::from_parts(parts, Body::from(body))
}
