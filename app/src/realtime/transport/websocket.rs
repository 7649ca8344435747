//! The WebSocket transport: the browser's `WebSocket` (wasm32) and tokio-tungstenite (feature `native`, for tests
//! and tools). An auth token travels as phoenix.js's subprotocol pair (`phoenix`, `base64url.bearer.phx.…`).

#[cfg(target_arch = "wasm32")]
pub(super) use web::open as open_browser;

#[cfg(target_arch = "wasm32")]
mod web {
    //! The browser's WebSocket.

    use futures::channel::mpsc::UnboundedSender;
    use protocol::serializer::WireFrame;
    use wasm_bindgen::{JsCast, JsValue, closure::Closure};
    use web_sys::{BinaryType, CloseEvent, Event, MessageEvent, WebSocket};

    use super::super::{Target, TransportEvent, TransportHandle, auth_token_protocols};

    struct WebTransport {
        socket: Option<WebSocket>,
        // The callbacks must live as long as the socket can call them.
        _callbacks: Vec<Box<dyn std::any::Any>>,
    }

    impl TransportHandle for WebTransport {
        fn send(&mut self, frame: WireFrame) {
            let Some(socket) = &self.socket else { return };
            let _ = match frame {
                WireFrame::Text(text) => socket.send_with_str(&text),
                WireFrame::Binary(bytes) => socket.send_with_u8_array(&bytes),
            };
        }

        fn close(&mut self, code: u16, reason: &str) {
            if let Some(socket) = self.socket.take() {
                detach(&socket);
                let _ = socket.close_with_code_and_reason(code, reason);
            }
        }
    }

    impl Drop for WebTransport {
        fn drop(&mut self) {
            if let Some(socket) = self.socket.take() {
                detach(&socket);
                let _ = socket.close();
            }
        }
    }

    /// Unhooks the callbacks (as phoenix.js's teardown does): the browser still reports the close of a socket that
    /// was closed or given up here, and by then the callbacks are dropped with their transport.
    fn detach(socket: &WebSocket) {
        socket.set_onopen(None);
        socket.set_onmessage(None);
        socket.set_onclose(None);
        socket.set_onerror(None);
    }

    fn new_socket(target: &Target) -> Result<WebSocket, JsValue> {
        match &target.auth_token {
            Some(token) => {
                let protocols: js_sys::Array =
                    auth_token_protocols(token).iter().map(|p| JsValue::from_str(p)).collect();
                WebSocket::new_with_str_sequence(&target.url, &protocols)
            }
            None => WebSocket::new(&target.url),
        }
    }

    /// Opens a `web_sys::WebSocket`.
    pub fn open(conn: u64, target: &Target, events: UnboundedSender<TransportEvent>) -> Box<dyn TransportHandle> {
        let Ok(socket) = new_socket(target) else {
            let _ = events.unbounded_send(TransportEvent::Error(conn));
            let _ = events.unbounded_send(TransportEvent::Close(conn, 1006));
            return Box::new(WebTransport { socket: None, _callbacks: Vec::new() });
        };
        socket.set_binary_type(BinaryType::Arraybuffer);
        let sender = events.clone();
        let on_open = Closure::<dyn FnMut(Event)>::new(move |_| {
            let _ = sender.unbounded_send(TransportEvent::Open(conn));
        });
        let sender = events.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let data = event.data();
            let frame = if let Some(text) = data.as_string() {
                WireFrame::Text(text)
            } else if let Ok(buffer) = data.dyn_into::<js_sys::ArrayBuffer>() {
                WireFrame::Binary(js_sys::Uint8Array::new(&buffer).to_vec())
            } else {
                return;
            };
            let _ = sender.unbounded_send(TransportEvent::Frame(conn, frame));
        });
        let sender = events.clone();
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |event: CloseEvent| {
            let _ = sender.unbounded_send(TransportEvent::Close(conn, event.code()));
        });
        let sender = events;
        let on_error = Closure::<dyn FnMut(Event)>::new(move |_| {
            let _ = sender.unbounded_send(TransportEvent::Error(conn));
        });
        socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        socket.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        Box::new(WebTransport {
            socket: Some(socket),
            _callbacks: vec![Box::new(on_open), Box::new(on_message), Box::new(on_close), Box::new(on_error)],
        })
    }
}

