//! The body of a long-poll POST, split into frames before any of them is dispatched.
//!
//! phoenix.js sends `Content-Type: application/x-ndjson`: one frame per line, lines joined by `\n` (`\r\n` is
//! accepted too), at most 100 lines. A line starting with `[` is a JSON text frame; any other line is a binary frame
//! in standard, padded base64. Older clients send any other content type with the whole body as one text frame.
//!
//! Unlike Phoenix, which quietly drops lines past the hundredth, a body that breaks a rule is refused whole: nothing
//! in it is dispatched, and the client is told why. Blank lines are skipped. This module is pure (no I/O, no server
//! types) so the `longpoll_body` fuzz target compiles it from this file.

use base64::{Engine, engine::general_purpose::STANDARD};

/// Most frames in one POST (phoenix.js's `MAX_LONGPOLL_BATCH_SIZE`, Phoenix's `@max_poll_batch_size`).
pub const MAX_LINES: usize = 100;
#[allow(dead_code, reason = "the default of `--max-frame-bytes`, for the fuzz target (fuzz/ compiles this file)")]
/// Largest frame, text or decoded binary, by default: the WebSocket transport's frame limit (`--max-frame-bytes`
/// sets both).
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// One frame of a POST body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A text frame.
    Text(String),
    /// A binary frame (decoded from base64).
    Binary(Vec<u8>),
}

/// Why a body is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// More than [`MAX_LINES`] frames.
    #[error("too many frames (at most 100 per request)")]
    TooManyLines,
    /// A frame over [`MAX_FRAME_BYTES`].
    #[error("frame too large")]
    FrameTooLarge,
    /// A text frame that is not UTF-8, or a binary line that is not base64.
    #[error("invalid frame")]
    Invalid,
}

/// Splits a POST body into frames: `ndjson` for `application/x-ndjson`, otherwise the body is one text frame.
#[allow(dead_code, reason = "the server passes `--max-frame-bytes`; the fuzz target (fuzz/) calls this")]
pub fn parse(body: &[u8], ndjson: bool) -> Result<Vec<Line>, BodyError> {
    parse_limited(body, ndjson, MAX_FRAME_BYTES)
}

/// [`parse`] with frames of at most `max_frame` bytes.
pub fn parse_limited(body: &[u8], ndjson: bool, max_frame: usize) -> Result<Vec<Line>, BodyError> {
    if !ndjson {
        return match body.is_empty() {
            true => Ok(Vec::new()),
            false => Ok(vec![text(body, max_frame)?]),
        };
    }
    let mut lines = Vec::new();
    for raw in body.split(|&byte| byte == b'\n') {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.is_empty() {
            continue;
        }
        if lines.len() == MAX_LINES {
            return Err(BodyError::TooManyLines);
        }
        lines.push(if raw.first() == Some(&b'[') { text(raw, max_frame)? } else { binary(raw, max_frame)? });
    }
    Ok(lines)
}

fn text(raw: &[u8], max_frame: usize) -> Result<Line, BodyError> {
    if raw.len() > max_frame {
        return Err(BodyError::FrameTooLarge);
    }
    std::str::from_utf8(raw).map(|text| Line::Text(text.to_owned())).map_err(|_| BodyError::Invalid)
}

fn binary(raw: &[u8], max_frame: usize) -> Result<Line, BodyError> {
    // Four base64 characters carry three bytes: a line this long cannot decode to a frame within the limit.
    if raw.len() > (max_frame / 3 + 1) * 4 {
        return Err(BodyError::FrameTooLarge);
    }
    let bytes = STANDARD.decode(raw).map_err(|_| BodyError::Invalid)?;
    if bytes.len() > max_frame {
        return Err(BodyError::FrameTooLarge);
    }
    Ok(Line::Binary(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ndjson(body: &str) -> Result<Vec<Line>, BodyError> {
        parse(body.as_bytes(), true)
    }

    #[test]
    fn lines_are_text_or_base64_frames() {
        let lines = ndjson("[null,\"1\",\"phoenix\",\"heartbeat\",{}]\r\nAAEC\n\n[1]").expect("valid body");
        assert_eq!(lines.len(), 3, "the blank line is skipped");
        assert_eq!(lines[0], Line::Text("[null,\"1\",\"phoenix\",\"heartbeat\",{}]".into()));
        assert_eq!(lines[1], Line::Binary(vec![0, 1, 2]));
        assert_eq!(lines[2], Line::Text("[1]".into()));
        assert_eq!(ndjson(""), Ok(Vec::new()));
    }

    #[test]
    fn a_hundred_lines_pass_and_one_more_refuses_the_body() {
        let hundred = vec!["[]"; MAX_LINES].join("\n");
        assert_eq!(ndjson(&hundred).map(|lines| lines.len()), Ok(MAX_LINES));
        assert_eq!(ndjson(&format!("{hundred}\n[]")), Err(BodyError::TooManyLines));
        assert_eq!(ndjson(&format!("{hundred}\n\n")), Ok(vec![Line::Text("[]".into()); MAX_LINES]));
    }

    #[test]
    fn oversized_and_malformed_frames_refuse_the_body() {
        let big = format!("[\"{}\"]", "x".repeat(MAX_FRAME_BYTES));
        assert_eq!(ndjson(&big), Err(BodyError::FrameTooLarge));
        let big_binary = STANDARD.encode(vec![7u8; MAX_FRAME_BYTES + 1]);
        assert_eq!(ndjson(&big_binary), Err(BodyError::FrameTooLarge));
        let at_limit = STANDARD.encode(vec![7u8; MAX_FRAME_BYTES]);
        assert_eq!(ndjson(&at_limit).map(|lines| lines.len()), Ok(1));
        assert_eq!(ndjson("not base64!"), Err(BodyError::Invalid));
        assert_eq!(parse(b"[\"\xff\"]", true), Err(BodyError::Invalid));
    }

    #[test]
    fn other_content_types_are_one_text_frame() {
        assert_eq!(parse(b"[1]\n[2]", false), Ok(vec![Line::Text("[1]\n[2]".into())]));
        assert_eq!(parse(b"", false), Ok(Vec::new()));
    }
}
