"""Catalog section: organisation."""
