//! DA-node storage on the data plane end to end: real glommio executors, real O_DIRECT extents
//! in a temporary directory on the build disk, real redb indexes. Shards are coded with the
//! `da` crate directly and compared with what the data plane encodes, stores and serves.

mod common;

use common::{TestFile, call, call_all, config, data_dir, stats};
use da::blob::{DaError, DaParams, MAX_PAYLOAD_BYTES};
use da::codec::{Decoded, Decoder, Encoder};
use da::commit::{ShardIndex, ShardProof, ShardRejection};
use dataplane::{
    DaEncoded, DaPutShard, DaRejection, DataPlane, Request, Response, ShardClient, da_shard_for,
};
use std::path::Path;

/// Expiry of the shards stored by tests that do not prune.
const FAR_FUTURE_UNIX_S: u64 = 4_000_000_000;

fn params(data_shards: usize, recovery_shards: usize) -> DaParams {
    DaParams::new(data_shards, recovery_shards).expect("supported parameters")
}

/// `bytes` varied bytes, different for every `seed`.
fn payload(seed: u64, bytes: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..bytes)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Encodes on the data plane's shard `client`.
fn encode_on(client: &mut ShardClient, params: DaParams, payload: Vec<u8>) -> DaEncoded {
    match call(client, Request::DaEncode { params, payload }) {
        Response::DaEncoded(encoded) => *encoded,
        other => panic!("expected an encoded blob, got {other:?}"),
    }
}

/// Sends each request to the shard `route` names for it (all shards' requests go out before
/// any answer is awaited) and returns the answers in request order.
fn call_routed(clients: &mut [ShardClient], requests: Vec<(usize, Request)>) -> Vec<Response> {
    let mut per_shard: Vec<Vec<(usize, Request)>> = clients.iter().map(|_| Vec::new()).collect();
    for (position, (shard, request)) in requests.into_iter().enumerate() {
        per_shard[shard].push((position, request));
    }
    let mut answers: Vec<(usize, Response)> = Vec::new();
    for (client, requests) in clients.iter_mut().zip(per_shard) {
        let (positions, requests): (Vec<usize>, Vec<Request>) = requests.into_iter().unzip();
        answers.extend(positions.into_iter().zip(call_all(client, requests)));
    }
    answers.sort_by_key(|(position, _)| *position);
    answers.into_iter().map(|(_, answer)| answer).collect()
}

fn put_request(put: DaPutShard, shards: usize) -> (usize, Request) {
    let shard = da_shard_for(&put.commitment.blob_id(), put.index, shards);
    (shard, Request::DaPut(put))
}

fn get_request(encoded: &DaEncoded, index: ShardIndex, shards: usize) -> (usize, Request) {
    let blob = encoded.blob_id();
    (
        da_shard_for(&blob, index, shards),
        Request::DaGet { blob, index },
    )
}

fn indices(encoded: &DaEncoded) -> impl Iterator<Item = ShardIndex> + use<> {
    (0..encoded.shard_count() as u32).map(ShardIndex)
}

/// Puts every shard of `encoded` on its shard.
fn put_all(clients: &mut [ShardClient], encoded: &DaEncoded, expires_at_unix_s: u64) {
    let shards = clients.len();
    let requests = indices(encoded)
        .map(|index| put_request(encoded.put(index, expires_at_unix_s), shards))
        .collect();
    for (index, answer) in call_routed(clients, requests).into_iter().enumerate() {
        assert_eq!(answer, Response::DaStored, "shard {index}");
    }
}

/// Reads every shard of `encoded` back and checks bytes, proof and expiry.
fn assert_all_served(clients: &mut [ShardClient], encoded: &DaEncoded, expires_at_unix_s: u64) {
    let shards = clients.len();
    let requests = indices(encoded)
        .map(|index| get_request(encoded, index, shards))
        .collect();
    for (index, answer) in indices(encoded).zip(call_routed(clients, requests)) {
        let Response::DaShard {
            data,
            proof,
            expires_at_unix_s: expiry,
        } = answer
        else {
            panic!("shard {index:?}: expected the shard, got {answer:?}");
        };
        assert_eq!(data, encoded.shard(index), "shard {index:?}");
        assert_eq!(proof, encoded.proof(index), "shard {index:?}");
        assert_eq!(expiry, expires_at_unix_s);
        assert!(
            encoded
                .commitment()
                .verify_shard(index, &data, &proof)
                .is_ok()
        );
    }
}

