"""HTTP machinery shared by every capability: problem details, request context, metrics."""
