//! Long poll's HTTP in the browser: a bare `fetch` (gloo-net's request builder cost the room page 1.8 KB more brotli
//! for the same calls), every request of a connection tied to one `AbortController`, so closing the transport frees
//! the browser's connections at once.

use futures::{FutureExt, future::LocalBoxFuture};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, Headers, RequestInit, Response};

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
            let init = RequestInit::new();
            let headers = Headers::new().ok()?;
            for (name, value) in &request.headers {
                headers.append(name, value).ok()?;
            }
            init.set_headers(&headers);
            if let Some(body) = &request.body {
                init.set_method("POST");
                init.set_body(&JsValue::from_str(body));
            }
            init.set_signal(signal.as_ref());
            let response =
                JsFuture::from(web_sys::window()?.fetch_with_str_and_init(&request.url, &init)).await.ok()?;
            let response: Response = response.dyn_into().ok()?;
            JsFuture::from(response.text().ok()?).await.ok()?.as_string()
        }
        .boxed_local()
    }

    fn abort(&self) {
        if let Some(controller) = &self.controller {
            controller.abort();
        }
    }
}
