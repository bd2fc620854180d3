//! Time and peak memory of compiling 2,000,000 domains from four lists in
//! four formats (domains, hosts, adblock, RPZ) that share some names.
//!
//! A plain `main`, not criterion: one compile is the measurement, and peak
//! memory can only be read once per process. Set `LOLLIPOP_BENCH_DOMAINS`
//! to change the total.

use std::error::Error;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use lollipop::config::ListFormat;
use lollipop::lists::{CompiledLists, SourceSpec, compile};
use lollipop::name::ReversedName;

mod common;
use common::{Rng, domain, peak_rss};

/// One in this many names comes from a stream all four lists draw on, so
/// the lists overlap the way real ones do.
const SHARED_EVERY: usize = 5;

/// Writes `count` names in `format`, with the headers, comments, exceptions
/// and rules-Lollipop-skips that real lists of that format carry.
fn write_list(
    path: &Path,
    format: ListFormat,
    source: u64,
    count: usize,
) -> Result<(), Box<dyn Error>> {
    let mut own = Rng(0xB10C_0000 + source);
    let mut shared = Rng(0x5A4E_D000);
    // Each list starts at a different point of the shared stream, so each
    // pair overlaps by a different amount.
    let mut name = String::new();
    for _ in 0..source * 20_000 {
        domain(&mut shared, &mut name);
    }
    let mut w = BufWriter::with_capacity(1 << 16, File::create(path)?);
    match format {
        ListFormat::Adblock => writeln!(w, "[Adblock Plus 2.0]\n! Title: bench")?,
        ListFormat::Rpz => writeln!(
            w,
            "$TTL 300\n$ORIGIN rpz.bench.\n@ IN SOA ns.bench. admin.bench. (\n  1 3600 600 86400 300 )\n  IN NS ns.bench."
        )?,
        _ => writeln!(w, "# bench list {source}")?,
    }
    for i in 0..count {
        let rng = if i % SHARED_EVERY == 0 {
            &mut shared
        } else {
            &mut own
        };
        domain(rng, &mut name);
        match format {
            ListFormat::Domains => writeln!(w, "{name}")?,
            ListFormat::Hosts => writeln!(w, "0.0.0.0 {name}")?,
            ListFormat::Adblock => {
                match i % 100 {
                    0 => writeln!(w, "@@||{name}^")?,
                    1 => writeln!(w, "||{name}^$important")?,
                    _ => writeln!(w, "||{name}^")?,
                }
                if i % 200 == 2 {
                    writeln!(w, "{name}##.ad-banner\n||{name}/ads.js")?;
                }
            }
            ListFormat::Rpz => match i % 50 {
                0 => writeln!(w, "{name} CNAME rpz-passthru.")?,
                1 => writeln!(w, "*.{name} CNAME .")?,
                _ => writeln!(w, "{name} CNAME .")?,
            },
            ListFormat::Dnsmasq => writeln!(w, "address=/{name}/0.0.0.0")?,
        }
        if i % 1000 == 0 {
            let comment = if format == ListFormat::Rpz { ";" } else { "#" };
            writeln!(w, "{comment} section {i}")?;
        }
    }
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}

/// Linux resets the peak-memory mark when "5" is written here, so the
/// figure covers the compile and not the list generation before it.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn main() -> Result<(), Box<dyn Error>> {
    // `cargo test --benches` runs this with `--bench` absent; stay quick.
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    let total: usize = std::env::var("LOLLIPOP_BENCH_DOMAINS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000);
    let dir = tempfile::tempdir()?;
    let formats = [
        ("domains", ListFormat::Domains, "adult"),
        ("hosts", ListFormat::Hosts, "malware"),
        ("adblock", ListFormat::Adblock, "ads"),
        ("rpz", ListFormat::Rpz, "malware"),
    ];
    let mut specs = Vec::new();
    for (i, (name, format, category)) in formats.into_iter().enumerate() {
        let path = dir.path().join(format!("{name}.txt"));
        write_list(&path, format, i as u64, total / formats.len())?;
        specs.push(SourceSpec {
            name: name.into(),
            path,
            format,
            category: category.into(),
            hidden: false,
        });
    }
    let generation_peak = peak_rss().unwrap_or_else(|| "unknown".into());
    let reset = reset_peak_rss();

    let out = dir.path().join("lists.bin");
    let started = Instant::now();
    let report = compile(&specs, &out)?;
    let secs = started.elapsed().as_secs_f64();
    let peak = peak_rss().unwrap_or_else(|| "unknown".into());

    print!("{report}");
    println!(
        "compile of {total} domains in 4 formats: {secs:.2} s; peak RSS {peak}{}; fst {} bytes ({:.2} bytes/domain); {} combinations",
        if reset {
            String::new()
        } else {
            format!(" (includes list generation, peak before compile {generation_peak})")
        },
        report.fst_bytes,
        report.bytes_per_domain,
        report.combinations,
    );

    let lists = CompiledLists::open(&out)?;
    let mut found = 0;
    lists.walk(
        &ReversedName::from_domain("www.lollipop.sch.uk").ok_or("name")?,
        |_| found += 1,
    );
    if found != 0 {
        return Err("a school domain was matched".into());
    }
    Ok(())
}
