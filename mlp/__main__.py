"""``python -m mlp``: the same as the ``mlp`` command (see ``mlp.cli``)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
