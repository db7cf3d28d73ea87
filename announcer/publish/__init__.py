"""Outputs that are not mail: the series feed (feed.py) and the schedule page (site.py)."""
