"""Plumbing every stage may use and none owns: atomic file writes, the cache and model folders, the torch
device and thread count, silencing native libraries' logs, and keeping the backend's own warnings for the
run's summary."""
