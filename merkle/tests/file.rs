//! `merkle::file` on literal cases and on bad client input.
//!
//! SDK compatibility on random sizes lives in `sdk_compat.rs`; this file pins the padding
//! arithmetic, the zero-subtree constants and every way `verify_segment` must refuse a segment.

use harness::random_bytes;
use merkle::file::{
    FileLayout, FileTree, MerkleError, Proof, ProofError, node_heights, padded_chunks,
    segment_root, verify_segment, zero_hash, zero_root,
};
use merkle::keccak::{hash_pair, keccak256};
use types::{H256, SEGMENT_BYTES, SegmentIndex};

fn hex(text: &str) -> H256 {
    H256::from_hex(text).expect("literal hash")
}

#[test]
fn padded_chunks_literal_cases() {
    // (n, P): powers of two stay, below 16 nothing is added, above that round to nextpow2/16.
    let cases = [
        (0, 0),
        (1, 1),
        (3, 3),
        (15, 15),
        (16, 16),
        (17, 18),
        (31, 32),
        (33, 36),
        (1023, 1024),
        (1024, 1024),
        (1025, 1152),
        (16385, 18432),
        (1 << 20, 1 << 20),
        ((1 << 20) + 1, (1 << 20) + (1 << 17)),
    ];
    for (chunks, padded) in cases {
        assert_eq!(padded_chunks(chunks), padded, "P({chunks})");
    }
    assert_eq!(node_heights(1152), vec![10, 7]);
    assert_eq!(node_heights(18), vec![4, 1]);
}

#[test]
fn zero_hashes_match_the_flow_contract_constants() {
    // FlowTreeLib.zeros(h) in 0G's contracts.
    assert_eq!(
        zero_hash(0),
        hex("d397b3b043d87fcd6fad1291ff0bfd16401c274896d8c63a923727f077b8e0b5")
    );
    assert_eq!(
        zero_hash(1),
        hex("f73e6947d7d1628b9976a6e40d7b278a8a16405e96324a68df45b12a51b7cfde")
    );
    assert_eq!(
        zero_hash(10),
        hex("e68d02859bb6211cec64f52368b77d422de3b8eac34bf615942b814b643301b5")
    );
    assert_eq!(
        zero_hash(63),
        hex("b48a92d40b61dc995ceecee4cded6415050dcece448b1e0b5e5b6a0e6981f3ef")
    );
    assert_eq!(zero_root(1024), zero_hash(10));
    assert_eq!(zero_root(3), hash_pair(&zero_hash(1), &zero_hash(0)));
}

#[test]
fn one_chunk_file_root_is_its_leaf() {
    let tree = FileTree::from_bytes(b"hello").expect("tree");
    let mut chunk = [0u8; 256];
    chunk[..5].copy_from_slice(b"hello");
    assert_eq!(tree.root(), keccak256(&chunk));
    assert_eq!(
        tree.proof(SegmentIndex(0)).expect("proof"),
        Proof {
            lemma: vec![tree.root()],
            path: vec![]
        }
    );
    assert_eq!(tree.nodes().len(), 1);
    assert_eq!(tree.nodes()[0].height, 0);
}

#[test]
fn segment_root_carries_unpaired_nodes_up() {
    // Three chunks: ((c0, c1), c2), the third carried up unhashed.
    let data = random_bytes(1, 3 * 256);
    let leaves: Vec<H256> = data.chunks(256).map(keccak256).collect();
    let expected = hash_pair(&hash_pair(&leaves[0], &leaves[1]), &leaves[2]);
    assert_eq!(segment_root(&data, 3), expected);
    // Zero chunks up to the padded count count as leaves.
    assert_eq!(
        segment_root(&data[..256], 2),
        hash_pair(&leaves[0], &zero_hash(0))
    );
}

#[test]
fn builder_and_from_segment_roots_agree_with_from_bytes() {
    for size in [1usize, 300_000, 3 * SEGMENT_BYTES, 4 * SEGMENT_BYTES + 1] {
        let data = random_bytes(size as u64, size);
        let whole = FileTree::from_bytes(&data).expect("tree");
        let mut builder = FileTree::builder(size as u64).expect("builder");
        for segment in data.chunks(SEGMENT_BYTES) {
            builder.push_segment(segment).expect("segment");
        }
        assert_eq!(builder.finish().expect("finish"), whole);
        let from_roots = FileTree::from_segment_roots(size as u64, whole.segment_roots().to_vec())
            .expect("roots");
        assert_eq!(from_roots.root(), whole.root());
    }
}

