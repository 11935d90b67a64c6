"""Hubble's Observer API as ``.proto`` sources (a wire-compatible subset) and
the generator that turns them into the committed ``exporter._gen`` modules."""
