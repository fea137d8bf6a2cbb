"""One rule per module, grouped by catalog section. The registry imports every module here."""
