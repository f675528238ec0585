"""The ``aitip`` command: start the platform, log in, and work with projects.

Human tables by default, in the shell's language (``AITIP_LANG``, else the locale: :mod:`aitip.i18n`);
``--json`` for programs and agents, never translated. Help texts and argparse's own words too: the
operation table's summaries and descriptions are in the catalog (:func:`aitip.cli_operations.extract_messages`).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel

from .argparse_language import Parser, in_shell_language
from .cli_operations import add_operation_commands, ended_well, human, run_operation
from .i18n import N_
from .i18n import shell_gettext as _
from .i18n import shell_ngettext as ngettext
from .experiments.text import number
from .text_tables import cell as _cell
from .text_tables import field_lines, table

EXIT_USAGE = 2
EXIT_API = 1


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_dump(item) for item in value]
    return value


def emit(args: argparse.Namespace, value: Any, human: Callable[[Any], str]) -> None:
    if args.json:
        print(json.dumps(_dump(value), indent=2))
    else:
        print(human(value))


PROJECT_COLUMNS = ["name", "display_name", "my_role", "archived", "created_by", "created_at"]
MEMBER_COLUMNS = ["kind", "name", "role", "added_by", "added_at"]


def _client(args: argparse.Namespace) -> Any:
    from .client import Client

    return Client(args.url, args.token)


def cmd_up(args: argparse.Namespace) -> int:
    from .launcher import up

    return up()


def _cookie(http: httpx.Client, name: str) -> str | None:
    """The most recently set cookie of that name (the hub re-issues _xsrf after login)."""
    value = None
    for cookie in http.cookies.jar:
        if cookie.name == name:
            value = cookie.value
    return value


# The --callback-url help, by what ends.
CALLBACK_HELP = {"job": N_("post the job's end here, signed (X-Aitip-Signature); a public http(s) URL"),
                 "sweep": N_("post the sweep's end here, signed (X-Aitip-Signature); a public http(s) URL")}


def _add_callback_options(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--callback-url", metavar="URL",
                        help=_(CALLBACK_HELP[what]))
    parser.add_argument("--callback-secret", metavar="SECRET",
                        help=_("sign the callback with this secret (24-256 printable characters; default: the "
                        "platform makes one and prints it once)"))


def _callback(args: argparse.Namespace) -> dict[str, str] | None:
    if not args.callback_url:
        if args.callback_secret:
            raise SystemExit(_("--callback-secret needs --callback-url"))
        return None
    return {"url": args.callback_url, **({"secret": args.callback_secret} if args.callback_secret else {})}


def _show_made_secret(secret: str | None) -> None:
    if secret:
        print(_("callback secret (shown once; verify each callback with it): {secret}").format(secret=secret),
              file=sys.stderr)


def cmd_worker(args: argparse.Namespace) -> int:
    from .server.worker_process import main as worker_main

    return worker_main(args)


def hub_login(hub_url: str, username: str, password: str, note: str = "aitip CLI") -> str:
    """Log in to the hub's form (NativeAuthenticator) and create an API token for the user."""
    with httpx.Client(base_url=hub_url.rstrip("/"), timeout=30.0, follow_redirects=False) as http:
        http.get("/hub/login")
        xsrf = _cookie(http, "_xsrf")
        if not xsrf:
            raise SystemExit(_("aitip login: {url} did not answer like a JupyterHub login page").format(url=hub_url))
        response = http.post("/hub/login", data={"username": username, "password": password, "_xsrf": xsrf})
        if response.status_code != 302:
            raise SystemExit(_("aitip login: refused: wrong user name or password, or the account is not yet "
                               "approved by an admin"))
        http.cookies.delete("_xsrf")
        http.get("/hub/token")  # the session changed at login: fetch the XSRF token bound to it
        xsrf = _cookie(http, "_xsrf") or ""
        created = http.post(f"/hub/api/users/{username}/tokens", json={"note": note},
                            headers={"X-XSRFToken": xsrf})
        if created.status_code != 201:
            from .client import plain_summary

            raise SystemExit(_("aitip login: the hub would not create a token ({status} {reason}): {summary}").format(
                status=created.status_code, reason=created.reason_phrase, summary=plain_summary(created)))
        return str(created.json()["token"])


