"""The Kubernetes manifests (deploy/k8s), validated offline: no cluster runs here.

Every overlay, with the canary and with the blue-green component, renders through
`make k8s-render` (kubectl's kustomize). The core kinds pass kubernetes-validate strictly
for KUBERNETES_VERSION; the Argo Rollouts and Prometheus Operator resources pass the
strict JSON schemas in ../shared/k8s-schemas (MODELOPS_K8S_SCHEMAS; skipped without them,
failing under MODELOPS_REQUIRE_SYSTEM_TOOLS=1). checkov finds nothing, or a skip says why
where it is made; since checkov does not scan kind Rollout, its pod template is scanned as
a Deployment too and its security settings are asserted here. The analysis queries only
metrics and labels that the service defines (telemetry.py), is valid PromQL (promtool),
and each overlay's ConfigMap holds its environment's desired-state file as it is.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from modelops.serving import telemetry
from modelops.serving.state import DesiredState
from tests.conftest import REPO

pytestmark = pytest.mark.heavy

K8S = REPO / "deploy/k8s"
ENVIRONMENTS = REPO / "deploy/environments"
OVERLAYS = sorted(p.parent.name for p in (K8S / "overlays").glob("*/kustomization.yaml"))
STRATEGIES = ("canary", "blue-green")  # canary: the base's; blue-green: components/blue-green
VARIANTS = [(env, strategy) for env in OVERLAYS for strategy in STRATEGIES]
KUBERNETES_VERSION = "1.34.0"  # kubernetes-validate ships schemas for 1.25 to 1.37
CUSTOM_GROUPS = ("argoproj.io", "monitoring.coreos.com")
API_ENDPOINTS = re.findall(
    r'Endpoint\("(/[\w/]+)"', (REPO / "src/modelops/serving/service.py").read_text()
)

# The strict schemas of the custom resources: a folder beside the repository (CI has it);
# a clone without one sets the variable, or these checks skip, naming it.
SCHEMAS_VARIABLE = "MODELOPS_K8S_SCHEMAS"
REQUIRE_VARIABLE = "MODELOPS_REQUIRE_SYSTEM_TOOLS"
DEFAULT_SCHEMAS = REPO.parent / "shared/k8s-schemas"
if DEFAULT_SCHEMAS.is_dir():  # copies of the repository made by other tests find them too
    os.environ.setdefault(SCHEMAS_VARIABLE, str(DEFAULT_SCHEMAS))


def missing(message: str) -> None:
    """Skip for a missing tool or file; fail instead where CI requires it."""
    if os.environ.get(REQUIRE_VARIABLE) == "1":
        pytest.fail(f"{message} ({REQUIRE_VARIABLE}=1)")
    pytest.skip(message)


def make_render(*variables: str) -> subprocess.CompletedProcess[str]:
    """`make k8s-render` with this test run's environment (installs nothing)."""
    venv = Path(sys.executable).parents[1]
    defaults = ("ENV=", "IMAGE_TAG=", "STRATEGY=")  # none inherited from the environment
    return subprocess.run(
        ["make", "--no-print-directory", "-s", "k8s-render", f"VENV={venv}",
         f"UV={shutil.which('true')}", *defaults, *variables],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip


def render(env: str, strategy: str = "canary", image_tag: str = "") -> tuple[dict, ...]:
    """The manifests of one overlay, as `make k8s-render` prints them."""
    return rendered(env, strategy, image_tag)


@functools.cache
def rendered(env: str, strategy: str, image_tag: str) -> tuple[dict, ...]:
    chosen = "" if strategy == "canary" else strategy
    done = make_render(f"ENV={env}", f"STRATEGY={chosen}", f"IMAGE_TAG={image_tag}")
    assert done.returncode == 0, done.stderr
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)


def the(docs: tuple[dict, ...], kind: str, name: str | None = None) -> dict:
    """The one object of a kind (and name) among the rendered ones."""
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"{len(found)} {kind} {name or ''} rendered"
    return found[0]


def pod_spec(docs: tuple[dict, ...]) -> dict:
    return the(docs, "Rollout")["spec"]["template"]["spec"]


def container(docs: tuple[dict, ...]) -> dict:
    (only,) = pod_spec(docs)["containers"]
    return only


