"""``python -m semcorr ...`` is the ``semcorr`` command."""
import sys

from semcorr.cli import main

if __name__ == "__main__":
    sys.exit(main())
