//! One HTTP/1.1 keep-alive connection over a tokio `TcpStream`, as much of HTTP as a long-poll client needs: a
//! request goes out whole, the response head is read until its blank line and the body by `Content-Length` (or
//! `Transfer-Encoding: chunked`); bytes beyond the response stay buffered for the next one. One request at a time.
//!
//! The server closes a keep-alive connection that has been idle for its header timeout (10 s by default), so a
//! connection idle for [`STALE_AFTER`] is reopened before it carries another request rather than racing the close.

use std::{
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};

/// A connection idle this long is reopened before its next request (well inside the server's 10 s header timeout).
pub const STALE_AFTER: Duration = Duration::from_secs(5);
/// The largest response head read (the server's are a few hundred bytes).
const MAX_HEAD: usize = 16 * 1024;
/// A read buffer that grew past this (a large answer) is given back once the answer was taken.
const KEEP_CAPACITY: usize = 16 * 1024;

/// A response: its HTTP status and body (headers are read only for the framing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

/// A keep-alive connection to one server from one source address.
pub struct Http {
    server: SocketAddr,
    source: IpAddr,
    stream: Option<TcpStream>,
    /// Bytes read and not yet consumed.
    buffer: Vec<u8>,
    /// When the last response ended (or the connection opened).
    last_used: Instant,
    /// Bytes read off the socket so far, heads and framing included.
    pub bytes_read: u64,
}

fn invalid(what: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.into())
}

impl Http {
    /// A connection to `server` from `source` (opened on the first request).
    pub fn new(server: SocketAddr, source: IpAddr) -> Self {
        Self { server, source, stream: None, buffer: Vec::new(), last_used: Instant::now(), bytes_read: 0 }
    }

    async fn connect(&mut self) -> std::io::Result<()> {
        let socket = if self.source.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
        socket.bind(SocketAddr::new(self.source, 0))?;
        let stream = socket.connect(self.server).await?;
        // Requests are small and written whole: without this a POST could wait for a delayed ACK.
        stream.set_nodelay(true)?;
        self.stream = Some(stream);
        self.buffer.clear();
        Ok(())
    }

    /// Whether a TCP connection is open now.
    pub fn is_open(&self) -> bool {
        self.stream.is_some()
    }

    /// Sends `head` (request line and headers, each ending in `\r\n`, without the blank line) with `Host` and
    /// `Content-Length` added, then `body`, and reads the response. Any failure closes the connection; the next
    /// request opens a new one.
    pub async fn request(&mut self, head: &str, body: &[u8]) -> std::io::Result<Response> {
        if self.stream.is_some() && self.last_used.elapsed() >= STALE_AFTER {
            self.stream = None;
        }
        if self.stream.is_none() {
            self.connect().await?;
        }
        let result = self.exchange(head, body).await;
        match &result {
            Ok(_) => self.last_used = Instant::now(),
            Err(_) => self.stream = None,
        }
        result
    }

    async fn exchange(&mut self, head: &str, body: &[u8]) -> std::io::Result<Response> {
        let mut request = format!("{head}Host: {}\r\nContent-Length: {}\r\n\r\n", self.server, body.len()).into_bytes();
        request.extend_from_slice(body);
        let stream = self.stream.as_mut().ok_or_else(|| invalid("not connected"))?;
        stream.write_all(&request).await?;
        let response = self.read_response().await?;
        if self.buffer.capacity() > KEEP_CAPACITY && self.buffer.len() < KEEP_CAPACITY {
            self.buffer.shrink_to(KEEP_CAPACITY);
        }
        Ok(response)
    }