def as_deployment(rollout: dict) -> dict:
    """A Rollout's pod template as the Deployment checkov knows how to scan."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": rollout["metadata"],
        "spec": {
            "replicas": 2,
            "selector": rollout["spec"]["selector"],
            "template": rollout["spec"]["template"],
        },
    }


def group(doc: dict) -> str:
    return doc["apiVersion"].rpartition("/")[0]


# --- rendering -------------------------------------------------------------------------


def test_there_are_staging_and_production_overlays():
    assert {"staging", "production"} <= set(OVERLAYS)


@pytest.mark.parametrize(("env", "strategy"), VARIANTS)
def test_every_overlay_renders_everything_into_its_own_namespace(env, strategy):
    docs = render(env, strategy)
    kinds = {d["kind"] for d in docs}
    assert kinds >= {
        "Namespace", "ServiceAccount", "ConfigMap", "Service", "Rollout", "AnalysisTemplate",
        "ServiceMonitor", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy",
    }  # fmt: skip
    namespace = the(docs, "Namespace")["metadata"]["name"]
    assert env in namespace
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == namespace, doc["metadata"]["name"]
    names = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(names) == len(set(names))


def test_make_k8s_render_refuses_an_unknown_environment_a_bad_tag_and_strategy():
    done = make_render("ENV=nowhere")
    assert done.returncode == 2
    assert "usage: make k8s-render ENV=<" in done.stderr
    assert all(env in done.stderr for env in OVERLAYS)
    for tag in ("1.2.0@sha256", "-1.2.0", "1.2.0+build", "x" * 129):
        done = make_render(f"ENV={OVERLAYS[0]}", f"IMAGE_TAG={tag}")
        assert done.returncode == 2, tag
        assert "is not an OCI tag" in done.stderr
    done = make_render(f"ENV={OVERLAYS[0]}", "STRATEGY=rainbow")
    assert done.returncode == 2
    assert "no deploy/k8s/components/rainbow" in done.stderr


@pytest.mark.parametrize("env", OVERLAYS)
def test_the_image_is_the_overlays_and_image_tag_sets_its_version(env):
    overlay = yaml.safe_load((K8S / "overlays" / env / "kustomization.yaml").read_text())
    (image,) = overlay["images"]
    placeholder = yaml.safe_load((K8S / "base/rollout.yaml").read_text())
    assert image["name"] == placeholder["spec"]["template"]["spec"]["containers"][0]["image"]
    assert container(render(env))["image"] == f"{image['newName']}:{image['newTag']}"
    for tag in ("1.4.0", "1.4.0-3f2a9c1"):
        assert container(render(env, image_tag=tag))["image"] == f"{image['newName']}:{tag}"
    # the copy was edited, not the overlay
    assert yaml.safe_load((K8S / "overlays" / env / "kustomization.yaml").read_text()) == overlay


# --- validation against schemas --------------------------------------------------------


@pytest.mark.parametrize(("env", "strategy"), VARIANTS)
def test_core_kinds_pass_kubernetes_validate_strictly(env, strategy):
    docs = render(env, strategy)
    core = [d for d in docs if group(d) not in CUSTOM_GROUPS]
    assert len(core) >= 8
    # the Rollout's pod template is a core PodTemplateSpec: checked as one too
    template = the(docs, "Rollout")["spec"]["template"]
    pod_template = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "rollout"}}
    for doc in [*core, {**pod_template, "template": template}]:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{doc['kind']} {doc['metadata']['name']}: {error.message}")


@pytest.fixture(scope="module")
def custom_schemas() -> Path:
    """The folder of the custom resources' strict schemas (README in it)."""
    folder = Path(os.environ.get(SCHEMAS_VARIABLE) or DEFAULT_SCHEMAS)
    if not (folder / "argoproj.io").is_dir():
        missing(
            f"no JSON schemas of the Argo Rollouts and Prometheus Operator resources at "
            f"{folder}: set {SCHEMAS_VARIABLE} to a folder like ../shared/k8s-schemas"
        )
    return folder