def cmd_login(args: argparse.Namespace) -> int:
    from .client import Client, save_credentials

    hub_url = (args.hub or os.environ.get("AITIP_HUB_URL")
               or f"http://127.0.0.1:{os.environ.get('AITIP_PORT', '8000')}").rstrip("/")
    token = args.token
    if token is None:
        username = args.username or input(_("user: "))
        password = os.environ.get("AITIP_PASSWORD") or getpass.getpass(
            _("password for {user}: ").format(user=username))
        token = hub_login(hub_url, username, password)
    api_url = f"{hub_url}/services/aitip/"
    with Client(api_url, token) as client:
        me = client.me()
    path = save_credentials(api_url, token, me.name)
    emit(args, {"user": me.name, "url": api_url, "credentials": str(path)},
         lambda v: _("logged in to {url} as {user} (credentials in {credentials})").format(**v))
    return 0


def cmd_me(args: argparse.Namespace) -> int:
    with _client(args) as client:
        me = client.me()
    emit(args, me, lambda m: "\n".join([
        *field_lines({"user": m.name + ("  " + _("(hub admin)") if m.admin else ""),
                      "groups": ", ".join(m.groups) or "-"}, ["user", "groups"], 8),
        "",
        table([p.model_dump(mode='json') for p in m.projects], ["project", "role", "archived", "display_name"]),
    ]))
    return 0


def cmd_projects_list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        page = client.list_projects(include_archived=args.all, limit=args.limit, offset=args.offset)
    emit(args, page, lambda p: table([i.model_dump(mode="json") for i in p.items], PROJECT_COLUMNS)
         + _shown_of(len(p.items), p.total))
    return 0


def _shown_of(shown: int, total: int) -> str:
    """The footer of a list cut to one page."""
    return "\n" + _("({shown} of {total})").format(shown=shown, total=total) if total > shown else ""


def _project_view(project: Any) -> str:
    data = project.model_dump(mode="json")
    fields = ["name", "display_name", "description", "my_role", "archived", "created_by", "created_at", "updated_at"]
    return "\n".join(field_lines({key: _cell(data[key]) for key in fields}, fields, 14))


def cmd_projects_create(args: argparse.Namespace) -> int:
    with _client(args) as client:
        project = client.create_project(args.name, display_name=args.display_name, description=args.description)
    emit(args, project, _project_view)
    return 0


def cmd_projects_show(args: argparse.Namespace) -> int:
    with _client(args) as client:
        project = client.get_project(args.name)
    emit(args, project, _project_view)
    return 0


def cmd_projects_update(args: argparse.Namespace) -> int:
    with _client(args) as client:
        project = client.update_project(args.name, display_name=args.display_name, description=args.description)
    emit(args, project, _project_view)
    return 0


def cmd_projects_archive(args: argparse.Namespace) -> int:
    with _client(args) as client:
        project = client.archive_project(args.name) if args.command_name == "archive" \
            else client.unarchive_project(args.name)
    emit(args, project, _project_view)
    return 0


def cmd_members_list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        members = client.list_members(args.project)
    emit(args, members, lambda m: table([i.model_dump(mode="json") for i in m.items], MEMBER_COLUMNS))
    return 0


def _principal(args: argparse.Namespace) -> dict[str, str]:
    return {"group": args.group} if args.group else {"user": args.user}


def cmd_members_add(args: argparse.Namespace) -> int:
    with _client(args) as client:
        member = client.add_member(args.project, args.role, **_principal(args))
    emit(args, member, lambda m: table([m.model_dump(mode="json")], MEMBER_COLUMNS))
    return 0


def cmd_members_set_role(args: argparse.Namespace) -> int:
    with _client(args) as client:
        member = client.set_member_role(args.project, args.role, **_principal(args))
    emit(args, member, lambda m: table([m.model_dump(mode="json")], MEMBER_COLUMNS))
    return 0


def cmd_members_remove(args: argparse.Namespace) -> int:
    with _client(args) as client:
        client.remove_member(args.project, **_principal(args))
    emit(args, {"removed": _principal(args)},
         lambda v: _("removed {member}").format(member=next(iter(v["removed"].values()))))
    return 0


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
        print(_("[job {job}] {state}").format(job=event.job_id, state=data.get("state")) + detail, file=sys.stderr,
              flush=True)
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


