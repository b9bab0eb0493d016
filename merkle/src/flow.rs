//! The 0G flow log: where submissions land, the flow root, and proofs up to it.
//!
//! Facts this follows (0G's `Flow.sol` / `FlowTreeLib.sol` and the storage node's
//! `append_merkle`): the flow is a complete binary tree of height `ceil(log2(length))` over
//! sectors. Sector 0 holds the identifier, whose leaf hash is the all-zero `bytes32(0)` (not
//! the hash of a zero chunk), so data starts at 1. Each submission node of height h starts at
//! the next multiple of 2^h; a submission whose first node is not segment-aligned and whose
//! `sum(2^h)` sectors would cross a 1024-sector boundary first jumps to that boundary. Gaps are
//! zero chunks (leaf `Z0`), and everything past the current length is zero too, so an unpaired
//! right node is hashed with the zero subtree `Zh` of its height (unlike the file tree, which
//! carries it up).
//!
//! Key decision: the log stores only what is known from submissions alone — the identifier,
//! the padding runs (as aligned zero subtrees), the submission nodes ("pieces"), and every
//! complete node above them — plus one partial node per level on the right edge. An append is
//! O(height) hashes, memory grows with the number of pieces (not the bytes), and any subtree
//! not strictly inside a submission node can be proved. Proofs below a submission node come
//! from the file's own tree ([`sector_proof`], [`file_segment_proof`]).

use crate::file::{FileTree, Proof, SubmissionNode, segment_chunk_proof, zero_hash};
use crate::keccak::{hash_chunks, hash_pair, hash_pairs, keccak256};
use serde::{Deserialize, Serialize};
use types::{CHUNK_BYTES, H256, SEGMENT_CHUNKS, SEGMENT_HEIGHT, SectorIndex, SegmentIndex};

const SEGMENT_SECTORS: u64 = SEGMENT_CHUNKS as u64;

/// The flow never grows past 2^63 sectors (2^71 bytes): keeps every shift in `u64`.
pub const MAX_FLOW_HEIGHT: u32 = 63;
/// The contract's limit on a submission node's height (`MAX_DEPTH`).
pub const MAX_NODE_HEIGHT: u64 = 63;

/// The leaf hash of sector 0: the Flow contract initializes its tree with `bytes32(0)`.
pub const IDENTIFIER: H256 = H256::ZERO;

/// Where a submission landed in the flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowPlacement {
    /// The first node's position: the file's first sector.
    pub start: SectorIndex,
    /// `start` plus the padded length (sum of 2^h): the flow length after this submission.
    pub end: SectorIndex,
    /// Zero sectors inserted before `start` (alignment and the segment-boundary rule).
    pub padding_before: u64,
}

/// What a known subtree of the flow holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PieceKind {
    Identifier,
    Padding,
    /// A submission node; `node` is its index in the submission's node list.
    Node {
        node: u32,
    },
}

/// A known aligned subtree of the flow: the identifier, a run of zero padding, or a submission
/// node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowPiece {
    pub start: SectorIndex,
    pub height: u32,
    pub kind: PieceKind,
}

impl FlowPiece {
    pub fn end(&self) -> SectorIndex {
        SectorIndex(self.start.0 + (1u64 << self.height))
    }
}

/// Why a flow operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    #[error("a submission needs at least one node")]
    NoNodes,
    #[error("node {node} has height {height}; the flow allows at most {max}")]
    NodeTooHigh { node: usize, height: u64, max: u64 },
    #[error(
        "node heights must strictly decrease: node {node} has height {height} after {previous}"
    )]
    HeightsNotDecreasing {
        node: usize,
        height: u64,
        previous: u64,
    },
    #[error("the flow would grow past 2^{max_height} sectors")]
    FlowFull { max_height: u32 },
    #[error("subtree at {start} of height {height} is not aligned to its size")]
    Unaligned { start: SectorIndex, height: u32 },
    #[error("height {height} is above the flow's maximum {max}")]
    HeightTooLarge { height: u32, max: u32 },
    #[error(
        "subtree at {start} of height {height} lies inside the submission node at {node_start} of height {node_height}; its proof starts in the file's tree"
    )]
    InsideNode {
        start: SectorIndex,
        height: u32,
        node_start: SectorIndex,
        node_height: u32,
    },
    #[error("sector {sector} is past the flow length {length}")]
    SectorOutOfRange {
        sector: SectorIndex,
        length: SectorIndex,
    },
    #[error(
        "sector {sector} holds submitted data; prove it with `sector_proof` and the file's tree"
    )]
    SectorInData { sector: SectorIndex },
    #[error(
        "sector {sector} is not in the file placed at {file_start} with {padded_chunks} padded chunks"
    )]
    SectorNotInFile {
        sector: SectorIndex,
        file_start: SectorIndex,
        padded_chunks: u64,
    },
    #[error("file start {file_start} is not where the flow holds the file's first node")]
    FileNotAtStart { file_start: SectorIndex },
    #[error(
        "segment {segment}: expected at most {max_bytes} bytes of segment data, found {found_bytes}"
    )]
    SegmentData {
        segment: SegmentIndex,
        max_bytes: u64,
        found_bytes: u64,
    },
    #[error("segment {segment} is out of range: the file has {segments} segments")]
    SegmentOutOfRange {
        segment: SegmentIndex,
        segments: u64,
    },
}

