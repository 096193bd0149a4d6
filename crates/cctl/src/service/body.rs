//! Responses: Docker's JSON bodies, its error body (`{"message": …}`) with
//! the status code that fits the error, and streamed bodies.

use bytes::Bytes;
use containerization::Error;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::Frame;
use hyper::{Response, StatusCode};
use tokio::sync::mpsc;

/// Every response's body.
pub(crate) type Body = BoxBody<Bytes, std::io::Error>;

/// What a handler answers: a response, or an error to answer with.
pub(crate) type Answer = Result<Response<Body>, ApiError>;

/// An error as Docker answers it: a status code and `{"message": …}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    /// The status code.
    pub status: StatusCode,
    /// What the client is told.
    pub message: String,
}

impl ApiError {
    /// The response that says it.
    pub fn response(&self) -> Response<Body> {
        json(self.status, &serde_json::json!({ "message": self.message }))
    }
}

fn response(status: StatusCode, content_type: Option<&str>, body: Body) -> Response<Body> {
    let mut builder = Response::builder()
        .status(status)
        .header("Api-Version", super::API_VERSION)
        .header("Ostype", "linux")
        .header(
            "Server",
            concat!("containerization/", env!("CARGO_PKG_VERSION")),
        );
    if let Some(content_type) = content_type {
        builder = builder.header("Content-Type", content_type);
    }
    builder.body(body).unwrap_or_else(|_| {
        let mut fallback = Response::new(empty());
        *fallback.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
}

/// An empty body.
pub(crate) fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// `value` as JSON with `status`.
pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let text = serde_json::to_vec(value).unwrap_or_default();
    response(
        status,
        Some("application/json"),
        Full::new(Bytes::from(text))
            .map_err(|never| match never {})
            .boxed(),
    )
}

/// A plain-text body.
pub(crate) fn text(status: StatusCode, text: &'static str) -> Response<Body> {
    response(
        status,
        Some("text/plain; charset=utf-8"),
        Full::new(Bytes::from_static(text.as_bytes()))
            .map_err(|never| match never {})
            .boxed(),
    )
}

/// No body, with `status` (204 for most actions).
pub(crate) fn nothing(status: StatusCode) -> Response<Body> {
    response(status, None, empty())
}

/// An error with `status` saying `message`.
pub(crate) fn error(status: StatusCode, message: impl std::fmt::Display) -> ApiError {
    ApiError {
        status,
        message: message.to_string(),
    }
}

/// A body fed by the returned sender, chunk by chunk, with `content_type`.
pub(crate) fn streamed(
    status: StatusCode,
    content_type: &str,
) -> (mpsc::Sender<Bytes>, Response<Body>) {
    let (sender, receiver) = mpsc::channel::<Bytes>(64);
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver
            .recv()
            .await
            .map(|chunk| (Ok::<_, std::io::Error>(Frame::data(chunk)), receiver))
    });
    let body = BodyExt::boxed(StreamBody::new(stream));
    (sender, response(status, Some(content_type), body))
}

/// The largest request body read.
const MAX_BODY: usize = 1 << 20;

/// The request's body as JSON (`{}` when it is empty).
pub(crate) async fn read_json(
    request: hyper::Request<hyper::body::Incoming>,
) -> Result<serde_json::Value, ApiError> {
    let bytes = http_body_util::Limited::new(request.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                format!("cannot read the request: {e}"),
            )
        })?
        .to_bytes();
    if bytes.is_empty() {
        return Ok(serde_json::json!({}));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!("the request is not JSON: {e}"),
        )
    })
}

/// The 101 that hands the connection over to a raw stream (`Upgrade:
/// tcp`), as Docker's `attach` and `exec start` answer.
pub(crate) fn upgraded() -> Answer {
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(hyper::header::CONNECTION, "Upgrade")
        .header(hyper::header::UPGRADE, "tcp")
        .header(hyper::header::CONTENT_TYPE, RAW_STREAM)
        .body(empty())
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e))
}

/// Whether the client asks to take the connection over (`Upgrade: tcp`).
pub(crate) fn wants_upgrade<B>(request: &hyper::Request<B>) -> bool {
    request
        .headers()
        .get(hyper::header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"tcp"))
}

/// The content type of a stream of Docker frames (and of a raw one).
pub(crate) const RAW_STREAM: &str = "application/vnd.docker.raw-stream";

/// The status code Docker gives for `failure`, with its message.
pub(crate) fn from_error(failure: &anyhow::Error) -> ApiError {
    let status = match failure.downcast_ref::<Error>() {
        Some(Error::ContainerNotFound(_)) => StatusCode::NOT_FOUND,
        Some(Error::NameInUse(_)) => StatusCode::CONFLICT,
        Some(Error::InvalidOption { .. }) => StatusCode::BAD_REQUEST,
        Some(Error::Oci(containerization_oci::Error::ImageNotFound(_))) => StatusCode::NOT_FOUND,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, crate::report::one_line(failure))
}
