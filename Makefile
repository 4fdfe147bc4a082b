# The verbs of the project. `make run` and `make test` are all a fresh clone needs:
# both install what they need (uv, then the locked environment in .venv).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.8
VENV := .venv
BIN := $(abspath $(VENV)/bin)
# Stage commands in dvc.yaml call `python`: make it the project's.
export PATH := $(BIN):$(abspath .tools/bin):$(PATH)
export VIRTUAL_ENV := $(abspath $(VENV))
# Compile bytecode at install: imports stay fast even where PYTHONDONTWRITEBYTECODE is set.
export UV_COMPILE_BYTECODE := 1
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)

SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
# Debian packages: headless Chromium and fonts (report preview), PostgreSQL (prediction-log
# tests), wrk (serving benchmark), prometheus (its promtool checks the service's metrics).
SYSTEM_PACKAGES := chromium fonts-liberation fonts-noto-color-emoji postgresql wrk prometheus

UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := .tools/bin/uv
endif

# The pull-request check (README: Reviewing a model pull request).
# BASE: the branch or commit the pull request merges into.
# REPORT_IMAGES: cml (CML uploads the plots to its asset host) or none (tables only).
BASE ?= main
REPORT_IMAGES ?= cml
CML_VERSION := 0.20.6
WATERMARK ?= model-report
PR_DIR := reports/pr
# What the model report judges: a pull request that changes none of these (git pathspecs)
# gets the check "model report" skipped, which a required check counts as passed.
MODEL_PATHS := src pipelines params.yaml dvc.yaml dvc.lock ':(glob)**/*.dvc' .dvc/config \
	pyproject.toml uv.lock bentofile.yaml Makefile tests/training/test_model_behaviour.py tests/conftest.py \
	.github/workflows/pr-report.yml

# Serving (README: Serving). The BentoML model and bento stores live in the clone.
export BENTOML_HOME ?= $(CURDIR)/.bentoml
export BENTOML_DO_NOT_TRACK := true
HOST ?= 127.0.0.1
PORT ?= 3000

.PHONY: adopt help setup system-deps postgres bento serve data simulate repro summary test test-fast lint format bench clean \
	champion pr-repro behaviour parity gates report report-preview comment job-summary pr bench-pr check-clean \
	bench-serving bench-soak model-changed prune-log k8s-render release versions promote rollback deploy \
	undeploy push-release image open-pr k8s-deploy record-stage check-state environments-changed bench-rollback \
	promotion-report monitor notify new-data retrain-branch retrain-commit retrain-runner retrain-decide \
	status automerge cml-runner bench-drift bench-control bench-detection timelapse

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --quiet
	@touch $@

setup: $(VENV)/.synced ## install the locked environment into .venv (and git's `ours` merge driver)
	@if git rev-parse --git-dir >/dev/null 2>&1; then git config merge.ours.driver true; fi

system-deps: ## install the Debian packages: Chromium and fonts, PostgreSQL, wrk, promtool; CI runs it
	@if dpkg -s $(SYSTEM_PACKAGES) >/dev/null 2>&1; then echo "system packages present"; else \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install \
		-y -qq --no-install-recommends $(SYSTEM_PACKAGES); fi

adopt: setup ## make it yours: DATA=<file|folder> TARGET=<col> [POSITIVE= TIME= ID= NAME= RECORD= RECORDS=]
	@if [ -z "$(DATA)" ] || [ -z "$(TARGET)" ]; then \
		echo "usage: make adopt DATA=<file or folder> TARGET=<column> [POSITIVE=<label>] [TIME=<column>] [ID=<column>] [NAME=<model name>] [RECORD=<noun>] [RECORDS=<plural>]"; exit 2; fi
	modelops adopt --data "$(DATA)" --target "$(TARGET)" $(if $(POSITIVE),--positive "$(POSITIVE)") \
		$(if $(TIME),--time "$(TIME)") $(if $(ID),--id "$(ID)") $(if $(NAME),--name "$(NAME)") \
		$(if $(RECORD),--record "$(RECORD)") $(if $(RECORDS),--records "$(RECORDS)")

data: setup ## restore raw data from DVC, or regenerate it from the simulator (hash-checked)
	modelops data get

simulate: data ## append WEEKS (default 1) simulated weeks to the raw data; commit data/raw.dvc after
	modelops data append --weeks "$(or $(WEEKS),1)"

repro: data ## run the DVC pipeline (only stages whose inputs changed)
	dvc repro

