"""What `printlab backup`, `restore` and `check` print: results and findings in sentences."""

from __future__ import annotations

from printlab.services.upkeep.backup_folder import BACKENDS, MAX_FINDINGS_SHOWN, BackupResult, RestoreResult
from printlab.services.upkeep.integrity import (
    IntegrityReport,
    LeftoverUpload,
    Misplaced,
    MissingFile,
    Orphan,
    SidecarMismatch,
    StaleCopy,
    UnsafeEntry,
)

# -- what the commands print -------------------------------------------------------------------


def _size(count: int) -> str:
    value = float(count)
    for unit in ("bytes", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def backup_summary(result: BackupResult) -> list[str]:
    """Lines `printlab backup` prints."""
    lines = [
        f"Backup written to {result.directory}",
        f"  database: {BACKENDS[result.backend]}, schema {result.schema_revision}, "
        f"{result.tables.get('job', 0)} jobs, {result.tables.get('event', 0)} events "
        f"({result.database_file}, {_size(result.database_bytes)})",
        f"  storage:  {result.files} files, {_size(result.storage_bytes)}",
    ]
    if result.reconciled:
        lines.append(
            f"  {len(result.reconciled)} file(s) changed while the backup ran were matched to the "
            'database snapshot (see "reconciled" in manifest.json)'
        )
    if result.symlinks:
        lines.append(f"  {len(result.symlinks)} symbolic link(s) recorded in the manifest, not followed")
    return lines


def restore_summary(result: RestoreResult) -> list[str]:
    """Lines `printlab restore` prints, the integrity check's summary last."""
    lines = [
        f"Backup checked: every checksum matches ({BACKENDS[result.backend]}, schema {result.schema_revision}, "
        f"taken {result.taken_at} by PrintLab {result.printlab_version}).",
        f"Database restored: {result.database}: {result.tables.get('job', 0)} jobs, "
        f"{result.tables.get('event', 0)} events.",
        f"Storage restored: {result.storage_root}: {result.files} files, {_size(result.storage_bytes)}.",
    ]
    if result.set_aside is not None:
        lines.append(
            f"  What the storage root held before is in {result.set_aside}; delete it when satisfied."
        )
    for link in result.symlinks_not_restored:
        lines.append(
            f"  Not restored: symbolic link {link['path']} -> {link['target']} (links are never followed)"
        )
    if not result.schema_current or result.integrity is None:
        lines.append(
            f"Integrity check not run: the backup's schema {result.schema_revision} is not this PrintLab's; "
            "run `printlab db upgrade`, then the integrity check."
        )
    else:
        lines += integrity_summary(result.integrity)
    return lines


#: How each kind of finding is counted in the summary (one, many), by its class name, so a kind the
#: integrity scan adds later is still counted (under its class name) rather than left out.
_FINDING_LABELS = {
    "MissingFile": ("missing file", "missing files"),
    "MissingRow": (
        "job without a row (its sidecar can rebuild it)",
        "jobs without a row (their sidecars can rebuild them)",
    ),
    "SidecarMismatch": ("sidecar disagreeing with the database", "sidecars disagreeing with the database"),
    "Misplaced": ("job in the wrong folder", "jobs in the wrong folder"),
    "StaleCopy": ("stale copy", "stale copies"),
    "Orphan": ("file with no job", "files with no job"),
    "UnsafeEntry": ("link or unsafe entry", "links or unsafe entries"),
    "LeftoverUpload": ("abandoned upload", "abandoned uploads"),
}


def integrity_summary(report: IntegrityReport) -> list[str]:
    """The integrity report in a few lines: counts per kind of finding, then the first findings."""
    findings = list(report.findings())
    counts: dict[str, int] = {}
    for finding in findings:
        counts[type(finding).__name__] = counts.get(type(finding).__name__, 0) + 1
    found = ", ".join(
        f"{count} {_FINDING_LABELS.get(kind, (kind, kind))[0 if count == 1 else 1]}"
        for kind, count in counts.items()
    )
    head = f"Integrity check: {report.jobs_checked} jobs and {report.files_checked} files checked: "
    lines = [head + (f"{found}." if found else "no findings.")]
    lines += [f"  {_describe(finding)}" for finding in findings[:MAX_FINDINGS_SHOWN]]
    if len(findings) > MAX_FINDINGS_SHOWN:
        lines.append(f"  … and {len(findings) - MAX_FINDINGS_SHOWN} more")
    return lines


def _describe(finding: object) -> str:
    if isinstance(finding, MissingFile):
        return f"missing: {finding.path} ({finding.kind} of job {finding.job_id}, {finding.status}): {finding.reason}"
    if isinstance(finding, SidecarMismatch):
        what = "unreadable" if finding.unreadable else ", ".join(finding.fields)
        return f"sidecar disagrees: {finding.path} (job {finding.job_id}): {what}"
    if isinstance(finding, Misplaced):
        return f"wrong folder: job {finding.job_id} is {finding.status}, its files are in {finding.folder}/"
    if isinstance(finding, StaleCopy):
        return f"stale copy: {finding.path} (job {finding.job_id} is in {finding.current_folder or 'no folder'}/)"
    if isinstance(finding, Orphan):
        return f"no job: {finding.path}"
    if isinstance(finding, UnsafeEntry):
        return f"not followed: {finding.path}: {finding.reason}"
    if isinstance(finding, LeftoverUpload):
        return f"abandoned upload: {finding.path}"
    kind = _FINDING_LABELS.get(type(finding).__name__, (type(finding).__name__,))[0]
    job = getattr(finding, "job_id", None)
    return f"{kind}: {getattr(finding, 'path', '')}" + (f" (job {job})" if job else "")