def cmd_run(args: argparse.Namespace) -> int:
    parameters = {name: parse_parameter_value(value) for name, value in args.parameter or []}
    parameters.update({name: value for name, value in args.raw_parameter or []})
    tags = dict(tag.split("=", 1) for tag in args.tag or [] if "=" in tag)
    with _client(args) as client:
        job = client.submit_job(args.project, args.notebook, parameters=parameters, kernel=args.kernel,
                                cpus=args.cpus, gpus=args.gpus, priority=args.priority,
                                timeout_seconds=args.timeout, max_attempts=args.max_attempts, tags=tags,
                                code_version=git_version(args.notebook), inputs=args.input or (),
                                callback=_callback(args))
        _show_made_secret(job.callback_secret)
        if not (args.follow or args.wait):
            emit(args, job, lambda j: _("job {job} queued in {project} (kernel {kernel}); follow it with: "
                                        "aitip jobs logs -f {job}").format(job=j.id, project=j.project,
                                                                           kernel=j.kernel))
            return 0
        print(_("[job {job}] submitted to {project}").format(job=job.id, project=job.project), file=sys.stderr)
        if args.follow:
            code = _follow(client, job.id)
        else:
            code = 0 if client.wait_job(job.id).state.value == "succeeded" else 1
        if args.json:
            print(json.dumps(client.get_job(job.id).model_dump(mode="json"), indent=2))
        return code


def cmd_jobs_list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        page = client.list_jobs(project=args.project, state=args.state, owner=args.owner, limit=args.limit)
    emit(args, page, lambda p: table([j.model_dump(mode="json") for j in p.items], JOB_COLUMNS)
         + _shown_of(len(p.items), p.total))
    return 0


def _job_view(job: Any) -> str:
    data = job.model_dump(mode="json")
    keys = ["id", "project", "owner", "state", "reason", "notebook_name", "notebook_sha256", "kernel", "parameters",
            "resources", "attempt", "max_attempts", "priority", "mlflow_run_id", "submitted_at", "started_at",
            "finished_at"]
    lines = field_lines({key: json.dumps(data[key]) if isinstance(data[key], dict) else _cell(data[key])
                         for key in keys}, keys, 17)
    if job.failed_cell:
        lines.append(_("failed cell {index}:").format(index=job.failed_cell.index)
                     + f"\n{job.failed_cell.source}\n{job.failed_cell.traceback or ''}")
    return "\n".join(lines)


def cmd_jobs_show(args: argparse.Namespace) -> int:
    with _client(args) as client:
        job = client.get_job(args.job)
    emit(args, job, _job_view)
    return 0


def cmd_jobs_logs(args: argparse.Namespace) -> int:
    with _client(args) as client:
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
    with _client(args) as client:
        job = client.cancel_job(args.job) if args.command_name == "cancel" else client.retry_job(args.job)
    emit(args, job, lambda j: _("job {job}: {state}").format(job=j.id, state=j.state.value)
         + (" " + _("(cancel requested)") if j.cancel_requested else ""))
    return 0


def cmd_jobs_notebook(args: argparse.Namespace) -> int:
    with _client(args) as client:
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


def _sweep_view(sweep: Any) -> str:
    head = _("sweep {sweep} ({strategy}) in {project}: {state}, {created}/{trials} trials, {direction} "
             "{objective}").format(sweep=sweep.id, strategy=sweep.strategy, project=sweep.project, state=sweep.state,
                                   created=sweep.created_trials, trials=sweep.trials, direction=sweep.direction,
                                   objective=sweep.objective)
    best = (_("best: {value} from job {job} with {parameters}").format(
        value=number(sweep.best_value), job=sweep.best_job_id, parameters=json.dumps(sweep.best_parameters))
            if sweep.best_job_id else _("best: none yet"))
    rows = [{"job": t.job_id, "trial": t.index, "state": t.state.value, "value": number(t.value),
             "parameters": json.dumps(t.parameters)} for t in sweep.trial_jobs]
    return "\n".join([head, best, "", table(rows, ["trial", "job", "state", "value", "parameters"])])


