"""What each command does, returning text and exit codes for cli.py to print."""
