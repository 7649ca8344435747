//! Long poll's HTTP natively (tests and tools): one hyper HTTP/1 connection per request, plain `http://` only.

use bytes::Bytes;
use futures::{FutureExt, future::LocalBoxFuture};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use super::{Request, driver::Http};

/// hyper's HTTP/1 client over a tokio `TcpStream`.
pub struct Hyper;

impl Http for Hyper {
    fn request(&self, request: Request) -> LocalBoxFuture<'static, Option<String>> {
        send(request).boxed_local()
    }
}

/// Stops the connection's task when the request is dropped (a closed transport's requests are just dropped).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn send(request: Request) -> Option<String> {
    let uri: hyper::Uri = request.url.parse().ok()?;
    let authority = uri.authority()?.clone();
    let stream = tokio::net::TcpStream::connect((authority.host(), authority.port_u16().unwrap_or(80))).await.ok()?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.ok()?;
    let _connection = AbortOnDrop(tokio::task::spawn_local(async move {
        let _ = connection.await;
    }));
    let method = if request.body.is_some() { hyper::Method::POST } else { hyper::Method::GET };
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(hyper::header::HOST, authority.as_str());
    for (name, value) in &request.headers {
        builder = builder.header(*name, value);
    }
    let body = Full::new(Bytes::from(request.body.unwrap_or_default()));
    let response = sender.send_request(builder.body(body).ok()?).await.ok()?;
    let body = response.into_body().collect().await.ok()?.to_bytes();
    String::from_utf8(body.to_vec()).ok()
}
