"""The pull-request report: the markdown CML posts as the PR's one comment.

Verdict first, then the numbers a reviewer needs to decide (metrics base vs. PR with
paired intervals, gates), then what changed (params, data), the curves, and collapsible
details (slices, baselines, every gate, provenance). GitHub-flavoured markdown, kept
under GitHub's 65,536-character comment limit.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from modelops import paths
from modelops.config import Settings, WordSettings, read_params
from modelops.errors import InputError
from modelops.io import read_json, write_text
from modelops.metric_registry import METRICS
from modelops.review.check import LEAKAGE
from modelops.review.compare import champion_source
from modelops.review.integrity import measure_base
from modelops.review.plots import curves_png
from modelops.training.lineage import raw_data_hash
from modelops.training.summary import metric_labels
from modelops.vcs import changed_files, git_state

LIMIT = 65_536  # GitHub's comment limit, in characters
FIGURE = "curves.png"
ICON = {"pass": "✅", "fail": "❌", "skipped": "⚪"}


@dataclass
class ReportInputs:
    """Everything the report shows, read from the files of one PR check."""

    verdict: dict[str, Any]
    pipeline: dict[str, Any] | None = None
    comparison: dict[str, Any] | None = None
    champion: dict[str, Any] = field(default_factory=dict)
    params: tuple[dict[str, Any] | None, dict[str, Any]] = (None, {})  # base, PR
    data: tuple[dict[str, Any] | None, dict[str, Any] | None] = (None, None)
    raw: tuple[dict[str, Any] | None, dict[str, Any] | None] = (None, None)
    integrity: tuple[dict[str, Any] | None, dict[str, Any] | None] = (None, None)  # base, PR
    commits: dict[str, Any] = field(default_factory=dict)
    changed_files: list[str] | None = None  # base..HEAD, None: unknown
    figure: str | None = None  # relative path of the curves PNG, None: not embedded
    words: WordSettings = field(default_factory=WordSettings)  # params.yaml `words`


# ---------------------------------------------------------------- formatting


def num(value: float | None, metric: str = "roc_auc") -> str:
    """A metric value in the metric's format (the registry's)."""
    return METRICS[metric].text(value)


def signed(value: float, metric: str = "roc_auc") -> str:
    """A difference with an explicit sign (a true minus sign for negatives)."""
    text = num(abs(value), metric)
    return ("+" if value >= 0 else "−") + text


def estimate(e: dict[str, float], metric: str = "roc_auc") -> str:
    """``value [low, high]``."""
    return f"{num(e['value'], metric)} [{num(e['ci_low'], metric)}, {num(e['ci_high'], metric)}]"


def difference(e: dict[str, float], metric: str) -> str:
    """A paired difference with its interval, signed."""
    low, high = signed(e["ci_low"], metric), signed(e["ci_high"], metric)
    return f"{signed(e['value'], metric)} [{low}, {high}]"


def judgement(e: dict[str, float], metric: str) -> str:
    """Better or worse only when the whole interval says so."""
    up = 1 if METRICS[metric].higher_is_better else -1
    low, high = sorted((up * e["ci_low"], up * e["ci_high"]))
    if low > 0:
        return "▲ better"
    if high < 0:
        return "▼ worse"
    return "≈ no credible change"


def table(header: list[str], rows: list[list[str]], align: str = "") -> list[str]:
    """A GFM table; ``align`` holds one of l/r/c per column (default left)."""
    marks = {"l": ":--", "r": "--:", "c": ":-:"}
    spec = [marks[a] for a in align.ljust(len(header), "l")]
    cells = [header, *rows]
    lines = ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
    return [lines[0], "| " + " | ".join(spec) + " |", *lines[1:]]


def details(summary: str, body: list[str]) -> list[str]:
    """A collapsible block (blank lines around the markdown inside, as GitHub needs)."""
    return ["<details>", f"<summary>{summary}</summary>", "", *body, "", "</details>", ""]


def short(commit: str | None) -> str:
    return f"`{commit[:8]}`" if commit else "?"


# ---------------------------------------------------------------- sections


def headline(inputs: ReportInputs) -> list[str]:
    """The verdict line and one sentence of context."""
    v = inputs.verdict
    if v["verdict"] == "PASS":
        line = "## ✅ PASS: the model may merge"
    else:
        line = (
            f"## ❌ FAIL: {len(v['failed'])} gate(s) failed: "
            + ", ".join(f"`{name}`" for name in v["failed"][:6])
            + (" …" if len(v["failed"]) > 6 else "")
        )
    out = [line, ""]
    failed = [g for g in v["gates"] if g["status"] == "fail"]
    out += [f"- `{g['name']}`: {g['reason']}" for g in failed[:5]]
    out += [f"- … and {len(failed) - 5} more (see Gates)" for _ in failed[5:6]]
    out += [f"> ⚠️ **Warning: {w}**" for w in v.get("warnings", [])]
    if failed or v.get("warnings"):
        out.append("")
    c = inputs.comparison
    if c and c.get("difference"):
        auc = c["difference"]["roc_auc"]
        champ, chall = c["metrics"]["champion"]["roc_auc"], c["metrics"]["challenger"]["roc_auc"]
        out.append(
            f"**ROC-AUC {num(champ['value'])} → {num(chall['value'])}** "
            f"({difference(auc, 'roc_auc')}, {judgement(auc, 'roc_auc')}) on the same "
            f"{c['holdout']['rows']:,} holdout {inputs.words.plural} "
            f"({c['holdout']['positives']:,} {inputs.words.positive} cases)."
        )
    elif c:
        chall = c["metrics"]["challenger"]["roc_auc"]
        out.append(
            f"**ROC-AUC {estimate(chall)}** on {c['holdout']['rows']:,} holdout "
            f"{inputs.words.plural}."
        )
    out.append(champion_line(inputs.champion))
    if c and c["holdout"].get("note"):
        out.append(f"Note: {c['holdout']['note']}.")
    return [*out, ""]


def champion_line(source: dict[str, Any]) -> str:
    """Where the champion came from, in one line."""
    status = source.get("status", "none")
    where = f"`{source.get('base', '?')}` ({short(source.get('commit'))})"
    if status == "fetched":
        return f"Champion: the model of {where}, fetched from the DVC cache/remote."
    if status == "retrained":
        same = " (identical bytes)" if source.get("identical") else ""
        return (
            f"Champion: retrained from {where}{same}, because it could not be fetched: "
            f"{source.get('reason', '')}"
        )
    return (
        f"No champion to compare with: {source.get('reason', 'unknown')}. "
        "The champion gates are skipped, not passed."
    )


def pipeline_failure(inputs: ReportInputs) -> list[str]:
    """What failed in the pipeline, verbatim."""
    p = inputs.pipeline
    if not p or p["status"] == "passed":
        return []
    stage = p.get("failed_stage") or "?"
    title = "Data validation failed" if stage == "validate" else f"Stage `{stage}` failed"
    errors = "\n".join(p.get("errors") or ["(no message)"])
    return [
        f"### {title}",
        "",
        "The pipeline stopped, so there is no new model to judge; earlier outputs are unchanged.",
        "",
        "```text",
        errors[:4000],
        "```",
        "",
    ]


def metrics_table(c: dict[str, Any], words: WordSettings) -> list[str]:
    """Base vs. PR with the paired difference of each metric."""
    h = c["holdout"]
    metrics, diff = c["metrics"], c.get("difference")
    labels = metric_labels(words)
    rows = []
    for m in METRICS:
        base = estimate(metrics["champion"][m], m) if "champion" in metrics else "–"
        delta = [difference(diff[m], m), judgement(diff[m], m)] if diff else ["–", "–"]
        rows.append([labels[m], base, estimate(metrics["challenger"][m], m), *delta])
    return [
        "### Metrics: base vs. this PR",
        "",
        f"Same {h['rows']:,} holdout {words.plural} and the same {h['resamples']} bootstrap "
        f"resamples; {h['confidence']:.0%} intervals; the difference is paired (PR − base). "
        f"Decisions at a review rate of {h['review_rate']:.1%}: each model flags its top "
        f"{h['review_rate']:.1%} of the {words.plural} by score.",
        "",
        *table(["metric", "base (champion)", "this PR", "difference", ""], rows, "lrrrl"),
        "",
    ]


def _g(value: float | None) -> str:
    """A gate's number, short; never "-0"."""
    return "" if value is None else f"{value + 0.0:.4g}"


