"""Draining a batch's nodes as ``kubectl drain`` does, through the eviction API.

Which pods go (``drain_targets``): DaemonSet pods and mirror pods stay (``kubectl drain
--ignore-daemonsets``), finished pods are left alone, and a pod without a controller stays
with a warning (``kubectl drain`` would need ``--force``, which deletes it for good). Every
other pod is evicted (``evict_all``): a policy/v1 ``Eviction`` on its ``pods/eviction``
subresource, so its PodDisruptionBudget decides, never a plain delete. An eviction a
budget refuses (429) is tried again with a doubling backoff until the drain's deadline;
then the drain fails with the pods still held and why (``StepFailed``: the migration's
``--on-fail`` decides). Each eviction carries the pod's uid, so a new pod that took the
name is never evicted, and is preceded by ``guard()`` (the Lease check).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final

from exporter.kube.client import Backoff, KubeClient
from exporter.kube.errors import Conflict, EvictionRefused, Forbidden, NotFound
from exporter.rollback.appliers import StepFailed

log = logging.getLogger(__name__)
MIRROR_ANNOTATION: Final = "kubernetes.io/config.mirror"
#: Between two rounds of refused evictions: 1 s doubling to 30 s (never past the deadline).
BACKOFF: Final = Backoff(1.0, 30.0)


def evictable(pod: dict[str, Any]) -> bool | None:
    """True: the drain evicts it; False: it stays silently (a DaemonSet's, a mirror pod,
    finished); None: it stays with a warning (no controller)."""
    meta = pod.get("metadata") or {}
    owners = meta.get("ownerReferences") or []
    if MIRROR_ANNOTATION in (meta.get("annotations") or {}):
        return False
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    if any(o.get("kind") == "DaemonSet" for o in owners):
        return False
    if not owners:
        return None
    return True


def drain_targets(pods: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The pods to evict, and a warning for each pod left in place without a controller."""
    targets: list[dict[str, Any]] = []
    warnings: list[str] = []
    for pod in pods:
        verdict = evictable(pod)
        if verdict:
            targets.append(pod)
        elif verdict is None:
            meta, node = pod["metadata"], (pod.get("spec") or {}).get("nodeName", "?")
            warnings.append(f"pod {meta['namespace']}/{meta['name']} on {node} has no "
                            "controller: left in place (kubectl drain would need --force)")
    return targets, warnings


def _ref(pod: dict[str, Any]) -> str:
    return f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"


async def evict_all(kube: KubeClient, pods: list[dict[str, Any]], *, deadline: float,
                    clock: Callable[[], float], sleep: Callable[[float], Awaitable[None]],
                    guard: Callable[[], Awaitable[None]], watch: Callable[[], None]) -> None:
    """Evict ``pods`` in rounds until each is evicted or gone; a budget's refusal is tried
    again at the next round. ``StepFailed`` at ``deadline`` (``clock()`` time) with the
    pods still held, or at once when evictions are forbidden."""
    pending = {_ref(p): p for p in pods}
    delays = BACKOFF.delays()
    while True:
        refused: dict[str, str] = {}
        for ref, pod in list(pending.items()):
            meta = pod["metadata"]
            await guard()
            try:
                await kube.evict(meta["name"], meta["namespace"], uid=meta.get("uid"))
                log.info("pod evicted", extra={"kv": {
                    "pod": ref, "node": (pod.get("spec") or {}).get("nodeName", "")}})
            except (NotFound, Conflict):
                pass  # gone already, or a new pod has the name: not the one to move
            except EvictionRefused as exc:
                refused[ref] = exc.server_message or str(exc)
                continue
            except Forbidden as exc:
                raise StepFailed(f"evicting {ref} is not allowed ({exc}); grant create on "
                                 "pods/eviction in every namespace (chart value "
                                 "migration.drain=true) or migrate without --drain") from exc
            del pending[ref]
        if not pending:
            return
        left = deadline - clock()
        if left <= 0:
            held = "; ".join(f"{ref}: {why}" for ref, why in refused.items())
            raise StepFailed(f"the PodDisruptionBudgets of {len(refused)} pod(s) allowed no "
                             f"eviction before the drain's deadline ({held})")
        await sleep(min(delays(), left))
        watch()
