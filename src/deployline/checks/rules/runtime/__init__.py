"""Catalog section: runtime."""
