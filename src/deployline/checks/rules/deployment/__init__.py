"""Catalog section: deployment."""
