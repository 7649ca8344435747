//! A WebSocket spoken by hand over a `TcpStream`, for the frames no client library sends: invalid UTF-8 in a text
//! frame, an unmasked client frame, a header that announces more than the frame limit.

use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Opens a socket and completes the upgrade (`vsn=2.0.0`, a guest name).
pub async fn open(addr: SocketAddr, user: &str) -> std::io::Result<TcpStream> {
    let mut tcp = TcpStream::connect(addr).await?;
    let request = format!(
        "GET /socket/websocket?vsn=2.0.0&user={user} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await?;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tcp.read_u8().await?);
        if head.len() > 8192 {
            return Err(std::io::Error::other("upgrade response too long"));
        }
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        return Err(std::io::Error::other(String::from_utf8_lossy(&head).into_owned()));
    }
    Ok(tcp)
}

/// A client frame: FIN and `opcode`, the payload masked (or not, to break the protocol).
pub fn frame(opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mask = [0x3a, 0x91, 0x5c, 0x07];
    let mut bytes = vec![0x80 | opcode];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        len @ 0..=125 => bytes.push(mask_bit | len as u8),
        len @ 126..=0xffff => {
            bytes.push(mask_bit | 126);
            bytes.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            bytes.push(mask_bit | 127);
            bytes.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    if masked {
        bytes.extend_from_slice(&mask);
        bytes.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    } else {
        bytes.extend_from_slice(payload);
    }
    bytes
}

/// The header of a masked text frame announcing `len` payload bytes, without the payload.
pub fn header_only(len: u64) -> Vec<u8> {
    let mut bytes = vec![0x81, 0x80 | 127];
    bytes.extend_from_slice(&len.to_be_bytes());
    bytes.extend_from_slice(&[1, 2, 3, 4]);
    bytes
}

/// Reads server frames until a close frame; its code (1005 for an empty one), or `None` if the stream ended first or
/// nothing came within 10 s.
pub async fn close_code(tcp: &mut TcpStream) -> Option<u16> {
    let read = async {
        loop {
            let mut head = [0u8; 2];
            tcp.read_exact(&mut head).await.ok()?;
            let mut len = u64::from(head[1] & 0x7f);
            if len == 126 {
                len = u64::from(tcp.read_u16().await.ok()?);
            } else if len == 127 {
                len = tcp.read_u64().await.ok()?;
            }
            let mut payload = vec![0u8; usize::try_from(len).ok()?.min(1 << 20)];
            tcp.read_exact(&mut payload).await.ok()?;
            if head[0] & 0x0f == 0x8 {
                return Some(payload.get(..2).map_or(1005, |code| u16::from_be_bytes([code[0], code[1]])));
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read).await.ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_masked_and_sized() {
        let small = frame(0x1, b"hi", true);
        assert_eq!(&small[..2], &[0x81, 0x82]);
        assert_eq!(small[6] ^ small[2], b'h');
        assert_eq!(frame(0x1, b"[]", false), [0x81, 0x02, b'[', b']']);
        let medium = frame(0x2, &[0; 300], true);
        assert_eq!(&medium[..4], &[0x82, 0xfe, 0x01, 0x2c]);
        assert_eq!(header_only(1 << 20).len(), 14);
    }
}
