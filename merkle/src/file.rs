//! The 0G file tree: padding, submission nodes, the file root and segment proofs.
//!
//! Key decision: the whole file is one "carry-up" Merkle tree over its P padded chunks (an
//! unpaired last node at any level is carried up unhashed, never paired with a zero subtree).
//! A segment root is that tree's node over 1024 chunks (the last segment covers only its padded
//! chunks), the file root is the same tree one level of segments higher up, and the submission
//! nodes are the power-of-two subtrees of P's binary decomposition. Because the three views are
//! one tree, [`FileTree`] keeps only the segment level and above (2 hashes per 256 KiB) plus the
//! few submission nodes that lie inside a partial last segment.
//!
//! Verification of client segments ([`verify_segment`]) needs no tree at all: the shape of the
//! tree follows from the file size, so it is computed arithmetically, with no allocation that a
//! client could make large.

use crate::keccak::{hash_chunks, hash_pair, hash_pairs, keccak256};
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;
use types::{CHUNK_BYTES, H256, SEGMENT_BYTES, SEGMENT_CHUNKS, SEGMENT_HEIGHT, SegmentIndex};

const SEGMENT_CHUNKS_U64: u64 = SEGMENT_CHUNKS as u64;
const SEGMENT_BYTES_U64: u64 = SEGMENT_BYTES as u64;
const CHUNK_BYTES_U64: u64 = CHUNK_BYTES as u64;

/// Heights of zero subtrees kept in the table: a tree over `u64` chunks is at most 64 high.
pub const MAX_HEIGHT: u32 = 64;

/// A Merkle proof as 0G sends it: `lemma = [leaf, siblings…, root]`, `path[i] = true` when the
/// running node is the left child at step i (bottom-up). A single-leaf tree has
/// `lemma = [root]` and `path = []`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proof {
    pub lemma: Vec<H256>,
    pub path: Vec<bool>,
}

/// Most hashes a segment proof holds: leaf, one sibling per level of a tree over the largest
/// file (2^31 segments of 512 GiB at most fit in 32 levels) and the root.
pub const MAX_PROOF_HASHES: usize = 64;

impl Proof {
    /// Compact bytes: the number of lemma hashes, the hashes, then one byte per path step.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.lemma.len() * 32 + self.path.len());
        out.push(u8::try_from(self.lemma.len()).unwrap_or(u8::MAX));
        for hash in &self.lemma {
            out.extend_from_slice(&hash.0);
        }
        out.extend(self.path.iter().map(|&left| u8::from(left)));
        out
    }

    /// The inverse of [`Proof::to_bytes`]; `None` for bytes it cannot have written.
    pub fn from_bytes(bytes: &[u8]) -> Option<Proof> {
        let (&count, rest) = bytes.split_first()?;
        let count = usize::from(count);
        if count == 0 || count > MAX_PROOF_HASHES || rest.len() < count * 32 {
            return None;
        }
        let (hashes, path) = rest.split_at(count * 32);
        let lemma = hashes
            .chunks_exact(32)
            .map(|hash| H256(hash.try_into().expect("chunks of 32 bytes")))
            .collect();
        let path = path
            .iter()
            .map(|&step| match step {
                0 => Some(false),
                1 => Some(true),
                _ => None,
            })
            .collect::<Option<Vec<bool>>>()?;
        Some(Proof { lemma, path })
    }
}

/// One submission node: the root of `2^height` consecutive chunks of the padded file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmissionNode {
    pub height: u64,
    pub root: H256,
}

/// Why a file tree could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    #[error("a file of size 0 has no Merkle root and cannot be submitted")]
    EmptyFile,
    #[error("segment {segment}: expected {expected_bytes} bytes, found {found_bytes}")]
    SegmentLength {
        segment: SegmentIndex,
        expected_bytes: u64,
        found_bytes: u64,
    },
    #[error(
        "segment {segment}: bytes past the end of the file must be zero (offset {offset} in the segment is not)"
    )]
    TailNotZero { segment: SegmentIndex, offset: u64 },
    #[error("expected {expected} segment roots for a file of {size_bytes} bytes, found {found}")]
    SegmentCount {
        size_bytes: u64,
        expected: u64,
        found: u64,
    },
    #[error("segment {segment} lies wholly in padding, so its root must be the zero root")]
    PaddingSegmentNotZero { segment: SegmentIndex },
    #[error("all {segments} segments were already pushed")]
    TooManySegments { segments: u64 },
    #[error("only {pushed} of {segments} data segments were pushed before finish")]
    MissingSegments { pushed: u64, segments: u64 },
    #[error("segment {segment} is out of range: the file has {segments} segments")]
    IndexOutOfRange {
        segment: SegmentIndex,
        segments: u64,
    },
    #[error(
        "the submission nodes inside the partial last segment are unknown: the tree was built from segment roots alone"
    )]
    TailNodesUnknown,
}

