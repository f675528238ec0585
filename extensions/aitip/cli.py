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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from .argparse_language import Parser, in_shell_language
from .cli_common import EXIT_API, EXIT_USAGE, client_for, emit
from .cli_data import add_data_commands
from .cli_jobs import add_job_commands
from .cli_operations import add_operation_commands, ended_well, human, run_operation
from .i18n import shell_gettext as _
from .identity.roles import role_said
from .text_tables import cell as _cell
from .text_tables import field_lines, shown_of, table

PROJECT_COLUMNS = ["name", "display_name", "my_role", "archived", "created_by", "created_at"]
MEMBER_COLUMNS = ["kind", "name", "role", "added_by", "added_at"]


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


def cmd_worker(args: argparse.Namespace) -> int:
    from .deferred_imports import defer_iri_grammar

    defer_iri_grammar()
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


def roles_said(row: dict[str, Any]) -> dict[str, Any]:
    """A row with its roles in the shell's language (``--json`` keeps the API's words)."""
    return {**row, **{key: role_said(row[key]) for key in ("role", "my_role") if key in row}}


def cmd_me(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        me = client.me()
    emit(args, me, lambda m: "\n".join([
        *field_lines({"user": m.name + ("  " + _("(hub admin)") if m.admin else ""),
                      "groups": ", ".join(m.groups) or "-"}, ["user", "groups"], 8),
        "",
        table([roles_said(p.model_dump(mode="json")) for p in m.projects],
              ["project", "role", "archived", "display_name"]),
    ]))
    return 0


def cmd_projects_list(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        page = client.list_projects(include_archived=args.all, limit=args.limit, offset=args.offset)
    emit(args, page, lambda p: table([roles_said(i.model_dump(mode="json")) for i in p.items], PROJECT_COLUMNS)
         + shown_of(len(p.items), p.total))
    return 0


def _project_view(project: Any) -> str:
    data = roles_said(project.model_dump(mode="json"))
    fields = ["name", "display_name", "description", "my_role", "archived", "created_by", "created_at", "updated_at"]
    return "\n".join(field_lines({key: _cell(data[key]) for key in fields}, fields, 14))


def cmd_projects_create(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        project = client.create_project(args.name, display_name=args.display_name, description=args.description)
    emit(args, project, _project_view)
    return 0


def cmd_projects_show(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        project = client.get_project(args.name)
    emit(args, project, _project_view)
    return 0


def cmd_projects_update(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        project = client.update_project(args.name, display_name=args.display_name, description=args.description)
    emit(args, project, _project_view)
    return 0


def cmd_projects_archive(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        project = client.archive_project(args.name) if args.command_name == "archive" \
            else client.unarchive_project(args.name)
    emit(args, project, _project_view)
    return 0


def cmd_members_list(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        members = client.list_members(args.project)
    emit(args, members, lambda m: table([roles_said(i.model_dump(mode="json")) for i in m.items], MEMBER_COLUMNS))
    return 0


def _principal(args: argparse.Namespace) -> dict[str, str]:
    return {"group": args.group} if args.group else {"user": args.user}


def cmd_members_add(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        member = client.add_member(args.project, args.role, **_principal(args))
    emit(args, member, lambda m: table([roles_said(m.model_dump(mode="json"))], MEMBER_COLUMNS))
    return 0


def cmd_members_set_role(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        member = client.set_member_role(args.project, args.role, **_principal(args))
    emit(args, member, lambda m: table([roles_said(m.model_dump(mode="json"))], MEMBER_COLUMNS))
    return 0


def cmd_members_remove(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        client.remove_member(args.project, **_principal(args))
    emit(args, {"removed": _principal(args)},
         lambda v: _("removed {member}").format(member=next(iter(v["removed"].values()))))
    return 0


ROLES = ["viewer", "developer", "maintainer", "admin"]


def cmd_operation(args: argparse.Namespace) -> int:
    """A command generated from the operation table (see :mod:`aitip.cli_operations`)."""
    from .operations.table import operation

    with client_for(args) as client:
        result = run_operation(client, args)
    if result is not None:
        emit(args, result, lambda value: human(value, args.operation, client.platform_url))
    elif not args.json and not operation(args.operation).gives_file:  # 204: a person is told it was done
        print(_("done"))
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
    serving = client_for(args).serving
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
    add_data_commands(commands, common)

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
    groups = add_job_commands(commands, common)

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
