"""The demo's words: the verdict legend, webhook outcomes as a reader should read them, and the
handshake histogram of one datapath over every service. Pure module."""

from __future__ import annotations

import json

from exporter.snapshot import SliSnapshot

INCONCLUSIVE_LEGEND = "? = inconclusive: too little data (yet) to call it either way"

#: Webhook outcome words that are not errors, with what they mean for the reader.
OUTCOME_GLOSS = {
    "duplicate": "already acted on",
    "deduplicated": "already acted on",
    "cooldown": "a rollback ran recently; waiting out the cooldown",
    "cooled_down": "a rollback ran recently; waiting out the cooldown",
    "nothing_to_do": "every node in scope is on kube-proxy already",
    "deferred": "retried later: a rollback was running or the phase was not known yet",
}


def gloss(outcome: str) -> str:
    """`` (what it means)`` for an outcome word that needs it, else nothing."""
    meaning = OUTCOME_GLOSS.get(outcome)
    return f" ({meaning})" if meaning else ""


def webhook_answer(body: str) -> str:
    """The webhook's JSON answer as ``<outcome word> (<gloss>): <reason>``."""
    try:
        answer = json.loads(body)
        outcome, reason = str(answer["outcome"]), str(answer.get("reason", ""))
    except (ValueError, TypeError, KeyError):
        return body.strip()
    if reason.startswith(f"{outcome}: "):  # the reason names its outcome already
        return reason
    return f"{outcome}{gloss(outcome)}: {reason}"


def merged_counts(window: SliSnapshot, datapath: str) -> list[int]:
    """The handshake bucket counts of every service on ``datapath`` together."""
    size = len(window.connect_bounds) + 1
    merged = [0] * size
    for key, sli in window.services.items():
        if key.datapath != datapath or len(sli.connect_counts) != size:
            continue
        for i, c in enumerate(sli.connect_counts):
            merged[i] += c
    return merged
