"""Adapters that let other frameworks use the retriever (each behind an optional extra)."""