#[cfg(feature = "native")]
pub(super) use native::open as open_native;

#[cfg(feature = "native")]
mod native {
    //! tokio-tungstenite. The connection's task is spawned with `spawn_local` (run inside a LocalSet).

    use futures::{
        SinkExt, StreamExt,
        channel::mpsc::{UnboundedSender, unbounded},
    };
    use protocol::serializer::WireFrame;
    use tokio_tungstenite::tungstenite::{
        Message,
        client::IntoClientRequest,
        http::HeaderValue,
        protocol::{CloseFrame, frame::coding::CloseCode},
    };

    use super::super::{Target, TransportEvent, TransportHandle, auth_token_protocols};

    enum Command {
        Send(WireFrame),
        Close(u16, String),
    }

    struct NativeTransport {
        commands: UnboundedSender<Command>,
    }

    impl TransportHandle for NativeTransport {
        fn send(&mut self, frame: WireFrame) {
            let _ = self.commands.unbounded_send(Command::Send(frame));
        }

        fn close(&mut self, code: u16, reason: &str) {
            let _ = self.commands.unbounded_send(Command::Close(code, reason.to_owned()));
        }
    }

    /// Opens a tokio-tungstenite connection.
    pub fn open(conn: u64, target: &Target, events: UnboundedSender<TransportEvent>) -> Box<dyn TransportHandle> {
        let (commands, mut queued) = unbounded::<Command>();
        let target = target.clone();
        tokio::task::spawn_local(async move {
            let connected = match target.url.as_str().into_client_request() {
                Ok(mut request) => {
                    if let Some(token) = &target.auth_token
                        && let Ok(value) = HeaderValue::from_str(&auth_token_protocols(token).join(", "))
                    {
                        request.headers_mut().insert("sec-websocket-protocol", value);
                    }
                    tokio_tungstenite::connect_async_with_config(request, None, true).await.ok()
                }
                Err(_) => None,
            };
            let Some((socket, _)) = connected else {
                let _ = events.unbounded_send(TransportEvent::Error(conn));
                let _ = events.unbounded_send(TransportEvent::Close(conn, 1006));
                return;
            };
            let _ = events.unbounded_send(TransportEvent::Open(conn));
            let (mut sink, mut stream) = socket.split();
            loop {
                tokio::select! {
                    command = queued.next() => match command {
                        Some(Command::Send(WireFrame::Text(text))) => { let _ = sink.send(Message::text(text)).await; }
                        Some(Command::Send(WireFrame::Binary(bytes))) => { let _ = sink.send(Message::binary(bytes)).await; }
                        Some(Command::Close(code, reason)) => {
                            let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
                            let _ = sink.send(Message::Close(Some(frame))).await;
                            let _ = events.unbounded_send(TransportEvent::Close(conn, code));
                            return;
                        }
                        None => return,
                    },
                    message = stream.next() => match message {
                        Some(Ok(Message::Text(text))) => {
                            let _ = events.unbounded_send(TransportEvent::Frame(conn, WireFrame::Text(text.as_str().to_owned())));
                        }
                        Some(Ok(Message::Binary(bytes))) => {
                            let _ = events.unbounded_send(TransportEvent::Frame(conn, WireFrame::Binary(bytes.to_vec())));
                        }
                        Some(Ok(Message::Close(frame))) => {
                            let code = frame.map_or(1005, |f| u16::from(f.code));
                            let _ = events.unbounded_send(TransportEvent::Close(conn, code));
                            return;
                        }
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => {
                            let _ = events.unbounded_send(TransportEvent::Close(conn, 1006));
                            return;
                        }
                    },
                }
            }
        });
        Box::new(NativeTransport { commands })
    }
}
