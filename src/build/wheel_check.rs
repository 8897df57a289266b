//! The `wheel-check` stage: the wheel as copied out, checked against the
//! sdist as shipped, its result and findings added to the report.

use std::path::Path;

use crate::wheelcheck::{WheelContents, check_contents, findings};

/// After the wheel is copied out: check it (`contents`, read while it was
/// copied) against the sdist it was built from, and add the result and its
/// findings to the report.
///
/// The build wrote into its source tree (`build/`, compiled objects, the
/// very `.so` it then put in the wheel), so that tree says nothing about
/// what the sdist shipped: `shipped` is the pipeline's second extraction of
/// the sdist, made before any package code ran and never seen by a sandbox.
pub(super) fn check_built_wheel(
    report: &mut crate::report::BuildReport,
    contents: &WheelContents,
    shipped: &Path,
) {
    let Some(wheel) = &report.wheel else {
        return;
    };
    let started = std::time::Instant::now();
    let project = report
        .project
        .as_ref()
        .and_then(|p| p.name.clone())
        .unwrap_or_else(|| {
            wheel
                .filename
                .split('-')
                .next()
                .unwrap_or_default()
                .to_string()
        });
    let result = check_contents(contents, &wheel.filename, shipped, &project);
    let found = findings(&result, &wheel.filename);
    report.wheel_check = Some(result);
    report.findings.extend(found);
    report.findings = crate::events::findings::merge(std::mem::take(&mut report.findings));
    report.timings.wheel_check_ms = started.elapsed().as_secs_f64() * 1e3;
}
