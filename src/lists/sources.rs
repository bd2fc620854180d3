//! The config's `[[lists]]` entries made concrete: a local file, a download
//! (its URLs, limits and cadence, and the downloaded copy the compiler
//! reads), a catalogue source, or a licensed feed whose entries stay hidden.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{Config, ListConfig};

use super::catalogue::{Catalogue, SourceKind};
use super::compile::SourceSpec;
use super::parse::ListFormat;
use super::update::{Archive, FetchSpec, local_copy_path};

/// One list as the compiler and the updater see it.
#[derive(Debug, Clone)]
pub struct ListSource {
    /// What the compiler reads (for a download: the last good copy).
    pub spec: SourceSpec,
    /// How to download it, for lists that are downloaded.
    pub fetch: Option<FetchSpec>,
    pub licence: Option<String>,
}

/// A problem with the `index`-th `[[lists]]` entry, and the key it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListProblem {
    pub index: usize,
    pub key: &'static str,
    pub message: String,
}

/// The category (and list name) of a service: `service-youtube`.
pub fn service_category(service: &str) -> String {
    format!("service-{service}")
}

/// Where downloaded lists and their state are kept.
pub fn downloads_dir(config: &Config) -> PathBuf {
    config.resolve_path(&config.server.data_dir).join("sources")
}

/// Resolves every `[[lists]]` entry, reporting every problem found.
pub fn resolve(
    config: &Config,
    catalogue: &Catalogue,
) -> Result<Vec<ListSource>, Vec<ListProblem>> {
    let mut sources = Vec::new();
    let mut problems = Vec::new();
    for (index, list) in config.lists.iter().enumerate() {
        match resolve_one(config, catalogue, list) {
            Ok(source) => sources.push(source),
            Err((key, message)) => problems.push(ListProblem {
                index,
                key,
                message,
            }),
        }
    }
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
    if problems.is_empty() {
        Ok(sources)
    } else {
        Err(problems)
    }
}

fn resolve_one(
    config: &Config,
    catalogue: &Catalogue,
    list: &ListConfig,
) -> Result<ListSource, (&'static str, String)> {
    let name = list.name.get_ref().clone();
    super::update::check_name(&name).map_err(|message| ("name", message))?;
    let from_catalogue = match &list.catalogue {
        None => None,
        Some(wanted) => Some(catalogue.source(wanted.get_ref()).ok_or_else(|| {
            (
                "catalogue",
                format!(
                    "no source named '{}' in lists/catalogue.toml",
                    wanted.get_ref()
                ),
            )
        })?),
    };

    let category = list
        .category
        .as_ref()
        .map(|c| c.get_ref().clone())
        .or_else(|| from_catalogue.map(|s| s.category.clone()))
        .ok_or(("category", "every list needs a category".to_string()))?;
    let format = match (
        list.format,
        from_catalogue.and_then(|s| s.format.as_deref()),
    ) {
        (Some(format), _) => format,
        (None, Some(text)) => parse_format(text).ok_or((
            "format",
            format!("the catalogue's format '{text}' is not one Lollipop reads"),
        ))?,
        (None, None) => ListFormat::Domains,
    };
    let mut urls = list.urls.clone();
    if urls.is_empty()
        && let Some(source) = from_catalogue
    {
        urls = source.urls.clone();
    }
    let licensed = list.licensed || from_catalogue.is_some_and(|s| s.kind == SourceKind::Licensed);
    let locked = config
        .blocking
        .locked_categories
        .iter()
        .any(|c| *c.get_ref() == category);
    if licensed && !locked {
        return Err((
            "category",
            format!(
                "a licensed feed's category must be locked: add '{category}' to blocking.locked_categories"
            ),
        ));
    }
    if licensed && list.credential_file.is_none() {
        return Err((
            "credential_file",
            "a licensed feed needs credential_file (the token or user:password your provider gave)"
                .into(),
        ));
    }

    let spec = |path: PathBuf| SourceSpec {
        name: name.clone(),
        path,
        format,
        category: category.clone(),
        hidden: licensed,
    };
    let licence = from_catalogue.map(|s| s.licence.clone());
    match (&list.path, urls.is_empty()) {
        (Some(_), false) => Err((
            "path",
            "give either path (a local file) or urls (a download), not both".into(),
        )),
        (None, true) => Err((
            "urls",
            if licensed {
                "a licensed feed needs urls: the address your filtering provider gave".into()
            } else {
                "give path (a local file), urls (a download) or catalogue (a known source)".into()
            },
        )),
        (Some(path), true) => Ok(ListSource {
            spec: spec(config.resolve_path(path)),
            fetch: None,
            licence,
        }),
        (None, false) => {
            let mut fetch = FetchSpec::new(name.clone(), urls, format);
            fetch.archive = match (&list.archive, from_catalogue) {
                (Some(archive), _) => archive.clone(),
                (None, Some(source)) => match (source.archive.as_str(), &source.member) {
                    ("gzip", _) => Archive::Gzip,
                    ("tar_gz", Some(member)) => Archive::TarGz {
                        member: member.clone(),
                    },
                    _ => Archive::None,
                },
                (None, None) => Archive::None,
            };
            fetch.credential_file = list
                .credential_file
                .as_ref()
                .map(|p| config.resolve_path(p));
            if let Some(hours) = list
                .cadence_hours
                .or(from_catalogue.map(|s| u64::from(s.cadence_hours)))
            {
                fetch.cadence = Duration::from_secs(hours.max(1) * 3600);
            }
            if let Some(mb) = list.max_mb {
                fetch.max_bytes = mb.saturating_mul(1024 * 1024);
            }
            if let Some(secs) = list.timeout_secs {
                fetch.timeout = Duration::from_secs(secs.max(1));
            }
            for (key, value, target) in [
                (
                    "min_parse_ratio",
                    list.min_parse_ratio,
                    &mut fetch.min_parse_ratio,
                ),
                ("max_shrink", list.max_shrink, &mut fetch.max_shrink),
            ] {
                if let Some(value) = value {
                    if !(0.0..=1.0).contains(&value) {
                        return Err((key, format!("{value} is not between 0 and 1")));
                    }
                    *target = value;
                }
            }
            Ok(ListSource {
                spec: spec(local_copy_path(&downloads_dir(config), &name)),
                fetch: Some(fetch),
                licence,
            })
        }
    }
}

fn parse_format(text: &str) -> Option<ListFormat> {
    Some(match text {
        "domains" => ListFormat::Domains,
        "hosts" => ListFormat::Hosts,
        "adblock" => ListFormat::Adblock,
        "rpz" => ListFormat::Rpz,
        "dnsmasq" => ListFormat::Dnsmasq,
        _ => return None,
    })
}
