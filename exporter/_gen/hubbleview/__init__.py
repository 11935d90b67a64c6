"""Generated code for the ``hubbleview`` proto package (do not edit)."""
