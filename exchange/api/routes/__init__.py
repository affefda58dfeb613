"""One module per resource; each route has a one-line docstring (its OpenAPI summary)."""
