//! One decision repeated, for an instruction count under callgrind: on a
//! shared machine a count repeats where a time does not. `bench/count.sh`
//! runs it for the name-rule rows of the decision bench and prints the
//! instructions per decision.
//!
//!   cargo bench --bench decision_count -- DOMAIN off|fresh|first|on ITERATIONS
//!   cargo bench --bench decision_count -- stream QUERY_FILE off|on COUNT
//!
//! The second decides COUNT distinct names of a query file once each.
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
            .flat_map(|d| {
                ["off", "fresh", "first", "on"].map(|s| (d.to_string(), s.to_string(), 200_000))
            })
            .collect(),
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench/count");
    std::fs::create_dir_all(&dir).expect("target/bench/count");
    let (off, on, profile) = setup::policies(&dir, &setup::bench_list(), false);
    if let [stream, path, switch, n] = args.as_slice()
        && stream == "stream"
    {
        let policy = if switch == "off" { &off } else { &on };
        let count: usize = n.parse().unwrap_or(10_000);
        let all = stream_names(Path::new(path), count + 100);
        let (names, warm) = all.split_at(count.min(all.len()));
        // Warms what a running resolver has warm (the list's pages, the
        // thread's tables) on 100 other names, uncounted, then decides
        // each name once.
        for name in warm {
            let reversed = ReversedName::from_labels(name.iter()).expect("fits");
            black_box(policy.decide(profile, &reversed));
        }
        let started = Instant::now();
        measured_stream(policy, profile, names);
        let each = started.elapsed().as_nanos() as f64 / names.len().max(1) as f64;
        println!(
            "{} names rules {switch}: {each:.0} ns a decision",
            names.len()
        );
        return;
    }
    for (domain, switch, iterations) in cases {
        let policy = if switch == "off" { &off } else { &on };
        // "fresh": every decision reads the name and each of its labels
        // afresh (a name not asked lately, made of labels not seen
        // lately); "first": the name afresh, its labels remembered from
        // other names; "on": the rules' remembered answer for a name asked
        // again.
        lollipop::policy::name_rules::memo::bypass_on_this_thread(switch != "on");
        lollipop::policy::name_rules::labels::bypass_on_this_thread(switch == "fresh");
        let name = Name::from_ascii(&domain).expect("name");
        // One decision uncounted first, as a running resolver's thread has
        // its tables made long before: the count is of decisions alone.
        let reversed = ReversedName::from_labels(name.iter()).expect("fits");
        black_box(policy.decide(profile, &reversed));
        let started = Instant::now();
        measured_decisions(policy, profile, &name, iterations);
        let each = started.elapsed().as_nanos() as f64 / iterations.max(1) as f64;
        println!("{domain} rules {switch}: {each:.0} ns a decision over {iterations}");
    }
}

/// Callgrind counts only inside this function (`--toggle-collect`): each
/// name decided once, as a stream of distinct names.
#[inline(never)]
fn measured_stream(policy: &Policy, profile: ProfileId, names: &[Name]) {
    for name in names {
        let reversed = ReversedName::from_labels(black_box(name).iter()).expect("fits");
        black_box(policy.decide(profile, &reversed));
    }
}

/// The first `count` distinct names of a query file (`name TYPE` a line,
/// as bench/make-queries.py writes).
fn stream_names(path: &Path, count: usize) -> Vec<Name> {
    let text = std::fs::read_to_string(path).expect("the query file");
    let mut seen = std::collections::HashSet::new();
    text.lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| seen.insert(name.to_string()))
        .filter_map(|name| Name::from_ascii(name).ok())
        .take(count)
        .collect()
}
