//! Copying the wheel out of the sandbox's output directory: one regular
//! file, this sdist's by name and metadata, size-bounded, hashed as copied,
//! placed where no other input's wheel is.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use anyhow::Context;
use sha2::{Digest, Sha256};

use super::failure::{Failure, errored, refused};
use crate::files::open_untrusted;
use crate::report::{Status, WheelInfo};
use crate::{names, outputs};

/// A wheel file name: `{dist}-{version}(-{build})?-{py}-{abi}-{plat}.whl`
/// as [`names::WheelFilename`] parses it (one path component, a
/// conservative character set).
pub fn valid_wheel_name(name: &str) -> bool {
    names::WheelFilename::parse(name).is_ok()
}

pub(super) const MAX_WHEEL_BYTES: u64 = 2 << 30;

/// Take the wheel `build_wheel` named out of the sandbox's output
/// directory `out` into `dest_dir`, if it is this sdist's: its file name
/// parses and is `release`'s (checked before a byte is copied); copied
/// (bounded, hashed) to a temporary file beside its destination, where the
/// sandbox cannot reach; read back and checked to hold `release`'s own
/// metadata ([`crate::wheelcheck::belongs_to`]); then placed unless a
/// wheel of the same release from another input is there
/// ([`outputs::place_wheel`]). Returns the wheel as read, for the checks.
pub(super) fn copy_wheel_out(
    out: &Path,
    name: &str,
    dest_dir: &Path,
    max_bytes: u64,
    release: &names::Release,
    producer: &outputs::Producer,
) -> Result<(WheelInfo, crate::wheelcheck::WheelContents), Failure> {
    let failed = |e: anyhow::Error| Failure::new(Status::BuildFailed, e);
    let wheel = names::WheelFilename::parse(name).map_err(|e| {
        failed(anyhow::Error::new(e).context("build_wheel returned a name that is not a wheel's"))
    })?;
    if !wheel.release.same(release) {
        return Err(failed(anyhow::anyhow!(
            "build_wheel returned `{name}`, a wheel of {}, but this sdist is {release}: the wheel of an sdist is of its project and version",
            wheel.release
        )));
    }
    let (tmp, sha256, size) =
        copy_out(&out.join(name), name, dest_dir, max_bytes).map_err(failed)?;
    let contents = crate::wheelcheck::read_wheel(tmp.path(), &Default::default()).map_err(|e| {
        failed(anyhow::Error::new(e).context(format!("cannot read the wheel `{name}`")))
    })?;
    crate::wheelcheck::belongs_to(&contents, name, release).map_err(|e| failed(e.into()))?;
    let dest = outputs::place_wheel(tmp, dest_dir, &wheel, producer).map_err(|e| match e {
        outputs::PlaceError::Collision { .. } => refused(e),
        _ => errored(e),
    })?;
    let info = WheelInfo {
        filename: name.to_string(),
        path: dest,
        sha256,
        size_bytes: size,
    };
    Ok((info, contents))
}

/// Copy the file the sandbox left at `source` (named `name`) into a
/// temporary file in `dest_dir`: no links, at most `max_bytes`, hashed as
/// copied. Returns the temporary file, its sha256 and size.
fn copy_out(
    source: &Path,
    name: &str,
    dest_dir: &Path,
    max_bytes: u64,
) -> anyhow::Result<(tempfile::NamedTempFile, String, u64)> {
    let (file, meta) = open_untrusted(source).with_context(|| {
        format!("the backend named `{name}` but did not leave it as a regular file")
    })?;
    if meta.size() > max_bytes {
        anyhow::bail!(
            "the wheel `{name}` is larger than the output-size limit ({max_bytes} bytes)"
        );
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".sdist-box-")
        .suffix(".whl.part")
        .tempfile_in(dest_dir)
        .with_context(|| format!("cannot write into `{}`", dest_dir.display()))?;
    let mut hasher = Sha256::new();
    let mut reader = file.take(max_bytes + 1);
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        tmp.write_all(&buf[..n])?;
        size += n as u64;
    }
    if size > max_bytes {
        anyhow::bail!("the wheel `{name}` grew past {max_bytes} bytes while copied");
    }
    tmp.as_file().sync_all()?;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644))?;
    Ok((tmp, hex::encode(hasher.finalize()), size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wheel_names() {
        assert!(valid_wheel_name("six-1.16.0-py2.py3-none-any.whl"));
        assert!(valid_wheel_name(
            "markupsafe-2.1.5-cp311-cp311-linux_x86_64.whl"
        ));
        assert!(valid_wheel_name("pkg-1.0-1-py3-none-any.whl"));
        assert!(!valid_wheel_name("../evil-1.0-py3-none-any.whl"));
        assert!(!valid_wheel_name("a/b-1.0-py3-none-any.whl"));
        assert!(!valid_wheel_name("pkg-1.0.tar.gz"));
        assert!(!valid_wheel_name("pkg-1.0-py3-none.whl"));
        assert!(!valid_wheel_name(".hidden-1.0-py3-none-any.whl"));
        assert!(!valid_wheel_name("pkg-1.0-py3-none-any\n.whl"));
    }
}
