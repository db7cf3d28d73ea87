"""Running for a long time or on many cores: the daemon, file watching, its lock and worker processes."""