def gate_row(g: dict[str, Any]) -> list[str]:
    interval = f"[{_g(g['ci_low'])}, {_g(g['ci_high'])}]" if g.get("ci_low") is not None else ""
    value, threshold = _g(g.get("value")), _g(g.get("threshold"))
    return [
        f"{ICON[g['status']]} {g['status']}",
        f"`{g['name']}`",
        value,
        threshold,
        interval,
        g.get("reason", ""),
    ]


GATE_HEADER = ["status", "gate", "value", "threshold", "interval", "rule or reason"]


def gates_table(verdict: dict[str, Any]) -> list[str]:
    """Failed gates first; slice gates and passed ones in a collapsed block."""
    gates = verdict["gates"]
    order = {"fail": 0, "skipped": 1, "pass": 2}
    leak = LEAKAGE in verdict.get("warnings", [])  # the split-integrity gates come first

    def rank(g: dict[str, Any]) -> tuple[bool, int]:
        return (not (leak and g.get("kind") == "integrity"), order[g["status"]])

    main = sorted((g for g in gates if not g["name"].startswith("slice:")), key=rank)
    counts = {s: sum(g["status"] == s for g in gates) for s in order}
    return [
        "### Gates",
        "",
        f"{counts['pass']} passed, {counts['fail']} failed, {counts['skipped']} skipped "
        "(a skipped gate is not a pass; the reason says why). For the champion, "
        "calibration and baseline gates the value is the improvement, + meaning better "
        "(a fall, for log loss and cost); the champion and calibration gates fail only "
        "when even the interval's best case is worse than the threshold. Slice gates, "
        "judged with Holm's correction, are in Slices below.",
        "",
        *table(GATE_HEADER, [gate_row(g) for g in main], "llrrrl"),
        "",
    ]


