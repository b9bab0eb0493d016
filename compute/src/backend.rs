//! Backends: what actually runs a job. The pool holds one, chosen by [`detect_backend`] when it
//! starts; every backend must give the same results as the CPU one, which is the reference.

use crate::{ComputeError, Job, JobOutput};
use std::sync::Arc;

/// Something that runs jobs: the CPU now, a GPU later. Shared by all workers of a pool.
pub trait Backend: Send + Sync {
    /// A short name for logs and errors ("cpu", "cuda").
    fn name(&self) -> &'static str;

    /// Runs one job to completion on the calling worker thread.
    fn run(&self, job: &Job) -> Result<JobOutput, ComputeError>;
}

/// The CPU backend: blst's Pippenger MSM via `da::kzg`. blst may spread one MSM over its own
/// helper threads; the pool's workers give concurrency across jobs.
#[derive(Debug, Default, Clone, Copy)]
pub struct CpuBackend;

impl Backend for CpuBackend {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn run(&self, job: &Job) -> Result<JobOutput, ComputeError> {
        match job {
            Job::G1Msm { points, scalars } => Ok(JobOutput::G1(da::kzg::cpu_g1_msm(
                points.as_slice(),
                scalars,
            ))),
        }
    }
}

/// The best backend this machine offers. A CUDA backend will be probed here at run time (a
/// device present and its driver loadable) and preferred when it answers; until then, and on
/// every machine without one, the CPU.
pub fn detect_backend() -> Arc<dyn Backend> {
    Arc::new(CpuBackend)
}
