"""Workspaces: the tenants. Each lives in its own SQLite file."""
