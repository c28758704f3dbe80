"""Workbench: a self-hostable workspace platform in one process over SQLite."""

__version__ = "0.1.0"
