"""Rollback of the kube-proxy replacement: backup, preflight, plan and the executor.

``roles`` (roles and result types), ``model`` (cluster snapshot and Kubernetes object
logic) and ``plan`` (what a rollback will do) are pure; ``reader``, ``backup``,
``state``, ``lease``, ``executor``, ``runner`` and the commands (``backup_cmd``,
``rollback_cmd``, ``persist_cmd``) talk to the Kubernetes API through
``exporter.kube.client``.
"""
