//! `--check-reproducible`: the build done twice from scratch, the second
//! wheel compared with the first byte for byte.

use std::collections::BTreeSet;

use super::request::BuildRequest;
use crate::events::findings::{Finding, FindingVerdict, OpKind, Severity};
use crate::report::{BuildReport, Status};
use crate::reproducible::{
    Aspect, Difference, EpochSource, MAX_DIFFERENCES, Reproducibility, Verdict, compare_files,
    describe,
};

type FindingKey = (Severity, OpKind, String, Option<(String, u32)>);

fn key(f: &Finding) -> FindingKey {
    (
        f.severity,
        f.kind,
        f.target.clone(),
        f.origin.as_ref().map(|o| (o.file.clone(), o.line)),
    )
}

/// Build twice (the profile in `req` already carries the fixed epoch) and
/// put the comparison into the first build's report, which is written
/// again beside the wheel (the first build published it without).
pub fn build_twice(req: &BuildRequest, epoch: (String, EpochSource)) -> BuildReport {
    let mut report = compare_two_builds(req, epoch);
    super::publish::rewrite_report(&req.out_dir, &mut report);
    report
}

fn compare_two_builds(req: &BuildRequest, epoch: (String, EpochSource)) -> BuildReport {
    let mut report = super::steps::build(req);
    let mut result = Reproducibility {
        source_date_epoch: epoch.0,
        source_date_epoch_from: epoch.1,
        verdict: Verdict::NotChecked,
        reason: None,
        first_sha256: report.wheel.as_ref().map(|w| w.sha256.clone()),
        second_sha256: None,
        differences: Vec::new(),
        differences_total: 0,
        second_build_new_findings: 0,
        second_build_ms: 0.0,
    };
    let Some(first) = report.wheel.clone() else {
        result.reason = Some("the first build gave no wheel".into());
        report.reproducible = Some(result);
        return report;
    };
    let rebuild_dir = match tempfile::Builder::new()
        .prefix(".sdist-box-rebuild-")
        .tempdir_in(&req.out_dir)
    {
        Ok(d) => d,
        Err(e) => {
            result.reason = Some(format!(
                "cannot create a directory for the second build in `{}`: {e}",
                req.out_dir.display()
            ));
            report.reproducible = Some(result);
            return report;
        }
    };
    eprintln!("sdist-box: building again to check that the wheel is reproducible…");
    let mut second_req = req.clone();
    second_req.out_dir = rebuild_dir.path().to_path_buf();
    second_req.keep_work = false;
    // Stage events describe the build whose wheel is the output: the
    // second one is an internal check (its result is in the report).
    second_req.events = None;
    let started = std::time::Instant::now();
    let second = super::steps::build(&second_req);
    result.second_build_ms = started.elapsed().as_secs_f64() * 1e3;

    let known: BTreeSet<FindingKey> = report.findings.iter().map(key).collect();
    let new: Vec<Finding> = second
        .findings
        .iter()
        .filter(|f| !known.contains(&key(f)) && f.kind != OpKind::NotReproducible)
        .cloned()
        .collect();
    result.second_build_new_findings = new.len() as u64;
    report.findings.extend(new);

    match (&second.outcome.status, &second.wheel) {
        (Status::Built, Some(w)) => {
            result.second_sha256 = Some(w.sha256.clone());
            if w.filename != first.filename {
                result.differences.push(Difference {
                    path: String::new(),
                    aspect: Aspect::FileName,
                    first: Some(first.filename.clone()),
                    second: Some(w.filename.clone()),
                });
            }
            match compare_files(&first.path, &w.path) {
                Ok((true, _)) if result.differences.is_empty() => {
                    result.verdict = Verdict::Identical;
                }
                Ok((_, diffs)) => {
                    result.verdict = Verdict::Different;
                    result.differences.extend(diffs);
                }
                Err(e) => {
                    result.verdict = Verdict::Different;
                    result.reason = Some(format!("cannot compare the wheels: {e}"));
                }
            }
        }
        _ => {
            result.verdict = Verdict::Different;
            result.reason = Some(format!(
                "the second build did not give a wheel: {}",
                second
                    .outcome
                    .reason
                    .clone()
                    .unwrap_or_else(|| format!("{:?}", second.outcome.status))
            ));
        }
    }
    result.differences_total = result.differences.len() as u64;
    result.differences.truncate(MAX_DIFFERENCES);
    if result.verdict == Verdict::Different {
        report.findings.push(Finding {
            severity: Severity::Review,
            kind: OpKind::NotReproducible,
            target: crate::text::one_line(&first.filename, 200),
            verdict: FindingVerdict::Allowed,
            decided_by: None,
            origin: None,
            process_chain: Vec::new(),
            seen_by: vec!["wheel-check"],
            message: format!(
                "two builds with SOURCE_DATE_EPOCH={} gave different wheels: {}",
                result.source_date_epoch,
                describe(&result)
            ),
            count: 1,
            suggestion: None,
        });
    }
    report.findings = crate::events::findings::merge(std::mem::take(&mut report.findings));
    report.reproducible = Some(result);
    drop(rebuild_dir);
    report
}