    /// Reads more bytes into the buffer; an error at end of stream.
    async fn fill(&mut self) -> std::io::Result<()> {
        let stream = self.stream.as_mut().ok_or_else(|| invalid("not connected"))?;
        self.buffer.reserve(4096);
        let read = stream.read_buf(&mut self.buffer).await?;
        if read == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the server closed the connection"));
        }
        self.bytes_read += read as u64;
        Ok(())
    }

    /// The offset just past the next `\r\n` at or after `from`, reading as needed.
    async fn line_end(&mut self, from: usize) -> std::io::Result<usize> {
        loop {
            if let Some(at) = find(&self.buffer[from..], b"\r\n") {
                return Ok(from + at + 2);
            }
            if self.buffer.len() - from > MAX_HEAD {
                return Err(invalid("line too long"));
            }
            self.fill().await?;
        }
    }

    async fn read_response(&mut self) -> std::io::Result<Response> {
        let head_end = loop {
            if let Some(at) = find(&self.buffer, b"\r\n\r\n") {
                break at + 4;
            }
            if self.buffer.len() > MAX_HEAD {
                return Err(invalid("response head too long"));
            }
            self.fill().await?;
        };
        let head = Head::parse(&self.buffer[..head_end])?;
        let (body, end) = match head.framing {
            Framing::Length(length) => {
                while self.buffer.len() < head_end + length {
                    self.fill().await?;
                }
                (self.buffer[head_end..head_end + length].to_vec(), head_end + length)
            }
            Framing::Chunked => self.read_chunks(head_end).await?,
        };
        self.buffer.drain(..end);
        if head.close {
            self.stream = None;
        }
        Ok(Response { status: head.status, body })
    }

    /// A chunked body starting at `at`: the body and the offset just past it (trailers are skipped).
    async fn read_chunks(&mut self, mut at: usize) -> std::io::Result<(Vec<u8>, usize)> {
        let mut body = Vec::new();
        loop {
            let size_end = self.line_end(at).await?;
            let size_line = std::str::from_utf8(&self.buffer[at..size_end - 2]).map_err(|_| invalid("chunk size"))?;
            let size_text = size_line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16).map_err(|_| invalid("chunk size"))?;
            at = size_end;
            if size == 0 {
                // Trailer lines until an empty one.
                loop {
                    let end = self.line_end(at).await?;
                    let empty = end == at + 2;
                    at = end;
                    if empty {
                        return Ok((body, at));
                    }
                }
            }
            while self.buffer.len() < at + size + 2 {
                self.fill().await?;
            }
            body.extend_from_slice(&self.buffer[at..at + size]);
            at += size + 2;
        }
    }
}

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
}

/// What the framing needs of a response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    status: u16,
    framing: Framing,
    /// `Connection: close`: the server closes after this response.
    close: bool,
}

impl Head {
    fn parse(raw: &[u8]) -> std::io::Result<Self> {
        let text = std::str::from_utf8(raw).map_err(|_| invalid("response head is not UTF-8"))?;
        let mut lines = text.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let status = status_line
            .strip_prefix("HTTP/1.")
            .and_then(|rest| rest.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
        let mut head = Self { status, framing: Framing::Length(0), close: false };
        for (name, value) in lines.filter_map(|line| line.split_once(':')) {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                head.framing = Framing::Length(value.parse().map_err(|_| invalid("bad content-length"))?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked") {
                head.framing = Framing::Chunked;
            } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close") {
                head.close = true;
            }
        }
        Ok(head)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::Ipv4Addr;

    use tokio::net::TcpListener;

    use super::*;

    #[test]
    fn heads_give_status_and_framing() {
        let head = Head::parse(b"HTTP/1.1 200 OK\r\ncontent-length: 12\r\nContent-Type: x\r\n\r\n").unwrap();
        assert_eq!(head, Head { status: 200, framing: Framing::Length(12), close: false });
        let head = Head::parse(b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
        assert_eq!(head.unwrap(), Head { status: 404, framing: Framing::Chunked, close: true });
        assert!(Head::parse(b"SSH-2.0\r\n\r\n").is_err());
    }

    /// A server that answers each request on one connection with the next canned response, then closes.
    async fn canned(responses: Vec<&'static [u8]>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            for response in responses {
                // Wait for a whole request head (these requests have empty bodies).
                while find(&seen, b"\r\n\r\n").is_none() {
                    let mut chunk = [0u8; 1024];
                    let read = stream.read(&mut chunk).await.unwrap();
                    seen.extend_from_slice(&chunk[..read]);
                }
                let end = find(&seen, b"\r\n\r\n").unwrap() + 4;
                seen.drain(..end);
                // Written in two parts, so the client has to read more than once.
                let (first, second) = response.split_at(response.len() / 2);
                stream.write_all(first).await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
                stream.write_all(second).await.unwrap();
            }
        });
        addr
    }

    #[tokio::test]
    async fn reads_responses_one_after_another_on_one_connection() {
        let addr = canned(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=1\r\n world\r\n0\r\nA: b\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
        ])
        .await;
        let mut http = Http::new(addr, IpAddr::V4(Ipv4Addr::LOCALHOST));
        let first = http.request("GET / HTTP/1.1\r\n", b"").await.unwrap();
        assert_eq!(first, Response { status: 200, body: b"hello".to_vec() });
        let second = http.request("GET / HTTP/1.1\r\n", b"").await.unwrap();
        assert_eq!(second, Response { status: 200, body: b"hello world".to_vec() });
        let third = http.request("GET / HTTP/1.1\r\n", b"").await.unwrap();
        assert_eq!(third, Response { status: 204, body: Vec::new() });
        assert!(http.is_open() && http.bytes_read > 100);
        // The canned server is done: the connection is closed and the request fails.
        assert!(http.request("GET / HTTP/1.1\r\n", b"").await.is_err());
        assert!(!http.is_open());
    }
}
