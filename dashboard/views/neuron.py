"""What the neuron page shows for one filter of one layer of one model, as plain functions of its inputs
(the callbacks only wire them).

The page checks the path (model, layer, channel) against the API, then starts three kinds of API job and
polls them: the dataset's top 9 images, one DeepVis render per preset and the audit of the model on the
dataset (its statistics, flags and correlations of this filter). Jobs with the same parameters are cached
by the API, so a second visit, or the same filter opened in Explore or Audit, is answered at once.
"""

from __future__ import annotations

from typing import Any

from dash import html, no_update

from dashboard.api_client import ApiError, browser_url, get_client
from dashboard.components.attributions import job_status_text
from dashboard.components.audit import explore_link, filter_flags
from dashboard.components.common import error_alert, notice
from dashboard.components.neuron import (
    DEEPVIS_PRESETS,
    correlated_list,
    deepvis_pair,
    filter_statistics,
    neuron_href,
    neuron_nav,
)
from dashboard.jobs import poll_job, start_job
from dashboard.views import audit as audit_view
from dashboard.views.attributions import dataset_options
from dashboard.views.common import pick
from dashboard.views.explore import weights_view

# Explore's DeepVis defaults: a render started there is the cached one here, and the other way round.
DEEPVIS_STEPS, DEEPVIS_SEED = 128, 0
DIGITS_SIZE = 32  # models with inputs this small or smaller default to the built-in digits


class NeuronError(ValueError):
    """The path names no filter: an unknown model or layer, or a channel out of range."""


