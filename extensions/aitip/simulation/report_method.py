"""The closing "Method" section of the security assessment: how each condition of the template was applied,
with its grid and options (the defaults of the condition registry filled in and marked so), what the metric
means, how rows were sampled, how thresholds and the regression tolerance are read, and the sandbox's limits.
A reader can repeat the assessment from this section and the identity block alone."""

from __future__ import annotations

from typing import Any

from ..i18n import N_, Translator
from ..report_charts import finite
from ..report_pages import as_dict, number
from .report_charts import CONDITIONS, condition_label, parameter_label, value_text

DESCRIPTIONS = {
    "gaussian_noise": N_("Adds Gaussian noise of standard deviation σ (a fraction of the pixel range) to every pixel, "
                         "clipped to the range."),
    "blur": N_("Blurs each image with a Gaussian kernel of standard deviation σ pixels."),
    "brightness": N_("Shifts every pixel by Δ times the pixel range, clipped to the range."),
    "contrast": N_("Scales each pixel's distance from the image's mean by the factor, clipped to the range."),
    "jpeg": N_("Encodes each image as JPEG at the given quality and decodes it again."),
    "occlusion": N_("Covers a square patch of the given size with the low pixel value, at every position; the worst "
                    "position counts."),
    "fgsm": N_("Fast Gradient Sign Method (ART FastGradientMethod): one step of size ε along the sign of the loss "
               "gradient, L∞ norm; needs the model's gradients."),
    "pgd": N_("Projected Gradient Descent (ART ProjectedGradientDescent): repeated gradient steps, each projected "
              "back into the L∞ ball of radius ε; needs the model's gradients."),
    "square": N_("Square Attack (ART SquareAttack): a black-box L∞ attack by random square updates that only "
                 "queries the model's predictions."),
    "hopskipjump": N_("HopSkipJump (ART): a black-box attack on the model's decisions; a row counts as broken only "
                      "if an adversarial example is found within ε (L∞)."),
    "feature_noise": N_("Adds Gaussian noise of σ standard deviations to each numeric feature."),
    "missing_values": N_("Blanks the given fraction of the values, then fills them (mean, zero or NaN)."),
    "category_swap": N_("Replaces the categorical values of the given fraction of rows with other categories of the "
                        "same column."),
    "feature_shift": N_("Shifts every numeric feature by the given number of standard deviations."),
    "drift": N_("Runs the model on a reference version of the dataset and measures each feature's drift (PSI and "
                "the Kolmogorov–Smirnov statistic) against the tested version."),
    "prompt_injection": N_("Probes that hide instructions in the input to override the service's own instructions."),
    "jailbreak": N_("Probes that try to talk the model out of its safety rules."),
    "data_exfiltration": N_("Probes that try to make the service reveal a secret it holds (a planted canary)."),
    "custom": N_("The custom notebook's own conditions and metrics."),
}
# The condition registry's option defaults (sim-spec.md), shown where the template leaves an option out.
DEFAULT_OPTIONS = {"pgd": {"max_iter": 10, "eps_step": "ε/4"}, "square": {"max_iter": 100},
                   "hopskipjump": {"max_iter": 10, "max_eval": 200}, "missing_values": {"fill": "mean"}}
METRIC_MEANINGS = {
    "accuracy": N_("Accuracy: the share of the sampled test rows the model classifies right under the condition "
                   "(higher is better)."),
    "attack_success_rate": N_("Attack success rate: the share of a suite's probes whose response a detector flags, "
                              "hits divided by probes (lower is better)."),
}


def _option_text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return value_text(value) if finite(value) is not None else str(value)


def _condition(entry: dict[str, Any], parameters: dict[str, str], _: Translator) -> dict[str, Any]:
    name = str(entry.get("condition") or "")
    given = as_dict(entry.get("options"))
    options = [f"{key}={_option_text(value)}" for key, value in given.items()]
    options += [_("{option} (default)").format(option=f"{key}={_option_text(value)}")
                for key, value in DEFAULT_OPTIONS.get(name, {}).items() if key not in given]
    values = [value_text(value) for value in entry.get("values") or [] if finite(value) is not None]
    registry = CONDITIONS.get(name, CONDITIONS["custom"])
    return {"label": condition_label(name, _), "name": name, "grid": ", ".join(values),
            "parameter": parameter_label(parameters.get(name) or registry.parameter, _),
            "options": " · ".join(options), "description": _(DESCRIPTIONS[name]) if name in DESCRIPTIONS else ""}


def method(template: dict[str, Any], parameters: dict[str, str], _: Translator) -> dict[str, Any] | None:
    """What the Method section says, from the resolved template (``parameters``: each condition's parameter name
    as the result names it, else the registry's); None where there is no template."""
    if not template:
        return None
    settings, limits = as_dict(template.get("input")), as_dict(template.get("limits"))
    kind, chosen_metric = template.get("kind"), template.get("metric")
    sampling = ""
    if kind in ("image", "tabular"):
        sampling = _("At most {rows} rows of the “{split}” split, sampled stratified by “{label}” with seed {seed}; "
                     "every condition is applied to the same rows.").format(
            rows=number(settings.get("max_rows", 1000)), split=settings.get("test_split", "test"),
            label=settings.get("label_column", "label"), seed=settings.get("seed", 0))
    tolerance = finite(as_dict(template.get("regression")).get("tolerance"))
    sandbox = [text.format(value=number(limits[key])) for key, text in (
        ("timeout_seconds", _("{value} s wall time")), ("cpu_seconds", _("{value} CPU seconds")),
        ("memory_mb", _("{value} MB of memory")), ("cpus", _("{value} CPUs"))) if finite(limits.get(key)) is not None]
    return {
        "conditions": [_condition(entry, parameters, _) for entry in template.get("conditions") or []
                       if isinstance(entry, dict)],
        "metric": _(METRIC_MEANINGS[chosen_metric]) if chosen_metric in METRIC_MEANINGS else str(chosen_metric or ""),
        "sampling": sampling, "thresholds": [str(text) for text in template.get("thresholds") or []],
        "tolerance": _("A drop of the metric by more than {tolerance} against the previous model version's "
                       "simulation under the same template, at any condition and value, fails.").format(
            tolerance=value_text(tolerance)) if tolerance is not None else "",
        "sandbox": _("The notebook “{notebook}” ran as a sandboxed job under these limits: {limits}.").format(
            notebook=template.get("notebook") or template.get("name") or "?",
            limits=", ".join(sandbox) or "–"),
        "description": str(template.get("description") or ""),
    }
