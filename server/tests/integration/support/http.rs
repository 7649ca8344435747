//! Plain HTTP/1.1 requests over a fresh TCP connection: the bytes a browser or an attacker would send, nothing
//! smoothed over by a client library.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::TestServer;

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`, so the body runs to the end of the stream).
pub async fn request(server: &TestServer, head: &str, body: &str) -> Response {
    request_to(server.addr, head, body).await
}

/// [`request`] to a server by address (for a task that does not hold the server).
pub async fn request_to(addr: std::net::SocketAddr, head: &str, body: &str) -> Response {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request =
        format!("{head}\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    Response { status, headers, body: raw[split + 4..].to_vec() }
}

/// What a browser sends when a plain `<form method="post">` on `referer` is submitted.
pub fn form_post(path: &str, referer: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nAccept: text/html\r\nReferer: {referer}\r\nContent-Type: application/x-www-form-urlencoded"
    )
}

pub async fn get(server: &TestServer, path: &str, accept_encoding: &str) -> Response {
    request(server, &format!("GET {path} HTTP/1.1\r\nAccept-Encoding: {accept_encoding}"), "").await
}