def check_target(
    target: dict[str, Any] | None,
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """(checked target, the model's layers, its card) for the page's path; ``NeuronError`` or ``ApiError``
    says what is wrong with it."""
    target = target or {}
    model, layer, raw = target.get("model"), target.get("layer"), str(target.get("channel") or "")
    if not model or not layer:
        raise NeuronError("The address must be /neuron/<model>/<layer>/<channel>.")
    client = get_client()
    card = client.model_card(model)
    layers = client.layers(model)["layers"]
    entry = next((la for la in layers if la["name"] == layer), None)
    if entry is None or not entry.get("channels"):
        raise NeuronError(f"{model} has no layer {layer!r} with channels.")
    if not raw.isdigit() or not 0 <= int(raw) < entry["channels"]:
        raise NeuronError(
            f"{layer} of {model} has filters 0 to {entry['channels'] - 1}; there is no filter {raw!r}."
        )
    checked = {"model": model, "layer": layer, "channel": int(raw), "channels": entry["channels"]}
    return checked, layers, card


def default_dataset(wanted: str | None, options: list[dict[str, str]], card: dict[str, Any]) -> str | None:
    """The link's dataset when there is one; else the built-in digits for digits-sized models, else the first
    other dataset."""
    ids = [o["value"] for o in options]
    small = max(card.get("input_size") or [0]) <= DIGITS_SIZE
    preferred = "digits" if small else next((i for i in ids if i != "digits"), "digits")
    return pick(wanted, ids, preferred)


def start_deepvis(model: str, layer: str, channel: int) -> tuple[dict[str, Any] | None, str]:
    """(store of one job per preset, status); a preset the API refuses is left out with its reason."""
    jobs: dict[str, str] = {}
    refused: list[str] = []
    for preset in DEEPVIS_PRESETS:
        body = {
            "target": {"layer": layer, "channel": channel},
            "preset": preset,
            "steps": DEEPVIS_STEPS,
            "seed": DEEPVIS_SEED,
        }
        started = start_job(lambda body=body: get_client().start_deepvis(model, body))
        if started.error:
            refused.append(f"{preset}: {started.error}")
        else:
            jobs[preset] = started.store["job_id"]
    status = (
        "Cannot render " + "; ".join(refused) if refused else f"Rendering {DEEPVIS_STEPS} steps per preset…"
    )
    return ({"jobs": jobs} if jobs else None), status


def load(target: dict[str, Any] | None) -> tuple[Any, ...]:
    """(title, nav, error, checked target, dataset options, dataset, weights, DeepVis store, DeepVis poll
    disabled, DeepVis status, sections hidden) when the page opens; on bad input only the error shows."""
    try:
        checked, layers, card = check_target(target)
    except (NeuronError, ApiError) as err:
        alert = error_alert(str(err), "Cannot show this neuron")
        return "No such filter", None, alert, None, [], None, None, None, True, "", True
    model, layer, channel = checked["model"], checked["layer"], checked["channel"]
    options, error = dataset_options()
    dataset = default_dataset((target or {}).get("dataset"), options, card)
    title = html.Span([f"{model} · {layer} · filter ", html.Span(str(channel), id="neuron-index")])
    nav = neuron_nav(
        model,
        layer,
        channel,
        checked["channels"],
        (target or {}).get("dataset"),
        explore_link(model, layer, channel, False),
    )
    store, status = start_deepvis(model, layer, channel)
    weights = weights_view(model, False, layers, layer, channel)
    return title, nav, error, checked, options, dataset, weights, store, store is None, status, False


def start_dataset_jobs(checked: dict[str, Any] | None, dataset: str | None) -> tuple[Any, ...]:
    """(top job, top poll disabled, top status, top grid, audit job, audit poll disabled, audit error,
    audit status) when the dataset is chosen."""
    if not checked or not dataset:
        return (no_update,) * 8
    model, layer, channel = checked["model"], checked["layer"], checked["channel"]
    body = {"dataset": dataset, "layer": layer, "channel": channel}
    top = start_job(lambda: get_client().start_top_images(model, body))
    if top.error:
        top_parts: tuple[Any, ...] = (None, True, f"Cannot search {dataset}: {top.error}", None)
    else:
        top_parts = (top.store, False, f"Scanning {top.reply['num_images']} images…", None)
    audit = audit_view.start(audit_view.audit_body(model, dataset, None, None, [], []))
    return (*top_parts, *audit)


def poll_deepvis(store: dict[str, Any] | None) -> tuple[Any, bool, str]:
    """(the two images, poll disabled, status) on each tick: an image shows once its render is done."""
    if not store or not store.get("jobs"):
        return no_update, True, no_update
    renders: dict[str, tuple[str | None, str]] = {}
    done = True
    for preset, job_id in store["jobs"].items():
        poll = poll_job({"job_id": job_id})
        if poll is None or poll.error:
            renders[preset] = (None, f"Lost the job: {poll.error if poll else 'none'}")
            continue
        done = done and poll.done
        result = poll.job.get("result") if poll.succeeded else None
        src = browser_url(result["image_url"]) if result else None
        text = job_status_text(poll.job)
        renders[preset] = (src, text if poll.done else f"{text} ({poll.job.get('progress', 0):.0%})")
    status = (
        "Both presets rendered; the API keeps them, so the next visit shows them at once."
        if done
        else "Rendering…"
    )
    return deepvis_pair(renders), done, status


def audit_layer(report: dict[str, Any], layer: str) -> dict[str, Any] | None:
    """The audit's entry for ``layer``: the conv layer itself, or the one whose response ``layer`` is."""
    layers = report.get("layers") or []
    return next((la for la in layers if la["name"] == layer), None) or next(
        (la for la in layers if la.get("response") == layer), None
    )


def audit_sections(report: dict[str, Any] | None, checked: dict[str, Any] | None) -> tuple[Any, Any, Any]:
    """(statistics, flags, correlated filters) of the filter from the audit report."""
    if not report or not checked:
        return no_update, no_update, no_update
    model, layer, channel = checked["model"], checked["layer"], checked["channel"]
    la = audit_layer(report, layer)
    if la is None or not 0 <= channel < la["channels"]:
        missing = notice(
            f"The audit does not measure {layer} (it audits conv and linear layers and their responses, not whole blocks)."
        )
        return missing, None, None
    flags = [f for f in report["flags"] if f["layer"] == la["name"] and f["filter"] == channel]
    partners = audit_view.closest_filters(report, la["name"], channel, n=5)
    cluster = next((c for c in la.get("clusters") or [] if channel in c), [channel])
    dataset = report["dataset"]["id"]
    correlated = correlated_list(partners, cluster, lambda i: neuron_href(model, layer, i, dataset), channel)
    return filter_statistics(report, la, channel), filter_flags(flags), correlated
