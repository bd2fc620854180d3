//! The `lollipop` command: run the resolver, compile lists, check a name,
//! read the log and reports, manage the status page's users, check the config.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use lollipop::cli;
use lollipop::config::Config;
use lollipop::service;

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
        /// viewer (head, governors), teacher (override codes), dsl (safeguarding lead) or admin.
        #[arg(long)]
        role: Option<String>,
    },
    /// An HA pair: `pair` (on the primary) makes the pair key and prints
    /// the secondary's [cluster] lines.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Check the config file and report every problem.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// A trust's side: its key, its signed policy bundle, its dashboard.
    Trust {
        #[command(subcommand)]
        command: TrustCommand,
    },
}

#[derive(Subcommand)]
enum TrustCommand {
    /// Make the trust's signing key; prints the public key for the schools.
    Keygen {
        /// Where to write the private key (never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign a policy bundle for the schools to fetch.
    Sign {
        /// The private key from `trust keygen`.
        #[arg(long)]
        key: PathBuf,
        /// The bundle's TOML.
        #[arg(long = "in")]
        input: PathBuf,
        /// The signed file to publish.
        #[arg(long)]
        out: PathBuf,
    },
    /// The trust dashboard: each school's health, blocked attempts,
    /// alerts and weekly reports, read from the trust's PostgreSQL.
    Serve {
        /// The trust's database, e.g. "host=10.0.0.5 user=lollipop dbname=trust".
        #[arg(long, env = "LOLLIPOP_TRUST_DATABASE")]
        database: String,
        /// The CA that signed the database's certificate, when it is the
        /// trust's own (with sslmode=require in --database).
        #[arg(long)]
        database_ca: Option<PathBuf>,
        /// Where the dashboard listens.
        #[arg(long, default_value = "127.0.0.1:8444")]
        listen: std::net::SocketAddr,
        /// The users' file (`trust passwd` makes it).
        #[arg(long)]
        users: PathBuf,
        /// Rows older than this many days are deleted: the schools'
        /// blocked_retention_days.
        #[arg(long, default_value_t = 365)]
        retention_days: u32,
    },
    /// Set a trust dashboard user's password (creating the user if new).
    Passwd {
        /// The users' file.
        #[arg(long)]
        users: PathBuf,
        name: String,
        /// viewer, dsl (safeguarding lead) or admin.
        #[arg(long)]
        role: Option<String>,
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
enum ClusterCommand {
    /// Make the pair key (if there is none) and print what the secondary's
    /// config needs: the primary's address and certificate pin.
    Pair,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the config: errors name the file, line and key. Also says
    /// which changes since Lollipop started need a restart to take effect.
    Check,
}

/// mimalloc: per-thread free lists, so the DNS threads allocate and the
/// block log's writer frees without a shared lock (glibc with one arena
/// spent ~12% of the resolver's CPU in malloc and its lock, and with an
/// arena per thread held ~7 MB more; docs/bench/README.md). Built without
/// transparent huge pages, which would make the resident set 3.5 MB larger.
/// The `system-allocator` feature leaves it out for a heap profiler.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its `mi_option_t` number in
/// mimalloc.h, the same in versions 2 and 3).
#[cfg(not(feature = "system-allocator"))]
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Gives memory freed by the caches and the block log's queue back to the
/// system at once rather than after mimalloc's default 10 ms, which an
/// idle thread never reaches: the resident set after a burst of traffic
/// falls by about a fifth (bench/memory.sh) at no measurable CPU cost.
fn tune_allocator() {
    #[cfg(not(feature = "system-allocator"))]
    // SAFETY: called first thing in `main`, before any other thread runs
    // (mimalloc's option setters are not thread safe).
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
    }
}

fn main() -> ExitCode {
    tune_allocator();
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
    // hickory's crates log per query and per malformed packet (hickory-proto
    // warns on every bad EDNS option): far too much for a school network's
    // journal, and a client could flood it. Lollipop counts those instead.
    // The recursor warns on every NODATA answer to a QNAME-minimisation
    // probe (several per name) and on every Bogus answer, which a client
    // can cause at will.
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOLLIPOP_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            "info,hickory_resolver=warn,hickory_resolver::recursor=error,hickory_net=warn,\
             hickory_net::dnssec=error,hickory_proto=error",
        )
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    Ok(match &cli.config {
        Some(path) => Config::load(path)?,
        None => Config::embedded_default()?,
    })
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // The trust's commands run on the trust's machine, without a school's
    // config.
    if let Command::Trust { command } = &cli.command {
        match command {
            TrustCommand::Keygen { out } => println!("{}", cli::trust::keygen(out)?),
            TrustCommand::Sign { key, input, out } => {
                println!("{}", cli::trust::sign(key, input, out)?)
            }
            TrustCommand::Passwd { users, name, role } => {
                println!("{}", cli::users::passwd_in(users, name, role.as_deref())?)
            }
            TrustCommand::Serve {
                database,
                database_ca,
                listen,
                users,
                retention_days,
            } => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(lollipop::fleet::serve(lollipop::fleet::FleetOptions {
                    database: database.clone(),
                    database_ca: database_ca.clone(),
                    listen: *listen,
                    users: users.clone(),
                    retention_days: *retention_days,
                }))?;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let config = load_config(&cli)?;
    // On the secondary of a pair, what the commands show is what it runs:
    // the primary's settings it last had (the service reads them itself).
    let config = match &cli.command {
        Command::Lists { .. }
        | Command::Check { .. }
        | Command::Log { .. }
        | Command::Report { .. } => service::follow::followed_config(config),
        _ => config,
    };
    match &cli.command {
        Command::Run => {
            // The blocking pool (SQLite, password hashes, list files) stays
            // well inside the unit's TasksMax, so a burst of work waits for
            // a thread instead of failing to start one.
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .max_blocking_threads(64)
                .enable_all()
                .build()?;
            runtime.block_on(service::serve(config, service::stop_signal()))?;
        }
        Command::Lists {
            command: ListsCommand::Compile,
        } => return cli::lists::compile(&config),
        Command::Lists {
            command: ListsCommand::Update,
        } => return cli::lists::update(&config),
        Command::Lists {
            command: ListsCommand::Status,
        } => print!("{}", cli::status::lists_status(&config)),
        Command::Check {
            name,
            client,
            listener,
        } => cli::check::run(&config, name, client, listener.as_ref())?,
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
            let request = cli::log::LogRequest {
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
            cli::log::run(&config, &request, &mut std::io::stdout().lock())?;
        }
        Command::Report {
            from,
            to,
            out,
            text,
            email,
        } => cli::report::run(
            &config,
            &cli::report::ReportRequest {
                from: from.clone(),
                to: to.clone(),
                out: out.clone(),
                text: *text,
                email: *email,
            },
        )?,
        Command::SetupLink => println!("{}", cli::users::setup_link(&config)?),
        Command::Passwd { name, role } => {
            println!("{}", cli::users::passwd(&config, name, role.as_deref())?)
        }
        Command::Cluster {
            command: ClusterCommand::Pair,
        } => print!("{}", cli::cluster::pair(&config)?),
        Command::Config {
            command: ConfigCommand::Check,
        } => print!("{}", cli::config_check::report(&config)),
        Command::Trust { .. } => {}
    }
    Ok(ExitCode::SUCCESS)
}
