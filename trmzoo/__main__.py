"""``python -m trmzoo``: the command line, for environments whose ``trmzoo`` script is elsewhere."""

from trmzoo.cli import main

main()
