//! `merkle::flow`: placement worked by hand, the flow root against a naive recomputation over
//! an explicit leaf array, and every kind of sector proof verified against that array.

use merkle::file::{FileTree, SubmissionNode, padded_chunks, zero_hash};
use merkle::flow::{
    FlowError, FlowLog, FlowPlacement, IDENTIFIER, PieceKind, file_segment_proof, sector_proof,
    verify_flow_proof,
};
use merkle::keccak::{hash_pair, keccak256};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use types::{H256, SEGMENT_BYTES, SectorIndex, SegmentIndex};

/// Submission nodes for `chunks` data chunks with made-up roots (placement ignores roots).
fn nodes_for_chunks(chunks: u64) -> Vec<SubmissionNode> {
    merkle::file::node_heights(padded_chunks(chunks))
        .into_iter()
        .map(|height| SubmissionNode {
            height: u64::from(height),
            root: H256([height as u8 + 1; 32]),
        })
        .collect()
}

fn placement(start: u64, end: u64, padding_before: u64) -> FlowPlacement {
    FlowPlacement {
        start: SectorIndex(start),
        end: SectorIndex(end),
        padding_before,
    }
}

#[test]
fn placement_worked_by_hand() {
    let mut flow = FlowLog::new();
    assert_eq!(flow.length(), SectorIndex(1));
    assert_eq!(flow.root(), IDENTIFIER);
    // (chunks, expected placement). Sector 0 is the identifier.
    let cases = [
        // 1 chunk: height 0 right after the identifier.
        (1, placement(1, 2, 0)),
        // 1023 chunks pad to 1024 = one node of height 10, aligned to 1024.
        (1023, placement(1024, 2048, 1022)),
        (1024, placement(2048, 3072, 0)),
        // 1025 chunks pad to 1152 = nodes 10 and 7.
        (1025, placement(3072, 4224, 0)),
        (1, placement(4224, 4225, 0)),
        // 17 chunks pad to 18 = nodes 4 and 1: aligned to 16 within the same segment.
        (17, placement(4240, 4258, 15)),
        // 600 chunks pad to 640 = nodes 9 and 7: aligned to 512 it would start at 4608 and
        // cross into segment 5, so it starts at the boundary 5120 instead.
        (600, placement(5120, 5760, 862)),
        // 3 chunks at 5760 fit in segment 5.
        (3, placement(5760, 5763, 0)),
    ];
    for (chunks, expected) in cases {
        let placed = flow.append(&nodes_for_chunks(chunks)).expect("valid nodes");
        assert_eq!(placed, expected, "{chunks} chunks");
        assert_eq!(flow.length(), expected.end);
    }
}

#[test]
fn append_rejects_bad_node_lists() {
    let mut flow = FlowLog::new();
    assert_eq!(flow.append(&[]), Err(FlowError::NoNodes));
    let node = |height| SubmissionNode {
        height,
        root: H256([1; 32]),
    };
    assert_eq!(
        flow.append(&[node(3), node(3)]),
        Err(FlowError::HeightsNotDecreasing {
            node: 1,
            height: 3,
            previous: 3
        })
    );
    assert_eq!(
        flow.append(&[node(64)]),
        Err(FlowError::NodeTooHigh {
            node: 0,
            height: 64,
            max: 63
        })
    );
    assert_eq!(
        flow.append(&[node(63)]),
        Err(FlowError::FlowFull { max_height: 63 })
    );
    // Refused appends leave the flow unchanged.
    assert_eq!(flow.length(), SectorIndex(1));
    assert_eq!(flow.root(), IDENTIFIER);
}

