//! The `--with-deps` planner: from the wheels built so far to what must be
//! built next, with versions taken from the lock file only.
//!
//! It is a pure state machine; the caller builds. [`Closure::add_root`]
//! (or [`Closure::roots_from_lock`]) starts it, and each built wheel's
//! metadata goes to [`Closure::built`]; every call returns a [`Step`]: the
//! lock entries to build now, the dependencies the lock does not pin (never
//! guessed: the caller reports them and refuses), and the ones whose
//! pinned version the requirement excludes.
//!
//! Invariants: a project is planned at most once; a dependency's extras
//! asked for after its wheel was built re-evaluate that wheel's
//! `Requires-Dist` with the extras added (no rebuild: the wheel is the
//! same); cycles end because planned projects are never planned again;
//! a lock entry that is skipped for this interpreter (its marker is false)
//! is not a pin for it, and the unpinned report says so.

use std::collections::{BTreeMap, BTreeSet};

use pep508_rs::ExtraName;

use super::lock::{Action, Pin, Selected};
use super::metadata::{Dependency, MetadataError, WheelMetadata, dependencies};
use super::names::PackageName;
use super::target::Target;

/// What to do after a step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Step {
    /// Lock entries to build now.
    pub to_build: Vec<Pin>,
    /// Dependencies the lock does not pin for this interpreter.
    pub unpinned: Vec<Unpinned>,
    /// Dependencies whose locked version their requirement excludes.
    pub conflicts: Vec<Conflict>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpinned {
    pub name: String,
    /// The requirement as its dependent wrote it.
    pub requirement: String,
    pub required_by: String,
    /// Why the lock does not count (a skipped entry, a direct URL, …).
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub name: String,
    pub locked: String,
    pub requirement: String,
    pub required_by: String,
}

pub struct Closure {
    target: Target,
    /// Lock entries that apply to the target, by project.
    pins: BTreeMap<PackageName, Pin>,
    /// Lock entries that do not (why), by project.
    not_for_target: BTreeMap<PackageName, String>,
    planned: BTreeSet<PackageName>,
    extras: BTreeMap<PackageName, BTreeSet<ExtraName>>,
    built: BTreeMap<PackageName, WheelMetadata>,
    /// Every dependency already reported, so a step reports it once.
    reported: BTreeSet<(PackageName, String)>,
}

impl Closure {
    /// A planner over the entries [`super::lock::select`] chose.
    pub fn new(selected: &[Selected], target: Target) -> Closure {
        let mut pins = BTreeMap::new();
        let mut not_for_target = BTreeMap::new();
        for s in selected {
            match &s.action {
                Action::Fetch { .. } => {
                    pins.entry(s.pin.name.clone())
                        .or_insert_with(|| s.pin.clone());
                }
                Action::Skip { reason } | Action::Refuse { reason } => {
                    not_for_target
                        .entry(s.pin.name.clone())
                        .or_insert_with(|| format!("{} {}", s.pin.origin, reason));
                }
            }
        }
        // An entry refused or skipped in one place but pinned in another is
        // pinned.
        not_for_target.retain(|name, _| !pins.contains_key(name));
        Closure {
            target,
            pins,
            not_for_target,
            planned: BTreeSet::new(),
            extras: BTreeMap::new(),
            built: BTreeMap::new(),
            reported: BTreeSet::new(),
        }
    }

    /// Every entry of the lock that applies is a root (a lock is the set
    /// the user wants built).
    pub fn roots_from_lock(&mut self) -> Step {
        let mut step = Step::default();
        let names: Vec<PackageName> = self.pins.keys().cloned().collect();
        for name in names {
            let extras = self.pins[&name].extras.clone();
            self.want(&name, &extras, "the lock file", None, &mut step);
        }
        step
    }

    /// One root by name (with extras), its version from the lock.
    pub fn add_root(&mut self, name: &PackageName, extras: &[ExtraName]) -> Step {
        let mut step = Step::default();
        self.want(name, extras, "the command line", None, &mut step);
        step
    }