def cmd_sweep(args: argparse.Namespace) -> int:
    space = dict(args.space)
    parameters = {name: parse_parameter_value(value) for name, value in args.parameter or []}
    with _client(args) as client:
        sweep = client.create_sweep(args.project, args.notebook, space=space, objective=args.objective,
                                    direction="minimize" if args.minimize else "maximize", strategy=args.strategy,
                                    trials=args.trials, parallelism=args.parallel, parameters=parameters,
                                    seed=args.seed, kernel=args.kernel,
                                    callback=_callback(args))
        _show_made_secret(sweep.callback_secret)
        if args.wait:
            sweep = client.wait_sweep(sweep.id)
    emit(args, sweep, _sweep_view)
    return 0 if sweep.state in ("running", "succeeded") else 1


def cmd_sweeps_show(args: argparse.Namespace) -> int:
    with _client(args) as client:
        sweep = client.get_sweep(args.sweep)
    emit(args, sweep, _sweep_view)
    return 0


ROLES = ["viewer", "developer", "maintainer", "admin"]


DATASET_COLUMNS = ["name", "latest_version", "versions", "created_by", "created_at"]
VERSION_COLUMNS = ["version", "format", "rows", "bytes", "files", "author", "message", "tag", "created_at"]


def _datasets(client: Any) -> Any:
    from .datasets.sdk import DatasetsAPI

    return DatasetsAPI(client)


def cmd_data_add(args: argparse.Namespace) -> int:
    with _client(args) as client:
        version = _datasets(client).add(args.project, args.name, args.path, message=args.message,
                                        format=args.format)
    emit(args, version, lambda v: _("{dataset} v{version} registered ({rows} rows, {bytes} bytes, tag {tag})").format(
        dataset=v.dataset, version=v.version, rows=v.rows if v.rows is not None else "-", bytes=v.bytes, tag=v.tag))
    return 0


def cmd_data_list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        datasets = _datasets(client).list(args.project)
    emit(args, datasets, lambda ds: table([d.model_dump(mode="json") for d in ds], DATASET_COLUMNS))
    return 0


def cmd_data_versions(args: argparse.Namespace) -> int:
    with _client(args) as client:
        versions = _datasets(client).versions(args.project, args.name)
    emit(args, versions, lambda vs: table([v.model_dump(mode="json") for v in vs], VERSION_COLUMNS))
    return 0


def cmd_data_show(args: argparse.Namespace) -> int:
    with _client(args) as client:
        version = _datasets(client).version(args.project, args.name, args.version)
    emit(args, version, _version_view)
    return 0


def _version_view(version: Any) -> str:
    """One version as a person reads it: what it is, and a line per column (type, missing values, distinct
    values, range); masked columns say so. ``--json`` gives the whole quality report."""
    v = version.model_dump(mode="json", by_alias=True)
    quality = v.get("quality") or {}
    files = ngettext("{count} file", "{count} files", v["files"]).format(count=v["files"])
    lines = [f"{v['dataset']} v{v['version']}  " + _("{format}, {rows} rows, {bytes} bytes, {files}").format(
                 format=v["format"], rows=_cell(v["rows"]), bytes=v["bytes"], files=files),
             _("tag:        {tag}").format(tag=_cell(v["tag"])),
             _("registered: by {author} at {at}").format(author=v["author"], at=_cell(v["created_at"]))
             + (f": {v['message']}" if v["message"] else ""),
             *([_("from:       {source}").format(source=v["derived_from"])] if v.get("derived_from") else []),
             *([_("restored:   from v{version}").format(version=v["restored_from"])] if v.get("restored_from") else [])]
    duplicates = quality.get("duplicates")
    if isinstance(duplicates, dict):
        lines.append(_("duplicates: {count} rows").format(count=duplicates.get("count")))
    columns = quality.get("columns") or []
    if columns:
        masked = set(v.get("masked_columns") or [])
        rows = []
        for column in columns:
            numeric = column.get("numeric") or {}
            low = numeric.get("min", column.get("min_value"))
            high = numeric.get("max", column.get("max_value"))
            rows.append({"column": column["name"], "type": column["type"],
                         "missing": f"{(column.get('null_fraction') or 0) * 100:.1f}%",
                         "distinct": column.get("distinct_count"),
                         "range": _("(masked)") if column["name"] in masked
                         else (f"{_cell(low)} .. {_cell(high)}" if low is not None or high is not None else None)})
        lines += ["", table(rows, ["column", "type", "missing", "distinct", "range"])]
    elif (v.get("schema") or {}).get("kind") == "images":
        classes = v["schema"].get("classes") or {}
        lines += ["", table([{"class": k, "images": n} for k, n in classes.items()], ["class", "images"])]
    lines.append(_("(--json: the whole quality report)"))
    return "\n".join(lines)