/// Start of the first aligned subtree of height `height` at or after `length`
/// (the contract's `nextAlign`).
pub fn next_align(length: u64, height: u32) -> Option<u64> {
    let size = 1u64.checked_shl(height)?;
    length.checked_next_multiple_of(size)
}

/// Where a submission of `nodes` lands in a flow of `length` sectors: the padded start and
/// the zero sectors inserted before it. Heights must be validated by the caller.
fn place(length: u64, nodes: &[SubmissionNode]) -> Result<(u64, u64), FlowError> {
    let full = FlowError::FlowFull {
        max_height: MAX_FLOW_HEIGHT,
    };
    let first_height = nodes.first().ok_or(FlowError::NoNodes)?.height as u32;
    let sectors: u64 = nodes.iter().map(|node| 1u64 << node.height).sum();
    let mut start = next_align(length, first_height).ok_or(full.clone())?;
    let last = start.checked_add(sectors - 1).ok_or(full.clone())?;
    if !start.is_multiple_of(SEGMENT_SECTORS) && start / SEGMENT_SECTORS != last / SEGMENT_SECTORS {
        // The submission would straddle a segment boundary: it starts at the next one.
        let boundary = next_align(start, SEGMENT_HEIGHT).ok_or(full.clone())?;
        start = next_align(boundary, first_height).ok_or(full.clone())?;
    }
    let end = start.checked_add(sectors).ok_or(full.clone())?;
    if end > 1u64 << MAX_FLOW_HEIGHT {
        return Err(full);
    }
    Ok((start, end))
}

/// Validates the shape of a node list: non-empty, heights strictly decreasing and in range.
pub fn check_nodes(nodes: &[SubmissionNode]) -> Result<(), FlowError> {
    if nodes.is_empty() {
        return Err(FlowError::NoNodes);
    }
    for (index, node) in nodes.iter().enumerate() {
        if node.height > MAX_NODE_HEIGHT {
            return Err(FlowError::NodeTooHigh {
                node: index,
                height: node.height,
                max: MAX_NODE_HEIGHT,
            });
        }
        if index > 0 && node.height >= nodes[index - 1].height {
            return Err(FlowError::HeightsNotDecreasing {
                node: index,
                height: node.height,
                previous: nodes[index - 1].height,
            });
        }
    }
    Ok(())
}

/// The flow log, incremental. See the module header for what it stores.
#[derive(Clone, Debug)]
pub struct FlowLog {
    length: u64,
    /// `complete[l]`: (index, hash) of every known node at level l whose range lies wholly
    /// before `length`, in increasing index order.
    complete: Vec<Vec<(u64, H256)>>,
    /// `edge[l]`: the node at level l straddling `length` (index `length >> l`), if any.
    edge: Vec<Option<H256>>,
    /// Pieces in flow order; they tile `[0, length)`.
    pieces: Vec<FlowPiece>,
    root: H256,
}

impl Default for FlowLog {
    fn default() -> Self {
        FlowLog::new()
    }
}

impl FlowLog {
    /// An empty flow: just the identifier at sector 0.
    pub fn new() -> FlowLog {
        let mut flow = FlowLog {
            length: 0,
            complete: Vec::new(),
            edge: Vec::new(),
            pieces: Vec::new(),
            root: IDENTIFIER,
        };
        flow.insert_piece(
            FlowPiece {
                start: SectorIndex(0),
                height: 0,
                kind: PieceKind::Identifier,
            },
            IDENTIFIER,
        );
        flow.length = 1;
        flow.recompute_edge();
        flow
    }