#[test]
fn builder_rejects_bad_segments() {
    let mut builder = FileTree::builder(SEGMENT_BYTES as u64 + 10).expect("builder");
    let short = vec![0u8; SEGMENT_BYTES - 1];
    assert_eq!(
        builder.push_segment(&short),
        Err(MerkleError::SegmentLength {
            segment: SegmentIndex(0),
            expected_bytes: SEGMENT_BYTES as u64,
            found_bytes: SEGMENT_BYTES as u64 - 1
        })
    );
    builder
        .push_segment(&vec![1u8; SEGMENT_BYTES])
        .expect("full segment");
    let mut tail = vec![0u8; 256];
    tail[..10].fill(7);
    tail[255] = 1; // past the 10 real bytes
    assert_eq!(
        builder.push_segment(&tail),
        Err(MerkleError::TailNotZero {
            segment: SegmentIndex(1),
            offset: 255
        })
    );
    assert_eq!(
        FileTree::builder(SEGMENT_BYTES as u64 + 10)
            .expect("builder")
            .finish(),
        Err(MerkleError::MissingSegments {
            pushed: 0,
            segments: 2
        })
    );
    assert_eq!(
        FileTree::from_segment_roots(10, vec![]),
        Err(MerkleError::SegmentCount {
            size_bytes: 10,
            expected: 1,
            found: 0
        })
    );
    assert_eq!(FileTree::builder(0).err(), Some(MerkleError::EmptyFile));
}

#[test]
fn tree_from_roots_of_a_small_file_lacks_tail_nodes() {
    let data = random_bytes(5, 1000);
    let whole = FileTree::from_bytes(&data).expect("tree");
    let from_roots =
        FileTree::from_segment_roots(1000, whole.segment_roots().to_vec()).expect("roots");
    assert_eq!(from_roots.try_nodes(), Err(MerkleError::TailNodesUnknown));
}

/// A file of 4 segments and 10 extra bytes: 5 data segments, the last holding one chunk.
struct Fixture {
    data: Vec<u8>,
    tree: FileTree,
}

impl Fixture {
    fn new() -> Fixture {
        let data = random_bytes(42, 4 * SEGMENT_BYTES + 10);
        let tree = FileTree::from_bytes(&data).expect("tree");
        Fixture { data, tree }
    }

    fn size(&self) -> u64 {
        self.data.len() as u64
    }

    fn segment(&self, index: u64) -> Vec<u8> {
        let layout = self.tree.layout();
        let start = index as usize * SEGMENT_BYTES;
        let end = (start + SEGMENT_BYTES).min(self.data.len());
        let mut bytes = self.data[start..end].to_vec();
        bytes.resize(layout.segment_upload_bytes(index) as usize, 0);
        bytes
    }

    fn verify(&self, index: u64, data: &[u8], proof: &Proof) -> Result<H256, ProofError> {
        verify_segment(
            &self.tree.root(),
            self.size(),
            SegmentIndex(index),
            data,
            proof,
        )
    }
}

#[test]
fn verify_accepts_every_genuine_segment() {
    let fixture = Fixture::new();
    let layout = *fixture.tree.layout();
    assert_eq!(layout.data_segments, 5);
    for index in 0..layout.data_segments {
        let proof = fixture.tree.proof(SegmentIndex(index)).expect("proof");
        let verified = fixture.verify(index, &fixture.segment(index), &proof);
        assert_eq!(verified, Ok(fixture.tree.segment_roots()[index as usize]));
    }
}

