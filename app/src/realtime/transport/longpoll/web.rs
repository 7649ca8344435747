//! Long poll's HTTP in the browser: `fetch` through gloo-net, every request of a connection tied to one
//! `AbortController`, so closing the transport frees the browser's connections at once.

use futures::{FutureExt, future::LocalBoxFuture};
use gloo_net::http::Request as Fetch;
use web_sys::AbortController;

use super::{Request, driver::Http};

/// One connection's requests.
pub struct Fetcher {
    controller: Option<AbortController>,
}

impl Fetcher {
    pub fn new() -> Self {
        Self { controller: AbortController::new().ok() }
    }
}

impl Http for Fetcher {
    fn request(&self, request: Request) -> LocalBoxFuture<'static, Option<String>> {
        let signal = self.controller.as_ref().map(AbortController::signal);
        async move {
            let builder = match request.body {
                Some(_) => Fetch::post(&request.url),
                None => Fetch::get(&request.url),
            };
            let mut builder = builder.abort_signal(signal.as_ref());
            for (name, value) in &request.headers {
                builder = builder.header(name, value);
            }
            let fetch = match request.body {
                Some(body) => builder.body(body).ok()?,
                None => builder.build().ok()?,
            };
            fetch.send().await.ok()?.text().await.ok()
        }
        .boxed_local()
    }

    fn abort(&self) {
        if let Some(controller) = &self.controller {
            controller.abort();
        }
    }
}
