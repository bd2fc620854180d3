//! `lollipop trust keygen` and `lollipop trust sign`: the trust's side of a
//! policy bundle, run on the trust's own machine (no school config needed).

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::config::bundle;

/// Makes a key pair: the private key goes to `out` (readable by its owner
/// only, never overwritten); the line for the schools' `[trust]` table is
/// returned.
pub fn keygen(out: &Path) -> Result<String> {
    let (private, public) = bundle::generate_key().map_err(anyhow::Error::msg)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(out).with_context(|| {
        format!(
            "cannot create {} (an existing key is never overwritten: choose another name)",
            out.display()
        )
    })?;
    file.write_all(format!("{private}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", out.display()))?;
    Ok(format!(
        "private key written to {} (keep it secret and backed up)\n\
         put this in each school's config:\n\n[trust]\nbundle_url = \"https://.../bundle.toml\"\npublic_key = \"{public}\"",
        out.display()
    ))
}

/// Signs the bundle at `input` with the private key in `key`, writing the
/// signed file to `output`.
pub fn sign(key: &Path, input: &Path, output: &Path) -> Result<String> {
    let private = std::fs::read_to_string(key)
        .with_context(|| format!("cannot read the private key {}", key.display()))?;
    let text = std::fs::read_to_string(input)
        .with_context(|| format!("cannot read the bundle {}", input.display()))?;
    let signed = match bundle::sign(&private, &text) {
        Ok(signed) => signed,
        Err(why) => bail!("{}: {why}", input.display()),
    };
    let file: bundle::BundleFile = toml::from_str(&text).context("the bundle does not read")?;
    std::fs::write(output, signed).with_context(|| format!("cannot write {}", output.display()))?;
    Ok(format!(
        "{} signed into {}: publish it at the schools' bundle_url",
        bundle::describe(&file.trust, file.serial),
        output.display()
    ))
}