#[test]
fn verify_rejects_bad_input() {
    let fixture = Fixture::new();
    let root = fixture.tree.root();
    let size = fixture.size();
    let proof = fixture.tree.proof(SegmentIndex(1)).expect("proof");
    let data = fixture.segment(1);

    // A sibling changed.
    let mut wrong = proof.clone();
    wrong.lemma[1] = H256([9; 32]);
    assert!(matches!(
        fixture.verify(1, &data, &wrong),
        Err(ProofError::RootMismatch { .. })
    ));

    // The data changed: the leaf no longer matches.
    let mut other = data.clone();
    other[0] ^= 1;
    assert!(matches!(
        fixture.verify(1, &other, &proof),
        Err(ProofError::LeafMismatch { .. })
    ));

    // Another file's root.
    let other_root = H256([3; 32]);
    assert_eq!(
        verify_segment(&other_root, size, SegmentIndex(1), &data, &proof),
        Err(ProofError::LemmaRootMismatch {
            expected: other_root,
            claimed: root
        })
    );

    // Index past the data segments (and past the padded ones).
    assert_eq!(
        fixture.verify(5, &[], &proof),
        Err(ProofError::IndexOutOfRange {
            segment: SegmentIndex(5),
            segments: 5
        })
    );

    // Truncated and oversized data.
    assert_eq!(
        fixture.verify(1, &data[..data.len() - 256], &proof),
        Err(ProofError::DataLength {
            segment: SegmentIndex(1),
            expected_bytes: SEGMENT_BYTES as u64,
            found_bytes: SEGMENT_BYTES as u64 - 256
        })
    );
    let mut long = data.clone();
    long.extend_from_slice(&[0u8; 256]);
    assert!(matches!(
        fixture.verify(1, &long, &proof),
        Err(ProofError::DataLength { .. })
    ));
    // The last segment is its real data rounded up to a chunk: 10 bytes travel as 256.
    let last_proof = fixture.tree.proof(SegmentIndex(4)).expect("proof");
    let last = fixture.segment(4);
    assert_eq!(last.len(), 256);
    assert!(matches!(
        fixture.verify(4, &last[..10], &last_proof),
        Err(ProofError::DataLength { .. })
    ));
    assert!(fixture.verify(4, &last, &last_proof).is_ok());

    // Bytes past the end of the file inside the last chunk must be zero.
    let mut dirty = last.clone();
    dirty[100] = 1;
    assert_eq!(
        fixture.verify(4, &dirty, &last_proof),
        Err(ProofError::TailNotZero {
            segment: SegmentIndex(4),
            offset: 100
        })
    );

    // Wrong path length, lemma length, and a path that leads elsewhere.
    let mut short_path = proof.clone();
    short_path.path.pop();
    short_path.lemma.remove(1);
    assert!(matches!(
        fixture.verify(1, &data, &short_path),
        Err(ProofError::PathLength { .. })
    ));
    let mut bad_lemma = proof.clone();
    bad_lemma.lemma.pop();
    assert!(matches!(
        fixture.verify(1, &data, &bad_lemma),
        Err(ProofError::LemmaLength { .. })
    ));
    let mut elsewhere = proof.clone();
    elsewhere.path[0] = !elsewhere.path[0];
    assert_eq!(
        fixture.verify(1, &data, &elsewhere),
        Err(ProofError::PositionMismatch {
            segment: SegmentIndex(1),
            found: SegmentIndex(0)
        })
    );
    let empty = Proof {
        lemma: vec![],
        path: vec![],
    };
    assert!(matches!(
        fixture.verify(1, &data, &empty),
        Err(ProofError::LemmaLength { .. })
    ));
    assert_eq!(
        verify_segment(&root, 0, SegmentIndex(0), &[], &proof),
        Err(ProofError::EmptyFile)
    );
}

/// Carry-up levels over `leaves` (test-side, independent of the library's).
fn levels(leaves: Vec<H256>) -> Vec<Vec<H256>> {
    let mut all = vec![leaves];
    while all.last().map_or(0, Vec::len) > 1 {
        let level = all.last().expect("non-empty");
        let next: Vec<H256> = level
            .chunks(2)
            .map(|pair| {
                if pair.len() == 2 {
                    hash_pair(&pair[0], &pair[1])
                } else {
                    pair[0]
                }
            })
            .collect();
        all.push(next);
    }
    all
}

fn proof_from_levels(all: &[Vec<H256>], index: usize) -> Proof {
    let root = all.last().expect("levels")[0];
    let mut lemma = vec![all[0][index]];
    let mut path = Vec::new();
    let mut position = index;
    for level in &all[..all.len() - 1] {
        if position % 2 == 1 {
            lemma.push(level[position - 1]);
            path.push(false);
        } else if position + 1 < level.len() {
            lemma.push(level[position + 1]);
            path.push(true);
        }
        position /= 2;
    }
    lemma.push(root);
    Proof { lemma, path }
}

