"""Shared plumbing for every shop service: settings, app factory, database, cache, bus, errors, logs."""
