//! Integration tests of the DA coding layer as a reader and a disperser use it: payloads survive
//! encode → any k shards → decode; bad shards are refused by their proofs and never used; a
//! disperser who commits a non-codeword or a non-canonical blob gets "empty" from every reader,
//! whichever shards it holds; sampling draws distinct indices and fools at the computed rate.
//!
//! Dishonest dispersers are built here from the documented format (BLAKE3 keyed leaves and nodes,
//! zero padding leaves), which also checks the encoder against an independent implementation.

use da::blob::{DaError, DaParams, MAX_PAYLOAD_BYTES, NonCanonical, check_canonical, write_blob};
use da::codec::{Added, Decoded, Decoder, EmptyReason, EncodedBlob, Encoder, EngineKind};
use da::commit::{
    BLOB_ID_KEY, LEAF_KEY, NODE_KEY, ShardCommitment, ShardIndex, ShardProof, ShardRejection,
};
use da::sample::{choose_indices, fooling_probability};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use reed_solomon_simd::engine::DefaultEngine;
use reed_solomon_simd::rate::{LowRateEncoder, RateEncoder};

/// Deterministic pseudo-random bytes, fast enough for 32 MiB in a debug test build.
fn payload_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(&seed.to_le_bytes())
        .finalize_xof()
        .fill(&mut out);
    out
}

/// Small parameter sets: transform sizes of 2·4^j as well as 4^j for both the encoder (k
/// rounded up) and the decoder (k rounded up, plus m, rounded up), fewer recovery shards than
/// data shards, and k = 1.
fn small_params() -> Vec<DaParams> {
    [
        (4, 8),
        (16, 32),
        (3, 5),
        (1, 2),
        (8, 3),
        (1, 1),
        (4, 4),
        (2, 5),
        (16, 16),
        (33, 40),
    ]
    .into_iter()
    .map(|(k, m)| DaParams::new(k, m).expect("supported params"))
    .collect()
}

/// Every shard of an encoded blob with its proof, owned.
fn all_shards(encoded: &EncodedBlob<'_>) -> Vec<(ShardIndex, Vec<u8>, ShardProof)> {
    encoded
        .shards()
        .map(|(index, shard)| (index, shard.to_vec(), encoded.proof(index)))
        .collect()
}

/// Decodes from the shards at `indices` and returns the verdict, owned.
fn decode_subset(
    decoder: &mut Decoder,
    commitment: &ShardCommitment,
    shards: &[(ShardIndex, Vec<u8>, ShardProof)],
    indices: &[usize],
) -> Result<Result<Vec<u8>, EmptyReason>, DaError> {
    let items = indices.iter().map(|&i| {
        let (index, bytes, proof) = &shards[i];
        (*index, bytes.as_slice(), proof)
    });
    let (decoded, rejected) = decoder.decode(commitment, items)?;
    assert!(rejected.is_empty(), "honest shards rejected: {rejected:?}");
    Ok(match decoded {
        Decoded::Available(payload) => Ok(payload.to_vec()),
        Decoded::Empty(reason) => Err(reason),
    })
}

/// Subsets of k shard positions every reader kind may hold: all data, recovery only, the last k,
/// and random ones.
fn reader_subsets(params: &DaParams, rng: &mut StdRng, random_count: usize) -> Vec<Vec<usize>> {
    let (k, n) = (params.data_shards(), params.total_shards());
    let mut subsets = vec![(0..k).collect::<Vec<_>>(), ((n - k)..n).collect()];
    if params.recovery_shards() >= k {
        subsets.push((k..2 * k).collect());
    }
    let mut all: Vec<usize> = (0..n).collect();
    for _ in 0..random_count {
        all.shuffle(rng);
        subsets.push(all[..k].to_vec());
    }
    subsets
}

/// The documented commitment tree, written independently of the crate: keyed BLAKE3 leaves and
/// nodes, zero leaves to the next power of two. Returns the root and every shard's proof.
fn reference_commit(shards: &[Vec<u8>]) -> ([u8; 32], Vec<ShardProof>) {
    let width = shards.len().next_power_of_two();
    let mut level: Vec<[u8; 32]> = shards
        .iter()
        .map(|shard| *blake3::keyed_hash(&LEAF_KEY, shard).as_bytes())
        .collect();
    level.resize(width, [0u8; 32]);
    let mut levels = vec![level];
    while levels.last().expect("at least the leaf level").len() > 1 {
        let next = levels
            .last()
            .expect("at least the leaf level")
            .chunks(2)
            .map(|pair| {
                let mut joined = pair[0].to_vec();
                joined.extend_from_slice(&pair[1]);
                *blake3::keyed_hash(&NODE_KEY, &joined).as_bytes()
            })
            .collect();
        levels.push(next);
    }
    let root = levels.last().expect("at least the leaf level")[0];
    let proofs = (0..shards.len())
        .map(|leaf| {
            let siblings = levels[..levels.len() - 1]
                .iter()
                .enumerate()
                .map(|(height, nodes)| nodes[(leaf >> height) ^ 1])
                .collect();
            ShardProof::new(ShardIndex(leaf as u32), siblings)
        })
        .collect();
    (root, proofs)
}

