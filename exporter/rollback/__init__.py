"""Rollback of the kube-proxy replacement: backup, preflight, plan and the executor.

``api`` (roles and result types), ``model`` (cluster snapshot and Kubernetes object
logic) and ``plan`` (what a rollback will do) are pure; ``reader``, ``backup``,
``state``, ``lease``, ``executor``, ``runner``, ``preflight`` and ``commands`` talk to
the Kubernetes API through ``exporter.kube.client``.
"""
