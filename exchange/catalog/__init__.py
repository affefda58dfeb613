"""Service-item catalogue as data (``items.toml``); loaded by :mod:`exchange.onceonly.catalogue`."""
