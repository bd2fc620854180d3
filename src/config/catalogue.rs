//! The list catalogue: reads and validates `lists/catalogue.toml` (the
//! categories a school manages and the public or licensed sources that fill
//! them) and `lists/services.toml` (the blocked services), both embedded at
//! build time, so the rest of Lollipop can look them up by name.
//!
//! Formats and archives stay plain strings checked against [`FORMATS`] and
//! [`ARCHIVES`]; `Config::list_entries` maps them to the config's types. Every rule a
//! file breaks is reported with the file and the entry's name.

use std::collections::HashSet;

use serde::Deserialize;

/// Where the embedded data lives, relative to this source file. The one
/// place to change if this file or `lists/` moves.
macro_rules! lists_file {
    ($name:literal) => {
        concat!("../../lists/", $name)
    };
}

const CATALOGUE_TOML: &str = include_str!(lists_file!("catalogue.toml"));
const SERVICES_TOML: &str = include_str!(lists_file!("services.toml"));

/// List formats a source may name.
pub const FORMATS: &[&str] = &["domains", "hosts", "adblock", "rpz", "dnsmasq"];
/// How a source's download may be packed.
pub const ARCHIVES: &[&str] = &["none", "gzip", "tar_gz"];

/// Everything the catalogue files describe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalogue {
    pub categories: Vec<CategoryInfo>,
    pub sources: Vec<CatalogueSource>,
    pub services: Vec<ServiceInfo>,
}

/// Whether a category's domains are blocked or allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CategoryKind {
    Block,
    Allow,
}

/// One category a school can block or allow.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryInfo {
    pub name: String,
    pub kind: CategoryKind,
    /// Plain English, for the head teacher.
    pub description: String,
    /// A hit is raised to the safeguarding lead by default.
    #[serde(default)]
    pub alert: bool,
    /// No profile, allow entry or override can release it.
    #[serde(default)]
    pub locked: bool,
}

/// Whether anyone may fetch a source, or only a licence holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    #[default]
    Public,
    /// The school's filtering provider or membership supplies the URL and
    /// credential; the catalogue holds none.
    Licensed,
    /// A paid feed the school may add (not locked): the vendor supplies the
    /// URL and credential; the catalogue holds none.
    Commercial,
    /// A small list shipped with Lollipop under `lists/`; the config names
    /// its `path`.
    Shipped,
}

/// One list that fills a category.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueSource {
    pub name: String,
    pub category: String,
    #[serde(default)]
    pub kind: SourceKind,
    /// Primary first, then mirrors. Empty for licensed sources.
    #[serde(default)]
    pub urls: Vec<String>,
    /// One of [`FORMATS`]; `None` only for a licensed source, whose
    /// provider states it.
    #[serde(default)]
    pub format: Option<String>,
    /// One of [`ARCHIVES`].
    #[serde(default = "no_archive")]
    pub archive: String,
    /// The file inside the tar, for `tar_gz`.
    #[serde(default)]
    pub member: Option<String>,
    pub licence: String,
    /// False: fetched on the appliance, never shipped in the image.
    pub redistribute: bool,
    pub cadence_hours: u32,
    #[serde(default)]
    pub homepage: Option<String>,
    #[serde(default)]
    pub notes: String,
}

/// One service a school can block by name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceInfo {
    pub name: String,
    pub display_name: String,
    /// What it is, one of [`SERVICE_KINDS`]: shown beside the name.
    pub kind: String,
    /// The domain list, relative to `lists/`.
    pub file: String,
    pub category: String,
}

/// What a service can be, in the words shown after its name.
pub const SERVICE_KINDS: &[&str] = &[
    "game", "video", "music", "social", "chat", "ai", "shopping", "other",
];

impl ServiceInfo {
    /// "Fortnite (game)": the service as the pages name it.
    pub fn label(&self) -> String {
        format!("{} ({})", self.display_name.trim(), self.kind)
    }
}

/// Why the catalogue could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    /// Not TOML, or not the catalogue's shape: a missing or unknown key, or
    /// a kind that is not one of its values. The message gives the line.
    #[error("{origin}/{file}: {message}")]
    Syntax {
        origin: String,
        file: &'static str,
        message: String,
    },
    /// One entry breaks a rule.
    #[error("{origin}/{file}: {entry} \"{name}\": {problem}")]
    Entry {
        origin: String,
        file: &'static str,
        /// "category", "source" or "service".
        entry: &'static str,
        name: String,
        problem: String,
    },
}

