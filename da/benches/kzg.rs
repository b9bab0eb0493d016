//! KZG commitment of one 128 KiB sub-blob: `da::kzg` with the CPU MSM against c-kzg on the same
//! trusted setup file, after checking that both produce the same bytes. The target is ours
//! ≤ 1.1 × c-kzg's time.
//!
//! c-kzg's C code runs blst's Pippenger on one thread; ours goes through blst's Rust binding,
//! which spreads the MSM over one blst worker per visible core. Pin the process to one core to
//! compare single-threaded (`taskset -c 0 cargo bench -p da --bench kzg`).

use criterion::{Criterion, criterion_group, criterion_main};
use da::kzg::{self, BYTES_PER_BLOB, CpuMsm, TrustedSetup};
use rand::{Rng, SeedableRng, rngs::StdRng};
use std::ffi::CString;
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

fn random_blob() -> Box<[u8; BYTES_PER_BLOB]> {
    let mut rng = StdRng::seed_from_u64(4844);
    let mut blob: Box<[u8; BYTES_PER_BLOB]> = vec![0u8; BYTES_PER_BLOB]
        .into_boxed_slice()
        .try_into()
        .expect("blob-sized");
    rng.fill(&mut blob[..]);
    for element in blob.chunks_exact_mut(32) {
        element[0] = 0; // canonical: below 2^248 < r
    }
    blob
}

/// Alternating rounds of the A/B comparison printed before the criterion groups.
const INTERLEAVED_ROUNDS: usize = 30;

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn commitment(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/kzg/trusted_setup.txt");
    let path = CString::new(path.to_str().expect("UTF-8 path")).expect("no NUL in the path");
    let settings =
        c_kzg::KzgSettings::load_trusted_setup_file(&path, 0).expect("c-kzg loads the setup");
    TrustedSetup::mainnet(); // parse outside the timed loop

    let blob = random_blob();
    let reference_blob = c_kzg::Blob::new(*blob);
    let ours = kzg::blob_to_kzg_commitment(&blob, &CpuMsm).expect("canonical blob");
    let reference = settings
        .blob_to_kzg_commitment(&reference_blob)
        .expect("c-kzg commits");
    assert_eq!(
        ours.0,
        *reference.to_bytes(),
        "both libraries give the same commitment"
    );

    // On a shared machine the two criterion groups below may run under different load; this
    // interleaved A/B run gives a ratio that both sides pay equally for.
    let (mut ours_ms, mut reference_ms) = (Vec::new(), Vec::new());
    for _ in 0..INTERLEAVED_ROUNDS {
        let start = Instant::now();
        black_box(kzg::blob_to_kzg_commitment(black_box(&blob), &CpuMsm)).expect("commits");
        ours_ms.push(start.elapsed().as_secs_f64() * 1e3);
        let start = Instant::now();
        black_box(settings.blob_to_kzg_commitment(black_box(&reference_blob))).expect("commits");
        reference_ms.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let (ours_ms, reference_ms) = (median(ours_ms), median(reference_ms));
    eprintln!(
        "interleaved medians over {INTERLEAVED_ROUNDS} rounds: da {ours_ms:.2} ms, \
         c-kzg {reference_ms:.2} ms, ratio {:.3}",
        ours_ms / reference_ms
    );

    let mut group = c.benchmark_group("kzg_commitment_128KiB");
    group.sample_size(50);
    group.bench_function("da_cpu_msm", |b| {
        b.iter(|| kzg::blob_to_kzg_commitment(black_box(&blob), &CpuMsm))
    });
    group.bench_function("c_kzg", |b| {
        b.iter(|| settings.blob_to_kzg_commitment(black_box(&reference_blob)))
    });
    group.finish();
}

criterion_group!(benches, commitment);
criterion_main!(benches);
