"""Catalog section: security."""