/// Extent bytes a DA record of `encoded`'s shards takes: shard and proof, 4 KiB-aligned.
fn record_bytes(encoded: &DaEncoded) -> u64 {
    let proof_bytes = 32 * encoded.proof(ShardIndex(0)).siblings().len();
    ((encoded.shard_width_bytes() + proof_bytes) as u64).next_multiple_of(4096)
}

fn total_stats(clients: &mut [ShardClient]) -> dataplane::ShardStats {
    let mut all = clients.iter_mut().map(stats);
    let mut total = all.next().expect("at least one shard");
    for stats in all {
        total.segments_stored += stats.segments_stored;
        total.da_shards_stored += stats.da_shards_stored;
        total.da_payload_bytes_stored += stats.da_payload_bytes_stored;
        total.da_record_bytes_live += stats.da_record_bytes_live;
        total.da_record_bytes_dead += stats.da_record_bytes_dead;
        total.da_shards_pruned += stats.da_shards_pruned;
        total.da_shards_written += stats.da_shards_written;
        total.da_puts_rejected += stats.da_puts_rejected;
        total.record_bytes_used += stats.record_bytes_used;
    }
    total
}

fn start(dir: &Path, shards: usize) -> (DataPlane, Vec<ShardClient>) {
    DataPlane::start(config(dir, shards)).expect("start")
}

#[test]
fn encoding_on_a_shard_equals_the_encoder() {
    let dir = data_dir();
    let (plane, mut clients) = start(dir.path(), 2);
    let mut encoded_on_first = 0;
    for (params, sizes) in [
        (params(4, 8), [0usize, 1, 247, 249, 10_000]),
        (params(16, 32), [0, 1000, 1017, 1024, 300_000]),
    ] {
        let mut direct = Encoder::new(params);
        for (seed, size) in sizes.into_iter().enumerate() {
            let data = payload(seed as u64, size);
            let expected = direct.encode(&data).expect("encode");
            // Either shard encodes; the second one reuses its encoder after the first blob.
            let encoded = encode_on(&mut clients[seed % 2], params, data.clone());
            encoded_on_first += usize::from(seed % 2 == 0);
            assert_eq!(encoded.commitment(), expected.commitment(), "{size} bytes");
            assert_eq!(encoded.shard_count(), params.total_shards());
            assert_eq!(encoded.payload(), &data[..]);
            for (index, shard) in expected.shards() {
                assert_eq!(encoded.shard(index), shard, "{size} bytes, {index:?}");
                assert_eq!(encoded.proof(index), expected.proof(index));
            }
        }
    }
    let too_large = call(
        &mut clients[0],
        Request::DaEncode {
            params: params(4, 8),
            payload: vec![0; MAX_PAYLOAD_BYTES + 1],
        },
    );
    assert_eq!(
        too_large,
        Response::DaRejected(DaRejection::Encode(DaError::PayloadTooLarge {
            size_bytes: MAX_PAYLOAD_BYTES as u64 + 1,
            max_bytes: MAX_PAYLOAD_BYTES,
        }))
    );
    // The shard lives on after a refusal.
    let encoded = encode_on(&mut clients[0], params(4, 8), payload(9, 100));
    assert_eq!(encoded.payload(), &payload(9, 100)[..]);
    // The refused payload is not counted.
    assert_eq!(
        stats(&mut clients[0]).da_blobs_encoded,
        encoded_on_first as u64 + 1
    );
    plane.shutdown().expect("clean shutdown");
}