def flatten(tree: Any, prefix: str = "") -> dict[str, str]:
    """``a.b.c -> value`` (lists as compact JSON) for a params diff."""
    if isinstance(tree, dict):
        flat: dict[str, str] = {}
        for key, value in tree.items():
            flat |= flatten(value, f"{prefix}{key}.")
        return flat
    return {
        prefix.rstrip("."): json.dumps(tree, default=str) if isinstance(tree, list) else str(tree)
    }


def files_changed(files: list[str] | None, limit: int = 15) -> list[str]:
    """The files this branch changes, so code-only changes are visible too."""
    if files is None:
        return []
    if not files:
        return ["Files: none changed.", ""]
    shown = ", ".join(f"`{f}`" for f in files[:limit])
    more = f" and {len(files) - limit} more" if len(files) > limit else ""
    return [f"Files ({len(files)}): {shown}{more}.", ""]


def params_diff(base: dict[str, Any] | None, pr: dict[str, Any]) -> list[str]:
    """Changed, added and removed settings (the schema is covered by the data diff)."""
    out = ["#### Params", ""]
    if base is None:
        return [*out, "Base params are not available (no base commit).", ""]
    old = flatten({k: v for k, v in base.items() if k != "schema"})
    new = flatten({k: v for k, v in pr.items() if k != "schema"})
    rows = [
        [f"`{k}`", old.get(k, "(absent)"), new.get(k, "(absent)")]
        for k in sorted(old.keys() | new.keys())
        if old.get(k) != new.get(k)
    ]
    if not rows:
        return [*out, "No params changed.", ""]
    return [*out, *table(["param", "base", "this PR"], rows), ""]