/// Why a client-supplied segment was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("a file of size 0 has no segments")]
    EmptyFile,
    #[error("segment {segment} is out of range: the file has {segments} data segments")]
    IndexOutOfRange {
        segment: SegmentIndex,
        segments: u64,
    },
    #[error("segment {segment}: expected {expected_bytes} bytes of data, found {found_bytes}")]
    DataLength {
        segment: SegmentIndex,
        expected_bytes: u64,
        found_bytes: u64,
    },
    #[error("segment {segment}: byte {offset} lies past the end of the file and is not zero")]
    TailNotZero { segment: SegmentIndex, offset: u64 },
    #[error(
        "proof lemma has {lemma_len} hashes for a path of {path_len}; expected path + 2 (or 1 for an empty path)"
    )]
    LemmaLength { lemma_len: usize, path_len: usize },
    #[error("segment {segment}: proof path has {found} steps, the file tree needs {expected}")]
    PathLength {
        segment: SegmentIndex,
        expected: usize,
        found: usize,
    },
    #[error("proof path leads to segment {found}, not to segment {segment}")]
    PositionMismatch {
        segment: SegmentIndex,
        found: SegmentIndex,
    },
    #[error("segment {segment}: lemma leaf is {claimed} but the data hashes to {computed}")]
    LeafMismatch {
        segment: SegmentIndex,
        claimed: H256,
        computed: H256,
    },
    #[error("proof root {claimed} is not the file root {expected}")]
    LemmaRootMismatch { expected: H256, claimed: H256 },
    #[error("proof leads to root {computed}, expected file root {expected}")]
    RootMismatch { expected: H256, computed: H256 },
    #[error(
        "proof sibling at height {height} (chunks {first_chunk}..{end_chunk}) lies wholly in padding but is not the zero subtree"
    )]
    PaddingNotZero {
        height: u32,
        first_chunk: u64,
        end_chunk: u64,
    },
}

/// Zero-subtree hash of a full subtree `height` high: Z0 = keccak(256 zero bytes),
/// Zh = keccak(Zh-1 ‖ Zh-1). Panics if `height >= MAX_HEIGHT` (no `u64`-chunk tree is that high).
pub fn zero_hash(height: u32) -> H256 {
    static TABLE: OnceLock<Vec<H256>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut table = Vec::with_capacity(MAX_HEIGHT as usize);
        let mut current = keccak256(&[0u8; CHUNK_BYTES]);
        for _ in 0..MAX_HEIGHT {
            table.push(current);
            current = hash_pair(&current, &current);
        }
        table
    });
    *table
        .get(height as usize)
        .expect("zero_hash: height below MAX_HEIGHT (callers validate heights)")
}

/// Root of the carry-up tree over `chunks` zero chunks (0 chunks give `H256::ZERO`). Equal to
/// [`zero_hash`] when `chunks` is a power of two.
pub fn zero_root(chunks: u64) -> H256 {
    if chunks == 0 {
        return H256::ZERO;
    }
    // The carry-up tree over c leaves is the binary decomposition of c into full subtrees,
    // largest first, joined right to left.
    let lowest = chunks.trailing_zeros();
    let mut root = zero_hash(lowest);
    for height in (lowest + 1)..64 {
        if chunks & (1u64 << height) != 0 {
            root = hash_pair(&zero_hash(height), &root);
        }
    }
    root
}

/// P, the padded chunk count, from n chunks (0G's padding rule): n itself when a power of two, else n
/// rounded up to a multiple of `max(1, nextpow2(n) / 16)`. `padded_chunks(0) = 0`.
pub fn padded_chunks(chunks: u64) -> u64 {
    if chunks == 0 || chunks.is_power_of_two() {
        return chunks;
    }
    let next_pow2 = chunks.next_power_of_two();
    let unit = (next_pow2 / 16).max(1);
    chunks.div_ceil(unit) * unit
}