    /// A wheel of `name` was built: plan what its metadata requires.
    pub fn built(
        &mut self,
        name: &PackageName,
        meta: &WheelMetadata,
    ) -> Result<Step, MetadataError> {
        self.built.insert(name.clone(), meta.clone());
        let mut step = Step::default();
        self.plan_dependencies(name, &mut step)?;
        Ok(step)
    }

    /// Whether every planned project has been built.
    pub fn is_complete(&self) -> bool {
        self.planned.iter().all(|n| self.built.contains_key(n))
    }

    fn plan_dependencies(
        &mut self,
        name: &PackageName,
        step: &mut Step,
    ) -> Result<(), MetadataError> {
        let Some(meta) = self.built.get(name) else {
            return Ok(());
        };
        let extras: Vec<ExtraName> = self
            .extras
            .get(name)
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        let deps = dependencies(meta, &self.target, &extras)?;
        let by = match &meta.version {
            Some(v) => format!("{name} {v}"),
            None => name.to_string(),
        };
        for dep in deps {
            self.want(
                &dep.name.clone(),
                &dep.extras.clone(),
                &by,
                Some(&dep),
                step,
            );
        }
        Ok(())
    }

    fn want(
        &mut self,
        name: &PackageName,
        extras: &[ExtraName],
        by: &str,
        dep: Option<&Dependency>,
        step: &mut Step,
    ) {
        let requirement = dep.map_or_else(|| name.to_string(), |d| d.requirement.clone());
        let Some(pin) = self.pins.get(name) else {
            if self.reported.insert((name.clone(), by.to_string())) {
                step.unpinned.push(Unpinned {
                    name: name.to_string(),
                    requirement,
                    required_by: by.to_string(),
                    note: dep
                        .and_then(|d| d.url.as_ref())
                        .map(|u| format!("a direct URL dependency ({u})"))
                        .or_else(|| {
                            self.not_for_target
                                .get(name)
                                .map(|why| format!("the lock's entry does not apply: {why}"))
                        }),
                });
            }
            return;
        };
        if let (Some(d), Some(version)) = (dep, &pin.version)
            && let Some(spec) = &d.specifiers
            && !spec.contains(version)
            && self.reported.insert((name.clone(), by.to_string()))
        {
            step.conflicts.push(Conflict {
                name: name.to_string(),
                locked: version.to_string(),
                requirement: requirement.clone(),
                required_by: by.to_string(),
            });
        }
        let known = self.extras.entry(name.clone()).or_default();
        let new_extras = extras.iter().any(|e| !known.contains(e));
        known.extend(extras.iter().cloned());
        if self.planned.insert(name.clone()) {
            step.to_build.push(pin.clone());
        } else if new_extras && self.built.contains_key(name) {
            // Built before these extras were asked for: its metadata says
            // what they add. A wheel that fails to read here was read fine
            // when it was built; nothing new is planned then.
            let _ = self.plan_dependencies(&name.clone(), step);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::metadata::parse_metadata;
    use crate::fetch::names::package_name;
    use crate::fetch::target::tests::linux_311;
    use std::str::FromStr;

    fn selected(name: &str, v: &str, action: Action) -> Selected {
        Selected {
            pin: crate::fetch::lock::tests::pin(&format!("lock:{name}"), name, v),
            action,
        }
    }

    fn fetch(name: &str, v: &str) -> Selected {
        selected(name, v, Action::Fetch { pinned: true })
    }

    fn meta(name: &str, v: &str, requires: &[&str]) -> WheelMetadata {
        let mut text = format!("Name: {name}\nVersion: {v}\n");
        for r in requires {
            text.push_str(&format!("Requires-Dist: {r}\n"));
        }
        parse_metadata(&text)
    }

    fn n(s: &str) -> PackageName {
        package_name(s).unwrap()
    }

    fn built_names(step: &Step) -> Vec<String> {
        step.to_build.iter().map(|p| p.label()).collect()
    }

    #[test]
    fn a_chain_three_deep_is_built_in_order_from_the_lock() {
        let lock = [
            fetch("flask", "3.1.2"),
            fetch("werkzeug", "3.1.9"),
            fetch("MarkupSafe", "3.0.3"),
            fetch("unused", "1"),
        ];
        let mut c = Closure::new(&lock, linux_311());
        let step = c.add_root(&n("flask"), &[]);
        assert_eq!(built_names(&step), ["flask==3.1.2"]);
        let step = c
            .built(
                &n("flask"),
                &meta(
                    "Flask",
                    "3.1.2",
                    &[
                        "Werkzeug>=3.1.0",
                        "importlib-metadata; python_version < '3.10'",
                    ],
                ),
            )
            .unwrap();
        assert_eq!(built_names(&step), ["werkzeug==3.1.9"]);
        assert!(
            step.unpinned.is_empty(),
            "the marker is false for 3.11: {step:?}"
        );
        assert!(!c.is_complete());
        let step = c
            .built(
                &n("werkzeug"),
                &meta("werkzeug", "3.1.9", &["markupsafe>=2.1.1"]),
            )
            .unwrap();
        assert_eq!(built_names(&step), ["markupsafe==3.0.3"]);
        let step = c
            .built(&n("markupsafe"), &meta("MarkupSafe", "3.0.3", &[]))
            .unwrap();
        assert_eq!(step, Step::default());
        assert!(c.is_complete());
    }

    #[test]
    fn what_the_lock_does_not_pin_is_listed_not_guessed() {
        let mut skipped = selected(
            "tomli",
            "2.3.0",
            Action::Skip {
                reason: "its marker is false".into(),
            },
        );
        skipped.pin.marker = Some("python_version < '3.11'".into());
        let lock = [fetch("a", "1"), skipped, fetch("c", "1.0")];
        let mut c = Closure::new(&lock, linux_311());
        let roots = c.roots_from_lock();
        assert_eq!(built_names(&roots), ["a==1", "c==1.0"]);
        let step = c
            .built(
                &n("a"),
                &meta(
                    "a",
                    "1",
                    &[
                        "b>=2",
                        "tomli>=1",
                        "d @ https://u:secret@host.invalid/d-1.tar.gz",
                        "c>=2",
                    ],
                ),
            )
            .unwrap();
        assert!(step.to_build.is_empty());
        let unpinned: Vec<(&str, Option<&str>)> = step
            .unpinned
            .iter()
            .map(|u| (u.name.as_str(), u.note.as_deref()))
            .collect();
        assert_eq!(unpinned[0], ("b", None));
        assert!(
            unpinned[1].0 == "tomli" && unpinned[1].1.unwrap().contains("marker is false"),
            "{unpinned:?}"
        );
        assert!(
            unpinned[2].1.unwrap().contains("direct URL")
                && !unpinned[2].1.unwrap().contains("secret"),
            "{unpinned:?}"
        );
        assert_eq!(step.unpinned[0].required_by, "a 1");
        assert_eq!(step.unpinned[0].requirement, "b>=2");
        assert_eq!(step.conflicts.len(), 1);
        assert_eq!(
            (
                step.conflicts[0].name.as_str(),
                step.conflicts[0].locked.as_str()
            ),
            ("c", "1.0")
        );
        // Reported once, not again when nothing changed.
        let again = c.built(&n("a"), &meta("a", "1", &["b>=2"])).unwrap();
        assert!(again.unpinned.is_empty());
    }

    #[test]
    fn extras_asked_later_reopen_a_built_wheel_and_cycles_end() {
        let lock = [
            fetch("app", "1"),
            fetch("lib", "1"),
            fetch("extra-dep", "1"),
            fetch("cyc", "1"),
        ];
        let mut c = Closure::new(&lock, linux_311());
        c.add_root(&n("lib"), &[]);
        let step = c
            .built(
                &n("lib"),
                &meta("lib", "1", &["extra-dep; extra == 'fast'", "cyc"]),
            )
            .unwrap();
        assert_eq!(built_names(&step), ["cyc==1"]);
        let step = c.built(&n("cyc"), &meta("cyc", "1", &["lib"])).unwrap();
        assert!(step.to_build.is_empty(), "a cycle plans nothing new");
        c.add_root(&n("app"), &[]);
        let step = c
            .built(&n("app"), &meta("app", "1", &["lib[fast]"]))
            .unwrap();
        assert_eq!(built_names(&step), ["extra-dep==1"]);
        let fast = ExtraName::from_str("fast").unwrap();
        assert!(c.extras[&n("lib")].contains(&fast));
    }
}