@pytest.mark.parametrize(("env", "strategy"), VARIANTS)
def test_custom_resources_pass_their_strict_schemas(env, strategy, custom_schemas):
    docs = [d for d in render(env, strategy) if group(d) in CUSTOM_GROUPS]
    assert {d["kind"] for d in docs} == {"Rollout", "AnalysisTemplate", "ServiceMonitor"}
    for doc in docs:
        version = doc["apiVersion"].rpartition("/")[2]
        path = custom_schemas / group(doc) / f"{doc['kind'].lower()}_{version}.json"
        schema = json.loads(path.read_text())
        assert '"additionalProperties": false' in path.read_text()  # strict: no stray field
        errors = list(jsonschema.Draft7Validator(schema).iter_errors(doc))
        assert not errors, [f"{doc['kind']}: {'/'.join(map(str, e.path))}: {e.message}"
                            for e in errors]  # fmt: skip


def test_a_misspelt_field_fails_the_strict_schemas(custom_schemas):
    rollout = the(render(OVERLAYS[0]), "Rollout")
    misspelt = {**rollout, "spec": {**rollout["spec"], "stratgy": {}}}
    schema = json.loads((custom_schemas / "argoproj.io/rollout_v1alpha1.json").read_text())
    assert not list(jsonschema.Draft7Validator(schema).iter_errors(rollout))
    assert list(jsonschema.Draft7Validator(schema).iter_errors(misspelt))
    service = the(render(OVERLAYS[0]), "Service", "model-service")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(
            {**service, "spec": {**service["spec"], "selectr": {}}}, KUBERNETES_VERSION, strict=True
        )