summary: setup ## print key metrics, lift over baselines and where outputs are
	modelops summary

run: repro summary build/requirements.txt ## the main job: data, pipeline, summary, bento, sample predictions
	modelops demo

build/requirements.txt: uv.lock | $(UV)
	@mkdir -p build
	$(UV) export --frozen --no-dev --no-hashes --no-emit-project --quiet -o $@

bento: repro build/requirements.txt ## save the model in the BentoML store; build the Bento (tag = model version)
	modelops bento

serve: repro build/requirements.txt ## build the Bento and serve it on HOST:PORT (127.0.0.1:3000)
	modelops serve --host "$(HOST)" --port "$(PORT)"

# DRY_RUN=1: count what would go, delete nothing.
# NOW=<ISO 8601>: the end of the window checked (default: now).
monitor: setup ## check the prediction log (MODELOPS_LOG_URL): reports/monitoring/report.md and verdict.json
	modelops monitor $(if $(NOW),--now "$(NOW)") $(if $(METRICS_URL),--metrics-url "$(METRICS_URL)")

# The example only (the simulator's weeks).
timelapse: repro ## replay WEEKS (default 12) simulated weeks per retraining strategy (never, scheduled, drift): reports/timelapse/
	modelops timelapse --weeks "$(or $(WEEKS),12)"

notify: setup ## CI: open or update the monitoring issue from reports/monitoring; dispatch retrain.yml on retrain (gh)
	modelops notify

new-data: data ## retraining's new batch: the simulator's next week, or the files in data.path; validated, tracked, pushed
	modelops data refresh

# The retraining workflow (retrain.yml): each step runs here too. MESSAGE and BRANCH are
# read from the environment by the shell, never pasted into the command line.
retrain-branch: ## CI: start the retraining branch BRANCH from HEAD
	git switch -c "$$BRANCH"

retrain-commit: ## CI: commit the new data and the pipeline's outputs (MESSAGE) on the current branch
	git add -A
	git commit -q -m "$$MESSAGE"

retrain-runner: ## CI: runner=hosted|cml and its labels (monitoring.retrain), also to GITHUB_OUTPUT
	@modelops retrain runner | tee -a "$${GITHUB_OUTPUT:-/dev/null}"

retrain-decide: ## CI: automerge=true|false (and why) for this branch against BASE, also to GITHUB_OUTPUT
	@modelops retrain decide --base "$(BASE)" | tee -a "$${GITHUB_OUTPUT:-/dev/null}"

status: ## CI: post the commit status CONTEXT on HEAD ("model report": from the verdict; else OUTCOME)
	modelops retrain status --context "$$CONTEXT" --outcome "$$OUTCOME"

automerge: ## CI: merge BRANCH's pull request by itself once its required checks pass (gh)
	gh pr merge "$$BRANCH" --auto --squash

# A bigger machine for training (monitoring.retrain.runner: cml): CLOUD aws|azure|gcp,
# CLOUD_REGION, CLOUD_TYPE (e.g. m5.2xlarge), RUNNER_LABELS; the cloud's credentials
# and REPO_TOKEN (a token that may register runners) in the environment.
cml-runner: ## CI: launch a one-job training runner with `cml runner launch`
	npx --yes "@dvcorg/cml@$(CML_VERSION)" runner launch --single --idle-timeout=3600 \
		--labels="$$RUNNER_LABELS" --cloud="$$CLOUD" --cloud-region="$$CLOUD_REGION" \
		--cloud-type="$$CLOUD_TYPE"

prune-log: setup ## delete prediction-log rows older than serving.log.retention_days (MODELOPS_LOG_URL)
	modelops log prune $(if $(DRY_RUN),--dry-run)