/// The catalogue built into this binary.
pub fn embedded() -> Result<Catalogue, CatalogueError> {
    parse(CATALOGUE_TOML, SERVICES_TOML, "embedded")
}

/// Parses and validates both files. `origin` names where they came from (a
/// directory, or "embedded") and starts every error message.
pub fn parse(
    catalogue_toml: &str,
    services_toml: &str,
    origin: &str,
) -> Result<Catalogue, CatalogueError> {
    let syntax = |file, e: toml::de::Error| CatalogueError::Syntax {
        origin: origin.to_owned(),
        file,
        message: e.to_string(),
    };
    let files: CatalogueFile =
        toml::from_str(catalogue_toml).map_err(|e| syntax("catalogue.toml", e))?;
    let services: ServicesFile =
        toml::from_str(services_toml).map_err(|e| syntax("services.toml", e))?;
    let catalogue = Catalogue {
        categories: files.category,
        sources: files.source,
        services: services.service,
    };
    let mut check = Checker {
        origin,
        file: "catalogue.toml",
        seen: HashSet::new(),
    };
    for c in &catalogue.categories {
        check.entry("category", &c.name, category_problem(c))?;
    }
    check.seen.clear();
    for s in &catalogue.sources {
        check.entry("source", &s.name, source_problem(s, &catalogue))?;
    }
    check.seen.clear();
    check.file = "services.toml";
    for s in &catalogue.services {
        check.entry("service", &s.name, service_problem(s, &catalogue))?;
    }
    Ok(catalogue)
}

impl Catalogue {
    pub fn category(&self, name: &str) -> Option<&CategoryInfo> {
        self.categories.iter().find(|c| c.name == name)
    }

    pub fn source(&self, name: &str) -> Option<&CatalogueSource> {
        self.sources.iter().find(|s| s.name == name)
    }

    pub fn service(&self, name: &str) -> Option<&ServiceInfo> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The sources that fill `category`, in file order.
    pub fn sources_for<'a>(
        &'a self,
        category: &'a str,
    ) -> impl Iterator<Item = &'a CatalogueSource> + 'a {
        self.sources.iter().filter(move |s| s.category == category)
    }

    /// Categories nobody can release, in file order.
    pub fn locked_categories(&self) -> impl Iterator<Item = &str> {
        let locked = self.categories.iter().filter(|c| c.locked);
        locked.map(|c| c.name.as_str())
    }

    /// Categories whose hits alert the safeguarding lead by default.
    pub fn alert_categories(&self) -> impl Iterator<Item = &str> {
        let alerting = self.categories.iter().filter(|c| c.alert);
        alerting.map(|c| c.name.as_str())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    #[serde(default)]
    category: Vec<CategoryInfo>,
    #[serde(default)]
    source: Vec<CatalogueSource>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServicesFile {
    #[serde(default)]
    service: Vec<ServiceInfo>,
}

fn no_archive() -> String {
    "none".to_owned()
}

/// Reports entries' problems with the origin and file, and remembers the
/// names seen so far in the current table.
struct Checker<'a> {
    origin: &'a str,
    file: &'static str,
    seen: HashSet<String>,
}

impl Checker<'_> {
    /// Checks what every entry shares, a well-formed name seen once, then
    /// reports `problem`, the first rule of its own that the entry breaks.
    fn entry(
        &mut self,
        entry: &'static str,
        name: &str,
        problem: Option<String>,
    ) -> Result<(), CatalogueError> {
        let problem = if !is_name(name) {
            Some("a name is lower-case letters, digits and '-'".to_owned())
        } else if !self.seen.insert(name.to_owned()) {
            Some(format!("the {entry} name is used twice"))
        } else {
            problem
        };
        match problem {
            None => Ok(()),
            Some(problem) => Err(CatalogueError::Entry {
                origin: self.origin.to_owned(),
                file: self.file,
                entry,
                name: name.to_owned(),
                problem,
            }),
        }
    }
}

fn category_problem(c: &CategoryInfo) -> Option<String> {
    if c.description.trim().is_empty() {
        Some("needs a description".into())
    } else if c.kind == CategoryKind::Allow && (c.locked || c.alert) {
        Some("an allow category can be neither locked nor alerting".into())
    } else {
        None
    }
}

