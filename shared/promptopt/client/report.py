"""The gate's result for people and CI systems: a text table, a Markdown summary and JUnit XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from promptopt.client.gate import GateResult, MetricVerdict, Score

HEADERS = ("METRIC", "CANDIDATE", "BASELINE", "LIFT (95% CI)", "FLOOR", "RESULT")
MD_HEADERS = ("Metric", "Candidate", "Baseline", "Lift (95% CI)", "Floor", "Result")


def _ci(score: Score) -> str:
    return f"{score.mean:+.3f} [{score.ci_low:+.3f}, {score.ci_high:+.3f}]"


def _row(m: MetricVerdict) -> tuple[str, ...]:
    return (
        m.name,
        f"{m.candidate.mean:.3f}",
        f"{m.baseline.mean:.3f}",
        _ci(m.lift),
        "-" if m.floor is None else f"{m.floor:g}",
        "pass" if m.passed else "FAIL",
    )


def _heading(result: GateResult) -> str:
    split = f", {result.split} split" if result.split else ""
    simulated = " (the offline simulator)" if result.simulated else ""
    return (
        f"{result.candidate} vs {result.baseline} on {result.dataset_id} version "
        f"{result.dataset_version}{split}, model {result.model}{simulated}"
    )


def _rule(result: GateResult) -> str:
    if result.rule == "ci":
        return (
            f"a metric fails when its paired drop is beyond {result.max_drop:g} with the 95% CI below zero, "
            "or its mean is under its floor"
        )
    return (
        f"a metric fails when its paired drop is beyond {result.max_drop:g}, or its mean is under its floor"
    )


def text(result: GateResult) -> str:
    """A plain table with a verdict line, for a terminal or a CI log."""
    rows = [HEADERS, *(_row(m) for m in result.metrics)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip() for r in rows]
    verdict = "PASSED" if result.passed else "FAILED"
    out = [_heading(result), "", *lines, "", f"gate {verdict}: {_rule(result)}"]
    out += [f"  {failure}" for failure in result.failures]
    return "\n".join(out)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(result: GateResult) -> str:
    """A Markdown summary (GitHub's step summary, a pull-request comment, Cloud Build's log)."""
    icon = "✅" if result.passed else "❌"
    lines = [
        f"### {icon} promptopt gate {'passed' if result.passed else 'failed'}",
        "",
        _md(_heading(result)),
        "",
        "| " + " | ".join(MD_HEADERS) + " |",
        "|" + "---|" * len(HEADERS),
    ]
    lines += ["| " + " | ".join(_md(c) for c in _row(m)) + " |" for m in result.metrics]
    lines += ["", f"Rule: {_md(_rule(result))}."]
    if result.failures:
        lines += ["", *[f"- {_md(f)}" for f in result.failures]]
    jobs = [j.job_id for j in (result.candidate_job, result.baseline_job) if j is not None]
    if jobs:
        lines += ["", "Jobs: " + ", ".join(f"`{j}`" for j in jobs)]
    return "\n".join(lines) + "\n"


def junit_xml(result: GateResult, *, suite: str = "promptopt-gate") -> str:
    """JUnit XML: one test case per metric, failed when the metric failed the gate."""
    failures = sum(1 for m in result.metrics if not m.passed)
    root = ET.Element("testsuites", name=suite, tests=str(len(result.metrics)), failures=str(failures))
    node = ET.SubElement(
        root, "testsuite", name=suite, tests=str(len(result.metrics)), failures=str(failures), errors="0"
    )
    properties = ET.SubElement(node, "properties")
    for key, value in (
        ("candidate", result.candidate),
        ("baseline", result.baseline),
        ("dataset", f"{result.dataset_id}@{result.dataset_version}:{result.split or 'all'}"),
        ("model", result.model),
        ("candidate_job", result.candidate_job.job_id if result.candidate_job else ""),
        ("baseline_job", result.baseline_job.job_id if result.baseline_job else ""),
    ):
        ET.SubElement(properties, "property", name=key, value=value)
    for m in result.metrics:
        case = ET.SubElement(node, "testcase", classname=suite, name=m.name, time="0")
        detail = (
            f"candidate {m.candidate.mean:.3f}, baseline {m.baseline.mean:.3f}, "
            f"paired lift {_ci(m.lift)} on {m.lift.n} rows"
        )
        if m.passed:
            ET.SubElement(case, "system-out").text = detail
        else:
            failure = ET.SubElement(case, "failure", message="; ".join(m.failures), type="GateFailure")
            failure.text = detail
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
