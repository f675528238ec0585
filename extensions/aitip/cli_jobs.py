"""The ``aitip`` commands for notebook jobs and sweeps: ``aitip run``, ``aitip jobs ...``, ``aitip sweep`` and
``aitip sweeps show`` (streamed output, a job's view, a sweep's trials)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from .cli_common import add_callback_options, callback_of, client_for, emit, show_made_secret
from .i18n import shell_gettext as _
from .jobs.state_words import job_state_word
from .jobs.text import job_text, sweep_text
from .text_tables import shown_of, table

JOB_COLUMNS = ["id", "project", "owner", "state", "notebook_name", "attempt", "submitted_at", "reason"]


def parse_parameter_value(text: str) -> Any:
    """``-p name value``: JSON when it parses (numbers, true, lists...), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def git_version(path: str) -> str | None:
    """The commit of the repository holding the notebook, marked -dirty with uncommitted changes."""
    import subprocess

    folder = os.path.dirname(os.path.abspath(path))
    try:
        commit = subprocess.run(["git", "-C", folder, "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", folder, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "") if commit else None


def _print_event(event: Any) -> None:
    data = event.data
    if event.kind == "output":
        stream = sys.stderr if data.get("name") == "stderr" else sys.stdout
        stream.write(data.get("text", ""))
        stream.flush()
    elif event.kind == "state":
        detail = f": {data['reason']}" if data.get("reason") else ""
        print(_("[job {job}] {state}").format(job=event.job_id, state=job_state_word(str(data.get("state"))))
              + detail, file=sys.stderr, flush=True)
    elif event.kind == "cell_finished" and data.get("status") != "ok":
        print(_("[job {job}] cell {index} {status}").format(job=event.job_id, index=data.get("index"),
                                                            status=data.get("status")), file=sys.stderr, flush=True)


def _follow(client: Any, job_id: int) -> int:
    for event in client.follow_job(job_id):
        _print_event(event)
    job = client.get_job(job_id)
    if job.failed_cell:
        print(_("[job {job}] failed in cell {index}:").format(job=job_id, index=job.failed_cell.index)
              + f"\n{job.failed_cell.source}", file=sys.stderr)
    return 0 if job.state.value == "succeeded" else 1


def _parameters_of(args: argparse.Namespace) -> dict[str, Any]:
    parameters = {name: parse_parameter_value(value) for name, value in args.parameter or []}
    parameters.update({name: value for name, value in args.raw_parameter or []})
    return parameters


def _tags_of(args: argparse.Namespace) -> dict[str, str]:
    return dict(tag.split("=", 1) for tag in args.tag or [] if "=" in tag)


def _queued(args: argparse.Namespace, client: Any, job: Any) -> int:
    """What ``run`` and ``jobs rerun`` do with the job they made: say so, or follow it or wait for its end."""
    show_made_secret(job.callback_secret)
    if not (args.follow or args.wait):
        emit(args, job, lambda j: _("job {job} queued in {project} (kernel {kernel}); follow it with: "
                                    "aitip jobs logs -f {job}").format(job=j.id, project=j.project, kernel=j.kernel))
        return 0
    print(_("[job {job}] submitted to {project}").format(job=job.id, project=job.project), file=sys.stderr)
    if args.follow:
        code = _follow(client, job.id)
    else:
        ended = client.wait_job(job.id)
        detail = f": {ended.reason}" if ended.reason else ""
        print(_("[job {job}] {state}").format(job=ended.id, state=job_state_word(ended.state.value)) + detail,
              file=sys.stderr)
        code = 0 if ended.state.value == "succeeded" else 1
    if args.json:
        print(json.dumps(client.get_job(job.id).model_dump(mode="json"), indent=2))
    return code


def _one_notebook(parser: argparse.ArgumentParser, args: argparse.Namespace, *others: str) -> None:
    """A path or ``--shipped`` (or one of ``others``: ``--job``), exactly one, said before anything is sent."""
    given = [flag for flag, value in (("NOTEBOOK", args.notebook), ("--shipped", args.shipped),
                                      *((f"--{name}", getattr(args, name)) for name in others)) if value]
    if len(given) != 1:
        parser.error(_("give exactly one of {choices}").format(choices=", ".join(
            ["NOTEBOOK", "--shipped", *(f"--{name}" for name in others)])))


def cmd_run(args: argparse.Namespace) -> int:
    _one_notebook(args.parser, args)
    with client_for(args) as client:
        job = client.submit_job(args.project, args.notebook, shipped=args.shipped, parameters=_parameters_of(args),
                                kernel=args.kernel, cpus=args.cpus, gpus=args.gpus, priority=args.priority,
                                timeout_seconds=args.timeout, max_attempts=args.max_attempts, tags=_tags_of(args),
                                code_version=git_version(args.notebook) if args.notebook else None,
                                inputs=args.input or (), callback=callback_of(args))
        return _queued(args, client, job)


def cmd_jobs_rerun(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        job = client.rerun_job(args.job, parameters=_parameters_of(args), inputs=args.input, cpus=args.cpus,
                               gpus=args.gpus, priority=args.priority, timeout_seconds=args.timeout,
                               tags=_tags_of(args), callback=callback_of(args))
        return _queued(args, client, job)


def cmd_jobs_list(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        page = client.list_jobs(project=args.project, state=args.state, owner=args.owner, limit=args.limit)
    emit(args, page, lambda p: table([{**j.model_dump(mode="json"), "state": job_state_word(j.state.value)}
                                      for j in p.items], JOB_COLUMNS)
         + shown_of(len(p.items), p.total))
    return 0


def cmd_jobs_show(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        job = client.get_job(args.job)
    emit(args, job, lambda shown: job_text(shown.model_dump(mode="json")))
    return 0


def cmd_jobs_logs(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        if args.follow:
            return _follow(client, args.job)
        events = client.job_events(args.job)
        if args.json:
            print(json.dumps([e.model_dump(mode="json") for e in events], indent=2))
        else:
            for event in events:
                _print_event(event)
    return 0


def cmd_jobs_control(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        job = client.cancel_job(args.job) if args.command_name == "cancel" else client.retry_job(args.job)
    emit(args, job, lambda j: _("job {job}: {state}").format(job=j.id, state=job_state_word(j.state.value))
         + (" " + _("(cancel requested)") if j.cancel_requested else ""))
    return 0


def cmd_jobs_notebook(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        document = client.executed_notebook(args.job)
    text = json.dumps(document, indent=1)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
        print(_("wrote {path}").format(path=args.output), file=sys.stderr)
    else:
        print(text)
    return 0


def parse_dimension(text: str) -> tuple[str, dict[str, Any]]:
    """``name=loguniform:1e-4:1e-1``, ``name=uniform:0:1``, ``name=int:16:256``, ``name=choice:a,b``,
    ``name=grid:1,2,3`` (values read as JSON when they parse). An argparse type: a malformed one is refused
    as the option's error, in the shell's language."""
    name, _equals, spec = text.partition("=")
    kind, _colon, rest = spec.partition(":")
    refused = argparse.ArgumentTypeError(_("bad --space {space}; e.g. lr=loguniform:1e-4:1e-1 or hidden=choice:32,64")
                                         .format(space=repr(text)))
    if not name or kind not in ("grid", "choice", "uniform", "loguniform", "int") or not rest:
        raise refused
    if kind in ("grid", "choice"):
        return name, {"type": kind, "values": [parse_parameter_value(v) for v in rest.split(",")]}
    low, _colon, high = rest.partition(":")
    try:
        return name, {"type": kind, "low": float(low), "high": float(high)}
    except ValueError:
        raise refused from None


def cmd_sweep(args: argparse.Namespace) -> int:
    _one_notebook(args.parser, args, "job")
    space = dict(args.space)
    parameters = {name: parse_parameter_value(value) for name, value in args.parameter or []}
    with client_for(args) as client:
        sweep = client.create_sweep(args.project, args.notebook, space=space, objective=args.objective,
                                    direction="minimize" if args.minimize else "maximize", strategy=args.strategy,
                                    trials=args.trials, parallelism=args.parallel, parameters=parameters,
                                    seed=args.seed, kernel=args.kernel, job=args.job, inputs=args.input,
                                    shipped=args.shipped, callback=callback_of(args))
        show_made_secret(sweep.callback_secret)
        if args.wait:
            sweep = client.wait_sweep(sweep.id)
    emit(args, sweep, lambda shown: sweep_text(shown.model_dump(mode="json")))
    return 0 if sweep.state in ("running", "succeeded") else 1


def cmd_sweeps_show(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        sweep = client.get_sweep(args.sweep)
    emit(args, sweep, lambda shown: sweep_text(shown.model_dump(mode="json")))
    return 0


def add_job_commands(commands: Any, common: argparse.ArgumentParser) -> dict[str, Any]:
    """``run``, ``sweep``, ``sweeps`` and ``jobs``; the groups the operation table's commands join."""
    run = commands.add_parser("run", parents=[common], help=_("run a notebook as a job"))
    run.add_argument("notebook", nargs="?", help=_("path to the .ipynb file (or --shipped)"))
    run.add_argument("--shipped", metavar="NAME",
                     help=_("run a notebook the platform ships, by name (aitip notebooks list)"))
    run.add_argument("--project", "-P", required=True, help=_("the project (its name)"))
    run.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                     help=_("a parameter; VALUE is read as JSON when it parses, else as text"))
    run.add_argument("-r", "--raw-parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                     help=_("a parameter whose VALUE is always text"))
    run.add_argument("--kernel", "-k", help=_("kernel spec (default: the notebook's, else aitip-python)"))
    run.add_argument("--cpus", type=float, help=_("CPU cores it needs"))
    run.add_argument("--gpus", type=int, help=_("GPUs it needs"))
    run.add_argument("--priority", type=int, default=50, help=_("0-100: higher runs first"))
    run.add_argument("--timeout", type=int, default=3600, help=_("seconds before the job is stopped"))
    run.add_argument("--max-attempts", type=int, default=3, help=_("runs allowed when a worker is lost mid-job"))
    run.add_argument("--tag", action="append", metavar="KEY=VALUE", help=_("a tag of the job (repeatable)"))
    run.add_argument("--input", "-i", action="append", metavar="DATASET[@VERSION]",
                     help=_("a dataset version the job reads (repeatable; without @VERSION: the latest)"))
    add_callback_options(run, "job")
    run.add_argument("--follow", "-f", action="store_true", help=_("stream the job's output until it ends"))
    run.add_argument("--wait", "-w", action="store_true", help=_("wait for the job to end (exit 1 unless it succeeds)"))
    run.set_defaults(func=cmd_run, parser=run)

    sweep = commands.add_parser("sweep", parents=[common], help=_("search a notebook's parameters with trial jobs"))
    sweep.add_argument("notebook", nargs="?", help=_("path to the .ipynb file (or --shipped, or --job)"))
    sweep.add_argument("--shipped", metavar="NAME",
                       help=_("search a notebook the platform ships, by name (aitip notebooks list)"))
    sweep.add_argument("--job", "-j", type=int, help=_("search this job's notebook instead, with its settings"))
    sweep.add_argument("--input", "-i", action="append", metavar="DATASET[@VERSION]",
                       help=_("a dataset version every trial reads (repeatable; without @VERSION: the latest when "
                              "the sweep starts); with --job, default: the job's"))
    sweep.add_argument("--project", "-P", required=True, help=_("the project (its name)"))
    sweep.add_argument("--space", "-s", action="append", required=True, metavar="NAME=KIND:SPEC", type=parse_dimension,
                       help=_("a parameter's search space, e.g. {examples}").format(
                           examples="lr=loguniform:1e-4:1e-1, hidden=choice:32,64,128, depth=int:1:6, seed=grid:0,1"))
    sweep.add_argument("--strategy", choices=["grid", "random", "tpe"], default="tpe",
                       help=_("every point, random points, or Optuna's TPE (default: tpe)"))
    sweep.add_argument("--trials", type=int,
                       help=_("trial jobs in all (a grid: at most its size, which is the default)"))
    sweep.add_argument("--parallel", type=int, default=2, help=_("trials running at once"))
    sweep.add_argument("--objective", required=True, help=_("the MLflow metric each trial logs"))
    sweep.add_argument("--minimize", action="store_true", help=_("lower is better (default: higher)"))
    sweep.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                       help=_("a parameter every trial takes; VALUE is read as JSON when it parses, else as text"))
    sweep.add_argument("--seed", type=int, default=0, help=_("the search's random seed"))
    sweep.add_argument("--kernel", "-k", help=_("kernel spec (default: the notebook's, else aitip-python)"))
    add_callback_options(sweep, "sweep")
    sweep.add_argument("--wait", "-w", action="store_true", help=_("wait until the sweep finishes"))
    sweep.set_defaults(func=cmd_sweep, parser=sweep)

    sweeps = commands.add_parser("sweeps", parents=[common], help=_("show a sweep and its trials"))
    sweep_commands = sweeps.add_subparsers(dest="sweep_command", required=True, metavar="ACTION")
    sweep_show = sweep_commands.add_parser("show", parents=[common], help=_("one sweep: its trials and the best"))
    sweep_show.add_argument("sweep", type=int, help=_("the sweep's id"))
    sweep_show.set_defaults(func=cmd_sweeps_show)
    groups = {"sweeps": sweep_commands}

    jobs = commands.add_parser("jobs", parents=[common], help=_("list, follow, cancel, retry and rerun jobs"))
    job_commands = jobs.add_subparsers(dest="job_command", required=True, metavar="ACTION")
    job_list = job_commands.add_parser("list", parents=[common], help=_("the jobs you may see, newest first"))
    job_list.add_argument("--project", "-P", help=_("only this project's jobs"))
    job_list.add_argument("--state", choices=["queued", "starting", "running", "succeeded", "failed", "cancelled",
                                              "timed_out"], help=_("only jobs in this state"))
    job_list.add_argument("--owner", help=_("only this user's jobs"))
    job_list.add_argument("--limit", type=int, default=50, help=_("at most this many"))
    job_list.set_defaults(func=cmd_jobs_list)
    for verb, func, text in (("show", cmd_jobs_show, _("one job")), ("cancel", cmd_jobs_control, _("cancel a job")),
                             ("retry", cmd_jobs_control, _("re-run a job's snapshot as a new job"))):
        sub = job_commands.add_parser(verb, parents=[common], help=text)
        sub.add_argument("job", type=int, help=_("the job's id"))
        sub.set_defaults(func=func, command_name=verb)
    rerun = job_commands.add_parser("rerun", parents=[common], help=_(
        "run a job's notebook again as your new job, changing parameters, inputs or settings"))
    rerun.add_argument("job", type=int, help=_("the job's id"))
    rerun.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                       help=_("a parameter to change; VALUE is read as JSON when it parses, else as text"))
    rerun.add_argument("-r", "--raw-parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                       help=_("a parameter to change whose VALUE is always text"))
    rerun.add_argument("--input", "-i", action="append", metavar="DATASET[@VERSION]",
                       help=_("read this dataset version instead of the job's (repeatable; without @VERSION: the "
                              "latest); default: the versions the job read"))
    rerun.add_argument("--cpus", type=float, help=_("CPU cores it needs"))
    rerun.add_argument("--gpus", type=int, help=_("GPUs it needs"))
    rerun.add_argument("--priority", type=int, help=_("0-100: higher runs first"))
    rerun.add_argument("--timeout", type=int, help=_("seconds before the job is stopped"))
    rerun.add_argument("--tag", action="append", metavar="KEY=VALUE", help=_("a tag to add or change (repeatable)"))
    add_callback_options(rerun, "job")
    rerun.add_argument("--follow", "-f", action="store_true", help=_("stream the job's output until it ends"))
    rerun.add_argument("--wait", "-w", action="store_true",
                       help=_("wait for the job to end (exit 1 unless it succeeds)"))
    rerun.set_defaults(func=cmd_jobs_rerun)
    logs = job_commands.add_parser("logs", parents=[common], help=_("a job's output and state changes"))
    logs.add_argument("job", type=int, help=_("the job's id"))
    logs.add_argument("--follow", "-f", action="store_true", help=_("keep printing until the job ends"))
    logs.set_defaults(func=cmd_jobs_logs)
    executed = job_commands.add_parser("notebook", parents=[common], help=_("the executed notebook (the report)"))
    executed.add_argument("job", type=int, help=_("the job's id"))
    executed.add_argument("--output", "-o", help=_("where to write the notebook (default: standard output)"))
    executed.set_defaults(func=cmd_jobs_notebook)
    groups["jobs"] = job_commands
    return groups