#[test]
fn small_flow_roots_by_hand() {
    let mut flow = FlowLog::new();
    let leaf = H256([5; 32]);
    flow.append(&[SubmissionNode {
        height: 0,
        root: leaf,
    }])
    .expect("append");
    // Two sectors: identifier and the leaf.
    assert_eq!(flow.root(), hash_pair(&IDENTIFIER, &leaf));
    let second = H256([6; 32]);
    flow.append(&[SubmissionNode {
        height: 0,
        root: second,
    }])
    .expect("append");
    // Three sectors in a tree of height 2: the fourth is a zero chunk.
    let expected = hash_pair(
        &hash_pair(&IDENTIFIER, &leaf),
        &hash_pair(&second, &zero_hash(0)),
    );
    assert_eq!(flow.root(), expected);
    // A node of height 1 aligns to 4, so sector 3 becomes padding.
    let pair = H256([7; 32]);
    flow.append(&[SubmissionNode {
        height: 1,
        root: pair,
    }])
    .expect("append");
    let expected = hash_pair(
        &hash_pair(
            &hash_pair(&IDENTIFIER, &leaf),
            &hash_pair(&second, &zero_hash(0)),
        ),
        &hash_pair(&pair, &zero_hash(1)),
    );
    assert_eq!(flow.root(), expected);
    assert_eq!(flow.length(), SectorIndex(6));
}

/// The flow as an explicit leaf array, hashed in full.
struct NaiveFlow {
    leaves: Vec<H256>,
}

impl NaiveFlow {
    fn root(&self) -> H256 {
        let mut level = self.leaves.clone();
        let size = level.len().next_power_of_two();
        level.resize(size, zero_hash(0));
        while level.len() > 1 {
            level = level
                .chunks(2)
                .map(|pair| hash_pair(&pair[0], &pair[1]))
                .collect();
        }
        level[0]
    }
}

struct PlacedFile {
    data: Vec<u8>,
    tree: FileTree,
    start: SectorIndex,
}

fn random_size(rng: &mut StdRng) -> usize {
    // Log-uniform 1 B .. 2 MiB: mostly sub-segment files, some with big multi-segment nodes.
    let exponent = rng.gen_range(0.0..(21f64 * std::f64::consts::LN_2));
    (exponent.exp() as usize).max(1)
}

fn segment_bytes(file: &PlacedFile, segment: u64) -> Vec<u8> {
    let start = segment as usize * SEGMENT_BYTES;
    let end = (start + SEGMENT_BYTES).min(file.data.len());
    if start >= end {
        Vec::new()
    } else {
        file.data[start..end].to_vec()
    }
}