def schema_changes(base: dict[str, Any] | None, pr: dict[str, Any]) -> list[str]:
    """Columns added, removed or changed in the schema."""
    if base is None:
        return []
    old = (base.get("schema") or {}).get("columns", {})
    new = (pr.get("schema") or {}).get("columns", {})
    lines = [f"- added column `{c}`: `{json.dumps(new[c])}`" for c in new if c not in old]
    lines += [f"- removed column `{c}`" for c in old if c not in new]
    lines += [
        f"- changed column `{c}`: `{json.dumps(old[c])}` → `{json.dumps(new[c])}`"
        for c in new
        if c in old and old[c] != new[c]
    ]
    return ["Schema changes:", "", *lines, ""] if lines else ["Schema: unchanged.", ""]


def data_rows(words: WordSettings) -> tuple[tuple[str, str], ...]:
    """The data facts compared (keys of metrics/data.json) and their labels."""
    return (
        ("rows", "rows"),
        ("weeks", "weeks"),
        ("positives", f"{words.positive} cases"),
        ("positive_rate", f"{words.positive} rate"),
        ("time_max", f"latest {words.record}"),
    )


def data_diff(inputs: ReportInputs) -> list[str]:
    """Rows, weeks, positive rate and raw-data hash, base vs. PR, and validation."""
    base, pr = inputs.data
    raw_base, raw_pr = inputs.raw
    out = ["#### Data", ""]
    p = inputs.pipeline
    failed = p is not None and p.get("failed_stage") == "validate"
    if failed:
        pr = None  # metrics/data.json is stale when validation failed
    rows = []
    for key, label in data_rows(inputs.words):
        old = (base or {}).get(key)
        new = (pr or {}).get(key)
        change = ""
        if isinstance(old, int | float) and isinstance(new, int | float) and key != "positive_rate":
            change = f"{new - old:+,}"
        rows.append([label, _plain(old), _plain(new), change])
    rows.append(
        [
            "raw data files",
            _plain((raw_base or {}).get("nfiles")),
            _plain((raw_pr or {}).get("nfiles")),
            "",
        ]
    )
    rows.append(
        [
            "raw data md5",
            f"`{(raw_base or {}).get('md5', '–')}`",
            f"`{(raw_pr or {}).get('md5', '–')}`",
            "",
        ]
    )
    out += table(["", "base", "this PR", "change"], rows, "lrrr")
    out.append("")
    out.append(
        "Validation: ❌ failed (see above)."
        if failed
        else "Validation: ✅ passed."
        if p
        else "Validation: not recorded."
    )
    out.append("")
    return out + schema_changes(*inputs.params)


def trained_on(inputs: ReportInputs) -> list[str]:
    """Train and holdout rows and time spans, and the rows the estimator was fitted on,
    base vs. PR (the facts the split-integrity gates judge)."""
    base, pr = inputs.integrity
    if pr is None:
        return []

    def span(facts: dict[str, Any] | None, part: str) -> str:
        p = (facts or {}).get(part) or {}
        return f"{p['time_min']} – {p['time_max']}" if p.get("time_min") else "–"

    def rows(facts: dict[str, Any] | None, *keys: str) -> str:
        value: Any = facts
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return _plain(value)

    lines = [
        ["validated rows", rows(base, "validated_rows"), rows(pr, "validated_rows")],
        ["train rows", rows(base, "train", "rows"), rows(pr, "train", "rows")],
        ["fitted rows (reached `fit`)", rows(base, "fitted_rows"), rows(pr, "fitted_rows")],
        ["holdout rows", rows(base, "holdout", "rows"), rows(pr, "holdout", "rows")],
    ]
    if pr.get("time_column"):
        lines += [
            ["train span", span(base, "train"), span(pr, "train")],
            ["holdout span", span(base, "holdout"), span(pr, "holdout")],
        ]
    return ["#### Trained and tested on", "", *table(["", "base", "this PR"], lines, "lrr"), ""]


