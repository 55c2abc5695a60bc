"""Project templates written by ``netsim new-driver`` (package data, not modules)."""