/// A disperser that commits to whatever shards it likes.
fn commit_shards(
    params: DaParams,
    shards: Vec<Vec<u8>>,
) -> (ShardCommitment, Vec<(ShardIndex, Vec<u8>, ShardProof)>) {
    assert_eq!(shards.len(), params.total_shards());
    let (root, proofs) = reference_commit(&shards);
    let commitment =
        ShardCommitment::new(root, params, shards[0].len()).expect("a canonical width");
    let items = shards
        .into_iter()
        .zip(proofs)
        .map(|(bytes, proof)| (proof.index(), bytes, proof))
        .collect();
    (commitment, items)
}

/// Reed-Solomon codes an arbitrary blob (k shards of `width` bytes) with the documented code,
/// reed-solomon-simd's low-rate encoder.
fn codeword_of(params: &DaParams, blob: &[u8], width: usize) -> Vec<Vec<u8>> {
    let mut coder = LowRateEncoder::new(
        params.data_shards(),
        params.recovery_shards(),
        width,
        DefaultEngine::new(),
        None,
    )
    .expect("supported params");
    let mut shards: Vec<Vec<u8>> = blob.chunks_exact(width).map(<[u8]>::to_vec).collect();
    for shard in &shards {
        coder
            .add_original_shard(shard)
            .expect("k shards of one width");
    }
    let coded = coder.encode().expect("within the limit");
    shards.extend(coded.recovery_iter().map(<[u8]>::to_vec));
    shards
}

/// Every reader subset reaches `expected`.
fn assert_every_reader_agrees(
    params: &DaParams,
    commitment: &ShardCommitment,
    shards: &[(ShardIndex, Vec<u8>, ShardProof)],
    expected: &Result<Vec<u8>, EmptyReason>,
    rng: &mut StdRng,
) {
    let mut decoder = Decoder::new(*params);
    for subset in reader_subsets(params, rng, 8) {
        let verdict =
            decode_subset(&mut decoder, commitment, shards, &subset).expect("k honest shards");
        assert_eq!(&verdict, expected, "reader holding {subset:?}");
    }
}

#[test]
fn small_params_round_trip_every_size_from_any_k_shards_on_every_engine() {
    assert!(EngineKind::available().contains(&EngineKind::Library));
    for engine in EngineKind::available() {
        small_params_round_trip(engine);
    }
}

fn small_params_round_trip(engine: EngineKind) {
    let mut rng = StdRng::seed_from_u64(1);
    for params in small_params() {
        let mut encoder = Encoder::with_engine(params, engine).expect("an available engine");
        let mut decoder = Decoder::with_engine(params, engine).expect("an available engine");
        let k = params.data_shards();
        let mut sizes = vec![0usize, 1, 2, 63, 64, 65, 1000, 4096];
        for units in 1..=4 {
            let boundary = k * 64 * units - 8;
            sizes.extend([boundary - 1, boundary, boundary + 1]);
        }
        sizes.extend((0..6).map(|_| rng.gen_range(0..20_000)));
        for size in sizes {
            let payload = payload_bytes(size as u64, size);
            let encoded = encoder.encode(&payload).expect("within the limit");
            let commitment = *encoded.commitment();
            assert_eq!(
                commitment.shard_width_bytes(),
                params.shard_width_bytes(size).expect("within the limit")
            );
            let shards = all_shards(&encoded);
            for (index, bytes, proof) in &shards {
                commitment
                    .verify_shard(*index, bytes, proof)
                    .expect("honest shard");
            }
            let blob = write_blob(&params, &payload).expect("within the limit");
            let expected = codeword_of(&params, &blob, commitment.shard_width_bytes());
            for ((_, bytes, _), expected) in shards.iter().zip(&expected) {
                assert_eq!(
                    bytes, expected,
                    "data shards are the blob, recovery its code"
                );
            }
            for subset in reader_subsets(&params, &mut rng, 4) {
                let decoded = decode_subset(&mut decoder, &commitment, &shards, &subset)
                    .expect("k honest shards");
                assert_eq!(
                    decoded,
                    Ok(payload.clone()),
                    "{engine:?} {params:?} size {size} {subset:?}"
                );
            }
        }
    }
}