    /// Appends a submission's nodes as the Flow contract does, returning where they landed.
    pub fn append(&mut self, nodes: &[SubmissionNode]) -> Result<FlowPlacement, FlowError> {
        check_nodes(nodes)?;
        let (start, end) = place(self.length, nodes)?;
        let padding_before = start - self.length;
        self.insert_padding(self.length, start);
        let mut position = start;
        for (index, node) in nodes.iter().enumerate() {
            let height = node.height as u32;
            let kind = PieceKind::Node { node: index as u32 };
            self.insert_piece(
                FlowPiece {
                    start: SectorIndex(position),
                    height,
                    kind,
                },
                node.root,
            );
            position += 1u64 << height;
        }
        debug_assert_eq!(position, end);
        self.length = end;
        self.recompute_edge();
        Ok(FlowPlacement {
            start: SectorIndex(start),
            end: SectorIndex(end),
            padding_before,
        })
    }

    /// The flow root: the complete tree of height `ceil(log2(length))`, zero past the end.
    pub fn root(&self) -> H256 {
        self.root
    }

    /// The flow length in sectors (identifier and padding included), as `getFlowContext`
    /// reports it beside the root.
    pub fn length(&self) -> SectorIndex {
        SectorIndex(self.length)
    }

    /// Height of the flow tree: `ceil(log2(length))`.
    pub fn height(&self) -> u32 {
        tree_height(self.length)
    }

    /// The known pieces (identifier, padding runs, submission nodes), in flow order.
    pub fn pieces(&self) -> &[FlowPiece] {
        &self.pieces
    }

    /// The piece holding `sector`, if the sector is below the flow length.
    pub fn piece_at(&self, sector: SectorIndex) -> Option<FlowPiece> {
        if sector.0 >= self.length {
            return None;
        }
        let after = self.pieces.partition_point(|piece| piece.start <= sector);
        after.checked_sub(1).map(|index| self.pieces[index])
    }

    /// The hash of the aligned subtree at (`start`, `height`), if the log knows it.
    pub fn subtree_root(&self, start: SectorIndex, height: u32) -> Result<H256, FlowError> {
        self.check_subtree(start, height)?;
        self.node(height, start.0 >> height)
            .ok_or_else(|| self.inside_error(start, height))
    }

    /// Proof from the aligned subtree at (`start`, `height`) up to the current flow root:
    /// (sibling, running node is left), bottom-up, `flow height - height` steps (none for a
    /// subtree at 0 at least as tall as the flow: it is the whole flow). It must start below
    /// the flow length and must not lie strictly inside a submission node (a submission node
    /// itself, padding, a segment of small submissions, or anything above them is fine); for a
    /// segment inside a node, see [`file_segment_proof`].
    pub fn subtree_proof(
        &self,
        start: SectorIndex,
        height: u32,
    ) -> Result<Vec<(H256, bool)>, FlowError> {
        self.check_subtree(start, height)?;
        let mut index = start.0 >> height;
        if self.node(height, index).is_none() {
            return Err(self.inside_error(start, height));
        }
        let mut steps = Vec::new();
        for level in height..self.height() {
            let sibling = self.node(level, index ^ 1).expect(
                "siblings of a known node are known (pieces are aligned and tile the flow)",
            );
            steps.push((sibling, index.is_multiple_of(2)));
            index >>= 1;
        }
        Ok(steps)
    }

    /// The full 0G proof of a sector the log knows byte for byte: the identifier or padding.
    pub fn known_sector_proof(&self, sector: SectorIndex) -> Result<Proof, FlowError> {
        let piece = self.piece_at(sector).ok_or(FlowError::SectorOutOfRange {
            sector,
            length: self.length(),
        })?;
        let leaf = match piece.kind {
            PieceKind::Identifier => IDENTIFIER,
            PieceKind::Padding => zero_hash(0),
            PieceKind::Node { .. } => return Err(FlowError::SectorInData { sector }),
        };
        // Inside a zero run every sibling below the piece is the zero subtree of its level.
        let offset = sector.0 - piece.start.0;
        let mut steps: Vec<(H256, bool)> = (0..piece.height)
            .map(|level| (zero_hash(level), (offset >> level).is_multiple_of(2)))
            .collect();
        steps.extend(self.subtree_proof(piece.start, piece.height)?);
        Ok(assemble_proof(leaf, &steps, self.root))
    }

