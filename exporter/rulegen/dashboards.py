"""Grafana dashboards (placeholder until written)."""


def dashboard_files() -> dict[str, str]:
    return {}
