"""Plumbing every stage may use and none owns: atomic file writes, the cache and model folders, the torch
device and thread count, and silencing native libraries' logs."""
