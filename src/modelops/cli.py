"""The command line the Makefile and the workflows call: ``modelops <command>``.

Each command imports what it needs when it runs: `modelops rollback`, what an on-call
engineer types, must not wait for the pipeline's and BentoML's imports."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from modelops import paths
from modelops.config import Settings, load_settings
from modelops.errors import InputError
from modelops.logs import setup


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelops", description=__doc__)
    parser.add_argument("--params", default="params.yaml", help="settings file (params.yaml)")
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data", help="the DVC-tracked raw dataset")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    data_commands.add_parser(
        "get",
        help="restore raw data from DVC, or regenerate it from the simulator and check its hash",
    )
    add = data_commands.add_parser("append", help="simulate the next week(s) as new batches")
    add.add_argument("--weeks", type=int, default=1, help="how many weeks to add (default 1)")
    data_commands.add_parser(
        "refresh",
        help="retraining's new batch: the simulator's next week, or the files in data.path; "
        "validated, tracked by DVC, pushed",
    )
    adopt = commands.add_parser("adopt", help="make the template yours: infer the schema of DATA")
    adopt.add_argument("--data", required=True, type=Path, help="a CSV/Parquet file or folder")
    adopt.add_argument("--target", required=True, help="the label column")
    adopt.add_argument("--positive", help="the target's positive label (e.g. Yes)")
    adopt.add_argument("--time", help="the event-time column (a time split); default: by name")
    adopt.add_argument("--id", dest="id_column", help="the row-id column; default: by name")
    adopt.add_argument("--name", help="the model's name; default: from the file name")
    adopt.add_argument("--record", help="what one row is (customer, claim...); default: record")
    adopt.add_argument("--records", help="its plural, when not record + s (e.g. people)")
    commands.add_parser("summary", help="key metrics, lift over baselines, where outputs are")
    champion = commands.add_parser("champion", help="obtain the model of the base revision")
    champion.add_argument("--base", default="main", help="branch or commit merged into (main)")
    commands.add_parser("repro", help="`dvc repro`, recording the outcome for the gates")
    commands.add_parser("gates", help="judge the model; exit 1 when a gate fails")
    report = commands.add_parser("report", help="write the pull-request report (markdown)")
    report.add_argument(
        "--images", choices=["cml", "none"], default="cml", help="embed plots (cml) or not"
    )
    report.add_argument(
        "--job-summary", action="store_true", help="append the written report to the job summary"
    )
    commands.add_parser("preview", help="render the report as HTML and screenshot it")
    commands.add_parser("bento", help="save the model to the BentoML store and build the Bento")
    serve = commands.add_parser("serve", help="serve the current model's Bento (`make serve`)")
    serve.add_argument("--host", default="127.0.0.1", help="interface (127.0.0.1)")
    serve.add_argument("--port", type=int, default=3000, help="port (3000)")
    commands.add_parser(
        "demo", help="serve briefly, answer sample requests, show the log; the release loop"
    )
    commands.add_parser(
        "parity", help="serve the model's Bento; compare its answers with the offline scores"
    )
    check = commands.add_parser("check-state", help="validate desired-state file(s)")
    check.add_argument("files", nargs="+", help="deploy/environments/<env>.yaml")
    predictions = commands.add_parser("log", help="the prediction log (MODELOPS_LOG_URL)")
    log_commands = predictions.add_subparsers(dest="log_command", required=True)
    prune = log_commands.add_parser(
        "prune", help="delete rows older than serving.log.retention_days, in small batches"
    )
    prune.add_argument("--dry-run", action="store_true", help="count them, delete nothing")
    _monitoring_parsers(commands)
    _release_parsers(commands)
    return parser


def _monitoring_parsers(commands: argparse._SubParsersAction) -> None:
    """The commands of monitoring and retraining: monitor, notify, retrain..."""
    monitor = commands.add_parser(
        "monitor", help="check the prediction log (MODELOPS_LOG_URL): report and verdict"
    )
    monitor.add_argument("--now", help="the end of the window checked, ISO 8601 (default: now)")
    monitor.add_argument(
        "--metrics-url",
        default=os.environ.get("MODELOPS_METRICS_URL") or None,  # unset in CI: empty
        help="the service's /metrics, to report what it refused (MODELOPS_METRICS_URL)",
    )
    commands.add_parser(
        "notify", help="CI: open or update the monitoring issue; dispatch retraining on retrain"
    )
    retraining = commands.add_parser("retrain", help="CI: the retraining workflow's decisions")
    retrain_commands = retraining.add_subparsers(dest="retrain_command", required=True)
    decide = retrain_commands.add_parser(
        "decide", help="automerge=true when allowed, every gate passed and only data changed"
    )
    decide.add_argument("--base", required=True, help="the branch merged into (origin/main)")
    retrain_commands.add_parser("runner", help="runner=hosted|cml and its labels, from params")
    from modelops.monitoring import cli as monitoring_cli  # argparse only: quick

    monitoring_cli.add_parser(commands)
    status = retrain_commands.add_parser("status", help="post a commit status on HEAD (gh)")
    status.add_argument("--context", required=True, help="model report, lint or test")
    status.add_argument("--outcome", help="a step's outcome; model report: from the verdict")


def _release_parsers(commands: argparse._SubParsersAction) -> None:
    """The commands of releasing: release, versions, promote, rollback, deploy..."""

    def with_env(name: str, description: str) -> argparse.ArgumentParser:
        command: argparse.ArgumentParser = commands.add_parser(name, help=description)
        command.add_argument("--env", required=True, help="environment (deploy/environments/)")
        return command

    release = commands.add_parser(
        "release", help="register the pipeline's model (gates passed) as the next version"
    )
    release.add_argument("--bump", choices=["major", "minor", "patch"], default="minor")
    commands.add_parser("versions", help="registered versions, their metrics, where each runs")
    promote = with_env("promote", "commit ENV's next desired state on a branch (a pull request)")
    promote.add_argument("--version", required=True, help="registered version, vX.Y.Z")
    promote.add_argument(
        "--strategy", required=True, help="shadow, canary:<percent>, ab:<percent>, blue_green, full"
    )
    with_env("rollback", "restore ENV's previous desired state (a revert commit)")
    deploy = with_env("deploy", "make this machine's service of ENV serve its desired-state file")
    deploy.add_argument("--port", type=int, help="port of a service started now (default: free)")
    deploy.add_argument("--stop", action="store_true", help="stop the environment's service")
    deploy.add_argument(
        "--record-only",
        action="store_true",
        help="only record the stage of the versions the file names (after a cluster rollout)",
    )
    with_env("image-tag", "the image tag of what ENV's file deploys")
    with_env("promotion-report", "ENV's champion and challenger offline and live (markdown)")
    changed = commands.add_parser(
        "environments-changed", help="JSON list of release stages whose file BASE..HEAD changes"
    )
    changed.add_argument("--base", required=True, help="the commit before (a push's before)")
    push = commands.add_parser(
        "image",
        help="the newest version's Bento, carrying the versions its record names; "
        "with --repository containerize it as REPOSITORY:<X.Y.Z> and push it (CI)",
    )
    push.add_argument("--repository", help="e.g. ghcr.io/<owner>/<name>")


SERVING_COMMANDS = ("bento", "serve", "demo", "check-state")
RELEASE_COMMANDS = (
    *("release", "versions", "promote", "rollback", "deploy"),
    *("image-tag", "image", "environments-changed", "promotion-report"),
)


def _quiet(*others: str) -> None:
    """No log line per HTTP request or database migration (or from ``others``)."""
    for chatty in ("alembic", "httpx", *others):
        logging.getLogger(chatty).setLevel(logging.WARNING)


def _serving(args: argparse.Namespace, settings: Settings) -> int:
    """The serving commands (imported here: BentoML is slow to import)."""
    _quiet()
    from modelops.serving import bento, demo, state, store

    if args.command == "check-state":
        from modelops.release import policy

        for file in map(Path, args.files):
            if file.stem in settings.release.stages:  # registered versions, stage order
                checked = policy.check(Path(), settings, file)
            else:  # models in this machine's BentoML store
                checked = state.load_state(file, store.resolve)
            print(f"{file}: valid, serves {checked.versions}")
        return 0
    tag = bento.build(settings)
    print(f"bento {tag}")
    if args.command == "demo":
        demo.run(settings, tag)
        from modelops.release import loop

        return loop.run_in_subprocess()
    if args.command == "serve":
        command = bento.serve_command(tag, args.host, args.port)
        os.execvpe(command[0], command, bento.server_env(settings))
    return 0


def _prune_log(settings: Settings, *, dry_run: bool) -> int:
    """`modelops log prune`: apply serving.log.retention_days to the prediction log."""
    _quiet()  # Alembic logs its plugins at import
    from sqlalchemy.exc import SQLAlchemyError

    from modelops.serving import predlog  # imports SQLAlchemy and Alembic

    url = predlog.log_url(settings.serving.log)
    where, days = predlog.redacted(url), settings.serving.log.retention_days
    if days is None:
        print(f"serving.log.retention_days is null: the prediction log at {where} is kept "
              "forever; nothing deleted")  # fmt: skip
        return 0
    try:
        pruned = predlog.prune(url, days, dry_run=dry_run)
    except SQLAlchemyError as exc:  # unreachable, refused, not a database URL
        raise InputError(f"cannot prune the prediction log at {where}: {exc}") from exc
    if not pruned.found:
        print(f"no prediction log at {where}: nothing to delete")
        return 0
    print(
        f"{where}: {'would delete' if dry_run else 'deleted'} {pruned.predictions} predictions "
        f"made before {pruned.cutoff:%Y-%m-%d %H:%M:%S} UTC (retention_days: {days}) and "
        f"{pruned.feedback + pruned.orphaned_feedback} labels: {pruned.feedback} received "
        f"before then, {pruned.orphaned_feedback} of those predictions"
    )
    return 0


def _monitoring(args: argparse.Namespace, settings: Settings) -> int:
    """`make monitor` and what the monitor and retrain workflows decide and post."""
    _quiet("bentoml")  # the check imports Alembic and may read BentoML's store
    from modelops.monitoring import check, notify, retrain

    if args.command == "notify":
        print("\n".join(notify.act(settings, check.REPORTS)))
        return 0
    if args.command == "retrain":
        chosen = settings.monitoring.retrain
        if args.retrain_command == "runner":
            print(f"runner={chosen.runner}\nlabels={chosen.runner_labels}")
        elif args.retrain_command == "decide":
            decision = retrain.decide(Path(), settings, args.base)
            print(f"automerge={str(decision.merge).lower()}\nwhy={decision.why}")
        elif args.context == "model report":
            status = retrain.model_report_status(Path())
            print(notify.post_status(status["context"], status["state"], status["description"]))
        else:
            state = args.outcome if args.outcome in ("success", "failure") else "error"
            print(notify.post_status(args.context, state, f"{args.context}: {args.outcome}"))
        return 0
    import datetime as dt

    from modelops.serving import predlog

    try:
        end = dt.datetime.fromisoformat(args.now) if args.now else None
    except ValueError as exc:
        raise InputError(f"--now '{args.now}': not an ISO 8601 time ({exc})") from exc
    log_url = predlog.log_url(settings.serving.log)
    verdict = check.run(Path(), settings, log_url, end, metrics_url=args.metrics_url)
    print(
        f"{verdict.level.upper()}: {check.REPORTS / 'report.md'}, {check.REPORTS / 'verdict.json'}"
    )
    for reason in verdict.reasons:
        print(f"  {reason}")
    return 0


def _release(args: argparse.Namespace, settings: Settings) -> int:
    """Register a version (`make release`), list them (`make versions`), promote one or
    roll an environment back."""
    from modelops.release import registry, show

    if args.command in ("promote", "rollback"):
        return _change_environment(args, settings)
    if args.command == "deploy":
        return _deploy(args, settings)
    name, root = settings.model.name, Path()
    if args.command == "image-tag":
        print(registry.image_tag(root, settings, args.env))
        return 0
    if args.command == "image":
        _quiet("bentoml")
        from modelops.release import image

        if args.repository:
            print(f"pushed {image.push(root, settings, args.repository)}")
            return 0
        newest, bento_tag = image.build(root, settings)
        carries = ", ".join(newest.record.get("image_carries", [newest.version]))
        print(f"bento {bento_tag}: {newest.version}'s image, carrying {carries}")
        return 0
    if args.command == "promotion-report":
        from modelops.release import report

        out = report.REPORTS / f"{args.env}.md"
        print(f"wrote {report.write(root, settings, args.env, out)}")
        return 0
    if args.command == "environments-changed":
        from modelops.release.environments import changed

        print(json.dumps(changed(root, args.base, settings.release.stages)))
        return 0
    if args.command == "versions":
        print(show.versions_table(registry.versions(root, name), root))
        return 0
    version = registry.register(root, name, args.bump)
    _quiet("bentoml")
    from modelops.serving import store  # imports BentoML: slow

    store.save_current(settings, root, version=version.version)
    logging.getLogger("modelops").info(
        "registered %s (git tag %s on %s; BentoML model %s): push it with "
        "`git push origin %s`", version.version, version.tag, version.commit[:12],
        version.model_tag, version.tag,
    )  # fmt: skip
    return 0


def _change_environment(args: argparse.Namespace, settings: Settings) -> int:
    """`make promote` and `make rollback`: a commit to an environment's desired state."""
    from modelops.release import promote

    if args.command == "promote":
        version = args.version
        if version == "latest":  # the newest registered version (the release workflow)
            from modelops.release.registry import versions

            registered = versions(Path(), settings.model.name)
            if not registered:
                raise promote.PromotionError("no registered version: `make release` first")
            version = registered[-1].version
        change = promote.promote(Path(), settings, args.env, version, args.strategy)
        print(change.diff)
        print(
            f"\ncommitted on branch {change.branch} ({change.commit[:12]}); open the pull "
            f"request: git push origin {change.branch} && gh pr create --head {change.branch}"
        )
        return 0
    change = promote.rollback(Path(), settings, args.env)
    print(change.diff)
    print(
        f"\nrolled back {change.environment} on {change.branch} ({change.commit[:12]}); a local "
        f"service watching the file applies it within serving.reload_interval_s; push to deploy"
    )
    return 0