def cmd_data_diff(args: argparse.Namespace) -> int:
    with _client(args) as client:
        diff = _datasets(client).diff(args.project, args.name, args.before, args.after)

    def human(d: Any) -> str:
        content = _("content changed") if d.content_changed else _("content unchanged")
        lines = [f"{d.dataset}: v{d.from_version} -> v{d.to_version}",
                 _("rows: {before} -> {after} ({delta})").format(before=d.rows_before, after=d.rows_after,
                                                                 delta=f"{d.row_delta:+d}")
                 if d.row_delta is not None else "",
                 _("bytes: {delta}, {content}").format(delta=f"{d.bytes_delta:+d}", content=content)]
        lines += [_("column {column}: {change} ({before} -> {after})").format(
            column=c.column, change=c.change, before=c.before or "-", after=c.after or "-") for c in d.schema_changes]
        lines += [f"+ {f}" for f in d.files_added] + [f"- {f}" for f in d.files_removed]
        lines += [f"~ {f}" for f in d.files_modified]
        return "\n".join(line for line in lines if line) + ("\n" + d.dvc_diff if d.dvc_diff else "")

    emit(args, diff, human)
    return 0


def cmd_data_restore(args: argparse.Namespace) -> int:
    with _client(args) as client:
        version = _datasets(client).restore(args.project, args.name, args.version, message=args.message)
    emit(args, version, lambda v: _("{dataset} v{version} restored from v{restored} (tag {tag})").format(
        dataset=v.dataset, version=v.version, restored=v.restored_from, tag=v.tag))
    return 0


def cmd_data_preview(args: argparse.Namespace) -> int:
    with _client(args) as client:
        api = _datasets(client)
        version = args.version or api.version(args.project, args.name).version
        preview = api.preview(args.project, args.name, version, limit=args.limit)
    emit(args, preview, lambda p: table([dict(zip(p.columns, row, strict=True)) for row in p.rows], p.columns)
         + ("\n" + _("(masked: {columns})").format(columns=", ".join(p.masked_columns)) if p.masked_columns else ""))
    return 0


def cmd_data_lineage(args: argparse.Namespace) -> int:
    with _client(args) as client:
        graph = _datasets(client).lineage(args.node, depth=args.depth)
    emit(args, graph, lambda g: "\n".join([f"{e.source} --{e.relation}--> {e.target}" for e in g.edges])
         or _("{node} (no links)").format(node=g.root))
    return 0


def _add_data_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    data = commands.add_parser("data", parents=[common], help=_("register, inspect and restore dataset versions"))
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")

    def sub(name: str, func: Callable[[argparse.Namespace], int], text: str, *, named: bool = True
            ) -> argparse.ArgumentParser:
        parser = data_commands.add_parser(name, parents=[common], help=text)
        parser.add_argument("--project", "-P", required=True, help=_("the project (its name)"))
        if named:
            parser.add_argument("name", help=_("the dataset's name"))
        parser.set_defaults(func=func)
        return parser

    add = sub("add", cmd_data_add, _("register a file or a folder of class sub-folders as the next version"))
    add.add_argument("path", help=_("a file, or a folder of class sub-folders"))
    add.add_argument("--message", "-m", default="", help=_("what this version is (kept with it, like a commit "
                                                            "message)"))
    add.add_argument("--format", choices=["csv", "parquet", "jsonl", "images"],
                     help=_("the file's format (default: from its name; a folder: images)"))
    sub("list", cmd_data_list, _("the project's datasets"), named=False)
    sub("versions", cmd_data_versions, _("a dataset's versions"))
    show = sub("show", cmd_data_show, _("one version: schema, quality, tag"))
    show.add_argument("--version", "-v", type=int, help=_("this version (default: the newest)"))
    diff = sub("diff", cmd_data_diff, _("what changed between two versions"))
    diff.add_argument("before", type=int, help=_("the older version"))
    diff.add_argument("after", type=int, help=_("the newer version"))
    restore = sub("restore", cmd_data_restore, _("register an old version again as the newest"))
    restore.add_argument("version", type=int, help=_("the version to register again"))
    restore.add_argument("--message", "-m", default="", help=_("what this version is (kept with it, like a commit "
                                                                "message)"))
    preview = sub("preview", cmd_data_preview, _("the first rows (masked below maintainer)"))
    preview.add_argument("version", type=int, nargs="?", help=_("this version (default: the newest)"))
    preview.add_argument("--limit", type=int, default=20, help=_("at most this many rows"))
    lineage = data_commands.add_parser("lineage", parents=[common], help=_("the lineage graph around a node"))
    lineage.add_argument("node", help=_("a node: {forms}").format(
        forms="dataset:<project>/<name>@<v>, job:<id>, run:<id>, model:<name>@<v>"))
    lineage.add_argument("--depth", type=int, default=4, help=_("links followed from the node"))
    lineage.set_defaults(func=cmd_data_lineage)


