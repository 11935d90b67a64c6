"""The guided migration: kube-proxy to Cilium's kube-proxy replacement, node by node,
each batch gated by verification and the judge, undone on failure (docs/migration.md)."""