#[test]
fn every_shard_round_trips_across_two_shards_and_decodes() {
    let dir = data_dir();
    let (plane, mut clients) = start(dir.path(), 2);
    let blobs = [
        (params(4, 8), payload(1, 5000)),
        (params(16, 32), payload(2, 200_000)),
    ];
    let mut stored_shards = 0;
    let mut stored_bytes = 0;
    for (params, data) in blobs {
        let encoded = encode_on(&mut clients[0], params, data.clone());
        put_all(&mut clients, &encoded, FAR_FUTURE_UNIX_S);
        assert_all_served(&mut clients, &encoded, FAR_FUTURE_UNIX_S);
        stored_shards += encoded.shard_count() as u64;
        stored_bytes += (encoded.shard_count() * encoded.shard_width_bytes()) as u64;

        // A retriever that gets the last k shards (recovery shards only) decodes the payload.
        let shards = clients.len();
        let wanted: Vec<ShardIndex> = indices(&encoded).skip(params.recovery_shards()).collect();
        let requests = wanted
            .iter()
            .map(|index| get_request(&encoded, *index, shards))
            .collect();
        let served: Vec<(ShardIndex, Vec<u8>, ShardProof)> = wanted
            .iter()
            .zip(call_routed(&mut clients, requests))
            .map(|(index, answer)| match answer {
                Response::DaShard { data, proof, .. } => (*index, data, proof),
                other => panic!("expected a shard, got {other:?}"),
            })
            .collect();
        let mut decoder = Decoder::new(params);
        let (decoded, rejected) = decoder
            .decode(
                encoded.commitment(),
                served
                    .iter()
                    .map(|(index, data, proof)| (*index, data.as_slice(), proof)),
            )
            .expect("k shards");
        assert!(rejected.is_empty(), "{rejected:?}");
        assert_eq!(decoded, Decoded::Available(&data[..]));
    }
    // Both shards hold part of every blob, and together exactly its shards.
    let per_shard: Vec<u64> = clients
        .iter_mut()
        .map(|client| stats(client).da_shards_stored)
        .collect();
    assert!(per_shard.iter().all(|count| *count > 0), "{per_shard:?}");
    let total = total_stats(&mut clients);
    assert_eq!(total.da_shards_stored, stored_shards);
    assert_eq!(total.da_payload_bytes_stored, stored_bytes);
    assert_eq!(total.da_shards_written, stored_shards);
    assert_eq!(total.da_record_bytes_dead, 0);
    assert_eq!(total.segments_stored, 0);
    plane.shutdown().expect("clean shutdown");
}

#[test]
fn bad_puts_are_rejected_and_nothing_is_written() {
    let dir = data_dir();
    let (plane, mut clients) = start(dir.path(), 1);
    let client = &mut clients[0];
    let encoded = encode_on(client, params(4, 8), payload(3, 3000));
    let good = |index: u32| encoded.put(ShardIndex(index), FAR_FUTURE_UNIX_S);

    // Shard 2's bytes and index with shard 3's proof.
    let mut other_proof = good(2);
    other_proof.proof = encoded.proof(ShardIndex(3));
    // Shard 2 claimed as shard 3, with shard 3's proof.
    let mut wrong_index = good(2);
    wrong_index.index = ShardIndex(3);
    wrong_index.proof = encoded.proof(ShardIndex(3));
    // A tampered sibling.
    let mut bad_path = good(4);
    let mut siblings = bad_path.proof.siblings().to_vec();
    siblings[1][0] ^= 1;
    bad_path.proof = ShardProof::new(ShardIndex(4), siblings);
    // Corrupted bytes under a genuine proof.
    let mut corrupted = good(5);
    corrupted.data[17] ^= 0x40;
    // Too short, and too long.
    let mut short = good(6);
    short.data.truncate(short.data.len() - 64);
    let mut long = good(7);
    long.data.extend_from_slice(&[0; 64]);
    // Past the last shard.
    let mut out_of_range = good(0);
    out_of_range.index = ShardIndex(12);
    out_of_range.proof = ShardProof::new(
        ShardIndex(12),
        encoded.proof(ShardIndex(0)).siblings().to_vec(),
    );

    let width = encoded.shard_width_bytes();
    let cases = [
        (
            other_proof,
            ShardRejection::ProofForOtherIndex {
                index: 2,
                proof_index: 3,
            },
        ),
        (wrong_index, ShardRejection::RootMismatch { index: 3 }),
        (bad_path, ShardRejection::RootMismatch { index: 4 }),
        (corrupted, ShardRejection::RootMismatch { index: 5 }),
        (
            short,
            ShardRejection::WrongWidth {
                index: 6,
                expected_bytes: width,
                found_bytes: width - 64,
            },
        ),
        (
            long,
            ShardRejection::WrongWidth {
                index: 7,
                expected_bytes: width,
                found_bytes: width + 64,
            },
        ),
        (
            out_of_range,
            ShardRejection::IndexOutOfRange {
                index: 12,
                total_shards: 12,
            },
        ),
    ];
    let (puts, expected): (Vec<DaPutShard>, Vec<ShardRejection>) = cases.into_iter().unzip();
    let answers = call_all(client, puts.into_iter().map(Request::DaPut).collect());
    for (answer, expected) in answers.into_iter().zip(expected) {
        assert_eq!(answer, Response::DaRejected(DaRejection::Shard(expected)));
    }

    // A shard wider than an extent (the tests' extents are 512 KiB) is refused before hashing.
    let wide = encode_on(client, params(2, 2), payload(4, 1 << 20));
    let answer = call(
        client,
        Request::DaPut(wide.put(ShardIndex(0), FAR_FUTURE_UNIX_S)),
    );
    assert!(
        matches!(
            answer,
            Response::DaRejected(DaRejection::RecordTooLarge { index: 0, max_bytes, .. })
                if max_bytes == 2 * types::SEGMENT_BYTES
        ),
        "{answer:?}"
    );

    let after = stats(client);
    assert_eq!(after.da_puts_rejected, 8);
    assert_eq!(
        (
            after.da_shards_stored,
            after.da_shards_written,
            after.record_bytes_used,
            after.extents
        ),
        (0, 0, 0, 0)
    );
    for index in 2..=7 {
        assert_eq!(
            call(
                client,
                Request::DaGet {
                    blob: encoded.blob_id(),
                    index: ShardIndex(index)
                }
            ),
            Response::NotFound
        );
    }
    // The genuine shards are still accepted.
    assert_eq!(call(client, Request::DaPut(good(5))), Response::DaStored);
    plane.shutdown().expect("clean shutdown");
}