#[test]
fn random_flows_match_naive_recomputation_and_every_proof_verifies() {
    let seed: u64 = std::env::var("ZEROG_TEST_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(0x5eed_f10e);
    println!("flow seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    for sequence in 0..6 {
        let mut flow = FlowLog::new();
        let mut naive = NaiveFlow {
            leaves: vec![IDENTIFIER],
        };
        let mut files = Vec::new();
        for _ in 0..rng.gen_range(1..14) {
            let size = random_size(&mut rng);
            let mut data = vec![0u8; size];
            rng.fill_bytes(&mut data);
            let tree = FileTree::from_bytes(&data).expect("tree");
            let placed = flow.append(&tree.nodes()).expect("append");
            assert_eq!(
                placed.start.0 - placed.padding_before,
                naive.leaves.len() as u64
            );
            naive.leaves.resize(placed.start.0 as usize, zero_hash(0));
            let padded = tree.layout().padded_chunks as usize;
            let mut chunk_hashes: Vec<H256> = data
                .chunks(256)
                .map(|chunk| {
                    let mut full = [0u8; 256];
                    full[..chunk.len()].copy_from_slice(chunk);
                    keccak256(&full)
                })
                .collect();
            chunk_hashes.resize(padded, zero_hash(0));
            naive.leaves.extend(chunk_hashes);
            assert_eq!(flow.length().0, naive.leaves.len() as u64);
            assert_eq!(
                flow.root(),
                naive.root(),
                "sequence {sequence}, after {} files",
                files.len() + 1
            );
            files.push(PlacedFile {
                data,
                tree,
                start: placed.start,
            });
        }

        let root = flow.root();
        let length = flow.length();
        // Every submission node's subtree proof leads to the root.
        for piece in flow.pieces() {
            let steps = flow
                .subtree_proof(piece.start, piece.height)
                .expect("piece proof");
            let mut running = flow
                .subtree_root(piece.start, piece.height)
                .expect("piece root");
            for (sibling, is_left) in steps {
                running = if is_left {
                    hash_pair(&running, &sibling)
                } else {
                    hash_pair(&sibling, &running)
                };
            }
            assert_eq!(running, root);
        }
        // Sector proofs in every file: first, last data, last padded, and random sectors.
        for file in &files {
            let layout = *file.tree.layout();
            let mut chunks = vec![0, layout.chunks - 1, layout.padded_chunks - 1];
            for _ in 0..4 {
                chunks.push(rng.gen_range(0..layout.padded_chunks));
            }
            for chunk in chunks {
                let sector = SectorIndex(file.start.0 + chunk);
                let segment_data = segment_bytes(file, chunk / 1024);
                let proof = sector_proof(&flow, &file.tree, file.start, &segment_data, sector)
                    .expect("sector proof");
                let leaf = naive.leaves[sector.0 as usize];
                assert!(
                    verify_flow_proof(&root, length, sector, &leaf, &proof),
                    "sector {sector} of a {} B file",
                    file.data.len()
                );
            }
            // Segment-level proofs fold up from the segment root (or the flow segment's).
            for segment in 0..layout.padded_segments {
                let steps =
                    file_segment_proof(&flow, &file.tree, file.start, SegmentIndex(segment))
                        .expect("segment proof");
                let inside_node = layout.padded_chunks >= 1024 * (segment + 1);
                if inside_node {
                    let mut running = file
                        .tree
                        .segment_roots()
                        .get(segment as usize)
                        .copied()
                        .unwrap_or_else(|| zero_hash(10));
                    for (sibling, is_left) in steps {
                        running = if is_left {
                            hash_pair(&running, &sibling)
                        } else {
                            hash_pair(&sibling, &running)
                        };
                    }
                    assert_eq!(running, root, "segment {segment}");
                }
            }
        }
        // Identifier and padding sectors are proved by the log alone.
        let mut padding_checked = 0;
        for piece in flow.pieces() {
            if matches!(piece.kind, PieceKind::Node { .. }) {
                continue;
            }
            let sector = SectorIndex(piece.start.0 + (1u64 << piece.height) - 1);
            let proof = flow.known_sector_proof(sector).expect("known sector");
            assert!(verify_flow_proof(
                &root,
                length,
                sector,
                &naive.leaves[sector.0 as usize],
                &proof
            ));
            padding_checked += 1;
        }
        assert!(padding_checked >= 1);
        // Data sectors are not the log's to prove; sectors past the end do not exist.
        let first_file = &files[0];
        assert_eq!(
            flow.known_sector_proof(first_file.start),
            Err(FlowError::SectorInData {
                sector: first_file.start
            })
        );
        assert!(matches!(
            flow.known_sector_proof(length),
            Err(FlowError::SectorOutOfRange { .. })
        ));
    }
}

#[test]
fn subtree_inside_a_node_is_refused_with_the_node_named() {
    let mut flow = FlowLog::new();
    let data = vec![9u8; 4 * SEGMENT_BYTES];
    let tree = FileTree::from_bytes(&data).expect("tree");
    let placed = flow.append(&tree.nodes()).expect("append");
    assert_eq!(placed.start, SectorIndex(4096));
    assert_eq!(
        flow.subtree_proof(SectorIndex(5120), 10),
        Err(FlowError::InsideNode {
            start: SectorIndex(5120),
            height: 10,
            node_start: SectorIndex(4096),
            node_height: 12
        })
    );
    assert_eq!(
        flow.subtree_proof(SectorIndex(5), 1),
        Err(FlowError::Unaligned {
            start: SectorIndex(5),
            height: 1
        })
    );
    // The padding run before the file is known piece by piece.
    assert!(flow.subtree_proof(SectorIndex(1024), 10).is_ok());
    assert!(flow.subtree_proof(SectorIndex(4096), 12).is_ok());
}
