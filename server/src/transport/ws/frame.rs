//! WebSocket frame headers (RFC 6455 §5.2): parsing the client's masked frames and writing the headers of the
//! server's unmasked ones. Pure functions over byte slices, so every edge of the format is unit-tested here.

/// Frame opcodes (RFC 6455 §5.2).
pub(super) mod opcode {
    pub(crate) const CONTINUATION: u8 = 0x0;
    pub(crate) const TEXT: u8 = 0x1;
    pub(crate) const BINARY: u8 = 0x2;
    pub(crate) const CLOSE: u8 = 0x8;
    pub(crate) const PING: u8 = 0x9;
    pub(crate) const PONG: u8 = 0xA;
}

/// Longest payload of a control frame (close, ping, pong).
const MAX_CONTROL_PAYLOAD: u64 = 125;

/// The header of a frame received from a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Header {
    /// Last frame of its message.
    pub(super) fin: bool,
    pub(super) opcode: u8,
    /// The client's masking key (clients must mask every frame).
    pub(super) mask: [u8; 4],
    /// Payload length in bytes.
    pub(super) payload_len: usize,
    /// Length of the header itself (2 to 14 bytes).
    pub(super) header_len: usize,
}

impl Header {
    /// Whether this is a close, ping or pong frame.
    pub(super) fn is_control(&self) -> bool {
        self.opcode & 0x8 != 0
    }
}

/// Why a client's frame is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FrameError {
    /// The payload is longer than the server accepts (close code 1009).
    #[error("frame too large")]
    TooLarge,
    /// The bytes break RFC 6455: reserved bits set, an unmasked frame, an unknown opcode, a fragmented or long
    /// control frame, a continuation without a message (close code 1002).
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    /// A text message that is not UTF-8 (close code 1007).
    #[error("text frame is not UTF-8")]
    InvalidUtf8,
}

/// Parses the header at the start of `buf`. `Ok(None)`: more bytes are needed. A payload longer than `max_payload`
/// is refused from its header alone, before any of it is buffered.
pub(super) fn parse_header(buf: &[u8], max_payload: usize) -> Result<Option<Header>, FrameError> {
    let [first, second, ..] = *buf else {
        return Ok(None);
    };
    if first & 0x70 != 0 {
        return Err(FrameError::Protocol("reserved bits set"));
    }
    let fin = first & 0x80 != 0;
    let opcode = first & 0x0F;
    if !matches!(
        opcode,
        opcode::CONTINUATION | opcode::TEXT | opcode::BINARY | opcode::CLOSE | opcode::PING | opcode::PONG
    ) {
        return Err(FrameError::Protocol("unknown opcode"));
    }
    if second & 0x80 == 0 {
        return Err(FrameError::Protocol("client frames must be masked"));
    }
    let (payload_len, length_bytes) = match second & 0x7F {
        126 => match buf.get(2..4) {
            Some(bytes) => (u64::from(u16::from_be_bytes([bytes[0], bytes[1]])), 2),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(bytes) => (u64::from_be_bytes(bytes.try_into().unwrap_or([0xFF; 8])), 8),
            None => return Ok(None),
        },
        short => (u64::from(short), 0),
    };
    if opcode & 0x8 != 0 && (!fin || payload_len > MAX_CONTROL_PAYLOAD) {
        return Err(FrameError::Protocol("control frames must be short and unfragmented"));
    }
    if payload_len > max_payload as u64 {
        return Err(FrameError::TooLarge);
    }
    let mask_at = 2 + length_bytes;
    let Some(mask) = buf.get(mask_at..mask_at + 4) else {
        return Ok(None);
    };
    Ok(Some(Header {
        fin,
        opcode,
        mask: [mask[0], mask[1], mask[2], mask[3]],
        payload_len: payload_len as usize,
        header_len: mask_at + 4,
    }))
}

/// Unmasks a client payload in place (XOR with the 4-byte key, RFC 6455 §5.3).
pub(super) fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    let word = u32::from_ne_bytes(mask);
    let mut chunks = payload.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let value = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) ^ word;
        chunk.copy_from_slice(&value.to_ne_bytes());
    }
    for (byte, key) in chunks.into_remainder().iter_mut().zip(mask) {
        *byte ^= key;
    }
}

/// The header of a server frame: unmasked, final, 2 to 10 bytes, kept inline (no allocation per frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct OutHeader {
    bytes: [u8; 10],
    len: u8,
}

