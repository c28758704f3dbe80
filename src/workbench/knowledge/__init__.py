"""Knowledge: documents in, passages with citations out (hybrid keyword + vector retrieval)."""
