//! Deterministic simulations of four validators (see `common`): many seeds per scenario, the
//! same checker after every run.

mod common;

use common::{Byzantine, Scenario, check, executed_transactions, headers, run, seeds};
use commonware_p2p::simulated::Link;
use commonware_utils::probability;
use std::time::Duration;

/// Links of a LAN: 10 ± 1 ms, nothing lost.
const GOOD: Link = Link {
    latency: Duration::from_millis(10),
    jitter: Duration::from_millis(1),
    success_rate: probability!(1.0),
};

/// Slow, lossy links: 200 ± 150 ms, one message in four lost.
const BAD: Link = Link {
    latency: Duration::from_millis(200),
    jitter: Duration::from_millis(150),
    success_rate: probability!(0.75),
};

fn run_and_check(scenario: &Scenario) {
    let report = run(scenario);
    check(scenario, &report);
    eprintln!(
        "seed {}: {} transactions executed, {} restarts, {} certificates checked",
        scenario.seed,
        executed_transactions(&report),
        report.restarts,
        report.certificates_checked
    );
}

#[test]
fn c0_good_links_agree_on_every_height() {
    for seed in 0..seeds(20) {
        run_and_check(&Scenario::new(seed, GOOD, 20));
    }
}

#[test]
fn c0_one_seed_twice_runs_identically() {
    let scenario = Scenario::new(1_000, GOOD, 10);
    let first = run(&scenario);
    let second = run(&scenario);
    check(&scenario, &first);
    assert_eq!(first.auditor, second.auditor, "the runtime's audit differs");
    assert_eq!(headers(&first), headers(&second), "executed headers differ");
}

#[test]
fn c1_slow_lossy_links_still_finalize() {
    for seed in 0..seeds(8) {
        let mut scenario = Scenario::new(100 + seed, BAD, 10);
        scenario.time_limit = Duration::from_secs(600);
        run_and_check(&scenario);
    }
}

#[test]
fn c2_validators_crash_restart_and_catch_up() {
    for seed in 0..seeds(8) {
        let mut scenario = Scenario::new(200 + seed, GOOD, 20);
        scenario.crashes = 2;
        run_and_check(&scenario);
    }
}

#[test]
fn c3_one_byzantine_validator_changes_nothing() {
    let kinds = [
        Byzantine::Equivocator,
        Byzantine::Conflicter,
        Byzantine::Nuller,
        Byzantine::Garbage,
    ];
    for seed in 0..seeds(4) {
        for (offset, kind) in kinds.iter().enumerate() {
            let mut scenario = Scenario::new(300 + 10 * seed + offset as u64, GOOD, 15);
            scenario.byzantine = Some(*kind);
            run_and_check(&scenario);
        }
    }
}

#[test]
fn c3_a_proposer_claiming_false_executions_is_never_finalized() {
    for seed in 0..seeds(2) {
        let mut scenario = Scenario::new(500 + seed, GOOD, 12);
        scenario.byzantine = Some(Byzantine::LyingClaims);
        run_and_check(&scenario);
    }
}

#[test]
fn c3_a_validator_gossiping_garbage_transactions_is_blocked() {
    for seed in 0..seeds(2) {
        let mut scenario = Scenario::new(400 + seed, GOOD, 10);
        scenario.byzantine = Some(Byzantine::MempoolGarbage);
        let report = run(&scenario);
        check(&scenario, &report);
        let liar = &report.public_keys[0];
        for honest in &report.public_keys[1..] {
            assert!(
                report
                    .blocked
                    .iter()
                    .any(|(blocker, blocked)| blocker == honest && blocked == liar),
                "seed {seed}: {honest} did not block the validator gossiping garbage: {:?}",
                report.blocked
            );
        }
    }
}