impl OutHeader {
    /// The header of a final, unmasked frame of `opcode` carrying `payload_len` bytes.
    pub(super) fn new(opcode: u8, payload_len: usize) -> Self {
        let mut bytes = [0u8; 10];
        bytes[0] = 0x80 | opcode;
        let len = if payload_len < 126 {
            bytes[1] = payload_len as u8;
            2
        } else if let Ok(short) = u16::try_from(payload_len) {
            bytes[1] = 126;
            bytes[2..4].copy_from_slice(&short.to_be_bytes());
            4
        } else {
            bytes[1] = 127;
            bytes[2..10].copy_from_slice(&(payload_len as u64).to_be_bytes());
            10
        };
        Self { bytes, len }
    }

    pub(super) fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// The payload of a close frame: the code, then as much of `reason` as fits in a control frame (cut at a character
/// boundary).
pub(super) fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(MAX_CONTROL_PAYLOAD as usize - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    payload
}

/// A masked client frame (`first` is the FIN/opcode byte), as a browser would send it; for tests.
#[cfg(test)]
pub(super) fn client_frame(first: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut frame = vec![first];
    match payload.len() {
        len if len < 126 => frame.push(0x80 | len as u8),
        len if len <= 0xFFFF => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    let mut masked = payload.to_vec();
    unmask(&mut masked, mask);
    frame.extend_from_slice(&masked);
    frame
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_length_form_and_unmasks() {
        for len in [0, 5, 125, 126, 300, 65_535, 65_536, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let frame = client_frame(0x82, &payload, [1, 2, 3, 4]);
            let header = parse_header(&frame, 100_000).unwrap().unwrap();
            assert!(header.fin);
            assert_eq!((header.opcode, header.payload_len), (opcode::BINARY, len));
            assert_eq!(header.header_len + len, frame.len());
            let mut body = frame[header.header_len..].to_vec();
            unmask(&mut body, header.mask);
            assert_eq!(body, payload);
        }
    }

    #[test]
    fn every_prefix_of_a_header_asks_for_more() {
        let frame = client_frame(0x81, &[b'x'; 300], [9, 8, 7, 6]);
        for cut in 0..8 {
            assert_eq!(parse_header(&frame[..cut], 1000), Ok(None), "cut at {cut}");
        }
        assert!(parse_header(&frame[..8], 1000).unwrap().is_some());
    }

    #[test]
    fn refuses_what_the_rfc_forbids() {
        let unmasked = [0x81, 0x01, b'x'];
        assert!(matches!(parse_header(&unmasked, 100), Err(FrameError::Protocol(_))));
        let reserved = client_frame(0xC1, b"x", [0; 4]);
        assert!(matches!(parse_header(&reserved, 100), Err(FrameError::Protocol(_))));
        let unknown_opcode = client_frame(0x83, b"x", [0; 4]);
        assert!(matches!(parse_header(&unknown_opcode, 100), Err(FrameError::Protocol(_))));
        let fragmented_ping = client_frame(0x09, b"x", [0; 4]);
        assert!(matches!(parse_header(&fragmented_ping, 100), Err(FrameError::Protocol(_))));
        let long_ping = client_frame(0x89, &[0; 126], [0; 4]);
        assert!(matches!(parse_header(&long_ping, 1000), Err(FrameError::Protocol(_))));
    }

    #[test]
    fn an_oversized_frame_is_refused_from_its_header() {
        let header_only = &client_frame(0x81, &vec![b'a'; 70_000], [0; 4])[..14];
        assert_eq!(parse_header(header_only, 65_536), Err(FrameError::TooLarge));
        let huge_claim = [0x82, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        assert_eq!(parse_header(&huge_claim, 65_536), Err(FrameError::TooLarge));
    }

    #[test]
    fn server_headers_use_the_shortest_length_form() {
        assert_eq!(OutHeader::new(opcode::TEXT, 5).as_slice(), [0x81, 5]);
        assert_eq!(OutHeader::new(opcode::TEXT, 126).as_slice(), [0x81, 126, 0, 126]);
        assert_eq!(OutHeader::new(opcode::BINARY, 65_535).as_slice(), [0x82, 126, 0xFF, 0xFF]);
        assert_eq!(OutHeader::new(opcode::TEXT, 500_000).as_slice(), [0x81, 127, 0, 0, 0, 0, 0, 0x07, 0xA1, 0x20]);
    }

    #[test]
    fn close_reasons_are_cut_to_fit_at_a_character_boundary() {
        assert_eq!(close_payload(1000, "bye"), [0x03, 0xE8, b'b', b'y', b'e']);
        let long = "é".repeat(100);
        let payload = close_payload(1011, &long);
        assert!(payload.len() <= 125);
        assert!(std::str::from_utf8(&payload[2..]).is_ok());
    }
}