/// Heights of the submission nodes for P padded chunks: P's set bits, most significant first.
pub fn node_heights(padded_chunks: u64) -> Vec<u32> {
    (0..64u32)
        .rev()
        .filter(|height| padded_chunks & (1u64 << height) != 0)
        .collect()
}

/// Submission nodes of a file tree whose padded size is `padded_chunks`. Fails if the tree has
/// another padded size (then these are not its nodes) or lacks its tail nodes.
pub fn submission_nodes(
    padded_chunks: u64,
    tree: &FileTree,
) -> Result<Vec<SubmissionNode>, MerkleError> {
    if padded_chunks != tree.layout.padded_chunks {
        return Err(MerkleError::SegmentCount {
            size_bytes: tree.layout.size_bytes,
            expected: tree.layout.padded_segments,
            found: padded_chunks.div_ceil(SEGMENT_CHUNKS_U64),
        });
    }
    tree.try_nodes()
}

/// Sizes derived from a file's byte length: everything about the tree's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileLayout {
    pub size_bytes: u64,
    /// n: chunks holding real data (the last one zero-filled).
    pub chunks: u64,
    /// P: chunks after 0G's padding; the tree covers exactly these.
    pub padded_chunks: u64,
    /// Segments holding real data: the ones a client uploads.
    pub data_segments: u64,
    /// Leaves of the segment-level tree, including segments wholly in padding.
    pub padded_segments: u64,
}

impl FileLayout {
    pub fn new(size_bytes: u64) -> Result<FileLayout, MerkleError> {
        if size_bytes == 0 {
            return Err(MerkleError::EmptyFile);
        }
        let chunks = size_bytes.div_ceil(CHUNK_BYTES_U64);
        let padded = padded_chunks(chunks);
        Ok(FileLayout {
            size_bytes,
            chunks,
            padded_chunks: padded,
            data_segments: chunks.div_ceil(SEGMENT_CHUNKS_U64),
            padded_segments: padded.div_ceil(SEGMENT_CHUNKS_U64),
        })
    }

    /// Bytes of real data in segment `segment` (0 for segments wholly in padding).
    pub fn segment_data_bytes(&self, segment: u64) -> u64 {
        let start = segment.saturating_mul(SEGMENT_BYTES_U64);
        self.size_bytes.saturating_sub(start).min(SEGMENT_BYTES_U64)
    }

    /// Bytes a client uploads for segment `segment`: its real data rounded up to whole chunks,
    /// as the SDK sends it (a full 256 KiB except in the last data segment).
    pub fn segment_upload_bytes(&self, segment: u64) -> u64 {
        self.segment_data_bytes(segment).div_ceil(CHUNK_BYTES_U64) * CHUNK_BYTES_U64
    }

    /// Chunks the tree covers in segment `segment`: 1024, fewer in a partial last segment.
    pub fn segment_padded_chunks(&self, segment: u64) -> u64 {
        let start = segment.saturating_mul(SEGMENT_CHUNKS_U64);
        self.padded_chunks
            .saturating_sub(start)
            .min(SEGMENT_CHUNKS_U64)
    }
}

/// Root of the carry-up tree over `leaves` (empty gives `H256::ZERO`), hashed level by level.
fn carry_up_root(leaves: Vec<H256>) -> H256 {
    let mut level = leaves;
    if level.is_empty() {
        return H256::ZERO;
    }
    while level.len() > 1 {
        level = next_level(&level);
    }
    level[0]
}

/// One level up the carry-up tree: pairs hashed in one batch, an unpaired last node carried.
fn next_level(level: &[H256]) -> Vec<H256> {
    let pairs = level.len() / 2;
    let mut next = vec![H256::ZERO; level.len().div_ceil(2)];
    hash_pairs(&level[..pairs * 2], &mut next[..pairs]);
    if level.len() % 2 == 1 {
        next[pairs] = level[level.len() - 1];
    }
    next
}

/// All levels of the carry-up tree over `leaves`, `levels[0] = leaves`, last level one node.
fn carry_up_levels(leaves: Vec<H256>) -> Vec<Vec<H256>> {
    let mut levels = vec![leaves];
    while levels.last().is_some_and(|level| level.len() > 1) {
        let next = next_level(levels.last().expect("loop condition saw a level"));
        levels.push(next);
    }
    levels
}