def _deploy(args: argparse.Namespace, settings: Settings) -> int:
    """`make deploy`: this machine's service of an environment serves its file."""
    _quiet("bentoml")
    from modelops.release import deploy

    if args.stop:
        print(f"stopped the {args.env} service" if deploy.stop(Path(), args.env) else "none ran")
        return 0
    if args.record_only:
        from modelops.release.environments import ENVIRONMENTS
        from modelops.release.policy import check

        served = check(Path(), settings, ENVIRONMENTS / f"{args.env}.yaml")
        for recorded in deploy.record_stage(Path(), settings, args.env, served):
            print(f"registry: {recorded}")
        return 0
    done = deploy.deploy(Path(), settings, args.env, args.port)
    print(f"{done.environment}: {done.url} serves {', '.join(done.serving)}")
    if done.rolled_back:
        print(f"the canary breached ({done.rolled_back}): rolled back (a revert commit)")
        return 1
    for recorded in done.stages_recorded:
        print(f"registry: {recorded}")
    return 0


def _without_settings(args: argparse.Namespace) -> int | None:
    """The commands that do not read params.yaml first; None for the others."""
    from modelops.data.adopt import Request, adopt
    from modelops.review import preview, report, repro
    from modelops.training.summary import summary

    if args.command == "summary":
        print(summary(args.params))
        return 0
    if args.command == "preview":
        preview.main(paths.REPORT, paths.REPORT.with_suffix(".html"), paths.REPORT_PNG)
        return 0
    if args.command == "report" and args.job_summary:
        report.append_job_summary()
        return 0
    if args.command == "adopt":
        request = Request(
            args.data, args.target, args.positive, args.time, args.id_column, args.name,
            args.record, args.records,
        )  # fmt: skip
        print(adopt(request, Path(args.params)))
        return 0
    if args.command == "repro":
        return int(repro.run()["exit_code"])
    return None


