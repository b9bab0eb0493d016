//! Test data: reproducible pseudo-random bytes, the seed that makes a run replayable, and a
//! segment in the JSON shape a client uploads.

use serde_json::{Value, json};

/// `size` pseudo-random bytes, the same for the same `seed` (SplitMix64: a few hundred MiB per
/// test run must not cost seconds, which a cryptographic generator does in a debug build). Not
/// for keys.
pub fn random_bytes(seed: u64, size: usize) -> Vec<u8> {
    let mut state = seed;
    let mut data = Vec::with_capacity(size.next_multiple_of(8));
    while data.len() < size {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut word = state;
        word = (word ^ (word >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        word = (word ^ (word >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        word ^= word >> 31;
        data.extend_from_slice(&word.to_le_bytes());
    }
    data.truncate(size);
    data
}

/// The environment variable that replays a run's random data: the seed a test printed.
pub const SEED_ENV: &str = "ZEROG_TEST_SEED";

/// A seed for random test data: `ZEROG_TEST_SEED` when set (to replay a run), else fresh.
///
/// # Panics
/// When `ZEROG_TEST_SEED` is set but is not a `u64`.
pub fn test_seed() -> u64 {
    match std::env::var(SEED_ENV) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{SEED_ENV} must be a u64, not {text:?}")),
        Err(_) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_nanos());
            nanos as u64 ^ u64::from(std::process::id())
        }
    }
}

/// One `SegmentWithProof` of `data` (whose tree is `tree`) as a client uploads it: the
/// segment's bytes zero-filled to whole chunks, base64, with its proof.
///
/// # Panics
/// When `index` is not a data segment of `tree`.
pub fn segment_json(tree: &merkle::file::FileTree, data: &[u8], index: u64) -> Value {
    let layout = tree.layout();
    let start = index as usize * types::SEGMENT_BYTES;
    let mut bytes = data[start..start + layout.segment_data_bytes(index) as usize].to_vec();
    bytes.resize(layout.segment_upload_bytes(index) as usize, 0);
    json!({
        "root": tree.root(),
        "data": base64_simd::STANDARD.encode_to_string(&bytes),
        "index": index,
        "proof": tree.proof(types::SegmentIndex(index)).expect("a data segment of the file"),
        "fileSize": tree.size_bytes(),
    })
}

/// The bytes of a `zgs_downloadSegmentWithProof*` answer for segment `index` of the file of
/// `root` and `size` bytes, once its proof verifies; the error says what is wrong.
pub fn verified_segment(
    answer: &Value,
    root: &types::H256,
    size: u64,
    index: u64,
) -> Result<Vec<u8>, String> {
    let data = answer["data"]
        .as_str()
        .ok_or_else(|| format!("segment {index}: no data in {answer}"))?;
    let bytes = base64_simd::STANDARD
        .decode_to_vec(data)
        .map_err(|error| format!("segment {index}: {error}"))?;
    let proof: merkle::file::Proof = serde_json::from_value(answer["proof"].clone())
        .map_err(|error| format!("segment {index}: proof: {error}"))?;
    merkle::file::verify_segment(root, size, types::SegmentIndex(index), &bytes, &proof)
        .map_err(|error| format!("segment {index}: {error}"))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_bytes_are_reproducible_and_prefixes_of_each_other() {
        let long = random_bytes(7, 1001);
        assert_eq!(long.len(), 1001);
        assert_eq!(random_bytes(7, 1001), long);
        assert_eq!(random_bytes(7, 13), long[..13]);
        assert_ne!(random_bytes(8, 1001), long);
        assert!(random_bytes(0, 0).is_empty());
    }
}
