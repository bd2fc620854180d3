//! One decision repeated, for an instruction count under callgrind: on a
//! shared machine a count repeats where a time does not. `bench/count.sh`
//! runs it for the name-rule rows of the decision bench and prints the
//! instructions per decision.
//!
//!   cargo bench --bench decision_count -- DOMAIN off|first|on ITERATIONS
//!
//! Without arguments it times the three rows natively instead.
//! The list is compiled once into `target/bench/count/` and reused.

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use hickory_resolver::proto::rr::Name;
use lollipop::name::ReversedName;
use lollipop::policy::Policy;
use lollipop::policy::clients::ProfileId;

mod setup;

/// Callgrind counts only inside this function (`--toggle-collect`).
#[inline(never)]
fn measured_decisions(policy: &Policy, profile: ProfileId, name: &Name, iterations: u64) {
    for _ in 0..iterations {
        let reversed = ReversedName::from_labels(black_box(name).iter()).expect("fits");
        black_box(policy.decide(profile, &reversed));
    }
}

fn main() {
    // `cargo bench` passes `--bench`; the rest are ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let cases: Vec<(String, String, u64)> = match args.as_slice() {
        [domain, switch, n] => vec![(domain.clone(), switch.clone(), n.parse().unwrap_or(1000))],
        _ => [setup::UNLISTED_SHORT, setup::UNLISTED_LONG, setup::FLAGGED]
            .iter()
            .flat_map(|d| ["off", "first", "on"].map(|s| (d.to_string(), s.to_string(), 200_000)))
            .collect(),
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench/count");
    std::fs::create_dir_all(&dir).expect("target/bench/count");
    let (off, on, profile) = setup::policies(&dir, &setup::bench_list(), false);
    for (domain, switch, iterations) in cases {
        let policy = if switch == "off" { &off } else { &on };
        // "first": every decision reads the name afresh (a name not asked
        // lately); "on": the rules' remembered answer for a name asked again.
        lollipop::policy::name_rules::memo::bypass_on_this_thread(switch == "first");
        let name = Name::from_ascii(&domain).expect("name");
        let started = Instant::now();
        measured_decisions(policy, profile, &name, iterations);
        let each = started.elapsed().as_nanos() as f64 / iterations.max(1) as f64;
        println!("{domain} rules {switch}: {each:.0} ns a decision over {iterations}");
    }
}
