"""Interoperability checks against implementations Einblick did not write (Go's sumdb packages)."""