#[test]
fn verify_rejects_a_forged_root_with_data_in_the_padding() {
    // 2^15 + 1 chunks: P = 9 * 4096 chunks = 36 segments, of which 33 hold data.
    let size = (1usize << 23) + 256;
    let data = random_bytes(7, size);
    let tree = FileTree::from_bytes(&data).expect("tree");
    let layout = FileLayout::new(size as u64).expect("layout");
    assert_eq!((layout.data_segments, layout.padded_segments), (33, 36));

    // The forger hashes non-zero "padding" segments into the root.
    let mut roots = tree.segment_roots().to_vec();
    for segment in 33..36u64 {
        roots.push(keccak256(&segment.to_le_bytes()));
    }
    let forged = levels(roots);
    let forged_root = forged.last().expect("levels")[0];
    assert_ne!(forged_root, tree.root());

    let last = &data[32 * SEGMENT_BYTES..];
    let proof = proof_from_levels(&forged, 32);
    // Siblings are checked top-down: segments 34..36 (height 11) are the first wholly in padding.
    assert_eq!(
        verify_segment(&forged_root, size as u64, SegmentIndex(32), last, &proof),
        Err(ProofError::PaddingNotZero {
            height: 11,
            first_chunk: 34 * 1024,
            end_chunk: 36 * 1024
        })
    );
    // Earlier segments whose siblings straddle data and padding cannot tell; the last data
    // segment always can, so a forged file never completes.
    let first = &data[..SEGMENT_BYTES];
    assert!(
        verify_segment(
            &forged_root,
            size as u64,
            SegmentIndex(0),
            first,
            &proof_from_levels(&forged, 0)
        )
        .is_ok()
    );

    // The genuine tree passes the same check.
    let genuine = tree.proof(SegmentIndex(32)).expect("proof");
    assert_eq!(genuine, proof_from_levels(&levels(padded_roots(&tree)), 32));
    assert!(verify_segment(&tree.root(), size as u64, SegmentIndex(32), last, &genuine).is_ok());
}

fn padded_roots(tree: &FileTree) -> Vec<H256> {
    let layout = tree.layout();
    let mut roots = tree.segment_roots().to_vec();
    for segment in layout.data_segments..layout.padded_segments {
        roots.push(zero_root(layout.segment_padded_chunks(segment)));
    }
    roots
}

#[test]
fn forged_padding_over_several_segments_is_caught_higher_up() {
    // 2^16 + 1 chunks: P = 9 * 8192 = 72 segments, 65 with data; segment 64's siblings are
    // padding at heights 10, 11, 12 (segments 65, 66..68, 68..72).
    let size = (1usize << 24) + 256;
    let data = random_bytes(8, size);
    let tree = FileTree::from_bytes(&data).expect("tree");
    let mut roots = padded_roots(&tree);
    roots[70] = H256([1; 32]);
    let forged = levels(roots);
    let forged_root = forged.last().expect("levels")[0];
    let last = &data[64 * SEGMENT_BYTES..];
    assert_eq!(
        verify_segment(
            &forged_root,
            size as u64,
            SegmentIndex(64),
            last,
            &proof_from_levels(&forged, 64)
        ),
        Err(ProofError::PaddingNotZero {
            height: 12,
            first_chunk: 68 * 1024,
            end_chunk: 72 * 1024
        })
    );
}

#[test]
fn proofs_round_trip_through_their_compact_bytes_and_refuse_others() {
    let data = harness::random_bytes(9, 5 * types::SEGMENT_BYTES + 100);
    let tree = FileTree::from_bytes(&data).expect("a tree");
    for index in 0..tree.layout().data_segments {
        let proof = tree.proof(SegmentIndex(index)).expect("in range");
        let bytes = proof.to_bytes();
        assert_eq!(Proof::from_bytes(&bytes), Some(proof));
    }
    assert_eq!(Proof::from_bytes(&[]), None);
    assert_eq!(Proof::from_bytes(&[0]), None);
    assert_eq!(Proof::from_bytes(&[1, 0, 0]), None, "a hash cut short");
    let mut one = vec![1u8];
    one.extend_from_slice(&[7; 32]);
    one.push(2);
    assert_eq!(Proof::from_bytes(&one), None, "a path step is 0 or 1");
    one.pop();
    assert_eq!(
        Proof::from_bytes(&one),
        Some(Proof {
            lemma: vec![H256([7; 32])],
            path: vec![]
        })
    );
}
