//! The server side of a WebSocket (RFC 6455) over an upgraded HTTP/1.1 connection, written for many idle sockets and
//! large shared broadcasts:
//!
//! * **No buffer while idle.** Bytes are read into a stack buffer; only a partial frame is kept on the heap, and that
//!   allocation is released as soon as it has been parsed. An idle connection holds no read buffer at all.
//! * **No copy of outgoing payloads.** A frame to send is its inline 2–10 byte header plus the shared, reference-counted
//!   payload every subscriber of a broadcast holds. [`WsStream::flush`] writes them with vectored writes, so a 500 KB
//!   `presence_state` is never copied into a per-connection buffer, and nothing of it is retained once written.
//! * **Cancel-safe.** The outbound queue and the partial inbound frame live in the stream, not in a future, so a
//!   `recv` or `flush` dropped by a `select!` loses nothing and a later call resumes mid-frame.
//!
//! [`handshake`] answers the HTTP upgrade; [`frame`] parses and writes frame headers.

mod frame;
pub(crate) mod handshake;

use std::{
    collections::VecDeque,
    future::poll_fn,
    io::{self, IoSlice},
    mem::MaybeUninit,
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use protocol::reasons::CloseCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub(crate) use self::frame::FrameError;
use self::frame::{FrameError as Refused, Header, OutHeader, close_payload, opcode, parse_header, unmask};

/// Bytes read from the socket per read call (on the stack of the polling thread, never in a connection's state).
const READ_CHUNK: usize = 8 * 1024;
/// Most buffers handed to one vectored write (the kernel's limit is 1024).
const MAX_IOV: usize = 64;
/// Queue capacity kept between writes; a larger one (after a big batch) is released.
const KEPT_QUEUE_CAPACITY: usize = 8;
/// Chunks (a header and a payload per frame) that may wait for the socket before a further pong is dropped.
const MAX_WAITING_CHUNKS: usize = 8;

/// A complete message from the client.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WsMessage {
    /// A text message (valid UTF-8).
    Text(String),
    /// A binary message.
    Binary(Bytes),
    /// A ping (already answered with a pong).
    Ping(Bytes),
    /// A pong.
    Pong,
    /// A close frame, with its code if it had one (already answered with a close).
    Close(Option<u16>),
}

/// Why reading failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WsError {
    /// The client broke the framing rules.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The connection failed.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
}

/// One part of the outbound byte stream.
enum Chunk {
    Header(OutHeader),
    Payload(Bytes),
}

impl Chunk {
    fn as_slice(&self) -> &[u8] {
        match self {
            Self::Header(header) => header.as_slice(),
            Self::Payload(bytes) => bytes,
        }
    }
}

/// A WebSocket message being assembled from fragments.
struct Fragmented {
    opcode: u8,
    payload: Vec<u8>,
}

/// The server end of a WebSocket.
pub(crate) struct WsStream<Io> {
    io: Io,
    /// Received bytes not yet parsed (part of a frame); empty and unallocated between frames.
    inbound: Vec<u8>,
    /// A message whose first fragments have arrived.
    fragmented: Option<Fragmented>,
    /// Frames queued for writing, as header and payload chunks.
    outbound: VecDeque<Chunk>,
    /// Bytes of the front chunk already written.
    written: usize,
    /// Largest message (and frame) accepted from the client.
    max_message: usize,
    /// The input broke the framing rules; what follows is discarded unparsed.
    poisoned: bool,
}

impl<Io: AsyncRead + AsyncWrite + Unpin> WsStream<Io> {
    /// A WebSocket over `io`, whose handshake is done (hyper's upgraded socket replays any bytes it read past the
    /// request).
    pub(crate) fn new(io: Io, max_message: usize) -> Self {
        Self {
            io,
            inbound: Vec::new(),
            fragmented: None,
            outbound: VecDeque::new(),
            written: 0,
            max_message,
            poisoned: false,
        }
    }

