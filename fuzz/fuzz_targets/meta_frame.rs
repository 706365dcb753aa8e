//! The `/archy/meta/1` framing on arbitrary bytes, through the functions the stream code calls
//! (`archy_net::meta`): the input as a request (`decode_request`: what it accepts is a valid
//! metadata file name, the request without its surrounding whitespace, and the request a client
//! sends for that name reads back as the name) and as a response (`decode_status`, `decode_length` with a limit
//! from the input: a length over the limit is refused, a head the server writes reads back as
//! what it meant).
#![no_main]

use archy_net::meta::{self, ResponseHead};
use archy_net::valid_meta_name;
use catalog::client::FetchError;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // As a request.
    if let Some(name) = meta::decode_request(data) {
        assert!(valid_meta_name(name), "decoded a name that is not valid: {name:?}");
        assert!(name.len() < meta::MAX_REQUEST, "a name longer than a request may be");
        let request = std::str::from_utf8(data).expect("a decoded request is UTF-8");
        assert_eq!(request.trim(), name, "the name is not the request without its surrounding whitespace");
        assert_eq!(meta::decode_request(name.as_bytes()), Some(name), "a client's request reads back otherwise");
    }

    // As a response: the status byte, the length and the body a client would read.
    let Some((&status, rest)) = data.split_first() else { return };
    let max_length = rest.get(8..16).map_or(u64::MAX, |b| u64::from_be_bytes(b.try_into().expect("8 bytes")));
    match meta::decode_status(status) {
        Ok(()) => {
            let Some(length) = rest.get(..8) else { return };
            let length: [u8; 8] = length.try_into().expect("8 bytes");
            let announced = u64::from_be_bytes(length);
            match meta::decode_length(length, max_length) {
                Ok(n) => {
                    assert!(announced <= max_length);
                    assert_eq!(n as u64, announced);
                }
                Err(FetchError::TooLarge { .. }) => {
                    assert!(announced > max_length || usize::try_from(announced).is_err())
                }
                Err(e) => panic!("a length is refused for another reason than its size: {e}"),
            }
            let head = ResponseHead::Found { length: announced }.encode();
            assert_eq!(head[0], status);
            assert_eq!(head[1..], length, "the server writes another length");
        }
        Err(FetchError::NotFound) => assert_eq!(ResponseHead::NotFound.encode(), [status]),
        Err(_) => {
            assert_ne!(ResponseHead::NotFound.encode(), [status]);
            assert_ne!(ResponseHead::Found { length: 0 }.encode()[0], status);
        }
    }
});
