//! The config's checked `[[lists]]` entries made into what the compiler and
//! the updater read: a local file, a download (its URLs, limits and cadence,
//! and the downloaded copy the compiler reads), or a licensed feed whose
//! entries stay hidden; plus one list per service a profile names.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::catalogue::{Catalogue, service_category};
use crate::config::{Config, ListEntry, ListFormat, ListOrigin, embedded_catalogue};
use crate::lists::compile::SourceSpec;

use super::update::{FetchSpec, local_copy_path};

/// One list as the compiler and the updater see it.
#[derive(Debug, Clone)]
pub struct ListSource {
    /// What the compiler reads (for a download: the last good copy).
    pub spec: SourceSpec,
    /// How to download it, for lists that are downloaded.
    pub fetch: Option<FetchSpec>,
    pub licence: Option<String>,
}

/// Where downloaded lists and their state are kept.
pub fn downloads_dir(config: &Config) -> PathBuf {
    config.downloads_dir()
}

/// The lists as the compiler and updater see them. Validation has already
/// checked the entries once, so this does not fail on a loaded config.
pub fn configured(config: &Config) -> Vec<ListSource> {
    embedded_catalogue()
        .ok()
        .and_then(|catalogue| resolve(config, catalogue))
        .unwrap_or_default()
}

/// Every `[[lists]]` entry and every service a profile names, or `None`
/// when an entry has a problem (validation reports it).
pub fn resolve(config: &Config, catalogue: &Catalogue) -> Option<Vec<ListSource>> {
    let mut sources: Vec<ListSource> = config
        .list_entries(catalogue)
        .ok()?
        .into_iter()
        .map(|entry| source(config, entry))
        .collect();
    // Each service a profile names becomes a list of its own category.
    let mut services: Vec<&str> = config
        .profiles
        .values()
        .flat_map(|p| p.block_services.iter().chain(&p.allow_services))
        .map(|s| s.get_ref().as_str())
        .collect();
    services.sort_unstable();
    services.dedup();
    for wanted in services {
        // Unknown names are reported by the profile checks.
        if let Some(service) = catalogue.service(wanted) {
            let file = service.file.strip_prefix("lists/").unwrap_or(&service.file);
            sources.push(ListSource {
                spec: SourceSpec {
                    name: service_category(wanted),
                    path: config.resolve_path(&config.server.lists_dir).join(file),
                    format: ListFormat::Domains,
                    category: service_category(wanted),
                    hidden: false,
                },
                fetch: None,
                licence: None,
            });
        }
    }
    Some(sources)
}

fn source(config: &Config, entry: ListEntry) -> ListSource {
    let spec = |path: PathBuf| SourceSpec {
        name: entry.name.clone(),
        path,
        format: entry.format,
        category: entry.category.clone(),
        hidden: entry.licensed,
    };
    match entry.origin {
        ListOrigin::File(path) => ListSource {
            spec: spec(path),
            fetch: None,
            licence: entry.licence,
        },
        ListOrigin::Download(download) => {
            let mut fetch = FetchSpec::new(entry.name.clone(), download.urls, entry.format);
            fetch.archive = download.archive;
            fetch.credential_file = download.credential_file;
            if let Some(hours) = download.cadence_hours {
                fetch.cadence = Duration::from_secs(hours.max(1) * 3600);
            }
            if let Some(mb) = download.max_mb {
                fetch.max_bytes = mb.saturating_mul(1024 * 1024);
            }
            if let Some(secs) = download.timeout_secs {
                fetch.timeout = Duration::from_secs(secs.max(1));
            }
            if let Some(ratio) = download.min_parse_ratio {
                fetch.min_parse_ratio = ratio;
            }
            if let Some(shrink) = download.max_shrink {
                fetch.max_shrink = shrink;
            }
            ListSource {
                spec: spec(local_copy_path(&downloads_dir(config), &entry.name)),
                fetch: Some(fetch),
                licence: entry.licence,
            }
        }
    }
}
