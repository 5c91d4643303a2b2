"""Routing: which route serves a request, and what happens when it fails.

- ``manager``: ``RoutingManager`` resolves a model, orders its routes, tries them.
- ``build``: config → ``RoutingManager`` (adapters built from the registry).
- ``routes``: ``Route`` and ``ModelRoutes``.
- ``strategies``: name → strategy class.
- ``trace``: ``RequestTrace``, the per-request attempt record.
"""