# Kubernetes (README: Deploying to Kubernetes). An overlay reads its environment's desired
# state from deploy/environments/, outside its own folder: kustomize needs the flag below.
# It renders a copy of the overlay: IMAGE_TAG sets the image's version tag there (as
# `kustomize edit set image` would), STRATEGY=blue-green adds deploy/k8s/components/blue-green.
K8S_BUILD := kubectl kustomize --load-restrictor LoadRestrictionsNone
k8s-render: export K8S_ENV = $(ENV)
k8s-render: export K8S_IMAGE_TAG = $(IMAGE_TAG)
k8s-render: export K8S_STRATEGY = $(STRATEGY)
k8s-render: setup ## print the Kubernetes manifests: ENV=<staging|production> [IMAGE_TAG=X.Y.Z[-<commit>]] [STRATEGY=blue-green]
	@set -eo pipefail; \
	if [ -z "$$K8S_ENV" ] || [ ! -f "deploy/k8s/overlays/$$K8S_ENV/kustomization.yaml" ]; then \
		echo "usage: make k8s-render ENV=<$$(ls deploy/k8s/overlays | paste -sd '|')> [IMAGE_TAG=X.Y.Z[-<commit>]] [STRATEGY=blue-green]" >&2; exit 2; fi; \
	if [ -n "$$K8S_IMAGE_TAG" ] && ! [[ "$$K8S_IMAGE_TAG" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$$ ]]; then \
		echo "IMAGE_TAG=$$K8S_IMAGE_TAG is not an OCI tag (letters, digits, '_', '.', '-'; no '@'; at most 128): e.g. 1.2.0 or 1.2.0-3f2a9c1" >&2; exit 2; fi; \
	if [ -n "$$K8S_STRATEGY" ] && [ ! -f "deploy/k8s/components/$$K8S_STRATEGY/kustomization.yaml" ]; then \
		echo "STRATEGY=$$K8S_STRATEGY: no deploy/k8s/components/$$K8S_STRATEGY (without STRATEGY: the canary)" >&2; exit 2; fi; \
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; mkdir "$$tmp/k8s"; \
	cp -R deploy/environments "$$tmp/"; cp -R deploy/k8s/base deploy/k8s/components deploy/k8s/overlays "$$tmp/k8s/"; \
	if [ -n "$$K8S_IMAGE_TAG" ]; then \
		sed -i -E "s/^( *newTag:).*/\1 \"$$K8S_IMAGE_TAG\"/" "$$tmp/k8s/overlays/$$K8S_ENV/kustomization.yaml"; fi; \
	if [ -n "$$K8S_STRATEGY" ]; then \
		printf 'components:\n  - ../../components/%s\n' "$$K8S_STRATEGY" >> "$$tmp/k8s/overlays/$$K8S_ENV/kustomization.yaml"; fi; \
	$(K8S_BUILD) "$$tmp/k8s/overlays/$$K8S_ENV"

postgres: ## start the local PostgreSQL server of the prediction-log tests (after system-deps)
	.ci/postgres

model-changed: ## model=true if BASE...HEAD touches MODEL_PATHS, else false (also to GITHUB_OUTPUT)
	@if git diff --quiet "$(BASE)...HEAD" -- $(MODEL_PATHS); then echo model=false; \
	else echo model=true; fi | tee -a "$${GITHUB_OUTPUT:-/dev/null}"

BUMP ?= minor
release: setup ## register the pipeline's model (gates passed, outputs committed) as the next version: BUMP=minor|patch|major
	modelops release --bump "$(BUMP)"

versions: setup ## list registered versions: metrics, stages reached, where each is served and since when
	modelops versions

promote: setup ## commit ENV's next desired state on a branch for a pull request: ENV= VERSION= STRATEGY=shadow|canary:N|ab:N|blue_green|full
	@if [ -z "$(ENV)" ] || [ -z "$(VERSION)" ] || [ -z "$(STRATEGY)" ]; then \
		echo "usage: make promote ENV=<env> VERSION=vX.Y.Z STRATEGY=<shadow|canary:N|ab:N|blue_green|full>"; exit 2; fi
	modelops promote --env "$(ENV)" --version "$(VERSION)" --strategy "$(STRATEGY)"

rollback: setup ## restore ENV's previous desired state now (a revert commit): ENV=<env> [BRANCH=<new branch>]
	@if [ -z "$(ENV)" ]; then echo "usage: make rollback ENV=<env> [BRANCH=<new branch for a pull request>]"; exit 2; fi
	$(if $(BRANCH),git switch -c "$(BRANCH)")
	modelops rollback --env "$(ENV)"

deploy: setup ## this machine serves ENV's desired state (starts, reloads, bakes a canary, rolls back on a breach): ENV=<env> [DEPLOY_PORT=]
	@if [ -z "$(ENV)" ]; then echo "usage: make deploy ENV=<env> [DEPLOY_PORT=<port>]"; exit 2; fi
	modelops deploy --env "$(ENV)" $(if $(DEPLOY_PORT),--port "$(DEPLOY_PORT)")

undeploy: setup ## stop this machine's service of ENV
	@if [ -z "$(ENV)" ]; then echo "usage: make undeploy ENV=<env>"; exit 2; fi
	modelops deploy --env "$(ENV)" --stop