fn source_problem(s: &CatalogueSource, cat: &Catalogue) -> Option<String> {
    let Some(category) = cat.category(&s.category) else {
        return Some(format!("category {:?} is not in the catalogue", s.category));
    };
    let has_member = s.member.as_deref().is_some_and(|m| !m.trim().is_empty());
    let bad_url = s.urls.iter().find(|u| !is_https_url(u));
    let bad_format = s.format.as_deref().filter(|f| !FORMATS.contains(f));
    // The guards make each `?` below infallible.
    Some(match s.kind {
        SourceKind::Licensed if !s.urls.is_empty() => {
            "a licensed source lists no URLs: the school's provider supplies them".into()
        }
        SourceKind::Licensed if !category.locked => format!(
            "a licensed source's category must be locked, and {:?} is not",
            category.name
        ),
        SourceKind::Commercial if !s.urls.is_empty() => {
            "a commercial source lists no URLs: the vendor supplies them".into()
        }
        SourceKind::Shipped if !s.urls.is_empty() => {
            "a shipped source lists no URLs: the config names its file under lists/".into()
        }
        SourceKind::Shipped if s.format.is_none() => {
            format!("a shipped source needs a format, one of {FORMATS:?}")
        }
        SourceKind::Public if s.urls.is_empty() => "a public source needs at least one URL".into(),
        SourceKind::Public if s.format.is_none() => {
            format!("a public source needs a format, one of {FORMATS:?}")
        }
        SourceKind::Public if s.cadence_hours == 0 => "cadence_hours must be at least 1".into(),
        _ if bad_url.is_some() => format!("URL {:?} is not an https:// address", bad_url?),
        _ if bad_format.is_some() => format!("format {:?} is not one of {FORMATS:?}", bad_format?),
        _ if !ARCHIVES.contains(&s.archive.as_str()) => {
            format!("archive {:?} is not one of {ARCHIVES:?}", s.archive)
        }
        _ if s.archive == "tar_gz" && !has_member => {
            "a tar_gz source needs member, the file to read inside the tar".into()
        }
        _ if s.archive != "tar_gz" && s.member.is_some() => {
            "member is only for tar_gz archives".into()
        }
        _ if s.licence.trim().is_empty() => {
            "needs a licence: an SPDX id, or a few words when there is none".into()
        }
        _ => return None,
    })
}

fn service_problem(s: &ServiceInfo, cat: &Catalogue) -> Option<String> {
    Some(match cat.category(&s.category) {
        None => format!("category {:?} is not in the catalogue", s.category),
        Some(c) if c.kind != CategoryKind::Block => format!(
            "category {:?} is an allow category; a service belongs to a block one",
            c.name
        ),
        _ if s.display_name.trim().is_empty() => "needs a display_name".into(),
        _ if !SERVICE_KINDS.contains(&s.kind.as_str()) => {
            format!("kind {:?} is not one of {SERVICE_KINDS:?}", s.kind)
        }
        _ if !is_list_path(&s.file) => {
            format!(
                "file {:?} must be a .txt path inside lists/, without '..'",
                s.file
            )
        }
        _ => return None,
    })
}

/// Lower-case letters, digits and '-', as the config's category names.
fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Lists are fetched over TLS only: a tampered list could unblock anything.
fn is_https_url(url: &str) -> bool {
    url.strip_prefix("https://").is_some_and(|rest| {
        !rest.is_empty() && !rest.starts_with('/') && !url.chars().any(char::is_whitespace)
    })
}

/// A relative `.txt` path that stays inside `lists/`.
fn is_list_path(path: &str) -> bool {
    path.ends_with(".txt")
        && !path.contains('\\')
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

/// The category (and list name) of a service: `service-youtube`.
pub fn service_category(service: &str) -> String {
    format!("service-{service}")
}

/// A category as people read it: a service's label ("Fortnite (game)"),
/// otherwise the category's own name, which is already a plain word
/// ("gambling", "self-harm"). A service the catalogue no longer has reads
/// as its name, never as `service-...`.
pub fn category_label(category: &str, catalogue: Option<&Catalogue>) -> String {
    match category.strip_prefix("service-") {
        Some(service) => catalogue
            .and_then(|c| c.service(service))
            .map_or_else(|| service.replace('-', " "), ServiceInfo::label),
        None => category.to_string(),
    }
}

#[cfg(test)]
mod tests;