    fn check_subtree(&self, start: SectorIndex, height: u32) -> Result<(), FlowError> {
        check_aligned(start, height)?;
        if start.0 >= self.length {
            return Err(FlowError::SectorOutOfRange {
                sector: start,
                length: self.length(),
            });
        }
        Ok(())
    }

    fn inside_error(&self, start: SectorIndex, height: u32) -> FlowError {
        match self.piece_at(start) {
            Some(piece) if piece.height > height => FlowError::InsideNode {
                start,
                height,
                node_start: piece.start,
                node_height: piece.height,
            },
            // Unreachable for aligned input (every other node is known); say what we can.
            _ => FlowError::Unaligned { start, height },
        }
    }

    /// The node at (level, index): stored if complete, zero past the end, the edge node if it
    /// straddles the end, `None` if it is strictly inside a piece.
    fn node(&self, level: u32, index: u64) -> Option<H256> {
        if level > self.height() && index == 0 {
            // A subtree taller than the flow (a first segment while the flow is shorter than
            // one) is the flow itself, as in 0G's node, whose first segment tree is not padded.
            return Some(self.root);
        }
        let first = index
            .checked_shl(level)
            .filter(|first| first >> level == index)?;
        if first >= self.length {
            return Some(zero_hash(level));
        }
        let size = 1u64 << level;
        if self.length - first < size {
            return self.edge.get(level as usize).copied().flatten();
        }
        let stored = self.complete.get(level as usize)?;
        stored
            .binary_search_by_key(&index, |(stored_index, _)| *stored_index)
            .ok()
            .map(|found| stored[found].1)
    }

    /// Fills `[from, to)` with aligned zero subtrees, largest first.
    fn insert_padding(&mut self, from: u64, to: u64) {
        let mut position = from;
        while position < to {
            let mut height = position.trailing_zeros().min(MAX_FLOW_HEIGHT);
            while position + (1u64 << height) > to {
                height -= 1;
            }
            let piece = FlowPiece {
                start: SectorIndex(position),
                height,
                kind: PieceKind::Padding,
            };
            self.insert_piece(piece, zero_hash(height));
            position += 1u64 << height;
        }
    }

    /// Stores a piece and every node above it that it completes.
    fn insert_piece(&mut self, piece: FlowPiece, hash: H256) {
        self.pieces.push(piece);
        let mut level = piece.height as usize;
        let mut index = piece.start.0 >> piece.height;
        let mut hash = hash;
        loop {
            if self.complete.len() <= level {
                self.complete.resize_with(level + 1, Vec::new);
            }
            let stored = &mut self.complete[level];
            debug_assert!(
                stored.last().is_none_or(|(last, _)| *last < index),
                "pieces arrive in flow order"
            );
            stored.push((index, hash));
            if index.is_multiple_of(2) {
                break;
            }
            let left = match stored.len().checked_sub(2).map(|at| stored[at]) {
                Some((left_index, left_hash)) if left_index == index - 1 => left_hash,
                _ => break,
            };
            hash = hash_pair(&left, &hash);
            index >>= 1;
            level += 1;
        }
    }

    /// Recomputes the right-edge nodes and the root after the length changed.
    fn recompute_edge(&mut self) {
        let height = self.height();
        self.edge = vec![None; height as usize + 1];
        for level in 1..=height {
            if self.length.is_multiple_of(1u64 << level) {
                continue;
            }
            let index = self.length >> level;
            let left = self
                .node(level - 1, index * 2)
                .expect("left child of the edge node is known");
            let right = self
                .node(level - 1, index * 2 + 1)
                .expect("right child of the edge node is known");
            self.edge[level as usize] = Some(hash_pair(&left, &right));
        }
        self.root = self.node(height, 0).expect("the root is known");
    }
}

fn tree_height(length: u64) -> u32 {
    if length <= 1 {
        0
    } else {
        (length - 1).ilog2() + 1
    }
}

fn check_aligned(start: SectorIndex, height: u32) -> Result<(), FlowError> {
    if height > MAX_FLOW_HEIGHT {
        return Err(FlowError::HeightTooLarge {
            height,
            max: MAX_FLOW_HEIGHT,
        });
    }
    if !start.0.is_multiple_of(1u64 << height) {
        return Err(FlowError::Unaligned { start, height });
    }
    Ok(())
}

