"""Thin entrypoints for `ray job submit`; never imported by the library."""