/// The full-size code runs in many column blocks (the last one narrower), which the small
/// parameters never need: every engine's shards must still be the library's, and every engine
/// must decode them from any `k`.
#[test]
fn default_params_round_trip_up_to_the_32_mib_limit_on_every_engine() {
    let params = DaParams::default();
    let payload = payload_bytes(3, MAX_PAYLOAD_BYTES);
    let blob = write_blob(&params, &payload).expect("within the limit");
    let width = params
        .shard_width_bytes(payload.len())
        .expect("within the limit");
    let expected = codeword_of(&params, &blob, width);
    let mut rng = StdRng::seed_from_u64(4);
    for engine in EngineKind::available() {
        let mut encoder = Encoder::with_engine(params, engine).expect("an available engine");
        let encoded = encoder.encode(&payload).expect("within the limit");
        for (index, shard) in encoded.shards() {
            assert!(
                shard == expected[index.as_usize()],
                "{engine:?}: shard {index:?} differs from the library's"
            );
        }
        let commitment = *encoded.commitment();
        let shards = all_shards(&encoded);
        let mut decoder = Decoder::with_engine(params, engine).expect("an available engine");
        let mut all: Vec<usize> = (0..params.total_shards()).collect();
        all.shuffle(&mut rng);
        let decoded = decode_subset(
            &mut decoder,
            &commitment,
            &shards,
            &all[..params.data_shards()],
        )
        .expect("k honest shards");
        assert!(decoded.as_deref() == Ok(&payload[..]), "{engine:?}");
    }
}

#[test]
fn default_params_round_trip_up_to_the_32_mib_limit() {
    let params = DaParams::default();
    let mut encoder = Encoder::new(params);
    let mut decoder = Decoder::new(params);
    let mut rng = StdRng::seed_from_u64(2);
    let k = params.data_shards();
    for size in [
        0usize,
        1,
        k * 64 - 9,
        k * 64 - 8,
        k * 64 - 7,
        1 << 20,
        MAX_PAYLOAD_BYTES,
    ] {
        let payload = payload_bytes(size as u64, size);
        let encoded = encoder.encode(&payload).expect("within the limit");
        let commitment = *encoded.commitment();
        let shards = all_shards(&encoded);
        let mut subsets = vec![(k..2 * k).collect::<Vec<_>>()];
        let mut all: Vec<usize> = (0..params.total_shards()).collect();
        all.shuffle(&mut rng);
        subsets.push(all[..k].to_vec());
        for subset in subsets {
            let decoded = decode_subset(&mut decoder, &commitment, &shards, &subset)
                .expect("k honest shards");
            assert!(decoded.as_deref() == Ok(&payload[..]), "size {size}");
        }
    }
}

#[test]
fn encoder_matches_the_documented_tree_and_is_reusable() {
    let params = DaParams::new(16, 32).expect("supported params");
    let mut reused = Encoder::new(params);
    for size in [5000usize, 10, 100_000, 0, 5000] {
        let payload = payload_bytes(7, size);
        let encoded = reused.encode(&payload).expect("within the limit");
        let shards: Vec<Vec<u8>> = encoded.shards().map(|(_, s)| s.to_vec()).collect();
        let (root, proofs) = reference_commit(&shards);
        assert_eq!(encoded.commitment().root(), &root);
        for (index, proof) in proofs.iter().enumerate() {
            assert_eq!(&encoded.proof(ShardIndex(index as u32)), proof);
        }
        let commitment = *encoded.commitment();
        let mut fresh = Encoder::new(params);
        assert_eq!(
            fresh
                .encode(&payload)
                .expect("within the limit")
                .commitment(),
            &commitment
        );
        let id = commitment.blob_id();
        assert_eq!(
            id.0,
            *blake3::keyed_hash(&BLOB_ID_KEY, &commitment.to_bytes()).as_bytes()
        );
        assert_eq!(
            ShardCommitment::from_bytes(&commitment.to_bytes()).expect("round trip"),
            commitment
        );
    }
    let a = reused
        .encode(b"one")
        .expect("within the limit")
        .commitment()
        .blob_id();
    let b = reused
        .encode(b"two")
        .expect("within the limit")
        .commitment()
        .blob_id();
    assert_ne!(a, b);
}

