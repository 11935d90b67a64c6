"""kpr-exporter: measure, judge and safely roll back Cilium's kube-proxy replacement."""

__version__ = "0.1.0"
