//! Benchmark of the DA coding layer against bare reed-solomon-simd on a full 32 MiB blob with the
//! default 1024 + 2048 shards, both sides in one run, throughput in GB/s of payload.
//!
//! - `encode/zerog`: layout, Reed-Solomon (column-blocked, on the GFNI engine where the CPU has
//!   it), BLAKE3 leaf hashes of all 3072 shards, Merkle tree.
//! - `encode/bare_rs`: reed-solomon-simd alone on the same k, m and width.
//! - `encode/leaf_hashes`: the BLAKE3 leaf hashes alone (96 MiB of shards), for the difference.
//! - `decode_*/zerog`: the validity predicate from k shards (verify proofs, complete the codeword,
//!   hash the shards not held, root check, canonical check), for a random mix of data and
//!   recovery shards, for recovery shards only, and for the data shards only (the codeword is
//!   then completed by encoding).
//! - `decode_*/verify_and_bare_rs`: proof verification plus the bare restore, i.e. decoding
//!   without any codeword check, to show what the check costs.
//! - `decode_*/bare_rs`: reed-solomon-simd's decoder alone from the same shards (it restores the
//!   missing data shards only).
//!
//! After criterion's report a paired table runs each comparison alternately and keeps the
//! fastest round of each side, the ratio to trust on a machine shared with other work.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use da::blob::{DaParams, MAX_PAYLOAD_BYTES, write_blob};
use da::codec::{Decoded, Decoder, Encoder, EngineKind};
use da::commit::{ShardCommitment, ShardIndex, ShardProof, leaf_hash};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngCore, SeedableRng};
use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};
use std::hint::black_box;
use std::time::Duration;

struct Fixture {
    params: DaParams,
    payload: Vec<u8>,
    width: usize,
    commitment: ShardCommitment,
    shards: Vec<Vec<u8>>,
    proofs: Vec<ShardProof>,
}

fn fixture() -> Fixture {
    let params = DaParams::default();
    let mut payload = vec![0u8; MAX_PAYLOAD_BYTES];
    StdRng::seed_from_u64(1).fill_bytes(&mut payload);
    let width = params
        .shard_width_bytes(payload.len())
        .expect("within the limit");
    let mut encoder = Encoder::new(params);
    let encoded = encoder.encode(&payload).expect("within the limit");
    let commitment = *encoded.commitment();
    let shards = encoded.shards().map(|(_, shard)| shard.to_vec()).collect();
    let proofs = (0..params.total_shards())
        .map(|index| encoded.proof(ShardIndex(index as u32)))
        .collect();
    Fixture {
        params,
        payload,
        width,
        commitment,
        shards,
        proofs,
    }
}

fn encode(criterion: &mut Criterion, fixture: &Fixture) {
    let Fixture {
        params,
        payload,
        width,
        shards,
        ..
    } = fixture;
    let blob = write_blob(params, payload).expect("within the limit");
    let mut group = criterion.benchmark_group("encode_32MiB");
    group.throughput(Throughput::BytesDecimal(payload.len() as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));

    let mut encoder = Encoder::new(*params);
    group.bench_function("zerog", |bencher| {
        bencher.iter(|| {
            let encoded = encoder.encode(payload).expect("within the limit");
            black_box(*encoded.commitment());
        })
    });

    let mut coder = ReedSolomonEncoder::new(params.data_shards(), params.recovery_shards(), *width)
        .expect("supported");
    group.bench_function("bare_rs", |bencher| {
        bencher.iter(|| {
            for shard in blob.chunks_exact(*width) {
                coder.add_original_shard(shard).expect("k shards");
            }
            let result = coder.encode().expect("k shards added");
            black_box(result.recovery(0));
        })
    });

    group.bench_function("leaf_hashes", |bencher| {
        bencher.iter(|| {
            for shard in shards {
                black_box(leaf_hash(shard));
            }
        })
    });
    group.finish();
}

fn decode(criterion: &mut Criterion, fixture: &Fixture, name: &str, subset: &[usize]) {
    let Fixture {
        params,
        payload,
        width,
        commitment,
        shards,
        proofs,
    } = fixture;
    let k = params.data_shards();
    let mut group = criterion.benchmark_group(format!("decode_32MiB_{name}"));
    group.throughput(Throughput::BytesDecimal(payload.len() as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));

    let mut decoder = Decoder::new(*params);
    group.bench_function(BenchmarkId::from_parameter("zerog"), |bencher| {
        bencher.iter(|| {
            let items = subset.iter().map(|&index| {
                (
                    ShardIndex(index as u32),
                    shards[index].as_slice(),
                    &proofs[index],
                )
            });
            let (decoded, rejected) = decoder.decode(commitment, items).expect("k shards");
            assert!(rejected.is_empty());
            assert!(matches!(decoded, Decoded::Available(bytes) if bytes.len() == payload.len()));
        })
    });

    let mut restorer =
        ReedSolomonDecoder::new(k, params.recovery_shards(), *width).expect("supported");
    let bare_restore = |restorer: &mut ReedSolomonDecoder| {
        for &index in subset {
            if index < k {
                restorer
                    .add_original_shard(index, &shards[index])
                    .expect("distinct");
            } else {
                restorer
                    .add_recovery_shard(index - k, &shards[index])
                    .expect("distinct");
            }
        }
        let restored = restorer.decode().expect("k shards");
        black_box(restored.restored_original(0));
    };

    group.bench_function(
        BenchmarkId::from_parameter("verify_and_bare_rs"),
        |bencher| {
            bencher.iter(|| {
                for &index in subset {
                    let shard_index = ShardIndex(index as u32);
                    black_box(
                        commitment
                            .verify_shard(shard_index, &shards[index], &proofs[index])
                            .expect("honest shard"),
                    );
                }
                bare_restore(&mut restorer);
            })
        },
    );

    group.bench_function(BenchmarkId::from_parameter("bare_rs"), |bencher| {
        bencher.iter(|| bare_restore(&mut restorer))
    });
    group.finish();
}