def _plain(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4%}" if value < 1 else f"{value:,.2f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def curves(inputs: ReportInputs) -> list[str]:
    """Thresholds (and how far they moved), budgets, and the overlay figure."""
    if inputs.comparison is None:
        return []
    out = ["### Champion vs. challenger on the same rows", ""]
    c = inputs.comparison
    thresholds = c.get("thresholds", {})
    budgets = c.get("budgets", {})
    base = thresholds.get("champion")
    rows = []
    for name, label in (("champion", "base (champion)"), ("challenger", "this PR")):
        if name in thresholds:
            b = budgets.get(name, {})
            ours = thresholds[name]
            rows.append(
                [
                    label,
                    *(
                        _threshold(ours[a], base[a] if base and name != "champion" else None)
                        for a in ("review", "decline")
                    ),
                    _ms(b.get("latency_ms_p50")),
                    _ms(b.get("latency_ms_p95")),
                    f"{b.get('size_mb', 0):.2f} MB",
                ]
            )
    h = c["holdout"]
    header = [
        "model",
        f"review threshold (top {h['review_rate']:.1%})",
        f"decline threshold (top {h['decline_rate']:.1%})",
        "latency p50",
        "latency p95",
        "size",
    ]
    out += table(header, rows, "lrrrrr")
    out.append("")
    if inputs.figure:
        out += [f"![ROC, precision-recall and calibration curves]({inputs.figure})", ""]
    else:
        out += ["Plots are not embedded (REPORT_IMAGES=none); they are in the job's artifact.", ""]
    return out


def _threshold(value: float, base: float | None) -> str:
    """A threshold, and how many times the champion's it is (when there is one)."""
    if base is None:
        return f"{value:.4f}"
    moved = f"×{value / base:.2f}" if base > 0 else signed(value - base)
    return f"{value:.4f} ({moved})"


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f} ms"


def slices_block(
    c: dict[str, Any], verdict: dict[str, Any], limit: int, words: WordSettings
) -> list[str]:
    """Per-slice metric of both models, the paired difference and the slice gate."""
    gates = {g["name"]: g for g in verdict["gates"] if g.get("kind") == "slices"}
    metric = c["slices"]["metric"]
    rows = []
    for group, values in c["slices"]["groups"].items():
        for value, entry in values.items():
            d = entry.get("improvement")
            gate = gates.get(f"slice:{group}={value}:{metric}")
            status = gate["status"] if gate else "skipped"
            rows.append(
                [
                    f"{group} = {value}",
                    f"{entry['rows']:,}",
                    f"{entry['positives']:,}",
                    num(entry.get("champion"), metric),
                    num(entry.get("challenger"), metric),
                    difference(d, metric) if d else "–",
                    f"{ICON[status]} {status}" + (f": {gate['reason']}" if gate else ""),
                ]
            )
    shown = rows[:limit]
    more = (
        [f"… and {len(rows) - limit} more slices (see `reports/pr/comparison.json`)."]
        if rows[limit:]
        else []
    )
    body = table(
        ["slice", "rows", words.positive, f"base {metric}", f"PR {metric}",
         "difference (paired)", "gate"],
        shown,
        "lrrrrrl",
    )  # fmt: skip
    failed = sum(g["status"] == "fail" for g in gates.values())
    return details(f"Slices: {len(rows)} ({failed} failed)", [*body, *more])


def provenance(inputs: ReportInputs) -> list[str]:
    c = inputs.commits
    raw_base, raw_pr = inputs.raw
    lines = [
        f"- base: `{inputs.champion.get('base', '?')}` at {short(inputs.champion.get('commit'))}",
        f"- this PR: {short(c.get('commit'))}"
        + (" (uncommitted changes)" if c.get("dirty") else ""),
        f"- champion: {inputs.champion.get('status', 'none')}"
        + (f", model md5 `{inputs.champion['md5']}`" if inputs.champion.get("md5") else ""),
        f"- raw data md5: base `{(raw_base or {}).get('md5', '–')}`, "
        f"PR `{(raw_pr or {}).get('md5', '–')}`",
        f"- generated {c.get('at', '?')} by `make gates` and `make report`; "
        f"rerun locally with `make pr BASE={inputs.champion.get('base', 'main')}`",
    ]
    return details("Provenance", lines)


