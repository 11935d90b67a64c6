"""A simulated Kubernetes API server (an aiohttp app on 127.0.0.1), for the demo and tests.

This is a simulation, not a real API server. It keeps objects in memory and honours the
semantics this project relies on, so the real ``kubernetes`` client can talk to it:

* objects keyed by (group, version, resource, namespace, name); every write takes the
  next value of one global ``resourceVersion`` counter;
* 404 for missing objects (and ``404 page not found`` for unknown group/versions),
  409 ``AlreadyExists`` on create of an existing object, 409 ``Conflict`` when an
  update, patch or delete carries a stale ``metadata.resourceVersion``;
* 403 from a deny list of (verb, resource, namespace), with a ``Status`` body worded
  like the real RBAC authorizer's;
* patches: what the product sends (``patches.py``): JSON merge patch, and
  strategic merge of maps and scalars for built-in kinds (415 for custom resources, like
  the real server); 415 for what the fake does not implement (JSON patch, strategic merge
  of lists or with ``$`` directives) rather than a different answer than a real server's;
* list with ``labelSelector`` and ``fieldSelector`` (``metadata.name``,
  ``metadata.namespace``, ``spec.nodeName``);
* watch (``?watch=1``) from a ``resourceVersion`` with ADDED/MODIFIED/DELETED events
  (selector transitions become ADDED/DELETED as on a real server), and an ERROR event
  carrying a 410 ``Expired`` Status for a compacted resourceVersion;
* ``/version``, ``/api``, ``/apis`` and per group/version discovery documents;
* eviction (``POST .../pods/{name}/eviction``, a policy/v1 ``Eviction``): the pod is
  deleted unless the one PodDisruptionBudget selecting it allows no disruption now
  (``status.disruptionsAllowed``), which answers 429 ``TooManyRequests`` with a
  ``DisruptionBudget`` cause; an allowed eviction spends one disruption, as the real
  server does. Terminal and pending pods are evicted whatever the budget; two budgets over
  one pod answer 500. ``budget()`` seeds a budget; tests play the disruption controller
  by seeding it again.

Deliberate simplifications: no admission, no defaulting or validation beyond
names, namespaces need not exist, no garbage collection or controllers (a
DaemonSet creates no pods: ``cluster.py`` plays that part), deletion is immediate,
server-side apply is refused with 415. Writes through the main resource keep the
stored ``status`` of kinds that have a status subresource, as the real server does.

The server runs its own event loop in a background thread (``FakeKube.start``), so
blocking clients and asyncio tests can both use it; helpers are thread-safe.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

from aiohttp import web

from exporter.simulator.kubeapi.kinds import DEFAULT_TYPES, VERBS, Fault, Hold, ResourceType
from exporter.simulator.kubeapi.routes import Routing


@dataclass
class FakeKube(Routing):
    """The in-memory API server and its aiohttp app; see the module docstring."""

    user: str = "system:serviceaccount:kube-system:kpr-exporter"
    history_limit: int = 10_000
    types: list[ResourceType] = field(default_factory=lambda: list(DEFAULT_TYPES))

    def __post_init__(self) -> None:
        self._init_store()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None
        self.url = ""
        self.kubeconfig = ""  # set by the pytest fixture

    # --- lifecycle ----------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0, timeout: float = 10.0) -> str:
        """Serve in a background thread; returns the base URL once listening."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._serve(host, port, ready))
            except BaseException as exc:  # surfaced to start()
                failure.append(exc)
                ready.set()
            finally:
                loop.close()

        self._thread = threading.Thread(target=serve, name="fake-kube-api", daemon=True)
        self._thread.start()
        if not ready.wait(timeout) or failure:
            raise RuntimeError(f"fake Kubernetes API did not start: {failure!r}")
        return self.url

    async def _serve(self, host: str, port: int, ready: threading.Event) -> None:
        self._stopping = asyncio.Event()
        # handler_cancellation: a client hanging up ends its watch handler at once.
        self._runner = web.AppRunner(self.app(), handle_signals=False, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0]
        self.url = f"http://{bound[0]}:{bound[1]}"
        ready.set()
        await self._stopping.wait()
        with self._lock:
            self._end_watches()
        await self._runner.cleanup()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and join the thread (idempotent)."""
        if self._loop is not None and self._stopping is not None and self._thread is not None:
            if self._thread.is_alive():
                self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(timeout)
        self._thread = None

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/version", self._version)
        app.router.add_get("/version/", self._version)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    # --- test controls (thread-safe) ---------------------------------------------------

    def deny(self, verb: str, resource: str, namespace: str | None = None) -> None:
        """Answer 403 to ``verb`` on ``resource`` (plural, e.g. ``configmaps`` or
        ``pods/status``) in ``namespace`` (None: everywhere)."""
        if verb not in VERBS and verb != "*":
            raise ValueError(f"unknown verb {verb!r}")
        with self._lock:
            self._denied.append((verb, resource, namespace))

    def allow_all(self) -> None:
        """Clear the deny list."""
        with self._lock:
            self._denied.clear()

    def fail(self, verb: str, resource: str, *, status: int = 500, times: int = 1,
             namespace: str | None = None, message: str = "injected fault") -> None:
        """Answer the next ``times`` matching requests with ``status`` (a Status body)."""
        with self._lock:
            self._faults.append(Fault(verb, resource, namespace, status, times, message))

    def hold(self, verb: str, resource: str, namespace: str | None = None, *,
             token: str | None = None) -> Hold:
        """Park matching requests (after authorization, before they act) until
        ``release()``: lets a test change the store while a request is in flight.
        ``"*"`` matches every verb or resource; ``token`` limits the hold to the client
        presenting that bearer token (one stalled or partitioned client among several)."""
        hold = Hold(verb, resource, namespace, token)
        with self._lock:
            self._holds.append(hold)
        return hold

    def budget(self, name: str, namespace: str, match_labels: dict[str, str], *,
               allowed: int, healthy: int = 1) -> dict:
        """Seed a PodDisruptionBudget over the pods carrying ``match_labels`` whose status
        (what the disruption controller computes) allows ``allowed`` more disruptions now."""
        return self.seed({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"matchLabels": dict(match_labels)}, "minAvailable": healthy},
            "status": {"disruptionsAllowed": allowed, "desiredHealthy": healthy,
                       "currentHealthy": healthy + max(allowed, 0), "expectedPods": healthy + 1},
        })

    def unserve(self, group: str, version: str) -> None:
        """Stop serving a group/version (as if its CRD version were not installed)."""
        with self._lock:
            self._unserved.add((group, version))

    def serve_again(self, group: str, version: str) -> None:
        with self._lock:
            self._unserved.discard((group, version))

