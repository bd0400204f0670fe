//! Decodes arbitrary bytes as every message of the protocol: nothing may
//! panic or overflow the stack (fused ops nest at most 16 deep), and a
//! message that decodes encodes back to bytes that decode to the same message.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rask::comm::protocol::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = Message::decode(data) {
        let bytes = message.encode().expect("a decoded message encodes");
        let again = Message::decode(&bytes).expect("its encoding decodes");
        assert_eq!(format!("{message:?}"), format!("{again:?}"));
    }
});