/// `lemma = [leaf, siblings…, root]`, or `[root]` when there are no siblings.
fn assemble_proof(leaf: H256, steps: &[(H256, bool)], root: H256) -> Proof {
    if steps.is_empty() {
        return Proof {
            lemma: vec![root],
            path: vec![],
        };
    }
    let mut lemma = Vec::with_capacity(steps.len() + 2);
    lemma.push(leaf);
    lemma.extend(steps.iter().map(|(sibling, _)| *sibling));
    lemma.push(root);
    Proof {
        lemma,
        path: steps.iter().map(|(_, is_left)| *is_left).collect(),
    }
}

/// The submission node of `file` (placed at `file_start`) that holds file chunk `chunk`:
/// (node start in the flow, height, chunk offset of the node in the file).
fn node_of_chunk(
    file: &FileTree,
    file_start: SectorIndex,
    chunk: u64,
) -> Option<(SectorIndex, u32, u64)> {
    let mut offset = 0u64;
    for height in crate::file::node_heights(file.layout().padded_chunks) {
        let size = 1u64 << height;
        if chunk < offset + size {
            return Some((SectorIndex(file_start.0 + offset), height, offset));
        }
        offset += size;
    }
    None
}

/// Checks that the flow holds `file`'s first node at `file_start`.
fn check_file_start(
    flow: &FlowLog,
    file: &FileTree,
    file_start: SectorIndex,
) -> Result<(), FlowError> {
    let first_height = crate::file::node_heights(file.layout().padded_chunks)
        .first()
        .copied()
        .ok_or(FlowError::FileNotAtStart { file_start })?;
    match flow.piece_at(file_start) {
        Some(piece)
            if piece.start == file_start
                && piece.height == first_height
                && piece.kind == PieceKind::Node { node: 0 } =>
        {
            Ok(())
        }
        _ => Err(FlowError::FileNotAtStart { file_start }),
    }
}

/// Proof of file segment `segment` (the file placed at `file_start`) up to the flow root: for
/// a segment inside a submission node of height ≥ 10, the file tree's steps inside the node,
/// then the flow's steps above it (for a node of height 10 just `subtree_proof`). A partial
/// last segment made of smaller nodes shares its flow segment with others: the proof is that
/// flow segment's.
pub fn file_segment_proof(
    flow: &FlowLog,
    file: &FileTree,
    file_start: SectorIndex,
    segment: SegmentIndex,
) -> Result<Vec<(H256, bool)>, FlowError> {
    check_file_start(flow, file, file_start)?;
    let layout = file.layout();
    if segment.0 >= layout.padded_segments {
        return Err(FlowError::SegmentOutOfRange {
            segment,
            segments: layout.padded_segments,
        });
    }
    let chunk = segment.0 * SEGMENT_SECTORS;
    let (node_start, node_height, _) =
        node_of_chunk(file, file_start, chunk).ok_or(FlowError::SegmentOutOfRange {
            segment,
            segments: layout.padded_segments,
        })?;
    if node_height < SEGMENT_HEIGHT {
        // The segment is the file's partial last one and holds only small nodes, so it shares
        // its flow segment with padding or other files: that flow segment is what gets proved.
        let flow_segment = SectorIndex((file_start.0 + chunk) / SEGMENT_SECTORS * SEGMENT_SECTORS);
        return flow.subtree_proof(flow_segment, SEGMENT_HEIGHT);
    }
    let file_steps = file
        .proof_steps(segment)
        .map_err(|_| FlowError::SegmentOutOfRange {
            segment,
            segments: layout.padded_segments,
        })?;
    let inside = (node_height - SEGMENT_HEIGHT) as usize;
    let mut steps: Vec<(H256, bool)> = file_steps[..inside].to_vec();
    steps.extend(flow.subtree_proof(node_start, node_height)?);
    Ok(steps)
}