fn benches(criterion: &mut Criterion) {
    let fixture = fixture();
    encode(criterion, &fixture);
    let (k, n) = (fixture.params.data_shards(), fixture.params.total_shards());
    let mut all: Vec<usize> = (0..n).collect();
    all.shuffle(&mut StdRng::seed_from_u64(2));
    let mut random = all[..k].to_vec();
    random.sort_unstable();
    decode(criterion, &fixture, "random_k", &random);
    decode(
        criterion,
        &fixture,
        "recovery_only",
        &(k..2 * k).collect::<Vec<_>>(),
    );
    decode(
        criterion,
        &fixture,
        "data_only",
        &(0..k).collect::<Vec<_>>(),
    );
}

/// Rounds of the paired comparison.
const PAIRED_ROUNDS: usize = 9;

/// Times `ours` and `bare` alternately for [`PAIRED_ROUNDS`] rounds and keeps each side's fastest
/// round: on a shared machine the minimum is the run least disturbed by other work, and
/// alternating exposes both sides to the same conditions, so their ratio is trustworthy even
/// when criterion's separate, sequential groups are not.
fn paired(label: &str, payload_bytes: usize, mut ours: impl FnMut(), mut bare: impl FnMut()) {
    let mut best_ours = Duration::MAX;
    let mut best_bare = Duration::MAX;
    for _ in 0..PAIRED_ROUNDS {
        let start = std::time::Instant::now();
        ours();
        best_ours = best_ours.min(start.elapsed());
        let start = std::time::Instant::now();
        bare();
        best_bare = best_bare.min(start.elapsed());
    }
    let rate = |time: Duration| payload_bytes as f64 / time.as_secs_f64() / 1e9;
    println!(
        "{label:<28} zerog {:>7.2} ms {:>5.2} GB/s | bare {:>7.2} ms {:>5.2} GB/s | ratio {:.2}",
        best_ours.as_secs_f64() * 1e3,
        rate(best_ours),
        best_bare.as_secs_f64() * 1e3,
        rate(best_bare),
        best_bare.as_secs_f64() / best_ours.as_secs_f64(),
    );
}

/// The paired minimum-of-rounds table (see [`paired`]), printed after criterion's report.
fn paired_summary() {
    let fixture = fixture();
    let Fixture {
        params,
        payload,
        width,
        commitment,
        shards,
        proofs,
    } = &fixture;
    let (k, m, n) = (
        params.data_shards(),
        params.recovery_shards(),
        params.total_shards(),
    );
    println!(
        "\npaired minimum of {PAIRED_ROUNDS} alternating rounds, 32 MiB payload, {k}+{m} shards of {width} bytes"
    );
    let blob = write_blob(params, payload).expect("within the limit");
    let encoder = Encoder::new(*params);
    println!("zerog's engine on this CPU: {:?}", encoder.engine());
    let mut coder = ReedSolomonEncoder::new(k, m, *width).expect("supported");
    let mut bare_encode = || {
        for shard in blob.chunks_exact(*width) {
            coder.add_original_shard(shard).expect("k shards");
        }
        black_box(coder.encode().expect("k shards added").recovery(0));
    };
    let mut encoders = vec![("encode", encoder)];
    if encoders[0].1.engine() != EngineKind::Library {
        // What the column blocks alone give, on the library's own FFT engine.
        let on_library =
            Encoder::with_engine(*params, EngineKind::Library).expect("always available");
        encoders.insert(0, ("encode, library engine", on_library));
    }
    for (label, mut encoder) in encoders {
        paired(
            label,
            payload.len(),
            || {
                black_box(
                    *encoder
                        .encode(payload)
                        .expect("within the limit")
                        .commitment(),
                );
            },
            &mut bare_encode,
        );
    }
    let mut all: Vec<usize> = (0..n).collect();
    all.shuffle(&mut StdRng::seed_from_u64(2));
    let mut random = all[..k].to_vec();
    random.sort_unstable();
    let subsets = [
        ("decode random k", random),
        ("decode recovery only", (k..2 * k).collect::<Vec<_>>()),
        ("decode data only", (0..k).collect()),
    ];
    let mut decoder = Decoder::new(*params);
    let mut restorer = ReedSolomonDecoder::new(k, m, *width).expect("supported");
    for (label, subset) in subsets {
        paired(
            label,
            payload.len(),
            || {
                let items = subset.iter().map(|&index| {
                    (
                        ShardIndex(index as u32),
                        shards[index].as_slice(),
                        &proofs[index],
                    )
                });
                let (decoded, _) = decoder.decode(commitment, items).expect("k shards");
                assert!(matches!(decoded, Decoded::Available(_)));
            },
            || {
                for &index in &subset {
                    if index < k {
                        restorer
                            .add_original_shard(index, &shards[index])
                            .expect("distinct");
                    } else {
                        restorer
                            .add_recovery_shard(index - k, &shards[index])
                            .expect("distinct");
                    }
                }
                black_box(restorer.decode().expect("k shards").restored_original(0));
            },
        );
    }
}

criterion_group!(codec, benches);

fn main() {
    codec();
    paired_summary();
    Criterion::default().configure_from_args().final_summary();
}
