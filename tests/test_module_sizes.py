"""No module of the exporter is over 400 lines (generated code aside).

Long modules hold several jobs; the limit keeps each job in its own unit. Aim for about
300 lines; split by responsibility past 400.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "exporter"
LIMIT = 400


def _modules(package: Path) -> list[Path]:
    generated = package / "_gen"
    return [p for p in sorted(package.rglob("*.py")) if generated not in p.parents]


def _over(package: Path) -> list[str]:
    out = []
    for path in _modules(package):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > LIMIT:
            out.append(f"{path.relative_to(package.parent)}: {lines} lines")
    return out


def test_the_package_has_modules() -> None:
    modules = _modules(PACKAGE)
    assert len(modules) > 50 and PACKAGE / "app.py" in modules


def test_no_module_is_over_the_limit() -> None:
    over = _over(PACKAGE)
    assert not over, f"modules over {LIMIT} lines (split them by responsibility): {over}"


def test_a_long_module_is_found_and_generated_code_is_not(tmp_path: Path) -> None:
    package = tmp_path / "exporter"
    (package / "_gen").mkdir(parents=True)
    long = "x = 1\n" * (LIMIT + 1)
    (package / "long.py").write_text(long)
    (package / "short.py").write_text("x = 1\n" * LIMIT)
    (package / "_gen" / "flow_pb2.py").write_text(long)
    assert _over(package) == [f"exporter/long.py: {LIMIT + 1} lines"]
