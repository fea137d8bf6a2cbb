"""Catalog section: build."""
