"""Training losses, one module per method (``semcorr.losses.<method>``)."""