#[test]
fn re_putting_a_shard_is_idempotent_and_keeps_the_first_expiry() {
    let dir = data_dir();
    let (plane, mut clients) = start(dir.path(), 1);
    let client = &mut clients[0];
    let encoded = encode_on(client, params(4, 8), payload(5, 1000));
    let put = |expires_at_unix_s| Request::DaPut(encoded.put(ShardIndex(1), expires_at_unix_s));
    // Twice in one batch: the second waits for the first.
    let answers = call_all(client, vec![put(500), put(500)]);
    assert_eq!(
        answers,
        vec![
            Response::DaStored,
            Response::DaAlreadyStored {
                expires_at_unix_s: 500
            }
        ]
    );
    let before = stats(client);
    // Again later, from the index, asking for another window.
    assert_eq!(
        call(client, put(900)),
        Response::DaAlreadyStored {
            expires_at_unix_s: 500
        }
    );
    let after = stats(client);
    assert_eq!(after.record_bytes_used, before.record_bytes_used);
    assert_eq!(after.record_bytes_used, record_bytes(&encoded));
    assert_eq!((after.da_shards_stored, after.da_shards_written), (1, 1));
    plane.shutdown().expect("clean shutdown");
}

#[test]
fn prune_removes_only_expired_shards_and_their_bytes_stay_dead_across_restarts() {
    let dir = data_dir();
    let early = 1_000;
    let late = 2_000;
    let first = {
        let (plane, mut clients) = start(dir.path(), 2);
        let first = encode_on(&mut clients[0], params(4, 8), payload(6, 2000));
        let second = encode_on(&mut clients[1], params(16, 32), payload(7, 50_000));
        put_all(&mut clients, &first, early);
        put_all(&mut clients, &second, late);
        let used_before = total_stats(&mut clients).record_bytes_used;

        let prune = |clients: &mut [ShardClient], now_unix_s| {
            let requests = (0..clients.len())
                .map(|shard| (shard, Request::DaPrune { now_unix_s }))
                .collect();
            call_routed(clients, requests)
                .into_iter()
                .map(|answer| match answer {
                    Response::DaPruned(pruned) => pruned,
                    other => panic!("expected a prune outcome, got {other:?}"),
                })
                .fold(dataplane::DaPruned::default(), |total, pruned| {
                    dataplane::DaPruned {
                        shards: total.shards + pruned.shards,
                        payload_bytes: total.payload_bytes + pruned.payload_bytes,
                        record_bytes: total.record_bytes + pruned.record_bytes,
                        more: total.more || pruned.more,
                    }
                })
        };
        assert_eq!(
            prune(&mut clients, early - 1),
            dataplane::DaPruned::default()
        );
        let pruned = prune(&mut clients, early);
        assert_eq!(
            pruned,
            dataplane::DaPruned {
                shards: first.shard_count() as u64,
                payload_bytes: (first.shard_count() * first.shard_width_bytes()) as u64,
                record_bytes: first.shard_count() as u64 * record_bytes(&first),
                more: false,
            }
        );
        // The expired blob is gone; the other one, expired by now or not, is served until
        // a prune covers its expiry.
        let shards = clients.len();
        let requests = indices(&first)
            .map(|index| get_request(&first, index, shards))
            .collect();
        assert!(
            call_routed(&mut clients, requests)
                .iter()
                .all(|answer| *answer == Response::NotFound)
        );
        assert_all_served(&mut clients, &second, late);

        let total = total_stats(&mut clients);
        assert_eq!(total.da_shards_stored, second.shard_count() as u64);
        assert_eq!(total.da_shards_pruned, first.shard_count() as u64);
        assert_eq!(total.da_record_bytes_dead, pruned.record_bytes);
        assert_eq!(
            total.da_record_bytes_live,
            second.shard_count() as u64 * record_bytes(&second)
        );
        // Extents are append-only: pruning frees no extent bytes.
        assert_eq!(total.record_bytes_used, used_before);
        assert_eq!(
            total.record_bytes_used,
            total.da_record_bytes_live + total.da_record_bytes_dead
        );
        plane.shutdown().expect("clean shutdown");
        first
    };

    // After a restart the accounting is the same, and nothing expired comes back.
    let (plane, mut clients) = start(dir.path(), 2);
    let total = total_stats(&mut clients);
    assert_eq!(total.da_shards_pruned, first.shard_count() as u64);
    assert_eq!(
        total.da_record_bytes_dead,
        first.shard_count() as u64 * record_bytes(&first)
    );
    let again = call_routed(
        &mut clients,
        vec![
            (0, Request::DaPrune { now_unix_s: early }),
            (1, Request::DaPrune { now_unix_s: early }),
        ],
    );
    assert!(
        again
            .iter()
            .all(|answer| *answer == Response::DaPruned(dataplane::DaPruned::default()))
    );
    // A pruned shard can be stored again, as a new record.
    put_all(&mut clients, &first, late);
    assert_all_served(&mut clients, &first, late);
    let total = total_stats(&mut clients);
    assert_eq!(total.da_shards_stored, (first.shard_count() + 48) as u64);
    plane.shutdown().expect("clean shutdown");
}

