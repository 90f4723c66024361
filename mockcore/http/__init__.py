"""The HTTP faces of a fleet: the Core API per instance and the activation server."""
