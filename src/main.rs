//! The `lollipop` command: run the resolver, compile lists, check a name,
//! read the log and reports, manage the status page's users, check the config.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use lollipop::app;
use lollipop::config::Config;
use lollipop::lists::acquire::update::UpdateOutcome;
use lollipop::name::{ReversedName, normalise_domain};
use lollipop::policy::special::special_answer;

#[derive(Parser)]
#[command(
    name = "lollipop",
    version,
    about = "DNS filtering resolver for schools"
)]
struct Cli {
    /// The config file. Without it, the embedded default is used
    /// (127.0.0.1:5353, sample lists under ./lists).
    #[arg(long, global = true, env = "LOLLIPOP_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the resolver.
    Run,
    /// Work with the category lists.
    Lists {
        #[command(subcommand)]
        command: ListsCommand,
    },
    /// Show what a client would get for a name, and why.
    Check {
        /// The name to look up, e.g. www.example.com.
        name: String,
        /// The client's IP address.
        #[arg(long)]
        client: IpAddr,
        /// The listen address the client uses (its VLAN), e.g. 10.0.10.1:53.
        #[arg(long)]
        listener: Option<String>,
    },
    /// The blocked-lookup log, newest first (or CSV, oldest first).
    Log {
        /// First day, YYYY-MM-DD in the school's time zone.
        #[arg(long)]
        from: Option<String>,
        /// Last day (inclusive), YYYY-MM-DD.
        #[arg(long)]
        to: Option<String>,
        /// The last N days.
        #[arg(long, conflicts_with = "from")]
        days: Option<u32>,
        /// Device name or IP address (part of it is enough).
        #[arg(long)]
        device: Option<String>,
        #[arg(long)]
        profile: Option<String>,
        #[arg(long)]
        category: Option<String>,
        /// Part of the name looked up.
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// CSV for a spreadsheet (RFC 4180; times in local time and UTC).
        #[arg(long)]
        csv: bool,
    },
    /// The filtering report (printable HTML): blocked attempts by category,
    /// profile and device, top names, alerts sent, list health.
    Report {
        /// First day, YYYY-MM-DD (default: seven days ago).
        #[arg(long)]
        from: Option<String>,
        /// Last day, inclusive (default: up to now).
        #[arg(long)]
        to: Option<String>,
        /// Write the HTML here instead of to standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Plain text instead of HTML.
        #[arg(long)]
        text: bool,
        /// Email it to the [alerts.email] recipients.
        #[arg(long)]
        email: bool,
    },
    /// Print a one-time link (valid 24 hours) that creates the status
    /// page's first administrator.
    SetupLink,
    /// Set a status-page user's password (creating the user if new).
    Passwd {
        /// The user name.
        name: String,
        /// viewer (head, DSL), teacher (override codes) or admin.
        #[arg(long)]
        role: Option<String>,
    },
    /// Check the config file and report every problem.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand)]
enum ListsCommand {
    /// Compile the configured lists into the data directory.
    Compile,
    /// Download every list that has URLs, then compile.
    Update,
    /// Each list: entries, bad lines, last download, age, licence.
    Status,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the config: errors name the file, line and key.
    Check,
}

/// mimalloc: per-thread free lists, so the DNS threads allocate and the
/// block log's writer frees without a shared lock (glibc with one arena
/// spent ~12% of the resolver's CPU in malloc and its lock, and with an
/// arena per thread held ~7 MB more; docs/bench/README.md). Built without
/// transparent huge pages, which would make the resident set 3.5 MB larger.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("lollipop: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    // hickory-server logs every response at INFO: far too much for a school
    // network's journal, and it costs throughput.
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOLLIPOP_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            "info,hickory_server=warn,hickory_resolver=warn,hickory_net=warn",
        )
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
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

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    Ok(match &cli.config {
        Some(path) => Config::load(path)?,
        None => Config::embedded_default()?,
    })
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = load_config(&cli)?;
    match &cli.command {
        Command::Run => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(app::serve(config, app::stop_signal()))?;
        }
        Command::Lists {
            command: ListsCommand::Compile,
        } => {
            let report = app::compile_lists(&config)?;
            println!("{report}");
            println!("written to {}", config.compiled_lists_path().display());
        }
        Command::Lists {
            command: ListsCommand::Update,
        } => {
            let outcomes = lollipop::updates::update_lists(&config, false);
            let mut failed = 0;
            for (name, outcome) in &outcomes {
                println!("{name}: {}", describe_outcome(outcome));
                failed += usize::from(matches!(outcome, UpdateOutcome::Failed { .. }));
            }
            if outcomes.is_empty() {
                println!("no list has urls to download");
            }
            let report = app::compile_lists(&config)?;
            println!("{report}");
            if failed > 0 {
                eprintln!(
                    "{failed} list(s) could not be updated; their last good copies stay in use"
                );
                return Ok(ExitCode::from(2));
            }
        }
        Command::Lists {
            command: ListsCommand::Status,
        } => print!("{}", lollipop::status::lists_status(&config)),
        Command::Check {
            name,
            client,
            listener,
        } => {
            let domain = normalise_domain(name)
                .map_err(|error| anyhow::anyhow!("'{name}' is not a domain name: {error}"))?;
            let reversed = ReversedName::from_domain(&domain)
                .ok_or_else(|| anyhow::anyhow!("'{name}' is too long for a DNS name"))?;
            let listener_index = match listener {
                None => None,
                Some(address) => Some(
                    config
                        .listen
                        .iter()
                        .position(|l| l.address.get_ref() == address)
                        .ok_or_else(|| {
                            anyhow::anyhow!("no [[listen]] address is {address} in the config")
                        })?,
                ),
            };
            let policy = app::build_policy(&config, app::load_lists(&config)?)?;
            let profile = policy.profile_for(*client, listener_index);
            println!("name:     {domain}");
            println!("client:   {client}");
            if let Some(special) = special_answer(&reversed, &config.circumvention) {
                println!("profile:  {}", policy.profile(profile).name);
                println!("decision: answered by Lollipop itself: {special:?}");
                return Ok(ExitCode::SUCCESS);
            }
            let decision = policy.decide(profile, &reversed);
            print!("{}", policy.explain(profile, &reversed, &decision));
            if !decision.is_blocked() {
                let safe_search = policy.profile(profile).safe_search;
                if let Some(rewrite) = policy.safe_search.rewrite(&domain, safe_search) {
                    println!(
                        "rewrite:  {domain} -> {} ({} safe search)",
                        rewrite.target, rewrite.provider
                    );
                }
            }
        }
        Command::Log {
            from,
            to,
            days,
            device,
            profile,
            category,
            name,
            limit,
            csv,
        } => {
            let request = lollipop::log_command::LogRequest {
                from: from.clone(),
                to: to.clone(),
                days: *days,
                device: device.clone(),
                profile: profile.clone(),
                category: category.clone(),
                name: name.clone(),
                limit: *limit,
                csv: *csv,
            };
            lollipop::log_command::run(&config, &request, &mut std::io::stdout().lock())?;
        }
        Command::Report {
            from,
            to,
            out,
            text,
            email,
        } => {
            let tz = config.log.time_zone;
            let now_ms = lollipop::updates::now_unix() as i64 * 1000;
            let to_ms = match to {
                Some(day) => tz.day_end(lollipop::log_command::start_of_day(day, tz)?),
                None => now_ms,
            };
            let from_ms = match from {
                Some(day) => lollipop::log_command::start_of_day(day, tz)?,
                None => to_ms - 7 * 86_400_000,
            };
            if *email {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(lollipop::report::email_report(&config, from_ms, to_ms))?;
                println!("report sent");
                return Ok(ExitCode::SUCCESS);
            }
            let report = lollipop::report::build(&config, from_ms, to_ms)?;
            let body = if *text {
                report.to_text()
            } else {
                report.to_html()
            };
            match out {
                Some(path) => std::fs::write(path, body)
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?,
                None => print!("{body}"),
            }
        }
        Command::SetupLink => println!("{}", lollipop::admin_command::setup_link(&config)?),
        Command::Passwd { name, role } => println!(
            "{}",
            lollipop::admin_command::passwd(&config, name, role.as_deref())?
        ),
        Command::Config {
            command: ConfigCommand::Check,
        } => {
            println!(
                "{}: OK ({} profiles, {} listen addresses, {} lists, {} upstreams)",
                config.origin.display_name,
                config.profiles.len(),
                config.listen.len(),
                config.lists.len(),
                config.upstream.len()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