def render(inputs: ReportInputs) -> str:
    """The whole report as GitHub-flavoured markdown, under ``LIMIT`` characters."""
    c = inputs.comparison
    for slice_rows in (500, 100, 20, 0):
        parts = headline(inputs) + pipeline_failure(inputs)
        if c:
            parts += metrics_table(c, inputs.words)
        parts += gates_table(inputs.verdict)
        parts += ["### What changed", "", *files_changed(inputs.changed_files)]
        parts += trained_on(inputs)
        parts += [*params_diff(*inputs.params), *data_diff(inputs)]
        parts += curves(inputs)
        if c:
            parts += slices_block(c, inputs.verdict, slice_rows, inputs.words)
        parts += provenance(inputs)
        text = "\n".join(parts).rstrip() + "\n"
        if len(text) < LIMIT:
            return text
    return text[: LIMIT - 200] + "\n\n… (truncated to GitHub's comment limit)\n"


# ---------------------------------------------------------------- files


def _read(path: Path) -> Any:
    return read_json(path) if path.exists() else None


def _yaml(path: Path) -> Any:
    return read_params(path.read_text()) if path.exists() else None


def raw_summary(dvc_file: Path, lock: Path, raw_path: Path) -> dict[str, Any] | None:
    """Hash and file count of the raw data as committed."""
    out = (_yaml(dvc_file) or {}).get("outs", [{}])[0] if dvc_file.exists() else {}
    md5 = raw_data_hash(lock, raw_path) or out.get("md5")
    return {"md5": md5, "nfiles": out.get("nfiles")} if md5 else None


def gather(settings: Settings, images: bool) -> ReportInputs:
    """Read the outputs of one PR check (``make champion pr-repro gates``)."""
    verdict = _read(paths.VERDICT)
    if verdict is None:
        raise FileNotFoundError(f"{paths.VERDICT} (run `make gates` first)")
    base_dir = paths.CHAMPION / "base"
    raw_path = settings.data.path
    dvc_file = Path(f"{raw_path}.dvc")
    comparison = _read(paths.COMPARISON)
    source = champion_source()
    figure = None
    if comparison is not None and images and paths.PR_SCORES.exists():
        curves_png(
            pd.read_parquet(paths.PR_SCORES),
            paths.PR / FIGURE,
            settings.evaluation.calibration_bins,
            settings.words.positive,
        )
        figure = FIGURE
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return ReportInputs(
        verdict=verdict,
        pipeline=_read(paths.PIPELINE_RUN),
        comparison=comparison,
        # the comparison's copy also says when the champion could not be scored
        champion=(comparison or {}).get("champion") or source,
        params=(_yaml(base_dir / "params.yaml"), _yaml(Path("params.yaml")) or {}),
        data=(_read(base_dir / paths.VALIDATION_REPORT), _read(paths.VALIDATION_REPORT)),
        integrity=(
            measure_base(base_dir) if base_dir.exists() else None,
            (comparison or {}).get("integrity"),
        ),
        raw=(
            raw_summary(base_dir / dvc_file, base_dir / paths.DVC_LOCK, raw_path),
            raw_summary(dvc_file, paths.DVC_LOCK, raw_path),
        ),
        commits=git_state() | {"at": now},
        changed_files=changed_files(source.get("commit")),
        figure=figure,
        words=settings.words,
    )


def append_job_summary(report: Path = paths.REPORT) -> Path:
    """Append the report to the GitHub Actions job summary. Local images cannot show
    there, so the figure is replaced by a pointer to the comment and the artifact."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        raise InputError("GITHUB_STEP_SUMMARY is not set: this runs inside GitHub Actions")
    if not report.exists():
        raise FileNotFoundError(f"{report} (run `make report` first)")
    text = re.sub(
        rf"!\[[^\]]*\]\({re.escape(FIGURE)}\)",
        "_The plots are in the PR comment and in the `pr-report` artifact._",
        report.read_text(),
    )
    with Path(target).open("a") as summary:
        summary.write(text)
    return Path(target)


def write(settings: Settings, *, images: bool = True) -> Path:
    """Write ``reports/pr/report.md`` (and its figure)."""
    return write_text(render(gather(settings, images)), paths.REPORT)