# CI (release.yml, deploy.yml, rollback.yml): GitHub's `gh` CLI and GH_TOKEN authenticate
# git pushes and pull requests; git takes the bot's identity from GIT_AUTHOR_*/GIT_COMMITTER_*.
push-release: ## push the registry's tags (versions <model>@vX.Y.Z, stages <model>#<env>#N) to origin
	@if [ -n "$$GH_TOKEN" ]; then gh auth setup-git; fi
	git tag --list '*@v*' '*#*#*' | xargs --no-run-if-empty git push origin

# Without IMAGE it only builds the Bento (no Docker): what the image would carry.
image: setup build/requirements.txt ## the newest version's Bento with the versions it carries; IMAGE=ghcr.io/<owner>/<name>: containerize and push (Docker; REGISTRY_USER/REGISTRY_TOKEN log in)
	@if [ -n "$$REGISTRY_TOKEN" ] && [ -n "$(IMAGE)" ]; then \
		echo "$$REGISTRY_TOKEN" | docker login "$${IMAGE%%/*}" -u "$$REGISTRY_USER" --password-stdin; fi
	modelops image $(if $(IMAGE),--repository "$(IMAGE)")

# The branch of the newest promotion or rollback commit, unless BRANCH is given.
open-pr: ## CI: push BRANCH (default: the newest promote/* or rollback/* branch) and open its pull request
	gh auth setup-git
	@branch="$(BRANCH)"; if [ -z "$$branch" ]; then branch=$$(git for-each-ref --sort=-committerdate \
		--format='%(refname:short)' refs/heads/promote refs/heads/rollback | head -1); fi; \
	if [ -z "$$branch" ]; then echo "no promote/* or rollback/* branch to open"; exit 2; fi; \
	git push origin "$$branch" && gh pr create --head "$$branch" --base main --fill

k8s-deploy: setup ## CI: render ENV's overlay with its version's image, apply it, wait until healthy (KUBECONFIG or KUBECONFIG_B64)
	@if [ -z "$(ENV)" ]; then echo "usage: make k8s-deploy ENV=<staging|production>"; exit 2; fi
	@mkdir -p build
	$(MAKE) --no-print-directory k8s-render ENV="$(ENV)" IMAGE_TAG="$$(modelops image-tag --env "$(ENV)")" > build/$(ENV).yaml
	@set -e; if [ -n "$$KUBECONFIG_B64" ]; then umask 077; echo "$$KUBECONFIG_B64" | base64 -d > build/kubeconfig; \
		export KUBECONFIG="$(CURDIR)/build/kubeconfig"; fi; \
	kubectl apply -f build/$(ENV).yaml; \
	kubectl -n "modelops-$(ENV)" wait rollout/model-service --for=jsonpath='{.status.phase}'=Healthy --timeout=30m

record-stage: setup ## record that the versions ENV's file names reached ENV (gto assign), after a healthy rollout
	@if [ -z "$(ENV)" ]; then echo "usage: make record-stage ENV=<env>"; exit 2; fi
	modelops deploy --env "$(ENV)" --record-only

environments-changed: setup ## environments=<JSON list of release stages whose desired state BASE...HEAD changes> (also to GITHUB_OUTPUT)
	@echo "environments=$$(modelops environments-changed --base "$(BASE)")" | tee -a "$${GITHUB_OUTPUT:-/dev/null}"

promotion-report: setup ## ENV's champion vs challenger, offline (same holdout) and live (prediction log): reports/promotion/ENV.md
	@if [ -z "$(ENV)" ]; then echo "usage: make promotion-report ENV=<env>"; exit 2; fi
	modelops promotion-report --env "$(ENV)"

