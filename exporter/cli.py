"""``kpr-exporter`` command line: Prometheus-exporter style flags over one settings tree.

Every flag is derived from the settings tree (``exporter.config``), so a flag,
its ``KPR_*`` environment variable and its config-file key always agree.
Commands: run, simulate, demo, check-config, backup, rollback, preflight,
baseline, report, echo, probe, verify, migrate.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from exporter import __version__, config
from exporter.config_values import format_duration, parse_duration

#: Settings sections only the simulator, the echo or the probe reads: ``run`` and
#: ``check-config`` show no flags for them.
_SIMULATOR_ONLY = ("simulator", "echo", "probe")

# Which settings sections each command takes flags for (None: every exporter section).
_SECTIONS: dict[str, tuple[str, ...] | None] = {
    "run": None,
    "check-config": None,
    "simulate": ("simulator", "log"),
    "demo": ("simulator", "web", "log", "sli"),
    "backup": ("kube", "rollback", "log"),
    "rollback": ("kube", "rollback", "log"),
    "preflight": ("kube", "rollback", "log"),
    "baseline": ("kube", "baseline", "log"),
    "report": ("log",),
    "echo": ("echo", "log"),
    "probe": ("probe", "log"),
    # --from-cluster finds the probe pods as the exporter does (sections kube and probes).
    "verify": ("kube", "probes", "log"),
    # The gates read the probes (verify) and Prometheus (judge, alerts).
    "migrate": ("kube", "rollback", "migrate", "probes", "judge", "log"),
}

_HELP = {
    "migrate": "the switch itself, node by node, gated by verification and the judge: "
               "plan, start, status, pause, resume, promote, abort, run",
    "run": "run the exporter and the webhook receiver",
    "simulate": "run the Hubble + agent-metrics simulator alone",
    "demo": "simulator and exporter wired together on loopback, with a live summary",
    "check-config": "print the effective configuration, or every problem in it",
    "backup": "capture what a rollback needs (cilium-config, kube-proxy, CiliumNodeConfigs)",
    "rollback": "roll the switch back by hand (prints the plan first)",
    "preflight": "check the cluster before switching to eBPF kube-proxy replacement",
    "baseline": "show, capture or clear the frozen pre-switch baseline",
    "report": "write the HTML + Markdown migration report from a Prometheus",
    "echo": "the verification target: answers with its pod, its node and the client address",
    "probe": "run the verification checks from this node every round; /metrics shows them",
    "verify": "print the checks x nodes matrix of the probes' results; exit 0 all pass, "
              "1 any fail, 2 missing or stale",
}


def _option_flags(parser: argparse.ArgumentParser, sections: tuple[str, ...] | None,
                  options: Sequence[config.Option],
                  shown_defaults: dict[str, str] | None = None,
                  overrides: Mapping[str, Mapping[str, Any]] | None = None) -> None:
    group = parser.add_argument_group(
        "settings (each also KPR_<FLAG> and a config-file key; a DURATION is 30s, 5m, 1h30m, "
        "500ms or plain seconds)")
    if sections is None:
        sections = tuple(s for s in config.section_names() if s not in _SIMULATOR_ONLY)
    for opt in options:
        if opt.path[0] not in sections:
            continue
        default = ((shown_defaults or {}).get(opt.flag)
                   or _show_default(opt.default, opt.duration))
        kwargs: dict[str, Any] = {
            "dest": "flag:" + opt.flag,
            "default": argparse.SUPPRESS,
            "metavar": _metavar(opt),
            # argparse formats help with %: settings' prose may use it literally.
            "help": f"{opt.help} (default: {default})".replace("%", "%%"),
        }
        if opt.choices:
            kwargs["choices"] = opt.choices
            kwargs.pop("metavar")
        kwargs.update((overrides or {}).get(opt.flag, {}))
        group.add_argument(opt.flag, **kwargs)


def _metavar(opt: config.Option) -> str:
    if opt.duration:
        return "DURATION"
    return {bool: "BOOL", int: "N", float: "X"}.get(opt.type, "VALUE")


def _show_default(value: Any, duration: bool = False) -> str:
    if duration:
        return format_duration(value)
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "none"
    if isinstance(value, tuple):
        return ",".join(value) or "none"
    return str(value)


def build_parser(*, demo_help: bool = True) -> argparse.ArgumentParser:
    """Every command's parser; ``demo_help=False`` leaves the demo's own defaults out of its
    help, so a command other than ``demo`` loads no demo code."""
    parser = argparse.ArgumentParser(
        prog="kpr-exporter",
        description="Service SLIs, judgement and safe rollback for Cilium's kube-proxy replacement.",
    )
    parser.add_argument("--version", action="version", version=f"kpr-exporter {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    options = config.options()  # walked once for every command: it reads the type hints
    for name, sections in _SECTIONS.items():
        p = sub.add_parser(name, help=_HELP[name], description=_HELP[name])
        p.add_argument("--config.file", dest="config_file", default=None, metavar="PATH",
                       help="YAML configuration file (flags and KPR_* variables override it)")
        # The demo runs with its own defaults (exporter.demo.defaults); --help shows them.
        # Its --scenario also takes the emulated-datapath scenarios (exporter.demo.defaults).
        demo = name == "demo" and demo_help
        _option_flags(p, sections, options, _demo_help_defaults() if demo else None,
                      _demo_overrides() if demo else None)
        _EXTRA.get(name, lambda _p: None)(p)
    return parser


def _demo_help_defaults() -> dict[str, str]:
    from exporter.demo import defaults

    return defaults.help_defaults()


def _demo_overrides() -> dict[str, dict[str, Any]]:
    from exporter.demo import defaults

    return defaults.flag_overrides()


def _demo_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--duration", type=_duration, default=0.0, metavar="DURATION",
                   help="how long to run (30s, 5m or seconds), then exit 0 (default: until Ctrl-C)")
    p.add_argument("--interval", type=_duration, default=5.0, metavar="DURATION",
                   help="time between summaries (default: 5s)")
    p.add_argument("--with-prometheus", action="store_true",
                   help="also run a real Prometheus and Alertmanager when installed")
    p.add_argument("--report", metavar="DIR", default=None,
                   help="write the migration report into DIR at the end")
    p.add_argument("--scenario-file", metavar="PATH", default=None,
                   help="run the emulated-datapath scenario in this YAML file (schema: "
                        "docs/verification.md) next to the simulator story --scenario names "
                        "(default with a file: canary-improvement)")


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _rollback_flags(p: argparse.ArgumentParser) -> None:
    # The mode comes from the settings tree (rollback.mode, dry-run unless told otherwise);
    # --dry-run stays as the short form of --rollback.mode dry-run.
    p.add_argument("--dry-run", dest="flag:--rollback.mode", action="store_const",
                   const="dry-run", default=argparse.SUPPRESS,
                   help="print the plan, change nothing (same as --rollback.mode dry-run)")
    p.add_argument("--scope", default="cluster",
                   help="cluster, canary, or a comma list of node names")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--persist", action="store_true",
                   help="make a rollback durable: a new revision of Cilium's Helm release with "
                        "kubeProxyReplacement=false, from its own stored chart and values "
                        "(needs the rights to upgrade Cilium and the Helm engine extra)")


def _backup_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", default=None,
                   help="write the backup to this file instead of a ConfigMap")


def _baseline_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("show", "capture", "clear"))
    p.add_argument("--exporter-url", dest="flag:--baseline.exporter-url", metavar="URL",
                   default=argparse.SUPPRESS,
                   help="running exporter to capture from (capture; same as "
                        "--baseline.exporter-url; default: web.listen_address on this machine)")


def _report_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prometheus", required=True, metavar="URL", help="Prometheus base URL")
    p.add_argument("--from", dest="time_from", default="-2h", help="start (RFC 3339 or -2h)")
    p.add_argument("--to", dest="time_to", default="now", help="end (RFC 3339 or now)")
    p.add_argument("--output", default="kpr-report", help="output directory")
    p.add_argument("--title", default="", help="the report's heading (default: a generic one)")
    p.add_argument("--change-id", default="", metavar="ID",
                   help="the change ticket the report belongs to, shown at the top")



def _verify_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--exporter-url", action="append", default=None, metavar="URL",
                   help="exporter or probe serving kpr_probe_* on /metrics; repeat for several "
                        "probes (default: http://127.0.0.1:9977)")
    p.add_argument("--from-cluster", action="store_true",
                   help="read every probe pod's /metrics directly, found through the "
                        "Kubernetes API by --probes.selector in --probes.namespace "
                        "(kubeconfig: --kube.kubeconfig, KUBECONFIG or in-cluster)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--wait", type=_duration, default=0.0, metavar="DURATION",
                   help="wait up to DURATION for every probe to complete a fresh full round "
                        "and judge only its results (default: judge what was collected)")
    p.add_argument("--max-age", type=_duration, default=300.0, metavar="DURATION",
                   help="a probe whose last round is older is stale (default: 5m)")

def _migrate_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("plan", "start", "status", "pause", "resume", "promote",
                                      "abort", "run"))
    p.add_argument("--batches", default="1,10%,50%,100%",
                   help="cumulative batch targets: node counts or percentages (default: "
                        "1,10%%,50%%,100%%)")
    p.add_argument("--soak", type=_duration, default=900.0, metavar="DURATION",
                   help="soak time of each batch before the gates judge it (default: 15m)")
    p.add_argument("--gates", default="verify,judge,alerts",
                   help="gates after each batch: verify, judge, alerts, or none (turning one "
                        "off prints and records a warning; default: all)")
    p.add_argument("--on-fail", choices=("abort", "pause"), default="abort",
                   help="what a failed gate or step does (default: abort)")
    p.add_argument("--on-inconclusive", choices=("abort", "pause"), default="pause",
                   help="what an inconclusive gate does (default: pause)")
    p.add_argument("--drain", action="store_true", help="cordon and drain each batch first")
    p.add_argument("--wait", type=_duration, default=300.0, metavar="DURATION",
                   help="per node: how long it may take to show KPR (default: 5m)")
    p.add_argument("--watch", action="store_true", help="status: follow it until it ends")
    p.add_argument("--reason", default="", help="abort: why (recorded)")
    p.add_argument("--yes", action="store_true",
                   help="run: act (the default is a dry-run); abort: do not ask")


_EXTRA: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "migrate": _migrate_flags,
    "demo": _demo_flags,
    "rollback": _rollback_flags,
    "backup": _backup_flags,
    "baseline": _baseline_flags,
    "report": _report_flags,
    "verify": _verify_flags,
}


#: Commands that start the exporter, and check-config, which must refuse what they refuse.
_STARTUP_CHECKED = ("run", "check-config")
#: Commands that answer Alertmanager's webhook (an enforcing webhook needs a token).
_SERVE_WEBHOOK = ("run", "check-config", "demo")


def load_settings(args: argparse.Namespace, env: Mapping[str, str] | None = None, *,
                  startup: bool = False) -> config.Settings:
    """The settings of ``args``; ``startup`` adds the checks against this machine."""
    flags = {k.removeprefix("flag:"): v for k, v in vars(args).items() if k.startswith("flag:")}
    return config.load(
        config_file=args.config_file,
        env=os.environ if env is None else env,
        flags=flags,
        startup=startup,
        serves_webhook=args.command in _SERVE_WEBHOOK,
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(demo_help="demo" in argv)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    for warning in config.env_warnings(os.environ):
        print(f"kpr-exporter {args.command}: warning: {warning}", file=sys.stderr)
    try:
        settings = load_settings(args, startup=args.command in _STARTUP_CHECKED)
    except config.ConfigError as exc:
        print(f"kpr-exporter {args.command}: {exc}", file=sys.stderr)
        return 2
    if args.command == "check-config":
        sys.stdout.write(config.render(settings))
        return 0

    from exporter import commands, logs
    from exporter.web import ListenError

    logs.setup(settings.log.format, settings.log.level)
    handler = getattr(commands, args.command.replace("-", "_"))
    try:
        return asyncio.run(handler(settings, args))
    except KeyboardInterrupt:
        return 0
    except ListenError as exc:
        print(f"kpr-exporter {args.command}: {exc}", file=sys.stderr)
        return 1
