"""Work items: lifecycle, concurrency-safe edits, timeline, queries and saved views."""