/// The 0G `FlowProof` for one sector of a file: in-node steps computed from the bytes of the
/// file segment holding the sector (`segment_data`: its real data, optionally zero-filled to
/// whole chunks or to the full segment), the file tree between segment and submission node,
/// and the flow above the node. `lemma = [keccak(chunk), siblings…, flow root]`.
pub fn sector_proof(
    flow: &FlowLog,
    file: &FileTree,
    file_start: SectorIndex,
    segment_data: &[u8],
    sector: SectorIndex,
) -> Result<Proof, FlowError> {
    check_file_start(flow, file, file_start)?;
    let layout = *file.layout();
    let not_in_file = FlowError::SectorNotInFile {
        sector,
        file_start,
        padded_chunks: layout.padded_chunks,
    };
    let chunk = sector
        .0
        .checked_sub(file_start.0)
        .ok_or(not_in_file.clone())?;
    let (node_start, node_height, node_offset) =
        node_of_chunk(file, file_start, chunk).ok_or(not_in_file)?;
    let segment = SegmentIndex(chunk / SEGMENT_SECTORS);
    let segment_chunks = layout.segment_padded_chunks(segment.0);
    let max_bytes = segment_chunks * CHUNK_BYTES as u64;
    if segment_data.len() as u64 > max_bytes {
        return Err(FlowError::SegmentData {
            segment,
            max_bytes,
            found_bytes: segment_data.len() as u64,
        });
    }
    let chunk_in_segment = (chunk % SEGMENT_SECTORS) as usize;
    let chunk_bytes = chunk_bytes(segment_data, chunk_in_segment);
    let leaf = keccak256(&chunk_bytes);

    let steps = if node_height >= SEGMENT_HEIGHT {
        let mut steps =
            segment_chunk_proof(segment_data, segment_chunks as usize, chunk_in_segment);
        steps.extend(file_segment_proof(flow, file, file_start, segment)?);
        steps
    } else {
        // A node below segment height lies in the file's last segment: prove inside the node
        // from its own chunks, then up the flow from the node.
        let node_in_segment = (node_offset % SEGMENT_SECTORS) as usize;
        let node_chunks = 1usize << node_height;
        let node_bytes = padded_range(segment_data, node_in_segment, node_chunks);
        let mut steps = complete_tree_proof(&node_bytes, chunk_in_segment - node_in_segment);
        steps.extend(flow.subtree_proof(node_start, node_height)?);
        steps
    };
    Ok(assemble_proof(leaf, &steps, flow.root()))
}

/// Chunk `index` of `data`, zero-filled.
fn chunk_bytes(data: &[u8], index: usize) -> [u8; CHUNK_BYTES] {
    let mut chunk = [0u8; CHUNK_BYTES];
    let start = (index * CHUNK_BYTES).min(data.len());
    let end = ((index + 1) * CHUNK_BYTES).min(data.len());
    chunk[..end - start].copy_from_slice(&data[start..end]);
    chunk
}

/// Chunks `[first, first + count)` of `data`, zero-filled.
fn padded_range(data: &[u8], first: usize, count: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; count * CHUNK_BYTES];
    let start = (first * CHUNK_BYTES).min(data.len());
    let end = ((first + count) * CHUNK_BYTES).min(data.len());
    bytes[..end - start].copy_from_slice(&data[start..end]);
    bytes
}

/// Proof of chunk `index` in the complete tree over `bytes` (a power-of-two number of chunks).
fn complete_tree_proof(bytes: &[u8], index: usize) -> Vec<(H256, bool)> {
    let mut level = vec![H256::ZERO; bytes.len() / CHUNK_BYTES];
    hash_chunks(bytes, &mut level);
    let mut steps = Vec::new();
    let mut position = index;
    while level.len() > 1 {
        steps.push((level[position ^ 1], position.is_multiple_of(2)));
        let mut next = vec![H256::ZERO; level.len() / 2];
        hash_pairs(&level, &mut next);
        level = next;
        position /= 2;
    }
    steps
}

/// Checks a 0G flow proof of `leaf` at `sector` against `root` for a flow of `length`
/// sectors: shape, position from the path (complete tree), and the hash chain.
pub fn verify_flow_proof(
    root: &H256,
    length: SectorIndex,
    sector: SectorIndex,
    leaf: &H256,
    proof: &Proof,
) -> bool {
    let height = tree_height(length.0) as usize;
    if proof.path.len() != height {
        return false;
    }
    if height == 0 {
        return proof.lemma.len() == 1 && proof.lemma[0] == *root && leaf == root && sector.0 == 0;
    }
    if proof.lemma.len() != height + 2
        || proof.lemma[0] != *leaf
        || proof.lemma[height + 1] != *root
    {
        return false;
    }
    let mut position = 0u64;
    let mut running = *leaf;
    for (step, is_left) in proof.path.iter().enumerate() {
        let sibling = &proof.lemma[step + 1];
        if *is_left {
            running = hash_pair(&running, sibling);
        } else {
            position |= 1u64 << step;
            running = hash_pair(sibling, &running);
        }
    }
    position == sector.0 && running == *root
}
