"""Generated code for the ``relay`` proto package (do not edit)."""
