"""`make deploy ENV=<env>`: this machine as the cluster. It makes a local service serve
exactly what ``deploy/environments/<env>.yaml`` says: starts the service if none runs
for that environment, applies the file at once (the token-guarded reload), checks what
is served, bakes a canary (watching the challenger's failures and the latency on
/metrics, as an Argo analysis would) and rolls back by itself on a breach. A healthy
deployment of a registered version records its stage in the registry (`gto assign`).

The running service of each environment is described in ``reports/deploy/<env>.json``
(url, process id, admin token; never committed); its prediction log is
``reports/deploy/<env>.db`` unless MODELOPS_LOG_URL names another.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import gto.api
import httpx
from prometheus_client.parser import text_string_to_metric_families

from modelops.config import CanarySettings, Settings
from modelops.errors import InputError
from modelops.release.environments import ENVIRONMENTS
from modelops.release.policy import check
from modelops.release.promote import rollback
from modelops.release.registry import VERSION, versions
from modelops.serving.bento import free_port, server_env, wait_ready
from modelops.serving.state import DesiredState

RUNS = Path("reports/deploy")
SERVICE = "modelops.serving.service:ModelService"


class DeployError(InputError):
    """A deployment that did not become what its desired-state file says."""


@dataclass(frozen=True)
class Running:
    """The local service of one environment."""

    url: str
    pid: int
    token: str
    log: str


@dataclass(frozen=True)
class Outcome:
    """What `make deploy` did."""

    environment: str
    url: str
    serving: list[str]  # model tags, champion first
    started: bool
    rolled_back: str | None = None  # the breach, when the canary was rolled back
    stages_recorded: tuple[str, ...] = ()


def deploy(root: Path, settings: Settings, env: str, port: int | None = None) -> Outcome:
    """Make the local service of ``env`` serve its desired-state file."""
    path = root / ENVIRONMENTS / f"{env}.yaml"
    if not path.exists():
        raise DeployError(f"{path.relative_to(root)}: no such environment")
    state = check(root, settings, path)
    running, started = find_running(root, env), False
    if running is None:
        running, started = start(root, settings, env, port), True
    served = apply(running)
    if state.strategy.type == "canary" and state.challenger:
        breach = bake(running.url, served.challenger or "", settings.release.canary)
        if breach:
            rollback(root, settings, env)
            served = apply(running)
            return Outcome(env, running.url, served.versions, started, rolled_back=breach)
    recorded = record_stage(root, settings, env, served)
    return Outcome(env, running.url, served.versions, started, stages_recorded=recorded)


def start(root: Path, settings: Settings, env: str, port: int | None = None) -> Running:
    """Start `bentoml serve` of the service in the background for ``env``."""
    (root / RUNS).mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    token = secrets.token_urlsafe(24)
    log = root / RUNS / f"{env}.log"
    variables = server_env(settings) | {
        "MODELOPS_PARAMS": str((root / "params.yaml").resolve()),
        "MODELOPS_DESIRED_STATE": str((root / ENVIRONMENTS / f"{env}.yaml").resolve()),
        "MODELOPS_LOG_URL": os.environ.get(
            "MODELOPS_LOG_URL", f"sqlite:///{(root / RUNS / f'{env}.db').resolve()}"
        ),
        "MODELOPS_ADMIN_TOKEN": token,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    variables["BENTOML_HOME"] = str(_home(root, env))
    command = ["bentoml", "serve", SERVICE, "--host", "127.0.0.1", "--port", str(port)]
    with log.open("ab") as sink:
        process = subprocess.Popen(
            command, cwd=root, env=variables, stdout=sink, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    running = Running(f"http://127.0.0.1:{port}", process.pid, token, str(log))
    try:
        wait_ready(running.url, process)
    except RuntimeError as exc:
        process.terminate()
        raise DeployError(f"the {env} service did not start: {exc}; see {log}") from exc
    run_file = root / RUNS / f"{env}.json"
    run_file.write_text(json.dumps(asdict(running)))
    run_file.chmod(0o600)
    return running


def _home(root: Path, env: str) -> Path:
    """A BentoML home of the environment's own, sharing the model store: BentoML keeps
    the metrics of a service in <home>/prometheus_multiproc_dir and empties it when a
    service starts, so two environments on one home would erase each other's metrics."""
    shared = Path(os.environ.get("BENTOML_HOME", str(Path.home() / "bentoml"))).resolve()
    home = root / RUNS / f"{env}-bentoml"
    home.mkdir(parents=True, exist_ok=True)
    for store in ("models", "bentos"):
        (shared / store).mkdir(parents=True, exist_ok=True)
        link = home / store
        if not link.is_symlink():
            link.symlink_to(shared / store, target_is_directory=True)
    return home


