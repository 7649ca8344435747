//! The long-poll POST body parser (`server::transport::longpoll::body`): byte 0 picks the content type (bit 0:
//! ndjson or a single frame), the rest is the body.
//!
//! Besides "no panic": an accepted body holds at most 100 frames, none over 64 KiB; a text frame is exactly its
//! line (valid UTF-8, starting with `[`); a binary line is base64 of the frame; writing the frames back as phoenix.js
//! would (text as is, binary as padded base64, joined by `\n`) parses to the same frames; a refused body is refused
//! for a reason that holds (more than 100 non-blank lines, an oversized frame, or a malformed one).
#![no_main]

use base64::{Engine, engine::general_purpose::STANDARD};
use libfuzzer_sys::fuzz_target;
use parley_fuzz::longpoll_body::{BodyError, Line, MAX_FRAME_BYTES, MAX_LINES, parse};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else { return };
    let ndjson = mode & 1 == 1;
    match parse(body, ndjson) {
        Ok(lines) => {
            assert!(lines.len() <= MAX_LINES);
            if !ndjson {
                assert_eq!(lines.len(), usize::from(!body.is_empty()));
                if let Some(Line::Text(text)) = lines.first() {
                    assert_eq!(text.as_bytes(), body);
                }
                return;
            }
            let mut rewritten = Vec::new();
            for line in &lines {
                match line {
                    Line::Text(text) => {
                        assert!(text.len() <= MAX_FRAME_BYTES && text.starts_with('['));
                        assert!(!text.contains('\n'));
                        // A frame ending in `\r` would lose it to the line-ending rule when written back.
                        if text.ends_with('\r') {
                            return;
                        }
                        rewritten.push(text.clone());
                    }
                    Line::Binary(bytes) => {
                        assert!(bytes.len() <= MAX_FRAME_BYTES);
                        rewritten.push(STANDARD.encode(bytes));
                    }
                }
            }
            let reparsed = parse(rewritten.join("\n").as_bytes(), true);
            assert_eq!(reparsed.as_ref(), Ok(&lines), "frames written back parse to the same frames");
        }
        Err(BodyError::TooManyLines) => {
            assert!(ndjson);
            let non_blank = body.split(|&b| b == b'\n').filter(|line| !matches!(*line, b"" | b"\r")).count();
            assert!(non_blank > MAX_LINES);
        }
        Err(BodyError::FrameTooLarge) => assert!(body.len() > MAX_FRAME_BYTES),
        Err(BodyError::Invalid) => assert!(!body.is_empty()),
    }
});
