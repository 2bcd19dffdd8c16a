"""``python -m cs_core.cli``."""

from cs_core.cli.main import main

main()
