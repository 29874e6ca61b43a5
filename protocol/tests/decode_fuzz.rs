//! Decoding untrusted bytes never panics, and is strict: whatever decodes re-encodes to exactly
//! the input (one encoding per value). Covers signed entries, genesis (canonical bytes and
//! TOML), cosigned checkpoints, equivocation proofs and Merkle proofs, on random bytes and on
//! truncated or mutated valid encodings; and the size limits.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

mod common;

use linli_protocol::body::{Body, Enroll};
use linli_protocol::checkpoint::{CheckpointError, CosignedCheckpoint, EquivocationError, EquivocationProof};
use linli_protocol::encoding::{self, DecodeError, MAX_ENTRY_BYTES, MAX_GENESIS_BYTES, MAX_MESSAGE_BYTES};
use linli_protocol::genesis::{GenesisError, RawGenesis};
use linli_protocol::merkle::{ConsistencyProof, InclusionProof};
use linli_protocol::rules::RuleTable;
use linli_protocol::testkit::TestFederation;
use linli_protocol::{Genesis, Hash, SignedEntry};
use proptest::prelude::*;
use std::sync::OnceLock;

/// The decoders under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Entry,
    Genesis,
    Cosigned,
    Equivocation,
    Inclusion,
    Consistency,
}

const TARGETS: [Target; 6] =
    [Target::Entry, Target::Genesis, Target::Cosigned, Target::Equivocation, Target::Inclusion, Target::Consistency];

/// Decode `bytes` as `target`; on success, the value's canonical re-encoding.
fn decode(target: Target, bytes: &[u8]) -> Option<Vec<u8>> {
    match target {
        Target::Entry => SignedEntry::from_bytes(bytes).ok().map(|v| v.to_bytes()),
        Target::Genesis => Genesis::from_canonical_bytes(bytes).ok().map(|v| {
            // Whatever decodes is a checked genesis: the TOML-side checks accept it as is.
            assert_eq!(Genesis::try_from(RawGenesis::from(&v)).as_ref(), Ok(&v), "decoded an unchecked genesis");
            v.canonical_bytes()
        }),
        Target::Cosigned => CosignedCheckpoint::from_bytes(bytes).ok().map(|v| v.to_bytes()),
        Target::Equivocation => EquivocationProof::from_bytes(bytes).ok().map(|v| v.to_bytes()),
        Target::Inclusion => encoding::decode::<InclusionProof>("inclusion proof", bytes, MAX_MESSAGE_BYTES)
            .ok()
            .map(|v| encoding::encode(&v)),
        Target::Consistency => encoding::decode::<ConsistencyProof>("consistency proof", bytes, MAX_MESSAGE_BYTES)
            .ok()
            .map(|v| encoding::encode(&v)),
    }
}

/// Valid encodings to truncate and mutate: every golden entry, the genesis, the cosigned
/// checkpoint, the equivocation proof and both Merkle proofs.
fn samples() -> &'static [(Target, Vec<u8>)] {
    static SAMPLES: OnceLock<Vec<(Target, Vec<u8>)>> = OnceLock::new();
    SAMPLES.get_or_init(|| {
        let gd = common::golden();
        let mut v: Vec<(Target, Vec<u8>)> = gd.entries.iter().map(|e| (Target::Entry, e.to_bytes())).collect();
        let mut genesis = linli_protocol::testkit::genesis(&["lianhua", "xiangmihu", "shatou"]);
        genesis.communities[0].http_address = Some("127.0.0.1:8001".into());
        genesis.communities[1].p2p_addresses = vec!["/ip4/127.0.0.1/tcp/4001".into(), "/dns4/x/tcp/1".into()];
        v.push((Target::Genesis, genesis.canonical_bytes()));
        v.push((Target::Genesis, gd.genesis.canonical_bytes()));
        v.push((Target::Cosigned, gd.checkpoint.to_bytes()));
        v.push((Target::Equivocation, gd.equivocation.to_bytes()));
        let cp = EquivocationProof::Checkpoints(
            Box::new(gd.checkpoint.signed.clone()),
            Box::new(gd.checkpoint.signed.clone()),
        );
        v.push((Target::Equivocation, cp.to_bytes()));
        v.push((Target::Inclusion, encoding::encode(&gd.inclusion)));
        v.push((Target::Consistency, encoding::encode(&gd.consistency)));
        for (t, bytes) in &v {
            assert_eq!(decode(*t, bytes).as_deref(), Some(bytes.as_slice()), "sample of {t:?} must decode");
        }
        v
    })
}

