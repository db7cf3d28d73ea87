"""What the organiser wrote: the series' config, its talk files, and their times."""
