//! engine: which FFT engine runs the code's transforms. The GFNI engine (module `gfni`) where
//! the CPU has AVX-512 and GFNI, reed-solomon-simd's own best engine everywhere else. Both give
//! the same bytes; the choice is a matter of speed only, and tests run every available one.

use reed_solomon_simd::engine::{DefaultEngine, Engine, GfElement, ShardsRefMut};

/// An FFT engine the coder can run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineKind {
    /// AVX-512 with GFNI (x86-64 only): the fastest where present.
    Gfni,
    /// reed-solomon-simd's engine of choice for this CPU (AVX2, SSSE3, Neon or portable).
    Library,
}

impl EngineKind {
    /// The fastest engine this CPU runs.
    pub fn best() -> EngineKind {
        if EngineKind::Gfni.is_available() {
            EngineKind::Gfni
        } else {
            EngineKind::Library
        }
    }

    /// Whether this CPU runs the engine.
    pub fn is_available(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            EngineKind::Gfni => super::gfni::Gfni::is_available(),
            #[cfg(not(target_arch = "x86_64"))]
            EngineKind::Gfni => false,
            EngineKind::Library => true,
        }
    }

    /// Every engine this CPU runs, best first.
    pub fn available() -> Vec<EngineKind> {
        [EngineKind::Gfni, EngineKind::Library]
            .into_iter()
            .filter(|kind| kind.is_available())
            .collect()
    }
}

/// A constructed engine of one [`EngineKind`].
pub(crate) enum CodingEngine {
    #[cfg(target_arch = "x86_64")]
    Gfni(super::gfni::Gfni),
    Library(DefaultEngine),
}

impl CodingEngine {
    /// The engine of `kind`, or `None` where this CPU does not run it.
    pub(crate) fn of(kind: EngineKind) -> Option<CodingEngine> {
        match kind {
            #[cfg(target_arch = "x86_64")]
            EngineKind::Gfni => super::gfni::Gfni::detect().map(CodingEngine::Gfni),
            #[cfg(not(target_arch = "x86_64"))]
            EngineKind::Gfni => None,
            EngineKind::Library => Some(CodingEngine::Library(DefaultEngine::new())),
        }
    }

    pub(crate) fn kind(&self) -> EngineKind {
        match self {
            #[cfg(target_arch = "x86_64")]
            CodingEngine::Gfni(_) => EngineKind::Gfni,
            CodingEngine::Library(_) => EngineKind::Library,
        }
    }
}

impl CodingEngine {
    /// In-place FFT of rows `pos .. pos + size` of `data` (rows of `row_chunks` chunks, one
    /// after another), as the library's `Engine::fft` defines it.
    pub(crate) fn fft(
        &self,
        data: &mut [[u8; 64]],
        row_chunks: usize,
        pos: usize,
        size: usize,
        truncated_size: usize,
        skew_delta: usize,
    ) {
        match self {
            #[cfg(target_arch = "x86_64")]
            CodingEngine::Gfni(engine) => {
                engine.fft(data, row_chunks, pos, size, truncated_size, skew_delta)
            }
            CodingEngine::Library(engine) => engine.fft(
                &mut ShardsRefMut::new(data.len() / row_chunks, row_chunks, data),
                pos,
                size,
                truncated_size,
                skew_delta,
            ),
        }
    }

    /// In-place IFFT, as the library's `Engine::ifft` defines it (see [`CodingEngine::fft`]).
    pub(crate) fn ifft(
        &self,
        data: &mut [[u8; 64]],
        row_chunks: usize,
        pos: usize,
        size: usize,
        truncated_size: usize,
        skew_delta: usize,
    ) {
        match self {
            #[cfg(target_arch = "x86_64")]
            CodingEngine::Gfni(engine) => {
                engine.ifft(data, row_chunks, pos, size, truncated_size, skew_delta)
            }
            CodingEngine::Library(engine) => engine.ifft(
                &mut ShardsRefMut::new(data.len() / row_chunks, row_chunks, data),
                pos,
                size,
                truncated_size,
                skew_delta,
            ),
        }
    }