fn sample_toml() -> &'static str {
    static TOML: OnceLock<String> = OnceLock::new();
    TOML.get_or_init(|| {
        let mut g = linli_protocol::testkit::genesis(&["lianhua", "xiangmihu"]);
        g.communities[0].http_address = Some("127.0.0.1:8001".into());
        g.communities[0].p2p_addresses = vec!["/ip4/127.0.0.1/tcp/4001".into()];
        g.to_toml()
    })
}

/// Decoding `bytes` as any target never panics; what decodes is canonical.
fn check_all_targets(bytes: &[u8]) -> Result<(), TestCaseError> {
    for t in TARGETS {
        if let Some(re) = decode(t, bytes) {
            prop_assert_eq!(re, bytes.to_vec(), "{:?} decoded to a value with another encoding", t);
        }
    }
    Ok(())
}

/// One edit of a byte string.
#[derive(Debug, Clone)]
enum Edit {
    Set(prop::sample::Index, u8),
    Flip(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    Remove(prop::sample::Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        (any::<prop::sample::Index>(), 0u8..8).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<prop::sample::Index>().prop_map(Edit::Remove),
    ]
}

fn apply_edit(bytes: &mut Vec<u8>, e: &Edit) {
    if bytes.is_empty() {
        return;
    }
    match e {
        Edit::Set(i, b) => {
            let i = i.index(bytes.len());
            bytes[i] = *b;
        }
        Edit::Flip(i, bit) => {
            let i = i.index(bytes.len());
            bytes[i] ^= 1 << bit;
        }
        Edit::Insert(i, b) => {
            let i = i.index(bytes.len() + 1);
            bytes.insert(i, *b);
        }
        Edit::Remove(i) => {
            let i = i.index(bytes.len());
            bytes.remove(i);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..=4096)) {
        check_all_targets(&bytes)?;
    }

    /// Short inputs hit the interesting branches (tags, varint prefixes) far more often.
    #[test]
    fn short_random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..=48)) {
        check_all_targets(&bytes)?;
    }

    #[test]
    fn truncated_encodings_are_refused(which: prop::sample::Index, cut: prop::sample::Index) {
        let (t, bytes) = which.get(samples());
        let cut = cut.index(bytes.len());
        // A strict prefix can never be the whole canonical encoding of a value.
        prop_assert_eq!(decode(*t, &bytes[..cut]), None, "{:?} prefix of {} bytes decoded", t, cut);
        check_all_targets(&bytes[..cut])?;
    }

    #[test]
    fn single_byte_mutations_decode_canonically_or_fail(
        which: prop::sample::Index, at: prop::sample::Index, xor in 1u8..=255,
    ) {
        let (t, bytes) = which.get(samples());
        let mut m = bytes.clone();
        let i = at.index(m.len());
        m[i] ^= xor;
        if let Some(re) = decode(*t, &m) {
            prop_assert_eq!(re, m.clone(), "{:?} mutated at {} decoded to a value with another encoding", t, i);
        }
        check_all_targets(&m)?;
    }

    #[test]
    fn multi_edit_mutations_decode_canonically_or_fail(
        which: prop::sample::Index, edits in prop::collection::vec(edit(), 1..6),
    ) {
        let (_, bytes) = which.get(samples());
        let mut m = bytes.clone();
        for e in &edits {
            apply_edit(&mut m, e);
        }
        check_all_targets(&m)?;
    }

    #[test]
    fn genesis_from_random_toml_never_panics(text in "(?s).{0,512}") {
        if let Ok(g) = Genesis::from_toml(&text) {
            prop_assert_eq!(Genesis::from_toml(&g.to_toml()), Ok(g));
        }
    }

    /// Random text over TOML's punctuation gets past the lexer far more often.
    #[test]
    fn genesis_from_toml_like_text_never_panics(text in "[a-z_=\\[\\]{}\"' \n,.0-9#+-]{0,512}") {
        if let Ok(g) = Genesis::from_toml(&text) {
            prop_assert_eq!(Genesis::from_toml(&g.to_toml()), Ok(g));
        }
    }

    #[test]
    fn genesis_from_mutated_toml_never_panics(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<char>(), 0u8..3), 1..8),
    ) {
        let mut chars: Vec<char> = sample_toml().chars().collect();
        for (i, c, op) in &edits {
            match op {
                0 => { let i = i.index(chars.len()); chars[i] = *c; }
                1 => { let i = i.index(chars.len() + 1); chars.insert(i, *c); }
                _ => { if !chars.is_empty() { let i = i.index(chars.len()); chars.remove(i); } }
            }
        }
        let text: String = chars.into_iter().collect();
        if let Ok(g) = Genesis::from_toml(&text) {
            // Whatever the checks accept round-trips and has canonical bytes that decode back.
            prop_assert_eq!(Genesis::from_toml(&g.to_toml()), Ok(g.clone()));
            prop_assert_eq!(Genesis::from_canonical_bytes(&g.canonical_bytes()), Ok(g));
        }
    }
}

