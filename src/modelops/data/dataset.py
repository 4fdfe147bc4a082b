"""The DVC-tracked raw dataset: restore it, regenerate it, append weeks to it (validated
before DVC tracks them), track a new batch for retraining.

``get`` restores the data from the DVC cache or remote; when neither has it and the
source is the simulator, it regenerates the batches from the seed and checks them
against the hash committed in ``<path>.dvc``: the same data, or a clear error (the
regenerated copy is set aside). Data that differs from the committed hash is never
overwritten.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import yaml
from tqdm import tqdm

from modelops.config import Settings
from modelops.errors import InputError
from modelops.io import write_parquet
from modelops.vcs import dvc

log = logging.getLogger(__name__)
BATCH = re.compile(r"^week-(\d{4})\.parquet$")


class DatasetError(InputError):
    """The raw dataset cannot be restored or regenerated as committed."""


def batch_path(folder: Path, week: int) -> Path:
    """Where week ``week`` of the simulator is stored."""
    return folder / f"week-{week:04d}.parquet"


def existing_weeks(folder: Path) -> list[int]:
    """Week numbers of the simulator batches present in ``folder``."""
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := BATCH.match(p.name)))


def generate(settings: Settings, weeks: range, folder: Path) -> None:
    """Write simulator batches, one Parquet file per week (each written atomically)."""
    from modelops.example.simulator import simulate_week  # the example: optional to keep

    for week in tqdm(weeks, desc="[data] simulating weeks", unit="week", disable=None):
        write_parquet(simulate_week(settings.simulator, week), batch_path(folder, week))
        log.debug("wrote %s", batch_path(folder, week))


def dvc_file(settings: Settings) -> Path:
    """The .dvc file that pins the raw data."""
    return settings.data.path.with_name(settings.data.path.name + ".dvc")


def committed_out(settings: Settings) -> dict[str, object] | None:
    """The ``outs`` entry of the .dvc file, or None when the data is not tracked yet."""
    path = dvc_file(settings)
    if not path.exists():
        return None
    outs = (yaml.safe_load(path.read_text()) or {}).get("outs") or [{}]
    return dict(outs[0])


def is_current(settings: Settings) -> bool:
    """Whether the work tree and the DVC cache hold exactly the committed data."""
    done = dvc("status", "--json", str(dvc_file(settings)))
    return not json.loads(done.stdout or "{}")


def matches_committed(settings: Settings) -> bool:
    """Hash the work tree with `dvc add` and compare with the committed hash. On a
    match the data is now cached; otherwise the committed .dvc file is put back."""
    path = dvc_file(settings)
    committed = path.read_text()
    before = committed_out(settings) or {}
    dvc("add", str(settings.data.path))
    if (committed_out(settings) or {}).get("md5") == before.get("md5"):
        return True
    path.write_text(committed)
    return False


def push(settings: Settings) -> None:
    """Send the raw data to the default DVC remote; a failure is only a warning."""
    pushed = dvc("push", str(dvc_file(settings)), check=False)
    if pushed.returncode != 0:
        log.warning(
            "could not push to the DVC remote (data stays in the local cache):\n%s",
            pushed.stderr.strip(),
        )


def get(settings: Settings) -> str:
    """Make the committed raw data present; return how it was obtained."""
    path, tracked = settings.data.path, dvc_file(settings)
    if committed_out(settings) is None:
        if path.exists():
            raise DatasetError(
                f"{path} exists but is not tracked by DVC: run `dvc add {path}` and commit "
                f"{tracked}, or move it away to generate the example data"
            )
        if settings.data.source != "simulator":
            raise DatasetError(f"{path}: no such data and no {tracked} to restore it from")
        generate(settings, range(settings.simulator.weeks), path)
        dvc("add", str(path))
        push(settings)
        return f"generated {settings.simulator.weeks} weeks into {path}; commit {tracked}"
    if is_current(settings):
        return f"{path} is up to date"
    if path.exists():
        if matches_committed(settings):
            push(settings)
            return f"{path} matches {tracked}; added it to the DVC cache"
        raise DatasetError(
            f"{path} differs from {tracked}: keep your changes with `dvc add {path}`, "
            f"or discard them with `dvc checkout {tracked}`"
        )
    if dvc("pull", str(tracked), check=False).returncode == 0 and is_current(settings):
        return f"restored {path} from the DVC cache/remote"
    if settings.data.source != "simulator":
        raise DatasetError(
            f"{path} could not be restored from the DVC remote; check `dvc remote list` "
            "and the remote's credentials, then rerun"
        )
    return _regenerate(settings)


def _regenerate(settings: Settings) -> str:
    path, tracked = settings.data.path, dvc_file(settings)
    out = committed_out(settings) or {}
    weeks = int(str(out.get("nfiles", settings.simulator.weeks)))
    log.info("DVC remote has no copy of %s: regenerating %d weeks from the simulator", path, weeks)
    generate(settings, range(weeks), path)
    if not matches_committed(settings):
        aside = _free_name(path.with_name(path.name + ".regenerated"))
        path.rename(aside)
        raise DatasetError(
            f"regenerated data does not match the committed hash {out.get('md5')} in "
            f"{tracked} (simulator settings or library versions differ); "
            f"the regenerated copy is in {aside}"
        )
    push(settings)
    return f"regenerated {path} ({weeks} weeks) from the simulator; it matches {tracked}"


def _free_name(path: Path) -> Path:
    """``path``, or ``path-2``, ``path-3``... whichever does not exist yet."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


def append(settings: Settings, weeks: int) -> list[Path]:
    """Simulate the next ``weeks`` weeks after the last batch, validate the whole raw
    dataset with them, then track the result (invalid: the new batches are removed)."""
    if settings.data.source != "simulator":
        raise DatasetError("data append simulates new weeks; data.source is not 'simulator'")
    if weeks < 1:
        raise DatasetError(f"weeks must be at least 1, got {weeks}")
    present = existing_weeks(settings.data.path)
    if not present:
        raise DatasetError(f"{settings.data.path} holds no batches; run `make data` first")
    new = [
        batch_path(settings.data.path, w) for w in range(present[-1] + 1, present[-1] + 1 + weeks)
    ]
    generate(settings, range(present[-1] + 1, present[-1] + 1 + weeks), settings.data.path)
    try:
        check(settings)
    except InputError:
        for path in new:
            path.unlink()
        raise
    track(settings)
    return new


def refresh(settings: Settings) -> str:
    """Retraining's new batch: the simulator's next week, or whatever the team's own
    extraction has put in ``data.path``; validated, then tracked by DVC and pushed."""
    if settings.data.source == "simulator":
        return f"added {append(settings, 1)[0]}"
    check(settings)
    track(settings)
    return f"tracked {settings.data.path} as it is now"


def check(settings: Settings) -> None:
    """Validate the raw data against the schema; InputError naming file, row and rule."""
    from modelops.data.prepare import prepare
    from modelops.data.sources import read_raw
    from modelops.data.validation import validate

    source = settings.data
    raw = read_raw(source.source, source.path)
    prepared = prepare(raw, settings.data_schema, source=str(source.path))
    validate(prepared, settings.data_schema, source=str(source.path), raw=raw)


def track(settings: Settings) -> None:
    """`dvc add` the raw data and push it to the default remote."""
    dvc("add", str(settings.data.path))
    push(settings)
