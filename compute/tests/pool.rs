//! The compute pool as its callers rely on it: MSM results equal the CPU path and a naive sum,
//! KZG commitments through the pool equal the official vector, many jobs in flight all get
//! their own answer, a panicking job answers its caller with an error and the pool keeps
//! working, and dropping the pool finishes queued jobs.

use compute::{Backend, ComputeError, CpuBackend, Job, JobOutput, MsmPoints, Pool, PoolConfig};
use da::kzg::{self, CpuMsm, G1Affine, G1Msm, G1Projective, KzgCommitment, Scalar, TrustedSetup};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// splitmix64: a seeded source of test inputs.
struct Inputs(u64);

impl Inputs {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A scalar of up to 254 bits (always below the modulus).
    fn scalar(&mut self) -> Scalar {
        let limbs = [self.next(), self.next(), self.next(), self.next() >> 2];
        Option::from(Scalar::from_u64s_le(&limbs)).expect("below 2^254 < r")
    }

    /// A point: a setup point times a random scalar, so no two are related in a known way.
    fn point(&mut self) -> G1Affine {
        let base = TrustedSetup::mainnet().g1_lagrange_brp()[(self.next() % 4096) as usize];
        G1Affine::from(base * self.scalar())
    }
}

fn naive_msm(points: &[G1Affine], scalars: &[Scalar]) -> G1Projective {
    points.iter().zip(scalars).fold(
        G1Projective::from(G1Affine::default()),
        |sum, (point, scalar)| sum + point * scalar,
    )
}

fn decode_hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).expect("hex digits"))
        .collect()
}

fn small_pool(workers: usize) -> Pool {
    Pool::new(PoolConfig {
        workers,
        queue_depth: 8,
    })
    .expect("a valid configuration")
}

#[test]
fn pool_msm_equals_cpu_msm_equals_a_naive_sum() {
    let pool = small_pool(2);
    assert_eq!(pool.backend_name(), "cpu");
    let mut inputs = Inputs(0x5eed);
    for size in [1, 7, 33, 200] {
        let points: Vec<G1Affine> = (0..size).map(|_| inputs.point()).collect();
        let scalars: Vec<Scalar> = (0..size).map(|_| inputs.scalar()).collect();
        let expected = naive_msm(&points, &scalars);
        assert_eq!(
            CpuMsm.g1_msm(&points, &scalars),
            Ok(expected),
            "CpuMsm, {size} points"
        );
        assert_eq!(
            pool.g1_msm(&points, &scalars),
            Ok(expected),
            "pool, {size} points"
        );
    }
    // The full setup (passed by reference) against the CPU path.
    let setup = TrustedSetup::mainnet().g1_lagrange_brp();
    let scalars: Vec<Scalar> = (0..setup.len()).map(|_| inputs.scalar()).collect();
    assert_eq!(pool.g1_msm(setup, &scalars), CpuMsm.g1_msm(setup, &scalars));
}

#[test]
fn a_commitment_through_the_pool_equals_the_official_vector() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../da/testdata/kzg/blob_to_kzg_commitment/valid_blob_2.yaml"
    );
    let text = std::fs::read_to_string(path).expect("the vector is in the repository");
    let field = |key: &str| -> Vec<u8> {
        let line = text
            .lines()
            .find(|line| line.trim_start().starts_with(key))
            .expect("field present");
        let value = line
            .split_once(':')
            .expect("key: value")
            .1
            .trim()
            .trim_matches('\'');
        decode_hex(value.trim_start_matches("0x"))
    };
    let blob: Box<[u8; kzg::BYTES_PER_BLOB]> = field("blob:")
        .into_boxed_slice()
        .try_into()
        .expect("a blob");
    let expected = KzgCommitment(field("output:").try_into().expect("48 bytes"));
    let pool = small_pool(2);
    assert_eq!(kzg::blob_to_kzg_commitment(&blob, &pool), Ok(expected));
}

#[test]
fn many_jobs_in_flight_each_get_their_own_result() {
    let pool = small_pool(3);
    let mut inputs = Inputs(77);
    let jobs: Vec<(Vec<G1Affine>, Vec<Scalar>)> = (0..20)
        .map(|i| {
            let size = 1 + i % 5;
            (
                (0..size).map(|_| inputs.point()).collect(),
                (0..size).map(|_| inputs.scalar()).collect(),
            )
        })
        .collect();
    let handles: Vec<_> = jobs
        .iter()
        .map(|(points, scalars)| {
            pool.submit(Job::G1Msm {
                points: MsmPoints::Shared(Arc::from(points.as_slice())),
                scalars: Arc::from(scalars.as_slice()),
            })
            .expect("the pool is running")
        })
        .collect();
    for (handle, (points, scalars)) in handles.into_iter().zip(&jobs) {
        assert_eq!(handle.wait(), Ok(JobOutput::G1(naive_msm(points, scalars))));
    }
}

