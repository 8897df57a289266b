//! `.pth` files: at the top of site-packages they are read at every
//! interpreter start, and their `import` lines are executed.

use super::model::{PthFile, WheelContents, unsafe_name};
use super::sdist::SdistIndex;

/// The wheel's `.pth` files at the top of site-packages (its root, or its
/// `.data` directory's `purelib` and `platlib`).
pub(super) fn pth_files(
    contents: &WheelContents,
    data_dir: Option<&str>,
    sdist: &SdistIndex,
) -> Vec<PthFile> {
    let mut found = Vec::new();
    for m in &contents.members {
        let site = m
            .name
            .strip_prefix(
                data_dir
                    .map(|d| format!("{d}/purelib/"))
                    .unwrap_or_default()
                    .as_str(),
            )
            .or_else(|| {
                m.name.strip_prefix(
                    data_dir
                        .map(|d| format!("{d}/platlib/"))
                        .unwrap_or_default()
                        .as_str(),
                )
            })
            .unwrap_or(&m.name);
        if m.is_dir
            || !site.ends_with(".pth")
            || site.contains('/')
            || unsafe_name(&m.name).is_some()
        {
            continue;
        }
        let text = String::from_utf8_lossy(m.text.as_deref().unwrap_or_default()).into_owned();
        let first_line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("")
            .chars()
            .take(300)
            .collect();
        let import_lines = text
            .lines()
            .filter(|l| l.starts_with("import ") || l.starts_with("import\t"))
            .count() as u64;
        found.push(PthFile {
            path: m.name.clone(),
            first_line,
            import_lines,
            in_sdist: sdist.find(m.size, &m.sha256),
        });
    }
    found
}
