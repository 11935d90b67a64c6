"""The timing contract: how long from the onset of a regression to the rollback request.

Worst case for a step regression on a node that has just switched (its eBPF series start at
the onset), with enough traffic to pass the guards within two scrapes:

    detect  = 2 x scrape_interval        first two samples after the onset (rate() needs two)
            + evaluation_interval        recording rules run in their own group, alerts read
                                         the previous cycle's results
            + for.regression             pending time
            + evaluation_interval        the alert group's own evaluation alignment
    request = detect + group_wait        Alertmanager's wait before a new group's first message

alerts/README.md states the same formulas; tests/alerts/timing_test.yaml checks the exact
promtool timeline of the default profile. Pure arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter.rulegen.profiles import Profile


@dataclass(frozen=True, slots=True)
class Timing:
    """Worst-case seconds from onset to the alert firing, and to the webhook request."""

    detect_seconds: int
    request_seconds: int
    shortest_blip_seconds: int  # a regression shorter than this never requests rollback


def timing(profile: Profile) -> Timing:
    detect = (2 * profile.scrape_interval + profile.evaluation_interval
              + profile.for_regression + profile.evaluation_interval)
    return Timing(
        detect_seconds=detect,
        request_seconds=detect + profile.group_wait,
        shortest_blip_seconds=profile.for_regression - profile.short,
    )
