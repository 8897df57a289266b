//! Where each member of a wheel installs: the project's own top-level
//! names, and every member that lands outside them (another module, the
//! environment's prefix, a startup hook, a second copy of one place).

use std::collections::{BTreeSet, HashMap};

use super::model::{
    MAX_LISTED, Outside, SHADOWED_MODULES, STARTUP_MODULES, TopLevelSource, WheelCheck,
    WheelContents, module_name, unsafe_name,
};
use super::sdist::SdistIndex;

/// The names a project's modules may have: `top_level.txt` when the wheel
/// has one, else the project's own name and the names in the sdist.
pub(super) struct TopLevelNames<'a> {
    listed: Option<BTreeSet<String>>,
    project_module: String,
    sdist_names: &'a BTreeSet<String>,
}

impl<'a> TopLevelNames<'a> {
    pub(super) fn read(
        top_level_txt: Option<&Vec<u8>>,
        project: &str,
        sdist: &'a SdistIndex,
    ) -> TopLevelNames<'a> {
        let listed = top_level_txt.map(|t| {
            String::from_utf8_lossy(t)
                .lines()
                .map(|l| l.trim().replace('\\', "/"))
                .filter(|l| !l.is_empty())
                .map(|l| module_name(l.split('/').next().unwrap_or("")))
                .take(1000)
                .collect()
        });
        TopLevelNames {
            listed,
            project_module: module_name(project),
            sdist_names: &sdist.names,
        }
    }

    pub(super) fn source(&self) -> TopLevelSource {
        if self.listed.is_some() {
            TopLevelSource::TopLevelTxt
        } else {
            TopLevelSource::Derived
        }
    }

    fn belongs(&self, module: &str) -> bool {
        match &self.listed {
            Some(set) => set.contains(module),
            None => module == self.project_module || self.sdist_names.contains(module),
        }
    }
}

/// Every member, by where it installs: the project's top-level names into
/// `out`, what lands outside them into `outside`. Returns the scripts of
/// the `.data` directory.
pub(super) fn place_members(
    contents: &WheelContents,
    data_dir: Option<&str>,
    names: &TopLevelNames,
    out: &mut WheelCheck,
    outside: &mut Outside,
) -> Vec<String> {
    let mut scripts: Vec<String> = Vec::new();
    let mut landed: HashMap<&str, &str> = HashMap::new();
    let mut top_level = BTreeSet::new();
    for m in &contents.members {
        let name = m.name.as_str();
        if let Some(why) = unsafe_name(name) {
            outside.flag(name, format!("the member name has {why}"));
            continue;
        }
        if m.is_symlink {
            outside.flag(name, "a symbolic link in the wheel".into());
        }
        if m.is_dir {
            continue;
        }
        let (first, rest) = name.split_once('/').unwrap_or((name, ""));
        if first.ends_with(".dist-info") {
            continue;
        }
        // Where in site-packages (or elsewhere) this member lands.
        let site_path: Option<&str> = if Some(first) == data_dir {
            in_data_dir(name, rest, &mut scripts, &mut out.data_files, outside)
        } else if first.ends_with(".data") {
            outside.flag(
                name,
                "a .data directory that does not belong to this wheel's distribution".into(),
            );
            None
        } else {
            Some(name)
        };
        let Some(site_path) = site_path else {
            continue;
        };
        if site_path.is_empty() {
            continue;
        }
        // The root and `*.data/purelib|platlib` all land in site-packages:
        // two members for one place, and the installer picks one.
        if let Some(other) = landed.insert(site_path, name) {
            outside.flag(
                name,
                format!(
                    "installs to the same place in site-packages as `{}`; one silently replaces the other",
                    crate::text::one_line(other, 200)
                ),
            );
        }
        if let Some(module) = in_site_packages(name, site_path, names, outside) {
            top_level.insert(module);
        }
    }
    out.top_level = top_level.into_iter().collect();
    scripts
}

/// A member of the wheel's `.data` directory (`rest` below it): its path
/// in site-packages for `purelib` and `platlib`, else `None` (scripts and
/// data files are recorded, risky or unknown places flagged).
fn in_data_dir<'m>(
    name: &str,
    rest: &'m str,
    scripts: &mut Vec<String>,
    data_files: &mut Vec<String>,
    outside: &mut Outside,
) -> Option<&'m str> {
    let (scheme, inner) = rest.split_once('/').unwrap_or((rest, ""));
    match scheme {
        "purelib" | "platlib" => Some(inner),
        "scripts" => {
            scripts.push(inner.to_string());
            None
        }
        "headers" => None,
        "data" => {
            if data_files.len() < MAX_LISTED {
                data_files.push(inner.to_string());
            }
            let risky = inner.starts_with("lib/")
                || inner.starts_with("lib64/")
                || inner.starts_with("bin/")
                || inner.starts_with("etc/")
                || inner.contains("site-packages/")
                || inner.ends_with(".pth");
            if risky {
                outside.flag(
                    name,
                    format!(
                        "installs `{inner}` under the environment's prefix, beside the interpreter's own files"
                    ),
                );
            }
            None
        }
        _ => {
            outside.flag(
                name,
                format!(
                    "an unknown install scheme `{}` in the .data directory",
                    crate::text::one_line(scheme, 60)
                ),
            );
            None
        }
    }
}

/// A member that lands at `site_path` in site-packages: its module when
/// that is one of the project's own names, else `None` (flagged unless it
/// is a `.pth` file, which is reported on its own).
fn in_site_packages(
    name: &str,
    site_path: &str,
    names: &TopLevelNames,
    outside: &mut Outside,
) -> Option<String> {
    let (top, below) = site_path.split_once('/').unwrap_or((site_path, ""));
    let is_root_file = below.is_empty();
    if is_root_file && top.ends_with(".pth") {
        // Reported as a .pth file below.
        return None;
    }
    let module = module_name(top.split('.').next().unwrap_or(top));
    if STARTUP_MODULES.contains(&module.as_str()) {
        outside.flag(
            name,
            format!(
                "`{module}` is imported by Python itself at every start: code that runs in every interpreter of the environment"
            ),
        );
        return None;
    }
    let project_module = names.project_module.as_str();
    if SHADOWED_MODULES.contains(&module.as_str())
        && module != project_module
        && project_module != "setuptools"
    {
        outside.flag(
            name,
            format!(
                "installs its own `{module}`, shadowing the module of that name for every program in the environment"
            ),
        );
        return None;
    }
    let importable = !is_root_file
        || [".py", ".so", ".pyd", ".pyc"]
            .iter()
            .any(|e| top.ends_with(e));
    if names.belongs(&module) && importable {
        return Some(module);
    }
    if !importable {
        outside.flag(
            name,
            "a file at the top of site-packages that is not a module".into(),
        );
    } else {
        let why = match &names.listed {
            Some(_) => format!("`{module}` is not one of the names in top_level.txt"),
            None => {
                format!("`{module}` is neither the distribution's name nor a name in the sdist")
            }
        };
        outside.flag(name, why);
    }
    None
}
