//! The stream over an in-memory duplex pipe: messages across reads, fragments, refusals, and what a socket holds
//! after a large frame.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};

use super::{WsError, WsMessage, WsStream, frame::client_frame};
use crate::transport::ws::FrameError;

const MAX: usize = 64 * 1024;

fn pair(capacity: usize) -> (WsStream<DuplexStream>, DuplexStream) {
    let (server, client) = duplex(capacity);
    (WsStream::new(server, MAX), client)
}

/// Splits what the server wrote into `(opcode, payload)` frames (server frames are unmasked and final).
fn server_frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        assert_eq!(bytes[0] & 0xF0, 0x80, "final, no reserved bits");
        let (len, at) = match bytes[1] {
            126 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
            127 => (u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize, 10),
            short => (short as usize, 2),
        };
        frames.push((bytes[0] & 0x0F, bytes[at..at + len].to_vec()));
        bytes = &bytes[at + len..];
    }
    frames
}

#[tokio::test]
async fn reads_messages_that_arrive_a_byte_at_a_time() {
    let (mut stream, mut client) = pair(64);
    let mut bytes = client_frame(0x81, b"[null,\"1\",\"phoenix\",\"heartbeat\",{}]", [7, 1, 9, 3]);
    bytes.extend(client_frame(0x82, &[1, 2, 3], [4, 4, 4, 4]));
    tokio::spawn(async move {
        for byte in bytes {
            client.write_all(&[byte]).await.unwrap();
            tokio::task::yield_now().await;
        }
        client
    });
    let first = stream.recv().await.unwrap().unwrap();
    assert_eq!(first, WsMessage::Text("[null,\"1\",\"phoenix\",\"heartbeat\",{}]".into()));
    assert_eq!(stream.recv().await.unwrap().unwrap(), WsMessage::Binary(Bytes::from_static(&[1, 2, 3])));
    assert_eq!(stream.held_bytes(), 0, "an idle stream holds no read buffer");
}

#[tokio::test]
async fn assembles_fragments_around_a_control_frame() {
    let (mut stream, mut client) = pair(4096);
    let mut bytes = client_frame(0x01, b"hel", [1, 2, 3, 4]);
    bytes.extend(client_frame(0x89, b"are you there", [5, 6, 7, 8]));
    bytes.extend(client_frame(0x00, b"lo, ", [9, 9, 9, 9]));
    bytes.extend(client_frame(0x80, "wörld".as_bytes(), [0, 1, 0, 1]));
    bytes.extend(client_frame(0x88, &[0x03, 0xE8], [2, 2, 2, 2]));
    client.write_all(&bytes).await.unwrap();
    assert_eq!(stream.recv().await.unwrap().unwrap(), WsMessage::Ping(Bytes::from_static(b"are you there")));
    assert_eq!(stream.recv().await.unwrap().unwrap(), WsMessage::Text("hello, wörld".into()));
    assert_eq!(stream.recv().await.unwrap().unwrap(), WsMessage::Close(Some(1000)));
    drop(client);
    assert!(stream.recv().await.is_none(), "end of stream");
}

#[tokio::test]
async fn refuses_oversized_invalid_and_unmasked_frames() {
    let cases: [(Vec<u8>, FrameError); 4] = [
        (client_frame(0x81, &vec![b'a'; MAX + 1], [1, 1, 1, 1])[..14].to_vec(), FrameError::TooLarge),
        (client_frame(0x81, &[0xC3, 0x28], [1, 2, 3, 4]), FrameError::InvalidUtf8),
        (vec![0x81, 0x01, b'x'], FrameError::Protocol("client frames must be masked")),
        (client_frame(0x80, b"x", [1, 2, 3, 4]), FrameError::Protocol("continuation without a message")),
    ];
    for (bytes, expected) in cases {
        let (mut stream, mut client) = pair(4096);
        client.write_all(&bytes).await.unwrap();
        match stream.recv().await {
            Some(Err(WsError::Frame(refused))) => assert_eq!(refused, expected),
            other => panic!("expected {expected:?}, got {other:?}"),
        }
        assert!(stream.recv().await.is_none(), "a refused stream reads nothing more");
    }
    let (mut stream, mut client) = pair(4096);
    let mut fragments = client_frame(0x01, &vec![b'a'; MAX], [1, 1, 1, 1]);
    fragments.extend(client_frame(0x80, b"b", [1, 1, 1, 1]));
    let writer = tokio::spawn(async move { client.write_all(&fragments).await.map(|()| client) });
    assert!(matches!(stream.recv().await, Some(Err(WsError::Frame(FrameError::TooLarge)))));
    drop(writer);
}

#[tokio::test]
async fn a_large_shared_frame_is_written_without_a_copy_and_nothing_is_kept() {
    let (mut stream, mut client) = pair(4096);
    let payload = Bytes::from(vec![b'x'; 500_000]);
    let reader = tokio::spawn(async move {
        let mut received = Vec::new();
        client.read_to_end(&mut received).await.unwrap();
        received
    });
    stream.queue(true, payload.clone());
    stream.queue(false, Bytes::from_static(&[1, 2]));
    stream.queue_close(1011, "slow consumer");
    stream.flush().await.unwrap();
    assert!(stream.held_bytes() < 1024, "after the frame the stream holds {} bytes", stream.held_bytes());
    assert!(payload.is_unique(), "the stream released its reference to the shared payload");
    drop(stream);
    let frames = server_frames(&reader.await.unwrap());
    assert_eq!(frames.len(), 3);
    assert_eq!((frames[0].0, frames[0].1.len()), (0x1, 500_000));
    assert_eq!(frames[1], (0x2, vec![1, 2]));
    assert_eq!(frames[2].0, 0x8);
    assert_eq!(&frames[2].1[..2], &1011u16.to_be_bytes());
    assert_eq!(&frames[2].1[2..], b"slow consumer");
}

#[tokio::test]
async fn an_interrupted_flush_resumes_mid_frame() {
    let (mut stream, mut client) = pair(1000);
    for n in 0..5u8 {
        stream.queue(false, Bytes::from(vec![n; 700]));
    }
    // Nobody reads yet: the write stalls after the pipe's 1,000 bytes and the flush is dropped mid-frame.
    assert!(tokio::time::timeout(Duration::from_millis(50), stream.flush()).await.is_err());
    let reader = tokio::spawn(async move {
        let mut received = Vec::new();
        client.read_to_end(&mut received).await.unwrap();
        received
    });
    stream.flush().await.unwrap();
    drop(stream);
    let frames = server_frames(&reader.await.unwrap());
    assert_eq!(frames, (0..5u8).map(|n| (0x2, vec![n; 700])).collect::<Vec<_>>());
}

#[tokio::test]
async fn read_until_close_drains_after_a_refused_frame() {
    let (mut stream, mut client) = pair(4096);
    let mut bytes = client_frame(0x81, &[0xFF], [0; 4]);
    bytes.extend(client_frame(0x81, b"ignored", [1, 2, 3, 4]));
    client.write_all(&bytes).await.unwrap();
    assert!(matches!(stream.recv().await, Some(Err(WsError::Frame(FrameError::InvalidUtf8)))));
    drop(client);
    tokio::time::timeout(Duration::from_secs(5), stream.read_until_close()).await.unwrap();
}

#[tokio::test]
async fn pings_from_a_client_that_never_reads_do_not_grow_the_queue() {
    let (mut stream, mut client) = pair(64);
    let mut pings = Vec::new();
    for _ in 0..1000 {
        pings.extend(client_frame(0x89, &[7; 100], [1, 2, 3, 4]));
    }
    // The writer's result keeps the client end open (and unread) until the test ends.
    let writer = tokio::spawn(async move { client.write_all(&pings).await.map(|()| client) });
    for _ in 0..1000 {
        let Some(Ok(WsMessage::Ping(_))) = stream.recv().await else { panic!("a ping") };
    }
    assert!(stream.held_bytes() < 1024, "the stream holds {} bytes of unsent pongs", stream.held_bytes());
    drop(writer);
}