/// Proof of leaf `index` from carry-up levels: (sibling, running node is left), bottom-up.
fn carry_up_proof(levels: &[Vec<H256>], index: usize) -> Vec<(H256, bool)> {
    let mut steps = Vec::new();
    let mut position = index;
    for level in &levels[..levels.len().saturating_sub(1)] {
        if position % 2 == 1 {
            steps.push((level[position - 1], false));
        } else if position + 1 < level.len() {
            steps.push((level[position + 1], true));
        }
        position /= 2;
    }
    steps
}

/// Leaf hashes of one segment: the data zero-filled to whole chunks, then zero chunks up to
/// `padded_chunks_in_segment`. Panics if the data has more chunks than that (a caller bug).
fn segment_leaves(data: &[u8], padded_chunks_in_segment: usize) -> Vec<H256> {
    let data_chunks = data.len().div_ceil(CHUNK_BYTES);
    assert!(
        data_chunks <= padded_chunks_in_segment,
        "segment data ({} bytes) exceeds its {padded_chunks_in_segment} padded chunks",
        data.len()
    );
    let mut leaves = vec![zero_hash(0); padded_chunks_in_segment];
    let whole = data.len() / CHUNK_BYTES;
    hash_chunks(&data[..whole * CHUNK_BYTES], &mut leaves[..whole]);
    if whole < data_chunks {
        let mut last = [0u8; CHUNK_BYTES];
        let rest = &data[whole * CHUNK_BYTES..];
        last[..rest.len()].copy_from_slice(rest);
        leaves[whole] = keccak256(&last);
    }
    leaves
}

/// Root of one segment: `data` zero-filled to whole chunks, then zero chunks up to
/// `padded_chunks_in_segment` (1024, or fewer for a partial last segment), carry-up tree.
/// Panics if `data` holds more than `padded_chunks_in_segment` chunks (a caller bug).
pub fn segment_root(data: &[u8], padded_chunks_in_segment: usize) -> H256 {
    carry_up_root(segment_leaves(data, padded_chunks_in_segment))
}

/// Proof of chunk `chunk` inside one segment, from the segment's bytes: (sibling, running node
/// is left) bottom-up up to the segment root. Panics if `chunk` is not below
/// `padded_chunks_in_segment` or the data is too long (caller bugs).
pub fn segment_chunk_proof(
    data: &[u8],
    padded_chunks_in_segment: usize,
    chunk: usize,
) -> Vec<(H256, bool)> {
    assert!(
        chunk < padded_chunks_in_segment,
        "chunk {chunk} outside the segment"
    );
    let levels = carry_up_levels(segment_leaves(data, padded_chunks_in_segment));
    carry_up_proof(&levels, chunk)
}

/// The file tree from the segment level up, with the submission nodes inside the last segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileTree {
    layout: FileLayout,
    /// `levels[0]` holds one root per padded segment; the last level holds the file root.
    levels: Vec<Vec<H256>>,
    /// Submission nodes lower than a segment (they lie in the partial last segment); `None`
    /// when the tree was built from segment roots alone and the last segment is partial.
    tail_nodes: Option<Vec<SubmissionNode>>,
}

impl FileTree {
    /// The tree of a whole file in memory. Size 0 is [`MerkleError::EmptyFile`].
    pub fn from_bytes(data: &[u8]) -> Result<FileTree, MerkleError> {
        let mut builder = FileTree::builder(data.len() as u64)?;
        for segment in data.chunks(SEGMENT_BYTES) {
            builder.push_segment(segment)?;
        }
        builder.finish()
    }

    /// A streaming builder: push the file's data segments in order, then `finish`.
    pub fn builder(size_bytes: u64) -> Result<FileTreeBuilder, MerkleError> {
        let layout = FileLayout::new(size_bytes)?;
        Ok(FileTreeBuilder {
            layout,
            roots: Vec::new(),
            tail_nodes: Vec::new(),
        })
    }

