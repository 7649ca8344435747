//! A minimal HTTP/1.1 client over a tokio `TcpStream`, enough for `/healthz` and the account forms: one request per
//! connection (`Connection: close`), the response read to the end, a chunked body decoded.

use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use super::text::url_encode;

/// How long one request may take, connect to last byte.
const TIMEOUT: Duration = Duration::from_secs(15);

/// A response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// `GET path`.
pub async fn get(addr: SocketAddr, path: &str) -> std::io::Result<Response> {
    request(addr, &format!("GET {path} HTTP/1.1\r\nAccept: text/html"), "").await
}

/// What a browser sends when a plain `<form method="post">` on the page `referer` is submitted (no JavaScript: the
/// server answers with a redirect).
pub async fn post_form(
    addr: SocketAddr,
    path: &str,
    referer: &str,
    fields: &[(&str, &str)],
) -> std::io::Result<Response> {
    let body: Vec<String> = fields.iter().map(|(name, value)| format!("{name}={}", url_encode(value))).collect();
    let head = format!(
        "POST {path} HTTP/1.1\r\nAccept: text/html\r\nReferer: {referer}\r\nContent-Type: application/x-www-form-urlencoded"
    );
    request(addr, &head, &body.join("&")).await
}

async fn request(addr: SocketAddr, head: &str, body: &str) -> std::io::Result<Response> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        let request =
            format!("{head}\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        parse(&raw)
    };
    tokio::time::timeout(TIMEOUT, exchange).await.map_err(|_| std::io::Error::other("HTTP request timed out"))?
}

fn parse(raw: &[u8]) -> std::io::Result<Response> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("incomplete HTTP response"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line in {head}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    let mut response = Response { status, headers, body: String::new() };
    let body = &raw[split + 4..];
    let chunked = response.header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    response.body = String::from_utf8_lossy(&if chunked { dechunk(body) } else { body.to_vec() }).into_owned();
    Ok(response)
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = body.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&body[..line_end]).ok().and_then(|s| usize::from_str_radix(s.trim(), 16).ok());
        let rest = &body[line_end + 2..];
        match size {
            Some(size) if size > 0 && rest.len() >= size => {
                out.extend_from_slice(&rest[..size]);
                body = rest[size..].strip_prefix(b"\r\n").unwrap_or(&rest[size..]);
            }
            _ => break,
        }
    }
    out
}

/// The `action` of the first `<form>` on `html` whose action contains `needle` (a Leptos server function's URL ends
/// in a hash of the app's source path, so it is read from the page, as a browser does).
pub fn form_action<'a>(html: &'a str, needle: &str) -> Option<&'a str> {
    html.match_indices("action=\"").map(|(at, attr)| &html[at + attr.len()..]).find_map(|rest| {
        let action = &rest[..rest.find('"')?];
        action.contains(needle).then_some(action)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_responses() {
        let plain = parse(b"HTTP/1.1 303 See Other\r\nLocation: /login?problem=x\r\n\r\n").unwrap();
        assert_eq!((plain.status, plain.header("location")), (303, Some("/login?problem=x")));
        let chunked =
            parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
                .unwrap();
        assert_eq!(chunked.body, "hello world");
        assert!(parse(b"HTTP/1.1 200").is_err());
    }

    #[test]
    fn finds_a_form_action() {
        let html = r#"<form method="post" action="/api/go_to_room123"></form><form action="/api/login987">"#;
        assert_eq!(form_action(html, "/api/login"), Some("/api/login987"));
        assert_eq!(form_action(html, "/api/register"), None);
    }
}