#[test]
fn deeply_nested_toml_is_an_error_not_a_stack_overflow() {
    for depth in [64usize, 1_000, 100_000] {
        let arrays = format!("federation = {}", "[".repeat(depth));
        assert!(Genesis::from_toml(&arrays).is_err());
        let tables = format!("federation = {}", "{a=".repeat(depth));
        assert!(Genesis::from_toml(&tables).is_err());
        let closed = format!("x = {}1{}", "[".repeat(depth), "]".repeat(depth));
        assert!(Genesis::from_toml(&closed).is_err());
    }
}

#[test]
fn oversized_inputs_are_too_large() {
    fn is_too_large(e: &DecodeError, len: usize, limit: usize) -> bool {
        matches!(e, DecodeError::TooLarge { len: l, limit: m, .. } if *l == len && *m == limit)
    }
    // A valid entry padded past the limit is refused for its size, before anything else.
    let mut entry = common::golden().entries[2].to_bytes();
    entry.resize(MAX_ENTRY_BYTES + 1, 0);
    let err = SignedEntry::from_bytes(&entry).unwrap_err();
    assert!(is_too_large(&err, MAX_ENTRY_BYTES + 1, MAX_ENTRY_BYTES), "{err}");
    // Exactly at the limit it is trailing bytes, not "too large".
    entry.truncate(MAX_ENTRY_BYTES);
    assert!(matches!(SignedEntry::from_bytes(&entry), Err(DecodeError::TrailingBytes { .. })));

    let big = vec![0u8; MAX_MESSAGE_BYTES + 1];
    match CosignedCheckpoint::from_bytes(&big) {
        Err(CheckpointError::Decode(e)) => assert!(is_too_large(&e, big.len(), MAX_MESSAGE_BYTES), "{e}"),
        other => panic!("{other:?}"),
    }
    match EquivocationProof::from_bytes(&big) {
        Err(EquivocationError::Decode(e)) => assert!(is_too_large(&e, big.len(), MAX_MESSAGE_BYTES), "{e}"),
        other => panic!("{other:?}"),
    }
    let e = encoding::decode::<InclusionProof>("inclusion proof", &big, MAX_MESSAGE_BYTES).unwrap_err();
    assert!(is_too_large(&e, big.len(), MAX_MESSAGE_BYTES));
    let e = encoding::decode::<ConsistencyProof>("consistency proof", &big, MAX_MESSAGE_BYTES).unwrap_err();
    assert!(is_too_large(&e, big.len(), MAX_MESSAGE_BYTES));

    let huge = vec![0u8; MAX_GENESIS_BYTES + 1];
    match Genesis::from_canonical_bytes(&huge) {
        Err(GenesisError::Decode(e)) => assert!(is_too_large(&e, huge.len(), MAX_GENESIS_BYTES), "{e}"),
        other => panic!("{other:?}"),
    }
    let text = " ".repeat(MAX_GENESIS_BYTES + 1);
    assert!(matches!(Genesis::from_toml(&text), Err(GenesisError::Toml(m)) if m.contains("limit")));
}

#[test]
fn length_prefixes_larger_than_the_input_are_errors() {
    // A signed entry whose community id claims u64::MAX bytes, and proofs whose path claims
    // 2^60 hashes: refused without allocating.
    let mut e = vec![253u8];
    e.extend_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(SignedEntry::from_bytes(&e), Err(DecodeError::Malformed { .. })));
    let mut p = vec![0u8, 1, 253];
    p.extend_from_slice(&(1u64 << 60).to_le_bytes());
    assert!(encoding::decode::<InclusionProof>("p", &p, MAX_MESSAGE_BYTES).is_err());
    assert!(encoding::decode::<ConsistencyProof>("p", &p, MAX_MESSAGE_BYTES).is_err());
}

