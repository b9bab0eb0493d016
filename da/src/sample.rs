//! sample: how many random shards a light client must fetch, and which.
//!
//! A blob is recoverable when `k` of its `n = k + m` shards are available. A disperser that wants
//! to fool a sampler into accepting an unrecoverable blob serves at most `k − 1` shards. A client
//! that asks for `s` distinct shards chosen uniformly and gets all of them back is fooled with
//! probability
//!
//! ```text
//! P(fooled) = C(k−1, s) / C(n, s) = ∏_{i<s} (k−1−i) / (n−i)  <  (k/n)^s
//! ```
//!
//! which is `< (1/3)^s` for the default 1024 + 2048 shards. [`fooling_probability`] computes the
//! exact product, [`samples_needed`] the least `s` reaching a target, and [`choose_indices`] draws
//! the `s` distinct indices from randomness the caller supplies (this crate has no random source
//! of its own, so callers and tests decide where randomness comes from).

use crate::blob::DaParams;
use crate::commit::ShardIndex;
use std::collections::BTreeSet;

/// Probability that `samples` distinct uniformly chosen shards all fall among the `k − 1` shards
/// an adversary serves (exact; 0 once `samples ≥ k`). Samples beyond `k + m` are capped.
pub fn fooling_probability(params: &DaParams, samples: usize) -> f64 {
    let available = params.data_shards() - 1;
    let total = params.total_shards();
    let mut probability = 1.0f64;
    for drawn in 0..samples.min(total) {
        if drawn >= available {
            return 0.0;
        }
        probability *= (available - drawn) as f64 / (total - drawn) as f64;
    }
    probability
}

/// The least number of distinct samples whose fooling probability is at most `target`
/// (`0 < target ≤ 1`; a target ≥ 1 needs no samples). At most `k`, where the probability is 0.
/// Returns `None` for a target that is not a positive number.
pub fn samples_needed(params: &DaParams, target: f64) -> Option<usize> {
    if target.is_nan() || target <= 0.0 {
        return None;
    }
    let available = params.data_shards() - 1;
    let total = params.total_shards();
    let mut probability = 1.0f64;
    let mut samples = 0;
    while probability > target {
        if samples == available {
            // One more sample than the adversary serves can never be fooled.
            return Some(available + 1);
        }
        probability *= (available - samples) as f64 / (total - samples) as f64;
        samples += 1;
    }
    Some(samples)
}

/// Chooses `samples` distinct shard indices uniformly from `0..k+m` (every set of that size
/// equally likely), using `next_u64` as the source of uniform 64-bit words. Returned in
/// ascending order. `samples` is capped at `k + m`.
///
/// Robert Floyd's algorithm: one bounded draw per sample, no table of all `n` indices.
pub fn choose_indices(
    params: &DaParams,
    samples: usize,
    mut next_u64: impl FnMut() -> u64,
) -> Vec<ShardIndex> {
    let total = params.total_shards() as u64;
    let samples = (samples as u64).min(total);
    let mut chosen = BTreeSet::new();
    for upper in (total - samples)..total {
        let candidate = uniform_below(upper + 1, &mut next_u64);
        if !chosen.insert(candidate) {
            chosen.insert(upper);
        }
    }
    chosen
        .into_iter()
        .map(|index| ShardIndex(u32::try_from(index).expect("indices are below k + m ≤ 2^16")))
        .collect()
}

/// A uniform value in `0..bound` (`bound ≥ 1`) by Lemire's multiply-and-reject method: no modulo
/// bias, and almost never a second draw.
fn uniform_below(bound: u64, next_u64: &mut impl FnMut() -> u64) -> u64 {
    debug_assert!(bound > 0);
    let threshold = bound.wrapping_neg() % bound;
    loop {
        let product = u128::from(next_u64()) * u128::from(bound);
        if (product as u64) >= threshold {
            return (product >> 64) as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_bound_is_below_a_third_to_the_s() {
        let params = DaParams::default();
        for samples in 1..=64 {
            let probability = fooling_probability(&params, samples);
            assert!(probability < (1.0f64 / 3.0).powi(samples as i32));
            assert!(probability > 0.0);
        }
        assert_eq!(fooling_probability(&params, 1), 1023.0 / 3072.0);
    }

    #[test]
    fn samples_needed_is_the_least_sufficient_count() {
        let params = DaParams::default();
        for target in [0.5, 1e-3, 1e-9, 1e-20] {
            let samples = samples_needed(&params, target).expect("positive target");
            assert!(fooling_probability(&params, samples) <= target);
            assert!(fooling_probability(&params, samples - 1) > target);
        }
        assert_eq!(samples_needed(&params, 1.0), Some(0));
        assert_eq!(samples_needed(&params, 0.0), None);
        let small = DaParams::new(4, 8).expect("supported params");
        assert_eq!(samples_needed(&small, 1e-300), Some(4));
        assert!(fooling_probability(&small, 3) > 0.0);
        assert_eq!(fooling_probability(&small, 4), 0.0);
    }

    #[test]
    fn chosen_indices_are_distinct_and_in_range() {
        let params = DaParams::new(4, 8).expect("supported params");
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            state
        };
        for samples in 0..=14 {
            let chosen = choose_indices(&params, samples, &mut next);
            assert_eq!(chosen.len(), samples.min(12));
            assert!(chosen.windows(2).all(|pair| pair[0] < pair[1]));
            assert!(chosen.iter().all(|index| index.as_usize() < 12));
        }
    }
}
