"""Routers of the portal, one module per resource."""