def _pipeline(args: argparse.Namespace, settings: Settings) -> int:
    """The pipeline's and the pull-request check's commands that read params.yaml."""
    from modelops.data import dataset
    from modelops.review import champion, report
    from modelops.review.check import run_gates

    if args.command == "champion":
        champion.fetch(args.base, extra_files=(f"{settings.data.path}.dvc",))
        return 0
    if args.command == "gates":
        return 0 if run_gates(settings)["verdict"] == "PASS" else 1
    if args.command == "report":
        report.write(settings, images=args.images == "cml")
        return 0
    if args.command == "parity":
        _quiet("bentoml")  # one summary line; BentoML's build messages are not news
        from modelops.review import parity  # imports BentoML: slow

        return 0 if parity.measure(settings)["status"] == "measured" else 1
    log = logging.getLogger("modelops")
    if args.data_command == "get":
        log.info("%s", dataset.get(settings))
    elif args.data_command == "refresh":
        log.info("%s; commit %s", dataset.refresh(settings), dataset.dvc_file(settings))
    else:
        added = dataset.append(settings, args.weeks)
        log.info("added %s; commit %s", ", ".join(map(str, added)), dataset.dvc_file(settings))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run one command; input errors print a message and return 1."""
    args = _parser().parse_args(argv)
    log = setup(args.command)
    try:
        if args.command in RELEASE_COMMANDS:  # first: no pipeline imports on call
            return _release(args, load_settings(args.params))
        done = _without_settings(args)
        if done is not None:
            return done
        settings = load_settings(args.params)
        if args.command in SERVING_COMMANDS:
            return _serving(args, settings)
        if args.command == "log":
            return _prune_log(settings, dry_run=args.dry_run)
        if args.command in ("monitor", "notify", "retrain"):
            return _monitoring(args, settings)
        if args.command == "timelapse":
            _quiet("bentoml")  # progress lines only, no line per request
            from modelops.monitoring import cli as monitoring_cli

            return monitoring_cli.main(args, settings)
        return _pipeline(args, settings)
    except InputError as exc:
        log.error("%s", exc)
        return 1
    except FileNotFoundError as exc:
        log.error("%s: run `make run` first", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
