"""Service core: settings and snapshot serving."""
