//! `lollipop lists compile` and `lollipop lists update`: compile the
//! configured lists, or download every list that has URLs and then compile.

use std::process::ExitCode;

use anyhow::Result;

use crate::config::Config;
use crate::lists::acquire::update::UpdateOutcome;
use crate::service::settings::compile_lists;
use crate::updates::update_lists;

/// Compiles the configured lists into the data directory.
pub fn compile(config: &Config) -> Result<ExitCode> {
    let report = compile_lists(config)?;
    println!("{report}");
    println!("written to {}", config.compiled_lists_path().display());
    Ok(ExitCode::SUCCESS)
}

/// Downloads every list that has URLs, then compiles; exits 2 when a list
/// could not be updated.
pub fn update(config: &Config) -> Result<ExitCode> {
    let outcomes = update_lists(config, false);
    let mut failed = 0;
    for (name, outcome) in &outcomes {
        println!("{name}: {}", describe_outcome(outcome));
        failed += usize::from(matches!(outcome, UpdateOutcome::Failed { .. }));
    }
    if outcomes.is_empty() {
        println!("no list has urls to download");
    }
    // Read again: a new trust bundle changes the lists to compile.
    let config = config.reread()?;
    let report = compile_lists(&config)?;
    println!("{report}");
    if failed > 0 {
        eprintln!("{failed} list(s) could not be updated; their last good copies stay in use");
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

fn describe_outcome(outcome: &UpdateOutcome) -> String {
    match outcome {
        UpdateOutcome::Updated { entries, url } => format!("updated, {entries} entries from {url}"),
        UpdateOutcome::NotModified => "not modified since the last download".into(),
        UpdateOutcome::Failed {
            reason,
            kept_last_good: true,
        } => format!("FAILED, keeping the last good copy: {reason}"),
        UpdateOutcome::Failed {
            reason,
            kept_last_good: false,
        } => format!("FAILED, no copy yet: {reason}"),
    }
}
