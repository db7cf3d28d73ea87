"""announcer: announce seminar talks to a mailing list, on time and exactly once."""

__version__ = "0.1.0"