#[test]
fn oversize_payload_is_refused() {
    let payload = vec![0u8; MAX_PAYLOAD_BYTES + 1];
    let mut encoder = Encoder::new(DaParams::new(4, 8).expect("supported params"));
    assert!(matches!(
        encoder.encode(&payload),
        Err(DaError::PayloadTooLarge { size_bytes, .. }) if size_bytes == payload.len() as u64
    ));
    assert!(write_blob(&DaParams::default(), &payload).is_err());
}

#[test]
fn bad_shards_are_rejected_by_their_proofs_and_never_used() {
    let params = DaParams::new(4, 8).expect("supported params");
    let payload = payload_bytes(3, 700);
    let mut encoder = Encoder::new(params);
    let encoded = encoder.encode(&payload).expect("within the limit");
    let commitment = *encoded.commitment();
    let shards = all_shards(&encoded);
    let (index, bytes, proof) = &shards[5];

    let mut corrupted = bytes.clone();
    corrupted[17] ^= 1;
    assert_eq!(
        commitment.verify_shard(*index, &corrupted, proof),
        Err(ShardRejection::RootMismatch { index: 5 })
    );
    assert!(matches!(
        commitment.verify_shard(ShardIndex(6), bytes, proof),
        Err(ShardRejection::ProofForOtherIndex {
            index: 6,
            proof_index: 5
        })
    ));
    let (_, _, proof_six) = &shards[6];
    assert_eq!(
        commitment.verify_shard(ShardIndex(6), bytes, proof_six),
        Err(ShardRejection::RootMismatch { index: 6 })
    );
    assert!(matches!(
        commitment.verify_shard(*index, &bytes[..bytes.len() - 2], proof),
        Err(ShardRejection::WrongWidth { .. })
    ));
    let short_proof = ShardProof::new(*index, proof.siblings()[1..].to_vec());
    assert!(matches!(
        commitment.verify_shard(*index, bytes, &short_proof),
        Err(ShardRejection::WrongProofLength { .. })
    ));
    let far = ShardProof::new(ShardIndex(12), proof.siblings().to_vec());
    assert!(matches!(
        commitment.verify_shard(ShardIndex(12), bytes, &far),
        Err(ShardRejection::IndexOutOfRange { .. })
    ));

    // A reader offered bad shards among good ones rejects each with its reason and still decodes
    // from the good ones.
    let mut decoder = Decoder::new(params);
    let mut retrieval = decoder.begin(&commitment).expect("same params");
    assert!(retrieval.add(*index, &corrupted, proof).is_err());
    assert!(retrieval.add(ShardIndex(6), bytes, proof_six).is_err());
    assert_eq!(retrieval.add(*index, bytes, proof), Ok(Added::Kept));
    assert_eq!(
        retrieval.add(*index, bytes, proof),
        Err(ShardRejection::Duplicate { index: 5 })
    );
    assert_eq!(retrieval.verified_count(), 1);
    for (index, bytes, proof) in &shards[8..11] {
        assert_eq!(retrieval.add(*index, bytes, proof), Ok(Added::Kept));
    }
    assert!(retrieval.is_ready());
    let (index, bytes, proof) = &shards[0];
    assert_eq!(retrieval.add(*index, bytes, proof), Ok(Added::Surplus));
    assert_eq!(
        retrieval.finish().expect("k shards held"),
        Decoded::Available(&payload[..])
    );
}

#[test]
fn too_few_shards_or_foreign_params_are_errors() {
    let params = DaParams::new(4, 8).expect("supported params");
    let payload = payload_bytes(4, 300);
    let mut encoder = Encoder::new(params);
    let encoded = encoder.encode(&payload).expect("within the limit");
    let commitment = *encoded.commitment();
    let shards = all_shards(&encoded);
    let mut decoder = Decoder::new(params);
    assert_eq!(
        decode_subset(&mut decoder, &commitment, &shards, &[0, 5, 9]),
        Err(DaError::NotEnoughShards {
            needed: 4,
            verified: 3
        })
    );
    let mut other = Decoder::new(DaParams::new(16, 32).expect("supported params"));
    assert!(matches!(
        other.begin(&commitment).map(|_| ()),
        Err(DaError::ParamsMismatch { .. })
    ));
}

