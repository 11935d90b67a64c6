"""Regenerate ``exporter._gen`` from the ``.proto`` subset in ``hubble/``.

Run as ``python -m exporter.protos.generate [--out DIR]`` (``make protos``).
``grpc_tools.protoc`` writes modules that import each other as top-level
packages (``from flow import flow_pb2``); those imports are rewritten so the
whole API lives under ``exporter._gen`` and no generic top-level ``flow`` or
``observer`` package is ever needed. Output is deterministic, so a test can
regenerate into a temporary directory and compare with the committed files.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from importlib import resources
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent / "hubble"
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "_gen"
GEN_PACKAGE = "exporter._gen"
PROTO_PACKAGES = ("flow", "relay", "observer", "hubbleview")

_TOP_LEVEL_IMPORT = re.compile(
    r"^(\s*)from (" + "|".join(PROTO_PACKAGES) + r") import ", re.MULTILINE
)
_GEN_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")

_ROOT_INIT = '''"""Generated protobuf and gRPC modules for Hubble's Observer API.

Do not edit: change ``exporter/protos/hubble/**.proto`` and run
``python -m exporter.protos.generate``. Only ``exporter.sources`` and
``exporter.simulator`` should import these modules.
"""
'''
_PACKAGE_INIT = '"""Generated code for the ``{name}`` proto package (do not edit)."""\n'


class GenerationError(RuntimeError):
    """protoc rejected the sources or produced nothing."""


def proto_files() -> list[str]:
    """The ``.proto`` sources, relative to the include root, in a stable order."""
    return sorted(p.relative_to(PROTO_ROOT).as_posix() for p in PROTO_ROOT.rglob("*.proto"))


def rewrite_imports(source: str) -> str:
    """Point generated cross-package imports at ``exporter._gen``."""
    return _TOP_LEVEL_IMPORT.sub(rf"\1from {GEN_PACKAGE}.\2 import ", source)


def _run_protoc(work: Path) -> None:
    from grpc_tools import protoc  # build-time dependency only

    well_known = resources.files("grpc_tools") / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={work}",
        f"--pyi_out={work}",
        f"--grpc_python_out={work}",
        *proto_files(),
    ]
    if protoc.main(args) != 0:
        raise GenerationError("protoc failed; see the messages above")


def _is_empty_grpc_stub(path: Path, text: str) -> bool:
    return path.name.endswith("_pb2_grpc.py") and "class " not in text


def render(work: Path) -> dict[str, str]:
    """Generate into ``work`` and return ``{relative path: final text}``."""
    _run_protoc(work)
    files: dict[str, str] = {"__init__.py": _ROOT_INIT}
    for package in PROTO_PACKAGES:
        files[f"{package}/__init__.py"] = _PACKAGE_INIT.format(name=package)
    for path in sorted(work.rglob("*")):
        if not path.is_file() or not path.name.endswith(_GEN_SUFFIXES):
            continue
        text = path.read_text(encoding="utf-8")
        if _is_empty_grpc_stub(path, text):
            continue
        files[path.relative_to(work).as_posix()] = rewrite_imports(text)
    if not any(name.endswith("_pb2.py") for name in files):
        raise GenerationError("protoc produced no modules")
    return files


def generate(out: Path = DEFAULT_OUT) -> list[Path]:
    """Write the generated package into ``out``, removing stale generated files."""
    with tempfile.TemporaryDirectory() as tmp:
        files = render(Path(tmp))
    out.mkdir(parents=True, exist_ok=True)
    wanted = {out / name for name in files}
    for old in out.rglob("*"):
        if old.is_file() and old.name.endswith(_GEN_SUFFIXES) and old not in wanted:
            old.unlink()
    written = []
    for name, text in sorted(files.items()):
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    args = parser.parse_args(argv)
    try:
        written = generate(args.out)
    except GenerationError as exc:
        print(f"generate: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {len(written)} files under {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