def stop(root: Path, env: str) -> bool:
    """Stop the local service of ``env`` (SIGTERM: it finishes its requests); False if
    none was running."""
    running = find_running(root, env)
    (root / RUNS / f"{env}.json").unlink(missing_ok=True)
    if running is None:
        return False
    os.killpg(running.pid, signal.SIGTERM)
    return True


def apply(running: Running) -> DesiredState:
    """Apply the file now (POST /admin/reload); what the service then serves."""
    answer = httpx.post(
        f"{running.url}/admin/reload",
        headers={"Authorization": f"Bearer {running.token}"},
        timeout=60,
    )
    if answer.status_code != 200:
        raise DeployError(f"the service refused the desired state: {answer.json()['detail']}")
    return DesiredState.model_validate(answer.json()["desired_state"])


@dataclass(frozen=True)
class Sample:
    """Counters of /metrics at one moment."""

    answered: float  # by the challenger
    failed: float  # the challenger's scoring failures
    buckets: dict[float, float]  # /predict* duration histogram: upper bound -> count


def sample(url: str, challenger: str) -> Sample:
    """The counters the canary analysis reads."""
    answered = failed = 0.0
    buckets: dict[float, float] = {}
    text = httpx.get(f"{url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = s.labels
            if s.name == "modelops_predictions_total" and labels.get("version") == challenger:
                answered += s.value if labels.get("route") == "challenger" else 0.0
            elif (
                s.name == "modelops_scoring_failures_total" and labels.get("version") == challenger
            ):
                failed += s.value
            elif s.name == "modelops_http_request_duration_seconds_bucket" and labels.get(
                "endpoint", ""
            ).startswith("/predict"):
                bound = float(labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + s.value
    return Sample(answered, failed, buckets)


def p99(before: Sample, after: Sample) -> float | None:
    """The 99th percentile (seconds, a bucket's upper bound) of the requests in between."""
    counts = sorted((b, after.buckets[b] - before.buckets.get(b, 0.0)) for b in after.buckets)
    total = counts[-1][1] if counts else 0.0
    if total <= 0:
        return None
    return next(bound for bound, cumulative in counts if cumulative >= 0.99 * total)


def bake(
    url: str,
    challenger: str,
    canary: CanarySettings,
    sleep: Callable[[float], None] = time.sleep,
) -> str | None:
    """Watch the canary for ``canary.bake_s``; the breach that ends it early, or None."""
    first = sample(url, challenger)
    deadline = time.monotonic() + canary.bake_s
    while time.monotonic() < deadline:
        sleep(canary.interval_s)
        now = sample(url, challenger)
        failed = now.failed - first.failed
        requests = now.answered - first.answered + failed
        if requests >= canary.min_requests and failed / requests > canary.max_error_rate:
            return (
                f"{challenger} failed {failed:.0f} of {requests:.0f} requests "
                f"(over {canary.max_error_rate:.2%})"
            )
        latency = p99(first, now)
        if latency is not None and latency * 1000 > canary.max_p99_ms:
            return f"p99 latency {latency * 1000:.0f} ms (over {canary.max_p99_ms:.0f} ms)"
    return None


def record_stage(root: Path, settings: Settings, env: str, served: DesiredState) -> tuple[str, ...]:
    """Record in the registry that the served versions reached ``env`` (a release stage)."""
    if env not in settings.release.stages:
        return ()
    name, recorded = settings.model.name, []
    registered = {v.model_tag: v for v in versions(root, name)}
    for tag in served.versions:
        version = registered.get(tag)
        if version and VERSION.fullmatch(version.version) and env not in version.stages:
            gto.api.assign(str(root), name, env, version=version.version)
            recorded.append(f"{version.tag} -> {env}")
    return tuple(recorded)


def find_running(root: Path, env: str) -> Running | None:
    """The local service of ``env`` if it answers, else None."""
    run_file = root / RUNS / f"{env}.json"
    if not run_file.exists():
        return None
    running = Running(**json.loads(run_file.read_text()))
    try:
        if httpx.get(f"{running.url}/livez", timeout=2).status_code == 200:
            return running
    except httpx.TransportError:
        pass
    return None