    /// The tree from segment roots: one per data segment (`layout.data_segments`), or one per
    /// padded segment (then those wholly in padding must be zero roots). If the last segment is
    /// partial (files up to 4 MiB), the submission nodes inside it are unknown: use
    /// [`FileTree::try_nodes`], or build from bytes when nodes are needed.
    pub fn from_segment_roots(size_bytes: u64, roots: Vec<H256>) -> Result<FileTree, MerkleError> {
        let layout = FileLayout::new(size_bytes)?;
        let found = roots.len() as u64;
        let mut roots = roots;
        if found == layout.padded_segments {
            for segment in layout.data_segments..layout.padded_segments {
                let expected = zero_root(layout.segment_padded_chunks(segment));
                if roots[segment as usize] != expected {
                    return Err(MerkleError::PaddingSegmentNotZero {
                        segment: SegmentIndex(segment),
                    });
                }
            }
        } else if found == layout.data_segments {
            append_padding_roots(&layout, &mut roots);
        } else {
            return Err(MerkleError::SegmentCount {
                size_bytes,
                expected: layout.data_segments,
                found,
            });
        }
        let tail_nodes = (layout.padded_chunks.is_multiple_of(SEGMENT_CHUNKS_U64)).then(Vec::new);
        Ok(FileTree {
            layout,
            levels: carry_up_levels(roots),
            tail_nodes,
        })
    }

    pub fn root(&self) -> H256 {
        self.levels
            .last()
            .and_then(|level| level.first())
            .copied()
            .unwrap_or(H256::ZERO)
    }

    pub fn size_bytes(&self) -> u64 {
        self.layout.size_bytes
    }

    pub fn layout(&self) -> &FileLayout {
        &self.layout
    }

    /// Roots of the data segments (those a client uploads), in order.
    pub fn segment_roots(&self) -> &[H256] {
        &self.levels[0][..self.layout.data_segments as usize]
    }

    /// Submission nodes, heights strictly decreasing. Panics for a tree built by
    /// [`FileTree::from_segment_roots`] whose last segment is partial; see [`FileTree::try_nodes`].
    pub fn nodes(&self) -> Vec<SubmissionNode> {
        self.try_nodes()
            .expect("tail nodes known: tree built from bytes or with whole segments")
    }

    /// Submission nodes, heights strictly decreasing, or `TailNodesUnknown`.
    pub fn try_nodes(&self) -> Result<Vec<SubmissionNode>, MerkleError> {
        let tail = self
            .tail_nodes
            .as_ref()
            .ok_or(MerkleError::TailNodesUnknown)?;
        let mut nodes = Vec::new();
        let mut first_segment = 0u64;
        for height in node_heights(self.layout.padded_chunks) {
            if height < SEGMENT_HEIGHT {
                break;
            }
            let level = (height - SEGMENT_HEIGHT) as usize;
            let root = self.levels[level][(first_segment >> level) as usize];
            nodes.push(SubmissionNode {
                height: u64::from(height),
                root,
            });
            first_segment += 1u64 << level;
        }
        nodes.extend_from_slice(tail);
        Ok(nodes)
    }

    /// The proof of segment `segment` up to the file root, as the SDK's `proofAt` gives it.
    pub fn proof(&self, segment: SegmentIndex) -> Result<Proof, MerkleError> {
        let segments = self.layout.padded_segments;
        if segment.0 >= segments {
            return Err(MerkleError::IndexOutOfRange { segment, segments });
        }
        let root = self.root();
        if segments == 1 {
            return Ok(Proof {
                lemma: vec![root],
                path: vec![],
            });
        }
        let steps = carry_up_proof(&self.levels, segment.0 as usize);
        let mut lemma = Vec::with_capacity(steps.len() + 2);
        lemma.push(self.levels[0][segment.0 as usize]);
        lemma.extend(steps.iter().map(|(sibling, _)| *sibling));
        lemma.push(root);
        Ok(Proof {
            lemma,
            path: steps.iter().map(|(_, is_left)| *is_left).collect(),
        })
    }

    /// Proof of segment `segment` as (sibling, running node is left) steps, bottom-up.
    pub fn proof_steps(&self, segment: SegmentIndex) -> Result<Vec<(H256, bool)>, MerkleError> {
        let segments = self.layout.padded_segments;
        if segment.0 >= segments {
            return Err(MerkleError::IndexOutOfRange { segment, segments });
        }
        Ok(carry_up_proof(&self.levels, segment.0 as usize))
    }
}

/// Fills in the roots of segments wholly in padding (never uploaded, all zero chunks).
fn append_padding_roots(layout: &FileLayout, roots: &mut Vec<H256>) {
    for segment in layout.data_segments..layout.padded_segments {
        roots.push(zero_root(layout.segment_padded_chunks(segment)));
    }
}

/// Streaming construction of a [`FileTree`]: segments in order, each a full 256 KiB except the
/// last data segment, which holds the rest of the file (optionally zero-filled to whole chunks).
#[derive(Debug)]
pub struct FileTreeBuilder {
    layout: FileLayout,
    roots: Vec<H256>,
    tail_nodes: Vec<SubmissionNode>,
}

impl FileTreeBuilder {
    pub fn layout(&self) -> &FileLayout {
        &self.layout
    }

    /// Segments pushed so far.
    pub fn pushed(&self) -> u64 {
        self.roots.len() as u64
    }

    pub fn push_segment(&mut self, data: &[u8]) -> Result<(), MerkleError> {
        let index = self.roots.len() as u64;
        let segment = SegmentIndex(index);
        if index >= self.layout.data_segments {
            return Err(MerkleError::TooManySegments {
                segments: self.layout.data_segments,
            });
        }
        let data_bytes = self.layout.segment_data_bytes(index);
        let upload_bytes = self.layout.segment_upload_bytes(index);
        let found_bytes = data.len() as u64;
        if found_bytes != data_bytes && found_bytes != upload_bytes {
            return Err(MerkleError::SegmentLength {
                segment,
                expected_bytes: data_bytes,
                found_bytes,
            });
        }
        if let Some(offset) = data[data_bytes as usize..]
            .iter()
            .position(|byte| *byte != 0)
        {
            return Err(MerkleError::TailNotZero {
                segment,
                offset: data_bytes + offset as u64,
            });
        }
        let padded = self.layout.segment_padded_chunks(index) as usize;
        let leaves = segment_leaves(data, padded);
        if padded < SEGMENT_CHUNKS {
            // A partial segment is the file's last; the submission nodes below segment height
            // are subtrees of it, read off its carry-up levels.
            let levels = carry_up_levels(leaves);
            let mut first_chunk = 0usize;
            for height in node_heights(padded as u64) {
                let root = levels[height as usize][first_chunk >> height];
                self.tail_nodes.push(SubmissionNode {
                    height: u64::from(height),
                    root,
                });
                first_chunk += 1usize << height;
            }
            let root = levels.last().and_then(|level| level.first()).copied();
            self.roots
                .push(root.expect("a partial segment has at least one chunk"));
        } else {
            self.roots.push(carry_up_root(leaves));
        }
        Ok(())
    }

    pub fn finish(self) -> Result<FileTree, MerkleError> {
        let FileTreeBuilder {
            layout,
            mut roots,
            tail_nodes,
        } = self;
        if (roots.len() as u64) < layout.data_segments {
            return Err(MerkleError::MissingSegments {
                pushed: roots.len() as u64,
                segments: layout.data_segments,
            });
        }
        append_padding_roots(&layout, &mut roots);
        Ok(FileTree {
            layout,
            levels: carry_up_levels(roots),
            tail_nodes: Some(tail_nodes),
        })
    }
}

