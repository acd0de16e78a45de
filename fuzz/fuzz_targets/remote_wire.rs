//! Fuzzes the decoders of `modo::remote::wire`: any bytes give a value or a typed error,
//! never a panic; a request head that decodes encodes back to the same head; a body decodes
//! as a message type with strings, vectors and options without panicking or allocating
//! beyond the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modo::remote::wire;

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
struct Sample {
    id: u32,
    name: String,
    tags: Vec<u16>,
    note: Option<String>,
}

fuzz_target!(|data: &[u8]| {
    if let Ok((head, body)) = wire::decode_request(data) {
        let again = wire::encode_request(&head, &()).expect("a decoded head encodes");
        let (back, rest) = wire::decode_request(&again).expect("and decodes again");
        assert_eq!(back, head);
        assert!(rest.is_empty());
        let _ = wire::decode_body::<Sample>(body, "message");
    }
    if let Ok((reply, body)) = wire::decode_reply(data) {
        let _ = format!("{reply:?}");
        let _ = wire::decode_body::<Option<Sample>>(body, "reply");
    }
    let _ = wire::decode_body::<Sample>(data, "message");
});