def cmd_operation(args: argparse.Namespace) -> int:
    """A command generated from the operation table (see :mod:`aitip.cli_operations`)."""
    with _client(args) as client:
        result = run_operation(client, args)
    if result is not None:
        emit(args, result, lambda value: human(value, args.operation))
    if getattr(args, "wait", False) and not ended_well(result):
        return EXIT_API
    return 0


def cmd_endpoints_predict(args: argparse.Namespace) -> int:
    """Call an endpoint with rows given as JSON (inline, or @file): its predictions, and the version that gave
    them."""
    text = args.data
    if text.startswith("@"):
        text = Path(text[1:]).read_text()
    try:
        rows = json.loads(text)
    except ValueError as error:
        print(_("aitip: --data is not JSON: {error}").format(error=error), file=sys.stderr)
        return EXIT_USAGE
    serving = _client(args).serving
    predictions = serving.predict(args.project, args.endpoint, rows, protocol=args.protocol, version=args.version,
                                  api_key=args.api_key, route_key=args.route_key)
    emit(args, {"version": serving.last_version, "predictions": predictions},
         lambda answer: _("version {version}: {predictions}").format(
             version=answer["version"], predictions=json.dumps(answer["predictions"])))
    return 0


def _add_endpoint_commands(commands: Any, common: argparse.ArgumentParser, groups: dict[str, Any]) -> None:
    endpoints = commands.add_parser("endpoints", parents=[common], aliases=["serve"],
                                    help=_("deploy model versions as endpoints, split traffic, call them"))
    endpoint_commands = endpoints.add_subparsers(dest="endpoints_command", required=True, metavar="ACTION")
    predict = endpoint_commands.add_parser("predict", parents=[common], help=_("call an endpoint with rows"))
    predict.add_argument("--project", "-P", required=True, help=_("the project (its name)"))
    predict.add_argument("--endpoint", "-e", required=True, help=_("the endpoint's name"))
    predict.add_argument("--data", "-d", required=True, help=_("rows as JSON ([[...], ...]), or @file.json"))
    predict.add_argument("--protocol", choices=["oip", "mlflow"], default="oip",
                         help=_("the Open Inference Protocol (default) or MLflow's invocations"))
    predict.add_argument("--version", type=int, help=_("this model version, whatever the traffic split says"))
    predict.add_argument("--route-key", help=_("keeps you on one version (the endpoint's sticky header)"))
    predict.add_argument("--api-key", help=_("an endpoint API key instead of your token"))
    predict.set_defaults(func=cmd_endpoints_predict)
    groups["endpoints"] = endpoint_commands


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=_("print JSON, not tables"))
    common.add_argument("--url", default=argparse.SUPPRESS, help=_("platform API URL (default: from `aitip login`)"))
    common.add_argument("--token", default=argparse.SUPPRESS, help=_("API token (default: from `aitip login`)"))

    parser = Parser(prog="aitip", parents=[common],
                    description=_("AITIP: the AI Train-Infer-Sim Platform."))
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("up", parents=[common], help=_("start the local platform in the foreground")
                        ).set_defaults(func=cmd_up)
    _add_data_commands(commands, common)

    worker = commands.add_parser("worker", parents=[common], help=_("run a job worker process against the catalog"))
    worker.add_argument("--slots", type=int, default=0, help=_("jobs at once (default: one per CPU core)"))
    worker.add_argument("--pool", type=int, default=2, help=_("pre-started aitip-python kernels"))
    worker.add_argument("--tracking-uri", default=os.environ.get("AITIP_MLFLOW_TRACKING_URI"),
                        help=_("MLflow tracking URI for job runs (default: none)"))
    worker.add_argument("--api-url", default=os.environ.get("AITIP_WORKER_API_URL", ""),
                        help=_("the platform service's URL as job kernels reach it (e.g. http://127.0.0.1:8181/"
                        "services/aitip/): their credential, the tracking gateway and the spool confirmations"))
    worker.add_argument("--lease-seconds", type=float, default=None,
                        help=_("how long a claim on a running job lasts without a heartbeat (default: 15)"))
    worker.add_argument("--heartbeat-seconds", type=float, default=None,
                        help=_("how often a running job's claim is renewed (default: 2)"))
    worker.set_defaults(func=cmd_worker)

    login = commands.add_parser("login", parents=[common], help=_("log in to a hub and save an API token"))
    login.add_argument("--hub", help=_("hub URL (default: http://127.0.0.1:$AITIP_PORT)"))
    login.add_argument("--username", "-u", help=_("your hub user name (default: asked)"))
    login.set_defaults(func=cmd_login)

    commands.add_parser("me", parents=[common], help=_("who you are, your groups and project roles")
                        ).set_defaults(func=cmd_me)

    run = commands.add_parser("run", parents=[common], help=_("run a notebook as a job"))
    run.add_argument("notebook", help=_("path to the .ipynb file"))
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
    _add_callback_options(run, "job")
    run.add_argument("--follow", "-f", action="store_true", help=_("stream the job's output until it ends"))
    run.add_argument("--wait", "-w", action="store_true", help=_("wait for the job to end (exit 1 unless it succeeds)"))
    run.set_defaults(func=cmd_run)

    sweep = commands.add_parser("sweep", parents=[common], help=_("search a notebook's parameters with trial jobs"))
    sweep.add_argument("notebook", help=_("path to the .ipynb file"))
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
    _add_callback_options(sweep, "sweep")
    sweep.add_argument("--wait", "-w", action="store_true", help=_("wait until the sweep finishes"))
    sweep.set_defaults(func=cmd_sweep)

    sweeps = commands.add_parser("sweeps", parents=[common], help=_("show a sweep and its trials"))
    sweep_commands = sweeps.add_subparsers(dest="sweep_command", required=True, metavar="ACTION")
    sweep_show = sweep_commands.add_parser("show", parents=[common], help=_("one sweep: its trials and the best"))
    sweep_show.add_argument("sweep", type=int, help=_("the sweep's id"))
    sweep_show.set_defaults(func=cmd_sweeps_show)
    groups = {"sweeps": sweep_commands}

    jobs = commands.add_parser("jobs", parents=[common], help=_("list, follow, cancel and retry jobs"))
    job_commands = jobs.add_subparsers(dest="job_command", required=True, metavar="ACTION")
    job_list = job_commands.add_parser("list", parents=[common], help=_("the jobs you may see, newest first"))
    job_list.add_argument("--project", help=_("only this project's jobs"))
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
    logs = job_commands.add_parser("logs", parents=[common], help=_("a job's output and state changes"))
    logs.add_argument("job", type=int, help=_("the job's id"))
    logs.add_argument("--follow", "-f", action="store_true", help=_("keep printing until the job ends"))
    logs.set_defaults(func=cmd_jobs_logs)
    executed = job_commands.add_parser("notebook", parents=[common], help=_("the executed notebook (the report)"))
    executed.add_argument("job", type=int, help=_("the job's id"))
    executed.add_argument("--output", "-o", help=_("where to write the notebook (default: standard output)"))
    executed.set_defaults(func=cmd_jobs_notebook)
    groups["jobs"] = job_commands

    projects = commands.add_parser("projects", parents=[common], help=_("create and manage projects"))
    project_commands = projects.add_subparsers(dest="project_command", required=True, metavar="ACTION")
    listing = project_commands.add_parser("list", parents=[common], help=_("projects you belong to"))
    listing.add_argument("--all", action="store_true", help=_("include archived projects"))
    listing.add_argument("--limit", type=int, default=100, help=_("at most this many"))
    listing.add_argument("--offset", type=int, default=0, help=_("skip this many"))
    listing.set_defaults(func=cmd_projects_list)
    create = project_commands.add_parser("create", parents=[common], help=_("create a project (you become admin)"))
    create.add_argument("name", help=_("the project's name: lower-case letters, digits and '-'"))
    create.add_argument("--display-name", help=_("its title (default: the name)"))
    create.add_argument("--description", default="", help=_("what the project is for"))
    create.set_defaults(func=cmd_projects_create)
    show = project_commands.add_parser("show", parents=[common], help=_("one project"))
    show.add_argument("name", help=_("the project's name"))
    show.set_defaults(func=cmd_projects_show)
    update = project_commands.add_parser("update", parents=[common], help=_("change title or description"))
    update.add_argument("name", help=_("the project's name"))
    update.add_argument("--display-name", help=_("a new title"))
    update.add_argument("--description", help=_("a new description"))
    update.set_defaults(func=cmd_projects_update)
    for verb, text in (("archive", _("archive a project")), ("unarchive", _("unarchive a project"))):
        archive = project_commands.add_parser(verb, parents=[common], help=text)
        archive.add_argument("name", help=_("the project's name"))
        archive.set_defaults(func=cmd_projects_archive, command_name=verb)

    members = project_commands.add_parser("members", parents=[common], help=_("project members and roles"))
    member_commands = members.add_subparsers(dest="member_command", required=True, metavar="ACTION")
    member_list = member_commands.add_parser("list", parents=[common], help=_("a project's members and their roles"))
    member_list.add_argument("project", help=_("the project's name"))
    member_list.set_defaults(func=cmd_members_list)
    for verb, func, needs_role, text in (
            ("add", cmd_members_add, True, _("add a user or a group with a role")),
            ("set-role", cmd_members_set_role, True, _("change a member's role")),
            ("remove", cmd_members_remove, False, _("remove a user or a group"))):
        sub = member_commands.add_parser(verb, parents=[common], help=text)
        sub.add_argument("project", help=_("the project's name"))
        who = sub.add_mutually_exclusive_group(required=True)
        who.add_argument("--user", help=_("a hub user"))
        who.add_argument("--group", help=_("a hub group"))
        if needs_role:
            sub.add_argument("--role", required=True, choices=ROLES, help=_("the role in the project"))
        sub.set_defaults(func=func)
    groups["projects"] = project_commands
    _add_endpoint_commands(commands, common, groups)
    add_operation_commands(commands, common, groups, cmd_operation)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from .client import AitipAPIError, NotConfigured

    with in_shell_language():
        args = build_parser().parse_args(argv)
    for name, default in (("json", False), ("url", None), ("token", None)):
        if not hasattr(args, name):
            setattr(args, name, default)
    try:
        return int(args.func(args) or 0)
    except AitipAPIError as error:
        if args.json:
            print(json.dumps({"error": {"status": error.status, "code": error.code, "message": error.message,
                                        "detail": error.detail}}), file=sys.stderr)
        else:  # one line, whatever the server said (the SDK has already reduced any HTML page to its words)
            message = " ".join(str(error.message).split()) or _("(no message)")
            print(_("aitip: {message} ({status} {code})").format(message=message, status=error.status,
                                                                 code=error.code), file=sys.stderr)
        return EXIT_API
    except NotConfigured:
        print(_("aitip: no AITIP platform configured: run `aitip login`, or set AITIP_URL and AITIP_TOKEN"),
              file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`aitip ... --json | head`): stop quietly, as `cat` does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's flush at exit must not fail too
        return 128 + signal.SIGPIPE
    except OSError as error:
        if error.filename is None:
            raise
        # A file named on the command line that cannot be read or written: said as other tools say it.
        print(_("aitip: {path}: {reason}").format(path=error.filename, reason=error.strerror), file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