/// A backend whose jobs with an empty scalar list panic, counting the jobs it finished.
struct PanicsOnEmpty {
    finished: AtomicUsize,
}

impl Backend for PanicsOnEmpty {
    fn name(&self) -> &'static str {
        "panics-on-empty"
    }

    fn run(&self, job: &Job) -> Result<JobOutput, ComputeError> {
        let Job::G1Msm { scalars, .. } = job;
        assert!(!scalars.is_empty(), "deliberate panic for an empty job");
        let output = CpuBackend.run(job);
        self.finished.fetch_add(1, Ordering::SeqCst);
        output
    }
}

#[test]
fn a_panicking_job_reports_an_error_and_the_pool_keeps_working() {
    let backend = Arc::new(PanicsOnEmpty {
        finished: AtomicUsize::new(0),
    });
    let pool = Pool::with_backend(
        PoolConfig {
            workers: 1,
            queue_depth: 4,
        },
        backend.clone(),
    )
    .expect("a valid configuration");
    let empty = Job::G1Msm {
        points: MsmPoints::Shared(Arc::from(Vec::new())),
        scalars: Arc::from(Vec::new()),
    };
    match pool.run(empty) {
        Err(ComputeError::JobPanicked { worker: 0, message }) => {
            assert!(message.contains("deliberate panic"), "{message}")
        }
        other => panic!("expected a panic report, got {other:?}"),
    }
    // The single worker survived and runs the next job.
    let mut inputs = Inputs(3);
    let points = vec![inputs.point()];
    let scalars = vec![inputs.scalar()];
    assert_eq!(
        pool.run(Job::G1Msm {
            points: MsmPoints::Shared(Arc::from(points.as_slice())),
            scalars: Arc::from(scalars.as_slice()),
        }),
        Ok(JobOutput::G1(naive_msm(&points, &scalars)))
    );
    assert_eq!(backend.finished.load(Ordering::SeqCst), 1);
}

#[test]
fn dropping_the_pool_finishes_queued_jobs_and_joins_its_workers() {
    let backend = Arc::new(PanicsOnEmpty {
        finished: AtomicUsize::new(0),
    });
    let pool = Pool::with_backend(
        PoolConfig {
            workers: 2,
            queue_depth: 16,
        },
        backend.clone(),
    )
    .expect("a valid configuration");
    let mut inputs = Inputs(11);
    let handles: Vec<_> = (0..10)
        .map(|_| {
            pool.submit(Job::G1Msm {
                points: MsmPoints::Shared(Arc::from(vec![inputs.point()])),
                scalars: Arc::from(vec![inputs.scalar()]),
            })
            .expect("the pool is running")
        })
        .collect();
    pool.shutdown();
    // Shutdown returned only after the workers exited, so every queued job has finished.
    assert_eq!(backend.finished.load(Ordering::SeqCst), 10);
    assert_eq!(
        Arc::strong_count(&backend),
        1,
        "the workers released the backend"
    );
    for handle in handles {
        assert!(matches!(handle.wait(), Ok(JobOutput::G1(_))));
    }
}

#[test]
fn invalid_configurations_and_jobs_are_refused() {
    for (workers, queue_depth) in [(0, 1), (compute::MAX_WORKERS + 1, 1), (1, 0)] {
        assert!(matches!(
            Pool::new(PoolConfig {
                workers,
                queue_depth
            }),
            Err(ComputeError::InvalidConfig { .. })
        ));
    }
    let pool = small_pool(1);
    let mut inputs = Inputs(5);
    let mismatched = Job::G1Msm {
        points: MsmPoints::Shared(Arc::from(vec![inputs.point(), inputs.point()])),
        scalars: Arc::from(vec![inputs.scalar()]),
    };
    assert!(matches!(
        pool.submit(mismatched),
        Err(ComputeError::InvalidJob { .. })
    ));
    assert!(pool.g1_msm(&[inputs.point()], &[]).is_err());
}