# --- checkov -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkov() -> Path:
    """checkov from its own locked environment (deploy/k8s/tools: it would downgrade the
    project's); installed on first use, offline after that."""
    tools = K8S / "tools"
    uv = Path(sys.executable).parent / "uv"
    uv_path = str(uv) if uv.exists() else shutil.which("uv")
    if uv_path is None:
        missing("uv is missing: `make setup` installs it")
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}  # not the project's
    env["UV_PROJECT_ENVIRONMENT"] = str(tools / ".venv")  # never the project's own .venv
    synced = subprocess.run(
        [str(uv_path), "sync", "--project", str(tools), "--locked", "--quiet"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if synced.returncode != 0:
        missing(f"cannot install checkov (deploy/k8s/tools): {synced.stderr[-2000:]}")
    return tools / ".venv/bin/checkov"


def test_checkov_passes_every_rendered_manifest_and_says_why_it_skips(checkov, tmp_path):
    for env, strategy in VARIANTS:
        docs = render(env, strategy)
        folder = tmp_path / f"{env}-{strategy}"
        folder.mkdir()
        (folder / "manifests.yaml").write_text(yaml.safe_dump_all(docs))
        pods = as_deployment(the(docs, "Rollout"))
        (folder / "rollout-pods.yaml").write_text(yaml.safe_dump(pods))
    done = subprocess.run(
        [str(checkov), "--directory", str(tmp_path), "--framework", "kubernetes",
         "--skip-download", "--output", "json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    report = json.loads(done.stdout)
    results = report["results"]
    failed = [(r["check_id"], r["resource"], r["check_name"]) for r in results["failed_checks"]]
    assert not failed, failed
    assert done.returncode == 0, done.stderr[-2000:]
    assert report["summary"]["parsing_errors"] == 0
    for skipped in results["skipped_checks"]:
        reason = skipped["check_result"].get("suppress_comment", "")
        assert len(reason) > 20, f"{skipped['check_id']} skipped without a reason"
    checked = [r for r in results["passed_checks"] if r["resource"].startswith("Deployment.")]
    assert len({r["check_id"] for r in checked}) >= 30  # the pod template was checked


# --- the pod: security, resources, probes, configuration --------------------------------


@pytest.mark.parametrize(("env", "strategy"), VARIANTS)
def test_the_pods_run_locked_down_with_resources_and_probes(env, strategy):
    docs = render(env, strategy)
    pod, box = pod_spec(docs), container(docs)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == the(docs, "ServiceAccount")["metadata"]["name"]
    security = box["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security.get("privileged", False) is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(box["resources"][kind])
    assert box["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert box["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert box["startupProbe"]["httpGet"]["path"] == "/livez"
    ports = {p["name"]: p["containerPort"] for p in box["ports"]}
    assert ports == {"http": 3000}
    assert {box[probe]["httpGet"]["port"] for probe in ("livenessProbe", "readinessProbe")} == {
        "http"
    }


@pytest.mark.parametrize("env", OVERLAYS)
def test_every_path_the_service_writes_is_a_volume(env):
    """A read-only root: /tmp (BentoML's temporary and Prometheus multi-process files) and
    the folder for a SQLite prediction log are emptyDirs; the desired state is read-only."""
    docs = render(env)
    mounts = {m["mountPath"]: m for m in container(docs)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(docs)["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    assert "emptyDir" in volumes[mounts["/var/lib/modelops"]["name"]]
    env_vars = {e["name"]: e for e in container(docs)["env"]}
    assert env_vars["OMP_NUM_THREADS"]["value"] == "1"
    assert env_vars["MODELOPS_PARAMS"]["value"].endswith("/params.yaml")
    secrets = {"MODELOPS_LOG_URL", "MODELOPS_ADMIN_TOKEN", "MODELOPS_PSEUDONYM_KEY"}
    for name in secrets:
        assert "secretKeyRef" in env_vars[name]["valueFrom"], name
        assert "value" not in env_vars[name]
    assert env_vars["MODELOPS_PSEUDONYM_KEY"]["valueFrom"]["secretKeyRef"]["optional"] is True
    writable = [m for m in mounts.values() if not m.get("readOnly")]
    assert all("emptyDir" in volumes[m["name"]] for m in writable)


@pytest.mark.parametrize("env", OVERLAYS)
def test_each_overlay_serves_its_environments_desired_state_as_it_is(env):
    source = ENVIRONMENTS / f"{env}.yaml"
    DesiredState.model_validate(yaml.safe_load(source.read_text()))
    docs = render(env)
    env_vars = {e["name"]: e.get("value") for e in container(docs)["env"]}
    path = Path(env_vars["MODELOPS_DESIRED_STATE"])
    mount = next(m for m in container(docs)["volumeMounts"] if m["mountPath"] == str(path.parent))
    assert mount.get("readOnly") is True
    assert "subPath" not in mount  # a subPath mount would never see the ConfigMap's updates
    volume = next(v for v in pod_spec(docs)["volumes"] if v["name"] == mount["name"])
    config_map = the(docs, "ConfigMap", volume["configMap"]["name"])
    assert config_map["data"] == {path.name: source.read_text()}


# --- rollout strategies and their analysis ---------------------------------------------


def analysis_runs(rollout: dict) -> list[dict]:
    """Every analysis a Rollout starts: canary steps and background, blue-green's."""
    strategy = rollout["spec"]["strategy"]
    runs = [s["analysis"] for s in strategy.get("canary", {}).get("steps", []) if "analysis" in s]
    runs += [strategy["canary"]["analysis"]] if "analysis" in strategy.get("canary", {}) else []
    blue_green = strategy.get("blueGreen", {})
    runs += [
        blue_green[k] for k in ("prePromotionAnalysis", "postPromotionAnalysis") if k in blue_green
    ]
    return runs


@pytest.mark.parametrize(("env", "strategy"), VARIANTS)
def test_every_analysis_names_a_rendered_template_and_gives_every_arg(env, strategy):
    docs = render(env, strategy)
    runs = analysis_runs(the(docs, "Rollout"))
    assert runs
    for run in runs:
        for ref in run["templates"]:
            template = the(docs, "AnalysisTemplate", ref["templateName"])
            needed = {a["name"] for a in template["spec"]["args"] if "value" not in a}
            given = {a["name"] for a in run.get("args", [])}
            assert needed <= given, needed - given
            declared = {a["name"] for a in template["spec"]["args"]}
            used = set(re.findall(r"\{\{\s*args\.([\w-]+)\s*\}\}", json.dumps(template["spec"])))
            assert used <= declared, used - declared
            assert given <= declared, given - declared


@pytest.mark.parametrize("env", OVERLAYS)
def test_the_canary_steps_up_in_weight_pauses_and_is_analysed(env):
    canary = the(render(env), "Rollout")["spec"]["strategy"]["canary"]
    steps = canary["steps"]
    weights = [s["setWeight"] for s in steps if "setWeight" in s]
    assert weights == sorted(weights)
    assert 0 < weights[0] < 100
    assert any("pause" in s for s in steps)
    analysis = [i for i, s in enumerate(steps) if "analysis" in s]
    assert analysis
    assert analysis[0] > steps.index(next(s for s in steps if "setWeight" in s))
    for step in (steps[i]["analysis"] for i in analysis):
        hashes = [a for a in step["args"] if "podTemplateHashValue" in a.get("valueFrom", {})]
        assert [a["valueFrom"]["podTemplateHashValue"] for a in hashes] == ["Latest"]


@pytest.mark.parametrize("env", OVERLAYS)
def test_blue_green_waits_for_a_person_and_analyses_after_the_switch(env):
    docs = render(env, "blue-green")
    strategy = the(docs, "Rollout")["spec"]["strategy"]
    assert set(strategy) == {"blueGreen"}
    blue_green = strategy["blueGreen"]
    assert blue_green["autoPromotionEnabled"] is False
    services = {d["metadata"]["name"] for d in docs if d["kind"] == "Service"}
    assert {blue_green["activeService"], blue_green["previewService"]} <= services
    assert blue_green["activeService"] != blue_green["previewService"]
    assert blue_green["postPromotionAnalysis"]["templates"]
    assert blue_green["scaleDownDelaySeconds"] >= 60  # the old pods to switch back to


def template_queries(docs: tuple[dict, ...]) -> dict[str, str]:
    """The AnalysisTemplate's PromQL queries, its args replaced as Argo Rollouts would
    (with the defaults, and made-up values for the args a Rollout passes)."""
    template = the(docs, "AnalysisTemplate")
    values = {a["name"]: a.get("value") for a in template["spec"]["args"]}
    values |= {"namespace": "modelops-test", "pod-template-hash": "6d9f8b7c5"}
    return {
        m["name"]: re.sub(
            r"\{\{args\.([\w-]+)\}\}",
            lambda a: values[a.group(1)],
            m["provider"]["prometheus"]["query"],
        )
        for m in template["spec"]["metrics"]
    }


def exposed_series() -> dict[str, set[str]]:
    """Every series name the service exposes (telemetry.py), with its label names."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    series = {}
    for metric in vars(telemetry).values():
        if not isinstance(metric, MetricWrapperBase):
            continue
        (described,) = metric.describe()
        labels = set(metric._labelnames)  # no public accessor
        for suffix in suffixes.get(described.type, ("",)):
            series[described.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return series


# labels Prometheus adds to every scraped series: its target's and the ServiceMonitor's
TARGET_LABELS = {"namespace", "pod", "service", "job", "instance", "rollouts_pod_template_hash"}


@pytest.mark.parametrize("env", OVERLAYS)
def test_the_analysis_queries_metrics_and_labels_the_service_exposes(env):
    series = exposed_series()
    assert "modelops_http_requests_total" in series  # telemetry.py read as intended
    queries = template_queries(render(env))
    assert {"error-rate", "p99-latency"} <= set(queries)
    for name, query in queries.items():
        selectors = re.findall(r"\b(modelops_\w+)\{([^}]*)\}", query)
        assert selectors, name
        for metric, matchers in selectors:
            assert metric in series, f"{name}: {metric} is not a metric of telemetry.py"
            labels = set(re.findall(r"(\w+)\s*=~?", matchers))
            assert labels <= series[metric] | TARGET_LABELS, (name, metric, labels)
            for paths in re.findall(r'endpoint=~?"([^"]+)"', matchers):
                assert set(paths.split("|")) <= set(API_ENDPOINTS), paths
    error_rate, p99 = queries["error-rate"], queries["p99-latency"]
    assert re.search(r'modelops_http_requests_total\{[^}]*status=~"5\.\."', error_rate)
    assert "histogram_quantile(0.99" in p99
    assert "modelops_http_request_duration_seconds_bucket" in p99


@pytest.mark.parametrize("env", OVERLAYS)
def test_the_thresholds_are_args_and_an_empty_window_is_inconclusive(env):
    template = the(render(env), "AnalysisTemplate")
    args = {a["name"]: a.get("value") for a in template["spec"]["args"]}
    assert float(args["max-error-rate"]) <= 0.05
    assert 0 < float(args["max-p99-latency-seconds"]) <= 1
    for metric in template["spec"]["metrics"]:
        for condition in ("successCondition", "failureCondition"):
            assert re.search(r"\{\{args\.max-[\w-]+\}\}", metric[condition]), metric["name"]
            assert "!isNaN(result)" in metric[condition]  # no requests: neither holds
        assert metric["provider"]["prometheus"]["query"].lstrip().startswith("scalar(")
        assert metric["count"] >= 1  # a step's analysis ends


def test_production_judges_latency_more_strictly_than_staging():
    def budget(env: str) -> float:
        args = the(render(env), "AnalysisTemplate")["spec"]["args"]
        return float(next(a["value"] for a in args if a["name"] == "max-p99-latency-seconds"))

    assert budget("production") < budget("staging")


def test_the_analysis_queries_are_valid_promql(tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        missing("promtool is missing: `make system-deps` installs Debian's prometheus")
    queries = template_queries(render(OVERLAYS[0]))
    rules = [{"record": f"analysis:{name.replace('-', '_')}", "expr": query}
             for name, query in queries.items()]  # fmt: skip
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "analysis", "rules": rules}]}))
    checked = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules)} rules found" in checked.stdout


# --- scraping, network, scaling -----------------------------------------------------------


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", selector).items())


@pytest.mark.parametrize(("env", "strategy"), VARIANTS)
def test_the_service_monitor_scrapes_every_pod_once_keeping_the_services_labels(env, strategy):
    docs = render(env, strategy)
    monitor = the(docs, "ServiceMonitor")["spec"]
    pods = the(docs, "Rollout")["spec"]["template"]["metadata"]["labels"]
    services = [d for d in docs if d["kind"] == "Service"]
    services = [s for s in services if selects(monitor["selector"], s["metadata"]["labels"])]
    assert len(services) == 1  # one Service, or each pod would be scraped once per Service
    (service,) = services
    assert service["spec"]["clusterIP"] == "None"
    assert selects(service["spec"]["selector"], pods)
    (endpoint,) = monitor["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    assert endpoint["honorLabels"] is True  # else `endpoint` becomes exported_endpoint
    assert "rollouts-pod-template-hash" in monitor["podTargetLabels"]


@pytest.mark.parametrize("env", OVERLAYS)
def test_network_policy_lets_in_only_port_3000_and_out_only_dns_and_the_database(env):
    docs = render(env)
    policy = the(docs, "NetworkPolicy")["spec"]
    pods = the(docs, "Rollout")["spec"]["template"]["metadata"]["labels"]
    assert selects(policy["podSelector"], pods)
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    ingress_ports = {
        (p["protocol"], p["port"]) for rule in policy["ingress"] for p in rule["ports"]
    }
    assert ingress_ports == {("TCP", 3000)}
    sources = [source for rule in policy["ingress"] for source in rule["from"]]
    assert {"podSelector": {}} in sources  # this namespace
    egress_ports = {(p["protocol"], p["port"]) for rule in policy["egress"] for p in rule["ports"]}
    assert egress_ports == {("UDP", 53), ("TCP", 53), ("TCP", 5432)}


@pytest.mark.parametrize("env", OVERLAYS)
def test_the_autoscaler_scales_the_rollout_and_disruptions_take_one_pod_at_a_time(env):
    docs = render(env)
    rollout = the(docs, "Rollout")
    assert "replicas" not in rollout["spec"]  # the autoscaler owns the count
    hpa = the(docs, "HorizontalPodAutoscaler")["spec"]
    target = hpa["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Rollout", rollout["metadata"]["name"])
    assert target["apiVersion"] == rollout["apiVersion"]
    assert 2 <= hpa["minReplicas"] < hpa["maxReplicas"]
    pdb = the(docs, "PodDisruptionBudget")["spec"]
    assert selects(pdb["selector"], rollout["spec"]["template"]["metadata"]["labels"])
    assert pdb["maxUnavailable"] == 1
    assert selects(rollout["spec"]["selector"], rollout["spec"]["template"]["metadata"]["labels"])