#[test]
fn da_shards_and_segments_share_extents_and_survive_a_restart() {
    let dir = data_dir();
    let file = TestFile::new(21, 3 * types::SEGMENT_BYTES);
    let first = payload(8, 400_000);
    let encoded = {
        let (plane, mut clients) = start(dir.path(), 2);
        let encoded = encode_on(&mut clients[1], params(16, 32), first.clone());
        // Segments and DA shards in the same batches, on both shards.
        let shards = clients.len();
        let mut requests: Vec<(usize, Request)> = (0..file.segments())
            .map(|segment| (segment as usize % shards, file.write(segment, segment)))
            .collect();
        requests.extend(
            indices(&encoded)
                .map(|index| put_request(encoded.put(index, FAR_FUTURE_UNIX_S), shards)),
        );
        let answers = call_routed(&mut clients, requests);
        let (segment_answers, da_answers) = answers.split_at(file.segments() as usize);
        assert!(
            segment_answers
                .iter()
                .all(|answer| matches!(answer, Response::Written { .. }))
        );
        assert!(
            da_answers
                .iter()
                .all(|answer| *answer == Response::DaStored)
        );
        plane.shutdown().expect("clean shutdown");
        encoded
    };
    let (plane, mut clients) = start(dir.path(), 2);
    assert_all_served(&mut clients, &encoded, FAR_FUTURE_UNIX_S);
    // New records after the restart go past the old ones: nothing is overwritten.
    let later = encode_on(&mut clients[0], params(16, 32), payload(9, 400_000));
    put_all(&mut clients, &later, FAR_FUTURE_UNIX_S);
    assert_all_served(&mut clients, &encoded, FAR_FUTURE_UNIX_S);
    assert_all_served(&mut clients, &later, FAR_FUTURE_UNIX_S);
    for segment in 0..file.segments() {
        let shard = segment as usize % clients.len();
        assert_eq!(
            call(&mut clients[shard], file.read(segment, segment)),
            Response::Data(file.upload(segment))
        );
    }
    let total = total_stats(&mut clients);
    assert_eq!(total.segments_stored, file.segments());
    assert_eq!(total.da_shards_stored, 2 * 48);
    assert_eq!(
        total.record_bytes_used,
        file.segments() * types::SEGMENT_BYTES as u64 + 2 * 48 * record_bytes(&encoded)
    );
    plane.shutdown().expect("clean shutdown");
}

