//! The HTTP API's JSON request bodies (operator, resident, merchant, till) through serde_json,
//! as the handlers parse them (the body limit is 64 KiB).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() <= 64 * 1024 {
        linli_fuzz::json::exercise(data);
    }
});