#[test]
fn decode_refuses_non_canonical_varints_in_entries() {
    // seq 0 of the golden entry 0 is the single byte 0x00 right after the community id;
    // spelling it with the 3-byte form (251, 0, 0) is valid bincode but not canonical.
    let bytes = common::golden().entries[0].to_bytes();
    let id_len = 1 + "lianhua".len();
    assert_eq!(bytes[id_len], 0);
    let mut long = bytes[..id_len].to_vec();
    long.extend_from_slice(&[251, 0, 0]);
    long.extend_from_slice(&bytes[id_len + 1..]);
    assert!(matches!(SignedEntry::from_bytes(&long), Err(DecodeError::NonCanonical { .. })));
}

/// The state machine refuses an entry whose encoding is larger than `MAX_ENTRY_BYTES` (e.g. a
/// `SetRules` table with hundreds of activities): no peer could decode it, and the ledger would
/// stop replicating.
#[test]
fn state_refuses_entries_larger_than_the_wire_limit() {
    let mut f = TestFederation::new(&["a"]);
    let mut table = RuleTable::default_table(1);
    let template = table.activities[0].clone();
    for i in 0..300 {
        let mut a = template.clone();
        a.id = format!("activity-{i:04}");
        a.label = "x".repeat(100);
        table.activities.push(a);
    }
    assert_eq!(table.validate(), Ok(()));
    let e = f.entry("a", Body::SetRules(table));
    let bytes = e.to_bytes();
    assert!(bytes.len() > MAX_ENTRY_BYTES, "{} bytes", bytes.len());
    assert!(matches!(SignedEntry::from_bytes(&bytes), Err(DecodeError::TooLarge { .. })));
    assert!(f.apply(e).is_err(), "an entry of {} bytes was accepted; peers cannot decode it", bytes.len());
    // The ledger goes on with normal entries.
    let r = linli_protocol::testkit::key("r");
    f.append("a", Body::Enroll(Enroll { resident: r.public(), profile_hash: Hash::ZERO })).unwrap();
}

/// Exhaustively: every strict prefix of every sample is refused, and every single-byte change
/// (three masks per position) either fails or decodes canonically. Also shows the mutation
/// properties above are not vacuous: many mutations (in hashes, keys, signatures, amounts) do
/// decode.
#[test]
fn every_prefix_and_byte_flip_of_every_sample() {
    let mut decoded = 0usize;
    let mut tried = 0usize;
    for (t, bytes) in samples() {
        for cut in 0..bytes.len() {
            assert_eq!(decode(*t, &bytes[..cut]), None, "{t:?} prefix {cut}");
        }
        for i in 0..bytes.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut m = bytes.clone();
                m[i] ^= mask;
                tried += 1;
                if let Some(re) = decode(*t, &m) {
                    assert_eq!(re, m, "{t:?} flip {mask:#x} at {i}");
                    decoded += 1;
                }
            }
        }
    }
    assert!(decoded * 4 > tried, "only {decoded} of {tried} byte flips decoded");
}

/// Canonical bytes of a genesis that breaks a rule decode (the bytes are well formed) but are
/// refused by the same checks as the TOML file.
#[test]
fn canonical_bytes_of_an_unchecked_genesis_are_refused() {
    let good = linli_protocol::testkit::genesis(&["lianhua", "xiangmihu"]);
    let refuse = |edit: &dyn Fn(&mut Genesis)| {
        let mut g = good.clone();
        edit(&mut g);
        Genesis::from_canonical_bytes(&g.canonical_bytes()).unwrap_err()
    };
    assert!(matches!(refuse(&|g| g.fen_per_point = 12), GenesisError::WrongExchangeRate { actual: 12, .. }));
    assert_eq!(refuse(&|g| g.communities.clear()), GenesisError::NoCommunities);
    assert!(matches!(
        refuse(&|g| g.communities[1].id = g.communities[0].id.clone()),
        GenesisError::DuplicateCommunity(_)
    ));
    assert!(matches!(
        refuse(&|g| g.communities[0].recovery_key = g.communities[0].signing_key),
        GenesisError::RecoveryEqualsSigning { .. }
    ));
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert!(matches!(
        refuse(&|g| g.communities[0].signing_key = linli_protocol::PublicKey(identity)),
        GenesisError::BadKey { field: "signing_key", .. }
    ));
    assert!(matches!(refuse(&|g| g.communities[0].name = String::new()), GenesisError::BadText { field: "name", .. }));
    assert!(matches!(
        refuse(&|g| g.communities[0].p2p_addresses = vec!["x".repeat(257)]),
        GenesisError::BadText { field: "p2p_addresses", .. }
    ));
}