FILES ?= deploy/environments/*.yaml
check-state: setup ## validate desired-state files (structure; release rules for release.stages): FILES=
	modelops check-state $(FILES)

champion: setup ## fetch the model of BASE (default main) from DVC, or retrain BASE's pipeline
	modelops champion --base "$(BASE)"

pr-repro: data ## `dvc repro`, recording the outcome (and the failing stage) for the gates
	modelops repro

behaviour: setup ## the behavioral model tests, run against the pipeline's model and data
	pytest tests/training/test_model_behaviour.py tests/example/test_model.py --pipeline-outputs \
		-m "not retrains" -p no:cacheprovider -q --junitxml=$(PR_DIR)/behaviour.xml

parity: setup build/requirements.txt ## serve the model's Bento on 127.0.0.1; its answers vs. the offline scores
	modelops parity

gates: setup ## judge the model (every gate of params.yaml gates:, README: The gates); exits 1 on FAIL
	modelops gates

report: setup ## write the pull-request report that CML posts (reports/pr/report.md)
	modelops report --images "$(REPORT_IMAGES)"

report-preview: report ## render the report as GitHub would; screenshot it in headless Chromium
	modelops preview

REPORT_FILE ?= $(PR_DIR)/report.md
comment: ## post REPORT_FILE (the model report) as the pull request's one CML comment, updated on each push (CI)
	npx --yes "@dvcorg/cml@$(CML_VERSION)" comment update --target=pr \
		--watermark-title="$(WATERMARK)" $(if $(filter none,$(REPORT_IMAGES)),--no-publish) \
		$(REPORT_FILE)

job-summary: ## append the report to the GitHub Actions job summary (every PR, forks too)
	modelops report --job-summary

pr: data ## the pull-request job locally (BASE=main): champion, repro, behaviour, parity, gates, report
	@status=0; $(MAKE) --no-print-directory champion || status=$$?; \
	if $(MAKE) --no-print-directory pr-repro; then $(MAKE) --no-print-directory behaviour; \
		$(MAKE) --no-print-directory parity; fi; \
	$(MAKE) --no-print-directory gates || status=$$?; \
	$(MAKE) --no-print-directory report || status=$$?; exit $$status

# checkov, in its own locked environment (deploy/k8s/tools: it would downgrade the project's)
K8S_TOOLS := deploy/k8s/tools
$(K8S_TOOLS)/.venv/.synced: $(K8S_TOOLS)/pyproject.toml $(K8S_TOOLS)/uv.lock | $(UV)
	UV_PROJECT_ENVIRONMENT=$(abspath $(K8S_TOOLS))/.venv $(UV) sync --project $(K8S_TOOLS) --locked --quiet
	@touch $@

test: setup build/requirements.txt $(K8S_TOOLS)/.venv/.synced ## run the test suite
	pytest

test-fast: setup build/requirements.txt ## the suite without the slow integration tests
	pytest -m "not integration"

lint: setup ## ruff (lint + format check), mypy, actionlint, zizmor, uv.lock in step
	$(UV) lock --check --quiet
	ruff check .
	ruff format --check .
	mypy
	actionlint
	zizmor --offline --quiet .github/workflows

check-clean: ## fail when tracked files changed (after `make run` or `make test`: generated files out of step)
	@changed=$$(git status --porcelain); if [ -n "$$changed" ]; then \
		echo "tracked files changed, or untracked files appeared; commit what a run regenerates:"; \
		echo "$$changed"; git --no-pager diff --stat; exit 1; fi; echo "git status: clean"

format: setup ## apply ruff fixes and formatting
	ruff check --fix .
	ruff format .

bench: setup ## rerun the benchmarks (about 3 minutes; writes bench/results/)
	python bench/pipeline_bench.py
	python bench/bootstrap_bench.py
	python bench/schema_inference.py

bench-serving: BEFORE ?= 7a6ba07
bench-serving: bento ## serving benchmark, ours now and at BEFORE (default 7a6ba07; wrk from system-deps)
	python bench/serving_bench.py --before "$(BEFORE)"

bench-soak: SOAK_SECONDS ?= 180
bench-soak: bento ## soak the service on 127.0.0.1: mixed traffic, a desired-state switch (SOAK_SECONDS=180)
	python bench/soak.py --seconds "$(SOAK_SECONDS)"

bench-rollback: repro ## rollback under load: command to previous version on all traffic (writes bench/results/rollback.md)
	python bench/rollback_bench.py

# Evidently is in the `bench` dependency group only: `uv run --group bench` adds it for
# this run; the next `make setup` syncs it away again.
bench-drift: repro ## drift: ours vs Evidently on 1M x 1M rows, and detection power (writes bench/results/drift*.md)
	$(UV) run --frozen --group bench python bench/drift_bench.py
	python bench/drift_power.py

bench-control: setup ## control charts with nothing changed: textbook vs calibrated false alarms (seconds; bench/results/control_calibration.md)
	python bench/control_calibration.py

bench-detection: repro ## every monitoring detector together: detection and false alarms (about 25 minutes; bench/results/detection.md)
	python bench/detection.py

bench-pr: setup ## the PR-check benchmarks: gate power and the PR job, cold/warm (about 60 minutes)
	python bench/gate_power.py
	python bench/pr_job_bench.py

clean: ## remove the environment and caches (keeps data, models and the DVC cache)
	rm -rf build .bentoml $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache
