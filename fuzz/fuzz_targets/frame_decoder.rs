//! Feeds arbitrary bytes, in arbitrary pieces, to the frame decoder and decodes
//! every packet's message: nothing may panic, and an error is final.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rask::comm::frame::{FrameDecoder, Limits};
use rask::comm::protocol::Message;

fuzz_target!(|data: &[u8]| {
    let Some((&split, bytes)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        max_message: 1 << 16,
        max_blob: 1 << 16,
        max_blobs: 64,
    };
    let mut decoder = FrameDecoder::new(limits);
    let piece = usize::from(split).max(1);
    for chunk in bytes.chunks(piece) {
        decoder.push(chunk);
        loop {
            match decoder.next_packet() {
                Ok(Some(packet)) => {
                    let _ = postcard::from_bytes::<Message>(&packet.message);
                }
                Ok(None) => break,
                Err(_) => {
                    assert!(decoder.next_packet().is_err(), "errors are final");
                    return;
                }
            }
        }
    }
    let _ = decoder.finish();
});