#[test]
fn non_canonical_blobs_are_empty_for_every_reader() {
    let params = DaParams::new(4, 8).expect("supported params");
    let mut rng = StdRng::seed_from_u64(5);
    let payload = payload_bytes(5, 300);
    let width = params
        .shard_width_bytes(payload.len())
        .expect("within the limit");
    let canonical = write_blob(&params, &payload).expect("within the limit");

    let mut nonzero_padding = canonical.clone();
    *nonzero_padding.last_mut().expect("a non-empty blob") = 1;
    let mut too_long = canonical.clone();
    let capacity = (canonical.len() - 8) as u64;
    too_long[..8].copy_from_slice(&(capacity + 1).to_le_bytes());
    let mut over_limit = canonical.clone();
    over_limit[..8].copy_from_slice(&(MAX_PAYLOAD_BYTES as u64 + 1).to_le_bytes());
    let mut short_prefix = canonical.clone();
    short_prefix[..8].copy_from_slice(&290u64.to_le_bytes());
    // Ten bytes fit in 64-byte shards, so 128-byte shards are not canonical for them.
    let mut wide = vec![0u8; 4 * 128];
    wide[..8].copy_from_slice(&10u64.to_le_bytes());
    wide[8..18].copy_from_slice(&payload[..10]);

    let cases = [
        (nonzero_padding, width, "padding"),
        (too_long, width, "length beyond data"),
        (over_limit, width, "length over the limit"),
        (short_prefix, width, "payload bytes left in the padding"),
        (wide, 128, "wide shards"),
    ];
    for (blob, blob_width, what) in cases {
        let reason = check_canonical(&params, &blob, blob_width).expect_err(what);
        let (commitment, shards) = commit_shards(params, codeword_of(&params, &blob, blob_width));
        let expected = Err(EmptyReason::NonCanonical(reason.clone()));
        assert_every_reader_agrees(&params, &commitment, &shards, &expected, &mut rng);
        match (what, reason) {
            ("padding", NonCanonical::NonZeroPadding { .. })
            | ("length beyond data", NonCanonical::LengthExceedsData { .. })
            | ("length over the limit", NonCanonical::LengthTooLarge { .. })
            | ("payload bytes left in the padding", NonCanonical::NonZeroPadding { .. })
            | ("wide shards", NonCanonical::WidthNotCanonical { .. }) => {}
            (what, reason) => panic!("{what}: unexpected reason {reason:?}"),
        }
    }
}

#[test]
fn a_committed_non_codeword_is_empty_for_every_reader() {
    let mut rng = StdRng::seed_from_u64(6);
    for params in [
        DaParams::new(4, 8).expect("supported params"),
        DaParams::new(16, 32).expect("supported params"),
    ] {
        let payload = payload_bytes(6, 900);
        let width = params
            .shard_width_bytes(payload.len())
            .expect("within the limit");
        let blob = write_blob(&params, &payload).expect("within the limit");
        let honest = codeword_of(&params, &blob, width);
        let n = params.total_shards();

        let garbage: Vec<Vec<u8>> = (0..n)
            .map(|i| payload_bytes(100 + i as u64, width))
            .collect();
        let mut one_bad_recovery = honest.clone();
        one_bad_recovery[n - 1][0] ^= 0x80;
        let mut one_bad_data = honest.clone();
        one_bad_data[1][3] ^= 0x01;

        for shards in [garbage, one_bad_recovery, one_bad_data] {
            let (commitment, shards) = commit_shards(params, shards);
            assert_every_reader_agrees(
                &params,
                &commitment,
                &shards,
                &Err(EmptyReason::NotCodeword),
                &mut rng,
            );
        }
        // The honest codeword committed the same way decodes for everyone.
        let (commitment, shards) = commit_shards(params, honest);
        assert_every_reader_agrees(&params, &commitment, &shards, &Ok(payload), &mut rng);
    }
}

#[test]
fn sampling_draws_distinct_indices_and_fools_at_the_computed_rate() {
    let params = DaParams::new(4, 8).expect("supported params");
    let mut rng = StdRng::seed_from_u64(7);
    let samples = 2;
    let trials = 40_000;
    // The adversary serves k − 1 shards: positions 0..3.
    let served = params.data_shards() - 1;
    let mut fooled = 0;
    for _ in 0..trials {
        let chosen = choose_indices(&params, samples, || rng.r#gen());
        assert_eq!(chosen.len(), samples);
        if chosen.iter().all(|index| index.as_usize() < served) {
            fooled += 1;
        }
    }
    let expected = fooling_probability(&params, samples);
    let observed = fooled as f64 / trials as f64;
    let tolerance = 5.0 * (expected * (1.0 - expected) / trials as f64).sqrt();
    assert!(
        (observed - expected).abs() < tolerance,
        "observed {observed}, expected {expected}"
    );
    let whole = choose_indices(&params, params.total_shards(), || rng.r#gen());
    assert_eq!(whole.len(), params.total_shards());
}
