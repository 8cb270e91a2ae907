"""The portal's HTTP API: dependencies, error bodies and routes."""
