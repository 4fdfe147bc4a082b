"""`make bento` (save the model, build the Bento) and `make serve` (serve it locally), and
the names both take from params.yaml."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from pathlib import Path

import bentoml
import httpx
from bentoml.exceptions import NotFound

from modelops.config import ModelSettings, Settings, WordSettings
from modelops.serving.store import save_current

BENTOFILE = Path("bentofile.yaml")


def bento_name(model: ModelSettings) -> str:
    """The name of the Bento and of the BentoML service: ``<model.name>-service``."""
    return f"{model.name}-service"


def description(words: WordSettings) -> str:
    """What the service does, in the words of params.yaml (OpenAPI, Bento README)."""
    return (
        f"Scores each {words.record} for {words.positive}: champion/challenger routing, "
        "automation degrees, a prediction log"
    )


def build(settings: Settings) -> str:
    """Save the current model into the model store and build the Bento around it; the
    Bento's version is the model's (rebuilt each time, so it carries the current code).
    bentofile.yaml holds neutral defaults; the name and labels come from settings here,
    and the description from the service, which reads the same settings."""
    model_tag = save_current(settings)
    name, version = bento_name(settings.model), model_tag.split(":")[1]
    with contextlib.suppress(NotFound):
        bentoml.bentos.delete(f"{name}:{version}")
    bento = bentoml.bentos.build_bentofile(
        str(BENTOFILE), name=name, version=version, labels={"project": settings.model.name}
    )
    return str(bento.tag)


def server_env(settings: Settings) -> dict[str, str]:
    """Environment for `bentoml serve`: the repository's desired-state file and
    prediction log (not the copies inside the Bento), and one OpenMP thread."""
    log_url = os.environ.get("MODELOPS_LOG_URL", settings.serving.log.url)
    if log_url.startswith("sqlite:///") and not log_url.startswith("sqlite:////"):
        log_url = "sqlite:///" + str(Path(log_url.removeprefix("sqlite:///")).resolve())
    state = Path(os.environ.get("MODELOPS_DESIRED_STATE", str(settings.serving.desired_state)))
    return os.environ | {
        "MODELOPS_DESIRED_STATE": str(state.resolve()),
        "MODELOPS_LOG_URL": log_url,
        "MODELOPS_PARAMS": str(Path("params.yaml").resolve()),
        "OMP_NUM_THREADS": "1",
    }


def serve_command(tag: str, host: str, port: int) -> list[str]:
    """The `bentoml serve` command line."""
    return ["bentoml", "serve", tag, "--host", host, "--port", str(port)]


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float = 90) -> None:
    """Wait until ``url``/readyz answers 200; RuntimeError if the server exits or times out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the server at {url} was not ready within {timeout_s:.0f} s")
