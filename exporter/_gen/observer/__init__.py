"""Generated code for the ``observer`` proto package (do not edit)."""
