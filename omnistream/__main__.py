"""``python -m omnistream``."""

from omnistream.cli import main

main()
