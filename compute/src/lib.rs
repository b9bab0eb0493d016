//! compute: the pool of workers that runs the heavy, data-parallel jobs of the node.
//!
//! The key decision is the seam: callers submit a [`Job`] (today a G1 multi-scalar
//! multiplication, the cost of every KZG commitment and proof) and wait on a [`JobHandle`];
//! which [`Backend`] runs it is chosen at run time. Only the CPU backend exists now (blst's
//! Pippenger through `da::kzg`); a CUDA backend will be detected at start and needs no CUDA
//! install to build. Inputs are shared with the workers through `Arc`s, so nothing is copied per
//! job, and the trusted setup's points are passed by their `'static` reference.
//!
//! [`Pool`] implements `da::kzg::G1Msm`, so `da` can commit through it without knowing it
//! exists. Workers are plain threads fed from one bounded channel; a job that panics answers
//! its caller with an error, and dropping the pool finishes the queued jobs and joins every
//! worker.

mod backend;
mod pool;

pub use backend::{Backend, CpuBackend, detect_backend};
pub use pool::{DEFAULT_QUEUE_DEPTH, JobHandle, MAX_QUEUE_DEPTH, MAX_WORKERS, Pool, PoolConfig};

use da::kzg::{G1Affine, G1Projective, Scalar};
use std::sync::Arc;

/// The points of an MSM job, shared with the worker without copying.
#[derive(Clone, Debug)]
pub enum MsmPoints {
    /// Points that live for the whole program, such as the trusted setup's.
    Static(&'static [G1Affine]),
    /// Points owned by the caller and shared with the worker.
    Shared(Arc<[G1Affine]>),
}

impl MsmPoints {
    /// The points as a slice.
    pub fn as_slice(&self) -> &[G1Affine] {
        match self {
            MsmPoints::Static(points) => points,
            MsmPoints::Shared(points) => points,
        }
    }
}

/// Work the pool runs. New kinds (erasure coding, batch hashing) join as variants.
#[derive(Clone, Debug)]
pub enum Job {
    /// `Σ scalars[i] · points[i]` in G1; the slices must have equal length.
    G1Msm {
        /// The points.
        points: MsmPoints,
        /// One scalar per point.
        scalars: Arc<[Scalar]>,
    },
}

impl Job {
    /// Checks what can be checked before the job is queued.
    fn validate(&self) -> Result<(), ComputeError> {
        match self {
            Job::G1Msm { points, scalars } => {
                if points.as_slice().len() != scalars.len() {
                    return Err(ComputeError::InvalidJob {
                        reason: format!(
                            "G1 MSM with {} points but {} scalars",
                            points.as_slice().len(),
                            scalars.len()
                        ),
                    });
                }
                Ok(())
            }
        }
    }
}

/// The result of a [`Job`], one variant per job kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobOutput {
    /// The sum of a G1 MSM.
    G1(G1Projective),
}

/// Everything the pool refuses or reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComputeError {
    /// A pool configuration outside the limits.
    #[error("invalid pool configuration: {reason}")]
    InvalidConfig {
        /// What is out of range.
        reason: String,
    },
    /// A worker thread could not be started.
    #[error("could not start compute worker {worker}: {reason}")]
    Spawn {
        /// The worker's number.
        worker: usize,
        /// The operating system's error.
        reason: String,
    },
    /// A job that cannot run as given.
    #[error("invalid job: {reason}")]
    InvalidJob {
        /// What is wrong with it.
        reason: String,
    },
    /// The pool no longer takes jobs.
    #[error("the compute pool has shut down")]
    ShutDown,
    /// The job panicked; the worker survived and took the next job.
    #[error("job panicked on compute worker {worker}: {message}")]
    JobPanicked {
        /// The worker that ran it.
        worker: usize,
        /// The panic's message.
        message: String,
    },
    /// The job was dropped without an answer.
    #[error("the job was lost before it produced a result")]
    Lost,
    /// The backend reported a failure.
    #[error("{backend} backend failed: {reason}")]
    Backend {
        /// The backend's name.
        backend: &'static str,
        /// What went wrong.
        reason: String,
    },
}
