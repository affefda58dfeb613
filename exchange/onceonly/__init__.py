"""Once-only (一次提交): service-item catalogue and the resolver that says what is already on file."""

from exchange.onceonly.catalogue import Catalogue, Item, Material, load_catalogue
from exchange.onceonly.exceptions import CatalogueError, OnceOnlyError, UnknownItemError
from exchange.onceonly.resolver import Applicant, Resolution, resolve

__all__ = ["Applicant", "Catalogue", "CatalogueError", "Item", "Material", "OnceOnlyError",
           "Resolution", "UnknownItemError", "load_catalogue", "resolve"]