/// Verifies a client-supplied segment against the file root and returns the segment root.
///
/// Checks, in order: the index names a data segment; `data` is exactly the segment's real data
/// rounded up to whole chunks (as the SDK sends it) and zero past the end of the file; the
/// proof's shape (lemma = path + 2, or `[root]` alone for a one-segment file) and its path
/// length for this position; the leaf position recovered from the path; the lemma's leaf and
/// root; the hash chain up to the file root; and the rear-padding rule: every sibling wholly
/// past the real data must be the zero subtree of the chunks it covers.
pub fn verify_segment(
    file_root: &H256,
    file_size_bytes: u64,
    segment: SegmentIndex,
    data: &[u8],
    proof: &Proof,
) -> Result<H256, ProofError> {
    let layout = FileLayout::new(file_size_bytes).map_err(|_| ProofError::EmptyFile)?;
    if segment.0 >= layout.data_segments {
        return Err(ProofError::IndexOutOfRange {
            segment,
            segments: layout.data_segments,
        });
    }
    let data_bytes = layout.segment_data_bytes(segment.0);
    let expected_bytes = layout.segment_upload_bytes(segment.0);
    if data.len() as u64 != expected_bytes {
        return Err(ProofError::DataLength {
            segment,
            expected_bytes,
            found_bytes: data.len() as u64,
        });
    }
    if let Some(offset) = data[data_bytes as usize..]
        .iter()
        .position(|byte| *byte != 0)
    {
        return Err(ProofError::TailNotZero {
            segment,
            offset: data_bytes + offset as u64,
        });
    }
    let path_len = proof.path.len();
    let lemma_len = proof.lemma.len();
    let shape_ok = if path_len == 0 {
        lemma_len == 1
    } else {
        lemma_len == path_len + 2
    };
    if !shape_ok {
        return Err(ProofError::LemmaLength {
            lemma_len,
            path_len,
        });
    }
    let expected_path = carry_up_path_length(layout.padded_segments, segment.0);
    if path_len != expected_path {
        return Err(ProofError::PathLength {
            segment,
            expected: expected_path,
            found: path_len,
        });
    }

    // Walk top-down: each step splits the current range of segments into a left part of the
    // largest power of two below its size and the rest. The path says which side the running
    // node takes; the other side is the sibling, whose chunk range the padding rule checks.
    let mut first_segment = 0u64;
    let mut range_segments = layout.padded_segments;
    for (step, is_left) in proof.path.iter().enumerate().rev() {
        // The path length matched this position, so every step here splits a range of ≥ 2.
        let left_segments = largest_power_of_two_below(range_segments);
        let sibling = proof.lemma[step + 1];
        let (sibling_first, sibling_end) = if *is_left {
            let sibling = (
                first_segment + left_segments,
                first_segment + range_segments,
            );
            range_segments = left_segments;
            sibling
        } else {
            let sibling = (first_segment, first_segment + left_segments);
            first_segment += left_segments;
            range_segments -= left_segments;
            sibling
        };
        if sibling_first >= layout.data_segments {
            let first_chunk = sibling_first * SEGMENT_CHUNKS_U64;
            let end_chunk = (sibling_end * SEGMENT_CHUNKS_U64).min(layout.padded_chunks);
            let chunks = end_chunk - first_chunk;
            if sibling != zero_root(chunks) {
                return Err(ProofError::PaddingNotZero {
                    height: chunks.next_power_of_two().trailing_zeros(),
                    first_chunk,
                    end_chunk,
                });
            }
        }
    }
    if first_segment != segment.0 {
        return Err(ProofError::PositionMismatch {
            segment,
            found: SegmentIndex(first_segment),
        });
    }

    let padded = layout.segment_padded_chunks(segment.0) as usize;
    let computed_leaf = segment_root(data, padded);
    let claimed_leaf = proof.lemma[0];
    if claimed_leaf != computed_leaf {
        return Err(ProofError::LeafMismatch {
            segment,
            claimed: claimed_leaf,
            computed: computed_leaf,
        });
    }
    let claimed_root = proof.lemma[lemma_len - 1];
    if claimed_root != *file_root {
        return Err(ProofError::LemmaRootMismatch {
            expected: *file_root,
            claimed: claimed_root,
        });
    }
    let mut running = computed_leaf;
    for (step, is_left) in proof.path.iter().enumerate() {
        let sibling = &proof.lemma[step + 1];
        running = if *is_left {
            hash_pair(&running, sibling)
        } else {
            hash_pair(sibling, &running)
        };
    }
    if running != *file_root {
        return Err(ProofError::RootMismatch {
            expected: *file_root,
            computed: running,
        });
    }
    Ok(computed_leaf)
}

/// Largest power of two strictly below `count` (`count >= 2`): the left part of a carry-up tree
/// over `count` leaves.
fn largest_power_of_two_below(count: u64) -> u64 {
    debug_assert!(count >= 2);
    1u64 << (63 - (count - 1).leading_zeros())
}

/// Number of proof steps for leaf `index` in a carry-up tree over `leaves` leaves.
pub fn carry_up_path_length(leaves: u64, index: u64) -> usize {
    let mut steps = 0;
    let mut first = 0u64;
    let mut count = leaves;
    while count > 1 {
        let left = largest_power_of_two_below(count);
        if index < first + left {
            count = left;
        } else {
            first += left;
            count -= left;
        }
        steps += 1;
    }
    steps
}
