"""Generated code for the ``flow`` proto package (do not edit)."""