#[test]
fn a_corrupted_record_is_detected_by_its_checksum() {
    use std::os::unix::fs::FileExt;
    let dir = data_dir();
    let encoded = {
        let (plane, mut clients) = start(dir.path(), 1);
        let encoded = encode_on(&mut clients[0], params(4, 8), payload(10, 20_000));
        // Shard 0 alone first: its record is the first of extent 0.
        assert_eq!(
            call(
                &mut clients[0],
                Request::DaPut(encoded.put(ShardIndex(0), FAR_FUTURE_UNIX_S))
            ),
            Response::DaStored
        );
        assert_eq!(
            call(
                &mut clients[0],
                Request::DaPut(encoded.put(ShardIndex(1), FAR_FUTURE_UNIX_S))
            ),
            Response::DaStored
        );
        plane.shutdown().expect("clean shutdown");
        encoded
    };
    let extent = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.path().join("shard-0").join("extent-0.dat"))
        .expect("extent 0");
    let mut byte = [0u8; 1];
    extent.read_exact_at(&mut byte, 100).expect("read");
    extent
        .write_all_at(&[byte[0] ^ 0x01], 100)
        .expect("flip a bit");
    extent.sync_all().expect("sync");
    drop(extent);

    let (plane, mut clients) = start(dir.path(), 1);
    let blob = encoded.blob_id();
    let answer = call(
        &mut clients[0],
        Request::DaGet {
            blob,
            index: ShardIndex(0),
        },
    );
    assert!(
        matches!(&answer, Response::Failed(message) if message.contains("checksum mismatch")),
        "{answer:?}"
    );
    // The record beside it is intact.
    assert!(matches!(
        call(&mut clients[0], Request::DaGet { blob, index: ShardIndex(1) }),
        Response::DaShard { data, .. } if data == encoded.shard(ShardIndex(1))
    ));
    plane.shutdown().expect("clean shutdown");
}

#[test]
fn a_misrouted_da_shard_stops_the_shard() {
    let dir = data_dir();
    let (plane, mut clients) = start(dir.path(), 2);
    let encoded = encode_on(&mut clients[0], params(4, 8), payload(11, 100));
    let index = ShardIndex(0);
    let owner = da_shard_for(&encoded.blob_id(), index, 2);
    let other = 1 - owner;
    clients[other]
        .try_send(
            0,
            Request::DaGet {
                blob: encoded.blob_id(),
                index,
            },
        )
        .expect("room");
    assert!(
        clients[other].wait(common::ANSWER_TIMEOUT),
        "the shard did not signal its stop"
    );
    let mut answers = Vec::new();
    clients[other].drain(&mut answers);
    assert!(answers.is_empty());
    assert!(clients[other].is_closed());
    assert_eq!(
        call(
            &mut clients[owner],
            Request::DaGet {
                blob: encoded.blob_id(),
                index
            }
        ),
        Response::NotFound
    );
    let error = plane.shutdown().expect_err("a shard panicked");
    assert!(
        error.to_string().contains(&format!("shard {other}")),
        "{error}"
    );
}