    /// The IFFT of rows `0 .. size` whose rows are first `inputs` (each `row_chunks × 64`
    /// bytes; zeros past them), truncated at `inputs.len()`: the low-rate encoder's first step.
    /// The GFNI engine reads the inputs in its first pass; the library's is given a copy.
    pub(crate) fn ifft_from(
        &self,
        data: &mut [[u8; 64]],
        row_chunks: usize,
        size: usize,
        inputs: &[&[u8]],
    ) {
        assert!(inputs.len() <= size);
        assert!(inputs.iter().all(|input| input.len() == row_chunks * 64));
        match self {
            #[cfg(target_arch = "x86_64")]
            CodingEngine::Gfni(engine) => engine.ifft_from(data, row_chunks, size, inputs),
            CodingEngine::Library(_) => {
                let rows = &mut data[..size * row_chunks];
                let (filled, zeros) = rows.split_at_mut(inputs.len() * row_chunks);
                for (row, input) in filled.chunks_exact_mut(row_chunks).zip(inputs) {
                    row.as_flattened_mut().copy_from_slice(input);
                }
                zeros.fill([0u8; 64]);
                self.ifft(data, row_chunks, 0, size, inputs.len(), 0);
            }
        }
    }

    /// The FFT of rows `pos .. pos + size` with the skew of the group ending there (the
    /// library's `fft_skew_end`), truncated at `outputs.len()`, its rows then stored into
    /// `outputs` (each `row_chunks × 64` bytes): the low-rate encoder's step for one group of
    /// recovery shards. The GFNI engine writes them from its last pass, non-temporally where
    /// they are aligned; the library's is copied from.
    pub(crate) fn fft_skew_end_into(
        &self,
        fence: &Fence,
        data: &mut [[u8; 64]],
        row_chunks: usize,
        pos: usize,
        size: usize,
        outputs: &mut [&mut [u8]],
    ) {
        assert!(outputs.len() <= size);
        assert!(outputs.iter().all(|output| output.len() == row_chunks * 64));
        match (self, fence) {
            #[cfg(target_arch = "x86_64")]
            (CodingEngine::Gfni(engine), Fence::Stream(fence)) => {
                engine.fft_skew_end_into(fence, data, row_chunks, pos, size, outputs)
            }
            _ => {
                self.fft(data, row_chunks, pos, size, outputs.len(), pos + size);
                let rows = data[pos * row_chunks..].chunks_exact(row_chunks);
                for (row, output) in rows.zip(outputs.iter_mut()) {
                    self.scatter(fence, output, row);
                }
            }
        }
    }

    /// `x *= log_m`.
    pub(crate) fn mul(&self, x: &mut [[u8; 64]], log_m: GfElement) {
        match self {
            #[cfg(target_arch = "x86_64")]
            CodingEngine::Gfni(engine) => engine.mul(x, log_m),
            CodingEngine::Library(engine) => engine.mul(x, log_m),
        }
    }

    /// The fence of one coding call: create it before the first [`CodingEngine::scatter`] or
    /// fused encode, keep it until the output is used. Dropping it orders the call's
    /// non-temporal stores, even when the call unwinds.
    pub(crate) fn fence(&self) -> Fence {
        match self {
            #[cfg(target_arch = "x86_64")]
            CodingEngine::Gfni(_) => Fence::Stream(super::gfni::StreamFence::new()),
            CodingEngine::Library(_) => Fence::Plain,
        }
    }

    /// Copies column-block `rows` into `destination` (`rows.len() × 64` bytes); with
    /// non-temporal stores where the engine has them, `destination` is 64-byte aligned and
    /// `fence` will order them.
    pub(crate) fn scatter(&self, fence: &Fence, destination: &mut [u8], rows: &[[u8; 64]]) {
        match (self, fence) {
            #[cfg(target_arch = "x86_64")]
            (CodingEngine::Gfni(engine), Fence::Stream(fence))
                if destination.as_ptr().addr().is_multiple_of(64) =>
            {
                engine.stream_rows(fence, destination, rows)
            }
            _ => destination.copy_from_slice(rows.as_flattened()),
        }
    }
}

/// What orders a coding call's stores: an `sfence` on drop for the GFNI engine, which streams;
/// nothing for the library's engine, which does not.
pub(crate) enum Fence {
    #[cfg(target_arch = "x86_64")]
    Stream(super::gfni::StreamFence),
    Plain,
}
