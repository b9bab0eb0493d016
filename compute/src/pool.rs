//! The worker pool: N threads take jobs from one bounded channel and answer each caller on a
//! channel of its own. A panicking job is caught on its worker and answered as an error, so no
//! caller waits forever; dropping the pool closes the queue, lets the workers finish what is
//! queued and joins them.

use crate::backend::{Backend, detect_backend};
use crate::{ComputeError, Job, JobOutput, MsmPoints};
use da::kzg::{G1Affine, G1Msm, G1Projective, MsmError, Scalar, TrustedSetup};
use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Most worker threads one pool may start.
pub const MAX_WORKERS: usize = 256;
/// Most jobs that may wait in the queue; a full queue makes `submit` wait.
pub const MAX_QUEUE_DEPTH: usize = 4096;
/// Queue depth of [`PoolConfig::default`].
pub const DEFAULT_QUEUE_DEPTH: usize = 64;

/// How many workers and how deep a queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Worker threads, 1 to [`MAX_WORKERS`].
    pub workers: usize,
    /// Jobs that may wait before `submit` blocks, 1 to [`MAX_QUEUE_DEPTH`].
    pub queue_depth: usize,
}

impl Default for PoolConfig {
    /// One worker per available core, capped at [`MAX_WORKERS`].
    fn default() -> PoolConfig {
        let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
        PoolConfig {
            workers: cores.min(MAX_WORKERS),
            queue_depth: DEFAULT_QUEUE_DEPTH,
        }
    }
}

/// A job in the queue with the channel its answer goes to.
struct Task {
    job: Job,
    reply: SyncSender<Result<JobOutput, ComputeError>>,
}

/// The caller's end of a submitted job.
#[derive(Debug)]
pub struct JobHandle {
    reply: Receiver<Result<JobOutput, ComputeError>>,
}

impl JobHandle {
    /// Blocks until the job's result (or its error) arrives.
    pub fn wait(self) -> Result<JobOutput, ComputeError> {
        // A closed channel without an answer means the task was dropped unanswered.
        self.reply.recv().unwrap_or(Err(ComputeError::Lost))
    }
}

/// A pool of compute workers over one backend.
pub struct Pool {
    queue: Option<SyncSender<Task>>,
    workers: Vec<JoinHandle<()>>,
    backend: Arc<dyn Backend>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("workers", &self.workers.len())
            .field("backend", &self.backend.name())
            .finish()
    }
}

impl Pool {
    /// Starts a pool on the best backend of this machine ([`detect_backend`]).
    pub fn new(config: PoolConfig) -> Result<Pool, ComputeError> {
        Pool::with_backend(config, detect_backend())
    }

    /// Starts a pool on the given backend.
    pub fn with_backend(
        config: PoolConfig,
        backend: Arc<dyn Backend>,
    ) -> Result<Pool, ComputeError> {
        if config.workers == 0 || config.workers > MAX_WORKERS {
            return Err(ComputeError::InvalidConfig {
                reason: format!("{} workers, expected 1 to {MAX_WORKERS}", config.workers),
            });
        }
        if config.queue_depth == 0 || config.queue_depth > MAX_QUEUE_DEPTH {
            return Err(ComputeError::InvalidConfig {
                reason: format!(
                    "queue depth {}, expected 1 to {MAX_QUEUE_DEPTH}",
                    config.queue_depth
                ),
            });
        }
        let (queue, tasks) = mpsc::sync_channel::<Task>(config.queue_depth);
        let tasks = Arc::new(Mutex::new(tasks));
        let mut pool = Pool {
            queue: Some(queue),
            workers: Vec::with_capacity(config.workers),
            backend,
        };
        for worker in 0..config.workers {
            let tasks = Arc::clone(&tasks);
            let backend = Arc::clone(&pool.backend);
            let handle = std::thread::Builder::new()
                .name(format!("compute-{worker}"))
                .spawn(move || work(worker, &tasks, backend.as_ref()))
                .map_err(|error| ComputeError::Spawn {
                    worker,
                    reason: error.to_string(),
                })?;
            // On an early return the pool drops here and joins the workers started so far.
            pool.workers.push(handle);
        }
        Ok(pool)
    }

    /// The backend's name.
    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Queues a job, waiting while the queue is full, and returns the handle to wait on.
    pub fn submit(&self, job: Job) -> Result<JobHandle, ComputeError> {
        job.validate()?;
        let queue = self.queue.as_ref().ok_or(ComputeError::ShutDown)?;
        let (reply, answer) = mpsc::sync_channel(1);
        queue
            .send(Task { job, reply })
            .map_err(|_| ComputeError::ShutDown)?;
        Ok(JobHandle { reply: answer })
    }

    /// Runs a job and waits for its result.
    pub fn run(&self, job: Job) -> Result<JobOutput, ComputeError> {
        self.submit(job)?.wait()
    }

    /// Finishes the queued jobs and joins every worker (what dropping the pool does).
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Closing the queue ends each worker's loop once the queued tasks are taken.
        self.queue = None;
        for worker in self.workers.drain(..) {
            // Workers catch job panics, so a join error would be a bug in the loop itself;
            // there is nothing left to answer, and a destructor must not panic.
            let _ = worker.join();
        }
    }
}

/// A worker's loop: take a task, run it with panics caught, answer, repeat until the queue
/// closes.
fn work(worker: usize, tasks: &Mutex<Receiver<Task>>, backend: &dyn Backend) {
    loop {
        let task = {
            // The lock guards only the receive; a poisoned lock still holds a usable receiver.
            let tasks = tasks
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            tasks.recv()
        };
        let Ok(task) = task else {
            return;
        };
        let result =
            catch_unwind(AssertUnwindSafe(|| backend.run(&task.job))).unwrap_or_else(|payload| {
                Err(ComputeError::JobPanicked {
                    worker,
                    message: panic_message(payload.as_ref()),
                })
            });
        // The caller may have dropped its handle; then nobody needs the answer.
        let _ = task.reply.send(result);
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_string()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "a panic without a message".to_string()
    }
}

impl G1Msm for Pool {
    /// Runs the MSM as a pool job. The trusted setup's points go by reference; other points
    /// and the scalars are copied once into shared buffers.
    fn g1_msm(&self, points: &[G1Affine], scalars: &[Scalar]) -> Result<G1Projective, MsmError> {
        let setup_points = TrustedSetup::mainnet().g1_lagrange_brp();
        let points = if std::ptr::eq(points, setup_points) {
            MsmPoints::Static(setup_points)
        } else {
            MsmPoints::Shared(Arc::from(points))
        };
        let job = Job::G1Msm {
            points,
            scalars: Arc::from(scalars),
        };
        match self.run(job) {
            Ok(JobOutput::G1(sum)) => Ok(sum),
            Err(error) => Err(MsmError {
                reason: error.to_string(),
            }),
        }
    }
}
