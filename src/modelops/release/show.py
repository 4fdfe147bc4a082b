"""`make versions`: every registered version with its key metrics and where it runs."""

from __future__ import annotations

from pathlib import Path

from modelops.release.environments import deployments
from modelops.release.registry import KEY_METRICS, Version


def versions_table(registered: list[Version], root: Path) -> str:
    """A text table, newest version first; 'no versions' says how to register one."""
    if not registered:
        return "no registered versions yet: `make release` registers the current model"
    where = deployments(root)
    header = ["version", "registered", "commit", "model id", *KEY_METRICS, "stages", "serving"]
    rows = [header]
    for v in reversed(registered):
        metrics = v.record.get("metrics", {})
        serving = "; ".join(
            f"{d.environment} {d.role} ({d.strategy}) since {d.since or 'uncommitted'}"
            for d in where.get(v.model_tag, [])
        )
        rows.append(
            [
                v.version,
                v.created_at.strftime("%Y-%m-%d %H:%M"),
                v.commit[:8],
                str(v.record.get("model_id", "?")),
                *(f"{metrics[m]:.4g}" if m in metrics else "-" for m in KEY_METRICS),
                ", ".join(v.stages) or "-",
                serving or "-",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )
