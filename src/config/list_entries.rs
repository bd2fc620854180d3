//! The `[[lists]]` entries checked and made concrete: the catalogue's
//! defaults filled in, each entry's one origin (a local file or a download
//! with its limits), and the words the file uses for a list's format and
//! packing. `lists::acquire::sources` builds what the compiler and the
//! downloader read from these.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::catalogue::{Catalogue, SourceKind};
use super::{Config, ListConfig};

/// How a list file is written.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListFormat {
    /// One domain per line; `*.` or `.` prefixes allowed and ignored.
    #[default]
    Domains,
    /// `ADDRESS name [name...]`, as in `/etc/hosts`.
    Hosts,
    /// Adblock / AdGuard DNS filter syntax: `||example.com^`, `@@||...`.
    Adblock,
    /// A DNS response policy zone file: `example.com CNAME .`.
    Rpz,
    /// dnsmasq configuration: `address=/example.com/0.0.0.0`.
    Dnsmasq,
}

/// How the served file is packed. In TOML: `"none"` (the default),
/// `"gzip"`, or `{ tar_gz = "path/of/member/in/archive" }`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(from = "ArchiveRepr", into = "ArchiveRepr")]
pub enum Archive {
    #[default]
    None,
    Gzip,
    /// The list is the file at `member` inside a gzipped tar.
    TarGz {
        member: String,
    },
}

/// The serde shape: `"none"`, `"gzip"` or `{ tar_gz = "member/path" }`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ArchiveRepr {
    None,
    Gzip,
    TarGz(String),
}

impl From<ArchiveRepr> for Archive {
    fn from(r: ArchiveRepr) -> Self {
        match r {
            ArchiveRepr::None => Archive::None,
            ArchiveRepr::Gzip => Archive::Gzip,
            ArchiveRepr::TarGz(member) => Archive::TarGz { member },
        }
    }
}

impl From<Archive> for ArchiveRepr {
    fn from(a: Archive) -> Self {
        match a {
            Archive::None => ArchiveRepr::None,
            Archive::Gzip => ArchiveRepr::Gzip,
            Archive::TarGz { member } => ArchiveRepr::TarGz(member),
        }
    }
}

/// A `[[lists]]` entry with the catalogue's defaults filled in and every
/// rule checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ListEntry {
    pub name: String,
    pub category: String,
    pub format: ListFormat,
    /// A licensed feed: its entries are never shown, only counts and hits.
    pub licensed: bool,
    /// The catalogue source's licence, for a catalogue entry.
    pub licence: Option<String>,
    pub origin: ListOrigin,
}

/// Where a list's lines come from.
#[derive(Debug, Clone, PartialEq)]
pub enum ListOrigin {
    /// A local file, made absolute against the config file's directory.
    File(PathBuf),
    Download(Download),
}

/// A downloaded list: where from, how it is packed, and the limits the
/// entry sets (`None`: the downloader's default).
#[derive(Debug, Clone, PartialEq)]
pub struct Download {
    /// Primary first, then mirrors.
    pub urls: Vec<String>,
    pub archive: Archive,
    /// Made absolute against the config file's directory.
    pub credential_file: Option<PathBuf>,
    pub cadence_hours: Option<u64>,
    pub max_mb: Option<u64>,
    pub timeout_secs: Option<u64>,
    /// Checked to be between 0 and 1.
    pub min_parse_ratio: Option<f64>,
    /// Checked to be between 0 and 1.
    pub max_shrink: Option<f64>,
}

/// A problem with the `index`-th `[[lists]]` entry, and the key it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListProblem {
    pub index: usize,
    pub key: &'static str,
    pub message: String,
}

/// A list name becomes a file name, so it must not be able to climb out of
/// the store or hide as a dot-file.
pub fn check_list_name(name: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.len() > 100 || name.starts_with('.') || !name.chars().all(ok_char) {
        return Err(format!(
            "list name '{name}' must be 1-100 letters, digits, '-', '_' or '.', not starting with '.'"
        ));
    }
    Ok(())
}

impl Config {
    /// Checks every `[[lists]]` entry against the catalogue, reporting every
    /// problem found.
    pub fn list_entries(&self, catalogue: &Catalogue) -> Result<Vec<ListEntry>, Vec<ListProblem>> {
        let mut entries = Vec::new();
        let mut problems = Vec::new();
        for (index, list) in self.lists.iter().enumerate() {
            match self.list_entry(catalogue, list) {
                Ok(entry) => entries.push(entry),
                Err((key, message)) => problems.push(ListProblem {
                    index,
                    key,
                    message,
                }),
            }
        }
        if problems.is_empty() {
            Ok(entries)
        } else {
            Err(problems)
        }
    }

    fn list_entry(
        &self,
        catalogue: &Catalogue,
        list: &ListConfig,
    ) -> Result<ListEntry, (&'static str, String)> {
        let name = list.name.get_ref().clone();
        check_list_name(&name).map_err(|message| ("name", message))?;
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
        let licensed =
            list.licensed || from_catalogue.is_some_and(|s| s.kind == SourceKind::Licensed);
        let locked = self
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

        let origin = match (&list.path, urls.is_empty()) {
            (Some(_), false) => {
                return Err((
                    "path",
                    "give either path (a local file) or urls (a download), not both".into(),
                ));
            }
            (None, true) => {
                return Err((
                    "urls",
                    if licensed {
                        "a licensed feed needs urls: the address your filtering provider gave"
                            .into()
                    } else if from_catalogue.is_some_and(|s| s.kind == SourceKind::Commercial) {
                        "a commercial feed needs urls (and credential_file if it asks for one): the address your vendor gave; it is not public"
                            .into()
                    } else {
                        "give path (a local file), urls (a download) or catalogue (a known source)"
                            .into()
                    },
                ));
            }
            (Some(path), true) => ListOrigin::File(self.resolve_path(path)),
            (None, false) => {
                for (key, value) in [
                    ("min_parse_ratio", list.min_parse_ratio),
                    ("max_shrink", list.max_shrink),
                ] {
                    if let Some(value) = value
                        && !(0.0..=1.0).contains(&value)
                    {
                        return Err((key, format!("{value} is not between 0 and 1")));
                    }
                }
                ListOrigin::Download(Download {
                    urls,
                    archive: match (&list.archive, from_catalogue) {
                        (Some(archive), _) => archive.clone(),
                        (None, Some(source)) => match (source.archive.as_str(), &source.member) {
                            ("gzip", _) => Archive::Gzip,
                            ("tar_gz", Some(member)) => Archive::TarGz {
                                member: member.clone(),
                            },
                            _ => Archive::None,
                        },
                        (None, None) => Archive::None,
                    },
                    credential_file: list.credential_file.as_ref().map(|p| self.resolve_path(p)),
                    cadence_hours: list
                        .cadence_hours
                        .or(from_catalogue.map(|s| u64::from(s.cadence_hours))),
                    max_mb: list.max_mb,
                    timeout_secs: list.timeout_secs,
                    min_parse_ratio: list.min_parse_ratio,
                    max_shrink: list.max_shrink,
                })
            }
        };
        Ok(ListEntry {
            name,
            category,
            format,
            licensed,
            licence: from_catalogue.map(|s| s.licence.clone()),
            origin,
        })
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
