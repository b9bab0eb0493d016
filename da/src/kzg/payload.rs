//! The mapping from a DA payload (arbitrary bytes) onto EIP-4844 shaped sub-blobs, so each
//! sub-blob gets its own KZG commitment.
//!
//! Packing, version 1: the payload is cut into 31-byte pieces; piece k becomes field element
//! `k mod 4096` of sub-blob `k / 4096`, stored as one zero byte followed by the 31 bytes (so the
//! big-endian value is below 2^248 and therefore always canonical). The last piece and the rest
//! of the last sub-blob are zero-filled. A payload of n bytes gives `ceil(n / 126 976)`
//! sub-blobs; the empty payload gives none. Zero padding means the commitments do not bind the
//! payload's exact length: it travels beside them (the blob header carries it).

use super::{BYTES_PER_BLOB, BYTES_PER_FIELD_ELEMENT, FIELD_ELEMENTS_PER_BLOB};
use super::{G1Msm, KzgCommitment, KzgError, blob_to_kzg_commitment};

/// Payload bytes carried by one 32-byte field element (its top byte is always zero).
pub const PAYLOAD_BYTES_PER_ELEMENT: usize = BYTES_PER_FIELD_ELEMENT - 1;
/// Payload bytes carried by one sub-blob: 4096 × 31 = 126 976.
pub const PAYLOAD_BYTES_PER_SUB_BLOB: usize = FIELD_ELEMENTS_PER_BLOB * PAYLOAD_BYTES_PER_ELEMENT;
/// Largest payload [`commit_payload`] takes: a whole DA blob, 32 MiB.
pub const MAX_PAYLOAD_BYTES: usize = 32 << 20;

/// Number of sub-blobs a payload of `payload_bytes` bytes packs into.
pub fn sub_blob_count(payload_bytes: usize) -> usize {
    payload_bytes.div_ceil(PAYLOAD_BYTES_PER_SUB_BLOB)
}

/// Writes sub-blob `index` of `payload` into `sub_blob` (every byte of it).
fn fill_sub_blob(payload: &[u8], index: usize, sub_blob: &mut [u8; BYTES_PER_BLOB]) {
    let start = (index * PAYLOAD_BYTES_PER_SUB_BLOB).min(payload.len());
    let end = (start + PAYLOAD_BYTES_PER_SUB_BLOB).min(payload.len());
    let mut pieces = payload[start..end].chunks(PAYLOAD_BYTES_PER_ELEMENT);
    for element in sub_blob.chunks_exact_mut(BYTES_PER_FIELD_ELEMENT) {
        element.fill(0);
        if let Some(piece) = pieces.next() {
            element[1..1 + piece.len()].copy_from_slice(piece);
        }
    }
}

fn check_size(payload: &[u8]) -> Result<(), KzgError> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(KzgError::PayloadTooLarge {
            bytes: payload.len(),
        });
    }
    Ok(())
}

/// The sub-blobs of `payload` under the packing above; each is a valid EIP-4844 blob.
pub fn pack_payload(payload: &[u8]) -> Result<Vec<Box<[u8; BYTES_PER_BLOB]>>, KzgError> {
    check_size(payload)?;
    Ok((0..sub_blob_count(payload.len()))
        .map(|index| {
            let mut sub_blob = zeroed_blob();
            fill_sub_blob(payload, index, &mut sub_blob);
            sub_blob
        })
        .collect())
}

/// One KZG commitment per sub-blob of `payload`, in order.
pub fn commit_payload(payload: &[u8], msm: &dyn G1Msm) -> Result<Vec<KzgCommitment>, KzgError> {
    check_size(payload)?;
    let mut sub_blob = zeroed_blob();
    (0..sub_blob_count(payload.len()))
        .map(|index| {
            fill_sub_blob(payload, index, &mut sub_blob);
            blob_to_kzg_commitment(&sub_blob, msm)
        })
        .collect()
}

fn zeroed_blob() -> Box<[u8; BYTES_PER_BLOB]> {
    vec![0u8; BYTES_PER_BLOB]
        .into_boxed_slice()
        .try_into()
        .expect("the vector has exactly BYTES_PER_BLOB bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_puts_31_bytes_behind_a_zero_byte_and_pads_with_zeros() {
        let payload: Vec<u8> = (0..PAYLOAD_BYTES_PER_SUB_BLOB + 40)
            .map(|i| (i % 251) as u8 + 1)
            .collect();
        let sub_blobs = pack_payload(&payload).expect("within the limit");
        assert_eq!(sub_blobs.len(), 2);
        // Every element's top byte is zero, so every element is canonical.
        for sub_blob in &sub_blobs {
            assert!(sub_blob.chunks_exact(32).all(|element| element[0] == 0));
        }
        // Reading the 31-byte pieces back gives the payload followed by zeros.
        let unpacked: Vec<u8> = sub_blobs
            .iter()
            .flat_map(|sub_blob| {
                sub_blob
                    .chunks_exact(32)
                    .flat_map(|element| element[1..].to_vec())
            })
            .collect();
        assert_eq!(&unpacked[..payload.len()], &payload[..]);
        assert!(unpacked[payload.len()..].iter().all(|byte| *byte == 0));
    }

    #[test]
    fn sub_blob_count_rounds_up_and_the_empty_payload_has_none() {
        assert_eq!(sub_blob_count(0), 0);
        assert_eq!(sub_blob_count(1), 1);
        assert_eq!(sub_blob_count(PAYLOAD_BYTES_PER_SUB_BLOB), 1);
        assert_eq!(sub_blob_count(PAYLOAD_BYTES_PER_SUB_BLOB + 1), 2);
        assert_eq!(pack_payload(&[]).map(|blobs| blobs.len()), Ok(0));
    }

    #[test]
    fn an_oversized_payload_is_refused() {
        let payload = vec![0u8; MAX_PAYLOAD_BYTES + 1];
        assert_eq!(
            pack_payload(&payload).map(|blobs| blobs.len()),
            Err(KzgError::PayloadTooLarge {
                bytes: MAX_PAYLOAD_BYTES + 1
            })
        );
    }
}
