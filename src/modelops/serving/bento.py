"""`make bento` (save the model, build the Bento) and `make serve` (serve it locally)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from pathlib import Path

import bentoml
import httpx
import yaml
from bentoml.exceptions import NotFound

from modelops.config import Settings
from modelops.serving.store import save_current

BENTOFILE = Path("bentofile.yaml")


def bento_name(bentofile: Path = BENTOFILE) -> str:
    """The Bento's name from bentofile.yaml."""
    return str(yaml.safe_load(bentofile.read_text())["name"])


def build(settings: Settings) -> str:
    """Save the current model into the model store and build the Bento around it; the
    Bento's version is the model's (rebuilt each time, so it carries the current code)."""
    model_tag = save_current(settings)
    tag = f"{bento_name()}:{model_tag.split(':')[1]}"
    with contextlib.suppress(NotFound):
        bentoml.bentos.delete(tag)
    bento = bentoml.bentos.build_bentofile(str(BENTOFILE), version=tag.split(":")[1])
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
