"""Request/response models, one module per resource."""
