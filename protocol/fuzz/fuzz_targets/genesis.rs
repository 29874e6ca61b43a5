//! The genesis file (TOML, as an operator or a peer hands it over) and the genesis's canonical
//! bytes: parse and check; what parses round-trips to the same genesis hash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use linli_protocol::Genesis;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(g) = Genesis::from_toml(text) {
            let again = Genesis::from_toml(&g.to_toml()).expect("a genesis reads back its own TOML");
            assert_eq!(again.hash(), g.hash());
        }
    }
    if let Ok(g) = Genesis::from_canonical_bytes(data) {
        assert_eq!(g.canonical_bytes(), data, "decoding is canonical");
    }
});
