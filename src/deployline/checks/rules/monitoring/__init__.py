"""Catalog section: monitoring."""
