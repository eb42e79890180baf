"""Training loops, one module per method (``semcorr.train.<method>``), run by ``semcorr train METHOD``."""
