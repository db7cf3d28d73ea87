"""Getting messages out exactly once: the one dispatch pass, the transports and the ledger."""