    /// The next message. `None` when the client closed the TCP connection. Cancel-safe. After an error the stream
    /// only serves [`read_until_close`](Self::read_until_close). (The connection uses [`poll_recv`](Self::poll_recv).)
    #[cfg(test)]
    pub(crate) async fn recv(&mut self) -> Option<Result<WsMessage, WsError>> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// [`recv`](Self::recv) as a poll: a connection polls it at every wakeup, so it is a plain function rather than
    /// a future kept in the connection's task. Pings are answered and a close frame is answered with a close
    /// (RFC 6455 §5.5) here; those answers go out as far as the socket takes them now, and the rest first thing at
    /// the next poll.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<WsMessage, WsError>>> {
        if !self.outbound.is_empty()
            && let Poll::Ready(Err(error)) = self.poll_flush(cx)
        {
            return Poll::Ready(Some(Err(error.into())));
        }
        loop {
            if self.poisoned {
                return Poll::Ready(None);
            }
            match self.next_buffered() {
                Ok(Some(message)) => {
                    if let Err(error) = self.answer(&message, cx) {
                        return Poll::Ready(Some(Err(error.into())));
                    }
                    return Poll::Ready(Some(Ok(message)));
                }
                Ok(None) => {}
                Err(error) => {
                    self.poisoned = true;
                    return Poll::Ready(Some(Err(error.into())));
                }
            }
            match ready!(self.poll_fill(cx)) {
                Ok(0) => return Poll::Ready(None),
                Ok(_) => {}
                Err(error) => return Poll::Ready(Some(Err(error.into()))),
            }
        }
    }

    /// Reads and discards until the client's close frame or the end of the stream (after the server sent its own
    /// close). Input that already broke the framing rules is only drained: after a refused frame there is no telling
    /// where the next one starts.
    pub(crate) async fn read_until_close(&mut self) {
        loop {
            if self.poisoned {
                self.inbound = Vec::new();
            } else {
                match self.next_buffered() {
                    Ok(Some(WsMessage::Close(_))) => return,
                    Ok(Some(_)) => continue,
                    Ok(None) => {}
                    Err(_) => self.poisoned = true,
                }
            }
            if !matches!(poll_fn(|cx| self.poll_fill(cx)).await, Ok(read) if read > 0) {
                return;
            }
        }
    }

    /// Queues a text frame (the bytes must be UTF-8) or a binary one; sent by the next [`flush`](Self::flush).
    pub(crate) fn queue(&mut self, text: bool, payload: Bytes) {
        let code = if text { opcode::TEXT } else { opcode::BINARY };
        self.queue_frame(code, payload);
    }

    /// Queues the protocol's answer to a received ping (a pong) or close (a close with the same code, 1000 if it had
    /// none) and writes what the socket takes now. A pong is skipped while answers are already waiting for the
    /// socket: a client that pings without reading must not grow the queue, and RFC 6455 §5.5.3 allows answering only
    /// the latest ping.
    fn answer(&mut self, message: &WsMessage, cx: &mut Context<'_>) -> io::Result<()> {
        match message {
            WsMessage::Ping(payload) if self.outbound.len() < MAX_WAITING_CHUNKS => {
                self.queue_frame(opcode::PONG, payload.clone());
            }
            WsMessage::Close(code) => self.queue_close(code.unwrap_or(CloseCode::NORMAL.code()), ""),
            _ => return Ok(()),
        }
        match self.poll_flush(cx) {
            Poll::Ready(Err(error)) => Err(error),
            _ => Ok(()),
        }
    }

    /// Queues a close frame with `code` and `reason`.
    pub(crate) fn queue_close(&mut self, code: u16, reason: &str) {
        self.queue_frame(opcode::CLOSE, Bytes::from(close_payload(code, reason)));
    }

    /// Writes everything queued. Cancel-safe: what was not written stays queued.
    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_flush(cx)).await
    }

    /// Heap bytes this stream holds beyond its own size: the partial inbound frame, a fragmented message and the
    /// outbound queue (not the payloads it points to, which are shared).
    #[cfg(test)]
    pub(crate) fn held_bytes(&self) -> usize {
        self.inbound.capacity()
            + self.fragmented.as_ref().map_or(0, |message| message.payload.capacity())
            + self.outbound.capacity() * std::mem::size_of::<Chunk>()
    }

    fn queue_frame(&mut self, code: u8, payload: Bytes) {
        self.outbound.push_back(Chunk::Header(OutHeader::new(code, payload.len())));
        if !payload.is_empty() {
            self.outbound.push_back(Chunk::Payload(payload));
        }
    }

    /// [`flush`](Self::flush) as a poll.
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.outbound.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_IOV];
            let mut count = 0;
            for (index, chunk) in self.outbound.iter().take(MAX_IOV).enumerate() {
                let skip = if index == 0 { self.written } else { 0 };
                slices[count] = IoSlice::new(&chunk.as_slice()[skip..]);
                count += 1;
            }
            let written = ready!(Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..count]))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.advance(written);
        }
        if self.outbound.capacity() > KEPT_QUEUE_CAPACITY {
            self.outbound = VecDeque::new();
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }

    /// Drops the `written` bytes from the front of the queue.
    fn advance(&mut self, mut written: usize) {
        while let Some(front) = self.outbound.front() {
            let left = front.as_slice().len() - self.written;
            if written < left {
                self.written += written;
                return;
            }
            written -= left;
            self.written = 0;
            self.outbound.pop_front();
        }
    }

    /// Reads once into a stack buffer and appends what arrived to `inbound`. `Ok(0)`: end of stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        // Uninitialised: this runs on every wakeup of the connection task, and zeroing 8 KiB each time was 1% of the
        // server's CPU in a broadcast to 19,000 (`perf`).
        let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
        let mut buf = ReadBuf::uninit(&mut chunk);
        ready!(Pin::new(&mut self.io).poll_read(cx, &mut buf))?;
        self.inbound.extend_from_slice(buf.filled());
        Poll::Ready(Ok(buf.filled().len()))
    }

    /// Parses the next complete message out of `inbound`, if there is one.
    fn next_buffered(&mut self) -> Result<Option<WsMessage>, FrameError> {
        loop {
            let Some(header) = parse_header(&self.inbound, self.max_message)? else {
                return Ok(None);
            };
            let end = header.header_len + header.payload_len;
            if self.inbound.len() < end {
                // The rest of the frame has yet to arrive: make room for it in one allocation.
                self.inbound.reserve_exact(end - self.inbound.len());
                return Ok(None);
            }
            let mut payload = self.inbound[header.header_len..end].to_vec();
            unmask(&mut payload, header.mask);
            if end == self.inbound.len() {
                // Between frames an idle connection holds no read buffer.
                self.inbound = Vec::new();
            } else {
                self.inbound.drain(..end);
            }
            if let Some(message) = self.on_frame(header, payload)? {
                return Ok(Some(message));
            }
        }
    }

    /// Handles one unmasked frame: a control frame or a whole message is returned, a fragment is kept.
    fn on_frame(&mut self, header: Header, payload: Vec<u8>) -> Result<Option<WsMessage>, FrameError> {
        if header.is_control() {
            return Ok(Some(match header.opcode {
                opcode::PING => WsMessage::Ping(Bytes::from(payload)),
                opcode::PONG => WsMessage::Pong,
                _ => WsMessage::Close(close_code(&payload)?),
            }));
        }
        let (code, payload) = match (header.opcode, self.fragmented.take()) {
            (opcode::CONTINUATION, None) => return Err(Refused::Protocol("continuation without a message")),
            (opcode::CONTINUATION, Some(mut message)) => {
                if message.payload.len() + payload.len() > self.max_message {
                    return Err(Refused::TooLarge);
                }
                message.payload.extend_from_slice(&payload);
                (message.opcode, message.payload)
            }
            (_, Some(_)) => return Err(Refused::Protocol("new message inside a fragmented one")),
            (code, None) => (code, payload),
        };
        if !header.fin {
            self.fragmented = Some(Fragmented { opcode: code, payload });
            return Ok(None);
        }
        Ok(Some(if code == opcode::TEXT {
            WsMessage::Text(String::from_utf8(payload).map_err(|_| Refused::InvalidUtf8)?)
        } else {
            WsMessage::Binary(Bytes::from(payload))
        }))
    }
}

/// The code of a close frame's payload (none when empty).
fn close_code(payload: &[u8]) -> Result<Option<u16>, FrameError> {
    match payload {
        [] => Ok(None),
        [high, low, reason @ ..] => {
            std::str::from_utf8(reason).map_err(|_| Refused::InvalidUtf8)?;
            Ok(Some(u16::from_be_bytes([*high, *low])))
        }
        [_] => Err(Refused::Protocol("close payload of one byte")),
    }
}

#[cfg(test)]
mod tests;
