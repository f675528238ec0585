"""The ``aitip`` command: start the platform, log in, and work with projects.

Human tables by default, ``--json`` for programs and agents.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from pydantic import BaseModel

EXIT_USAGE = 2
EXIT_API = 1


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain aligned table; empty input says so."""
    if not rows:
        return "(none)"
    cells = [[_cell(row.get(col)) for col in columns] for row in rows]
    widths = [max(len(col), *(len(r[i]) for r in cells)) for i, col in enumerate(columns)]
    lines = ["  ".join(col.upper().ljust(w) for col, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
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


def cmd_worker(args: argparse.Namespace) -> int:
    from .jobs.cli_worker import main as worker_main

    return worker_main(args)


def hub_login(hub_url: str, username: str, password: str, note: str = "aitip CLI") -> str:
    """Log in to the hub's form (NativeAuthenticator) and create an API token for the user."""
    with httpx.Client(base_url=hub_url.rstrip("/"), timeout=30.0, follow_redirects=False) as http:
        http.get("/hub/login")
        xsrf = _cookie(http, "_xsrf")
        if not xsrf:
            raise SystemExit(f"aitip login: {hub_url} did not answer like a JupyterHub login page")
        response = http.post("/hub/login", data={"username": username, "password": password, "_xsrf": xsrf})
        if response.status_code != 302:
            raise SystemExit("aitip login: refused: wrong user name or password, or the account is not yet "
                             "approved by an admin")
        http.cookies.delete("_xsrf")
        http.get("/hub/token")  # the session changed at login: fetch the XSRF token bound to it
        xsrf = _cookie(http, "_xsrf") or ""
        created = http.post(f"/hub/api/users/{username}/tokens", json={"note": note},
                            headers={"X-XSRFToken": xsrf})
        if created.status_code != 201:
            raise SystemExit(f"aitip login: the hub would not create a token ({created.status_code}): "
                             f"{created.text[:300]}")
        return str(created.json()["token"])


def cmd_login(args: argparse.Namespace) -> int:
    from .client import Client, save_credentials

    hub_url = (args.hub or os.environ.get("AITIP_HUB_URL")
               or f"http://127.0.0.1:{os.environ.get('AITIP_PORT', '8000')}").rstrip("/")
    token = args.token
    if token is None:
        username = args.username or input("user: ")
        password = os.environ.get("AITIP_PASSWORD") or getpass.getpass(f"password for {username}: ")
        token = hub_login(hub_url, username, password)
    api_url = f"{hub_url}/services/aitip/"
    with Client(api_url, token) as client:
        me = client.me()
    path = save_credentials(api_url, token, me.name)
    emit(args, {"user": me.name, "url": api_url, "credentials": str(path)},
         lambda v: f"logged in to {v['url']} as {v['user']} (credentials in {v['credentials']})")
    return 0


def cmd_me(args: argparse.Namespace) -> int:
    with _client(args) as client:
        me = client.me()
    emit(args, me, lambda m: "\n".join([
        f"user:   {m.name}{'  (hub admin)' if m.admin else ''}",
        f"groups: {', '.join(m.groups) or '-'}",
        "",
        table([p.model_dump(mode='json') for p in m.projects], ["project", "role", "archived", "display_name"]),
    ]))
    return 0


def cmd_projects_list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        page = client.list_projects(include_archived=args.all, limit=args.limit, offset=args.offset)
    emit(args, page, lambda p: table([i.model_dump(mode="json") for i in p.items], PROJECT_COLUMNS)
         + (f"\n({len(p.items)} of {p.total})" if p.total > len(p.items) else ""))
    return 0


def _project_view(project: Any) -> str:
    data = project.model_dump(mode="json")
    return "\n".join(f"{key + ':':14}{_cell(data[key])}" for key in
                     ["name", "display_name", "description", "my_role", "archived", "created_by", "created_at",
                      "updated_at"])


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
    emit(args, {"removed": _principal(args)}, lambda v: f"removed {next(iter(v['removed'].values()))}")
    return 0


ROLES = ["viewer", "developer", "maintainer", "admin"]


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON, not tables")
    common.add_argument("--url", default=argparse.SUPPRESS, help="platform API URL (default: from `aitip login`)")
    common.add_argument("--token", default=argparse.SUPPRESS, help="API token (default: from `aitip login`)")

    parser = argparse.ArgumentParser(prog="aitip", parents=[common],
                                     description="AITIP: the AI Train-Infer-Sim Platform.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("up", parents=[common], help="start the local platform in the foreground"
                        ).set_defaults(func=cmd_up)

    worker = commands.add_parser("worker", parents=[common], help="run a job worker process against the catalog")
    worker.add_argument("--slots", type=int, default=0, help="jobs at once (default: one per CPU core)")
    worker.add_argument("--pool", type=int, default=2, help="pre-started aitip-python kernels")
    worker.add_argument("--tracking-uri", default=os.environ.get("AITIP_MLFLOW_TRACKING_URI"),
                        help="MLflow tracking URI for job runs (default: none)")
    worker.add_argument("--lease-seconds", type=float, default=None)
    worker.add_argument("--heartbeat-seconds", type=float, default=None)
    worker.set_defaults(func=cmd_worker)

    login = commands.add_parser("login", parents=[common], help="log in to a hub and save an API token")
    login.add_argument("--hub", help="hub URL (default: http://127.0.0.1:$AITIP_PORT)")
    login.add_argument("--username", "-u")
    login.set_defaults(func=cmd_login)

    commands.add_parser("me", parents=[common], help="who you are, your groups and project roles"
                        ).set_defaults(func=cmd_me)

    projects = commands.add_parser("projects", parents=[common], help="create and manage projects")
    project_commands = projects.add_subparsers(dest="project_command", required=True, metavar="ACTION")
    listing = project_commands.add_parser("list", parents=[common], help="projects you belong to")
    listing.add_argument("--all", action="store_true", help="include archived projects")
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--offset", type=int, default=0)
    listing.set_defaults(func=cmd_projects_list)
    create = project_commands.add_parser("create", parents=[common], help="create a project (you become admin)")
    create.add_argument("name")
    create.add_argument("--display-name")
    create.add_argument("--description", default="")
    create.set_defaults(func=cmd_projects_create)
    show = project_commands.add_parser("show", parents=[common], help="one project")
    show.add_argument("name")
    show.set_defaults(func=cmd_projects_show)
    update = project_commands.add_parser("update", parents=[common], help="change title or description")
    update.add_argument("name")
    update.add_argument("--display-name")
    update.add_argument("--description")
    update.set_defaults(func=cmd_projects_update)
    for verb in ("archive", "unarchive"):
        archive = project_commands.add_parser(verb, parents=[common], help=f"{verb} a project")
        archive.add_argument("name")
        archive.set_defaults(func=cmd_projects_archive, command_name=verb)

    members = project_commands.add_parser("members", parents=[common], help="project members and roles")
    member_commands = members.add_subparsers(dest="member_command", required=True, metavar="ACTION")
    member_list = member_commands.add_parser("list", parents=[common])
    member_list.add_argument("project")
    member_list.set_defaults(func=cmd_members_list)
    for verb, func, needs_role in (("add", cmd_members_add, True), ("set-role", cmd_members_set_role, True),
                                   ("remove", cmd_members_remove, False)):
        sub = member_commands.add_parser(verb, parents=[common])
        sub.add_argument("project")
        who = sub.add_mutually_exclusive_group(required=True)
        who.add_argument("--user")
        who.add_argument("--group")
        if needs_role:
            sub.add_argument("--role", required=True, choices=ROLES)
        sub.set_defaults(func=func)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from .client import AitipAPIError, NotConfigured

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
        else:
            print(f"aitip: {error.message} ({error.status} {error.code})", file=sys.stderr)
        return EXIT_API
    except NotConfigured as error:
        print(f"aitip: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
