"""An endpoint and its metrics as a person reads them in a terminal: its versions with their weights, states
and replicas, and each version's requests, errors and latency (the CLI's human output; ``--json`` for all)."""

from __future__ import annotations

from typing import Any

from ..i18n import shell_gettext as _
from ..i18n import shell_ngettext as ngettext
from ..text_tables import local_time, table


def endpoint_text(endpoint: dict[str, Any]) -> str:
    lines = [_("endpoint {project}/{name}: model {model} ({mode})").format(
        project=endpoint["project"], name=endpoint["name"], model=endpoint["model"], mode=endpoint["mode"]),
        _("url: {url}").format(url=endpoint["url"]), ""]
    rows = [{_("version"): variant["version"], _("weight"): f"{variant['weight']} %"
             + (" " + _("(shadow)") if variant["shadow"] else ""), _("state"): variant["state"],
             _("replicas"): f"{variant['replicas']}/{variant['replicas_wanted']}",
             _("reason"): variant.get("reason") or ""} for variant in endpoint["variants"]]
    lines.append(table(rows, list(rows[0]) if rows else []))
    return "\n".join(lines)


def metrics_text(metrics: dict[str, Any]) -> str:
    if not metrics["totals"]:
        return _("endpoint {name}: no requests since the platform started").format(name=metrics["endpoint"])

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    rows = [{_("version"): total["version"], _("requests"): total["requests"], _("errors"): total["errors"],
             _("refused"): total["client_errors"], _("p50 ms"): ms(total["latency_p50_ms"]),
             _("p99 ms"): ms(total["latency_p99_ms"]), _("in flight"): total["in_flight"]}
            for total in metrics["totals"]]
    return "\n".join([_("endpoint {name}, since {since}:").format(name=metrics["endpoint"], since=local_time(metrics["since"])),
                      table(rows, list(rows[0])),
                      _("{points} points in the time series (--json shows them)").format(
                          points=len(metrics["series"]))])


def optimization_text(optimization: dict[str, Any]) -> str:
    """A Triton packaging: its job's state, then per format and runner the status and the p50 latency at each
    batch size, the runtime the navigator selected and what can be downloaded."""
    lines = [_("optimization {id}: model {model} version {version} on {device} — {state}").format(**optimization)]
    if optimization.get("reason"):
        lines.append(_("reason: {reason}").format(reason=optimization["reason"]))
    summary = optimization.get("summary")
    if summary is None:
        return "\n".join(lines)
    sizes = summary["batch_sizes"]
    rows = []
    for key, model in summary["models"].items():
        for runner_name, runner in (model["runners"] or {"-": {"status": model["status"], "latency_ms": {}}}).items():
            row = {_("format"): key, _("runner"): runner_name, _("status"): runner["status"]}
            for size in sizes:
                value = runner["latency_ms"].get(str(size))
                row[_("p50 ms @{size}").format(size=size)] = "-" if value is None else f"{value:.4f}"
            rows.append(row)
    lines += [_("Triton Model Navigator {version}, {flavor} model").format(
        version=summary["navigator_version"], flavor=summary["flavor"]), table(rows, list(rows[0]) if rows else [])]
    best = summary.get("best")
    if best:
        lines.append(_("selected: {model} on {runner} ({latency:.4f} ms, {throughput:,.0f}/s)").format(
            model=best["model"], runner=best["runner"], latency=best["latency_ms"], throughput=best["throughput"]))
    if summary.get("repository_error"):
        lines.append(_("no Triton repository: {error}").format(error=summary["repository_error"]))
    if optimization.get("has_package"):
        lines.append(_("download: aitip serve package --project {project} --optimization {id} --output FILE").format(
            **optimization))
    return "\n".join(lines)


def manifests_text(manifests: dict[str, Any]) -> str:
    """The YAML itself, so that ``aitip endpoints manifests P E > e.yaml`` is ready for ``kubectl apply -f``, headed
    by comments that name what it holds and what offline validation found."""
    kinds = ", ".join(f"{m.get('kind', '?')}/{(m.get('metadata') or {}).get('name', '?')}"
                      for m in manifests["manifests"])
    count = len(manifests["manifests"])
    head = [ngettext("# {count} manifest: {kinds}", "# {count} manifests: {kinds}", count).format(
        count=count, kinds=kinds)]
    if manifests["problems"]:
        count = len(manifests["problems"])
        head.append(ngettext("# offline validation found {count} problem:",
                             "# offline validation found {count} problems:", count).format(count=count))
        head += [f"#   - {problem}" for problem in manifests["problems"]]
    else:
        head.append(_("# offline validation (kubernetes-validate) found no problems"))
    return "\n".join(head) + "\n" + manifests["yaml"].rstrip("\n")
