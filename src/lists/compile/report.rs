//! What a compile did, per list and overall, for logs and the admin UI, and
//! its short plain-text form for a technician.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::lists::SourceInfo;

/// What a compile did.
#[derive(Debug, Clone, Serialize)]
pub struct CompileReport {
    pub output: PathBuf,
    pub sources: Vec<SourceReport>,
    pub unique_domains: u64,
    pub combinations: usize,
    pub fst_bytes: u64,
    pub bytes_per_domain: f64,
    pub elapsed_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceReport {
    /// As recorded in the manifest: `entries` counts distinct domains,
    /// `bad_lines`, `unsupported` and `url_level` count lines.
    #[serde(flatten)]
    pub info: SourceInfo,
    pub lines: u64,
    /// Blank lines, comments, headers and records that carry no rule.
    pub skipped_lines: u64,
    /// Distinct domains this source has an exception (allow) entry for.
    pub exceptions: u64,
    /// Distinct domains this source has an important block for.
    pub important: u64,
    /// The first few bad lines; always empty for a hidden source.
    pub bad_samples: Vec<SampleLine>,
    /// The first few unsupported rules; always empty for a hidden source.
    pub unsupported_samples: Vec<SampleLine>,
}

/// A quoted line of a list, and what was wrong with it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SampleLine {
    /// 1-based.
    pub line: u64,
    pub text: String,
    pub reason: String,
}

/// Digits grouped in threes, so 2000000 reads as 2,000,000.
struct Count(u64);

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.0.to_string();
        for (i, d) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                f.write_str(",")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl fmt::Display for CompileReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Compiled {} unique domains from {} lists into {} ({:.1} MB, {:.1} bytes per domain) in {:.2} s.",
            Count(self.unique_domains),
            self.sources.len(),
            self.output.display(),
            self.fst_bytes as f64 / 1_000_000.0,
            self.bytes_per_domain,
            self.elapsed_ms as f64 / 1000.0,
        )?;
        for s in &self.sources {
            s.fmt(f)?;
        }
        Ok(())
    }
}

impl fmt::Display for SourceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.info;
        let hidden = if i.hidden { ", hidden" } else { "" };
        write!(f, "  {} [{}{hidden}]: ", i.name, i.category)?;
        if i.entries == 0 {
            write!(f, "no usable entries")?;
            if self.skipped_lines == self.lines {
                write!(f, " (the list is empty or only comments)")?;
            } else {
                let format = serde_json::to_string(&i.format).unwrap_or_default();
                write!(f, " (is it really in the {format} format?)")?;
            }
        } else {
            write!(f, "{} domains", Count(i.entries))?;
            let mut kinds = Vec::new();
            if self.exceptions > 0 {
                kinds.push(format!("{} exceptions", Count(self.exceptions)));
            }
            if self.important > 0 {
                kinds.push(format!("{} important", Count(self.important)));
            }
            if !kinds.is_empty() {
                write!(f, " ({})", kinds.join(", "))?;
            }
        }
        for (n, what) in [
            (i.bad_lines, "unusable lines"),
            (i.unsupported, "rules Lollipop cannot apply"),
            (i.url_level, "web-address rules DNS cannot enforce"),
        ] {
            if n > 0 {
                write!(f, "; {} {what}", Count(n))?;
            }
        }
        writeln!(f)?;
        for (samples, label) in [
            (&self.bad_samples, "unusable"),
            (&self.unsupported_samples, "not applied"),
        ] {
            for s in samples {
                writeln!(
                    f,
                    "    line {} {label}: {:?} - {}",
                    s.line, s.text, s.reason
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ListFormat;

    fn source(entries: u64, lines: u64, skipped: u64) -> SourceReport {
        SourceReport {
            info: SourceInfo {
                name: "easylist".into(),
                path: PathBuf::from("/lists/easylist.txt"),
                category: "ads".into(),
                format: ListFormat::Adblock,
                entries,
                bad_lines: 0,
                unsupported: 0,
                url_level: 0,
                hidden: false,
            },
            lines,
            skipped_lines: skipped,
            exceptions: 0,
            important: 0,
            bad_samples: Vec::new(),
            unsupported_samples: Vec::new(),
        }
    }

    #[test]
    fn counts_are_grouped() {
        let shown = |n| Count(n).to_string();
        assert_eq!(shown(0), "0");
        assert_eq!(shown(999), "999");
        assert_eq!(shown(1000), "1,000");
        assert_eq!(shown(2_000_000), "2,000,000");
        assert_eq!(shown(12_345_678), "12,345,678");
    }

    #[test]
    fn source_line_is_short_and_says_what_happened() {
        let mut s = source(48_210, 60_000, 100);
        s.exceptions = 1203;
        s.info.bad_lines = 3;
        s.info.unsupported = 410;
        s.info.url_level = 20;
        s.unsupported_samples.push(SampleLine {
            line: 7,
            text: "##.ad".into(),
            reason: "element-hiding rule".into(),
        });
        let text = s.to_string();
        assert_eq!(
            text,
            "  easylist [ads]: 48,210 domains (1,203 exceptions); 3 unusable lines; \
             410 rules Lollipop cannot apply; 20 web-address rules DNS cannot enforce\n    \
             line 7 not applied: \"##.ad\" - element-hiding rule\n"
        );
    }

    #[test]
    fn empty_sources_say_why() {
        let text = source(0, 1_000_000, 1_000_000).to_string();
        assert!(
            text.contains("no usable entries (the list is empty"),
            "{text}"
        );
        let text = source(0, 10, 2).to_string();
        assert!(text.contains("really in the \"adblock\" format"), "{text}");
        let mut hidden = source(5, 10, 2);
        hidden.info.hidden = true;
        assert!(hidden.to_string().contains("[ads, hidden]"));
    }
}
