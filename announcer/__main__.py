"""`python -m announcer` runs the command line."""

from announcer.cli import main

main()
