"""The web dashboard (port 3001 by default), a client of the gateway's own HTTP API.

- ``server``: the Starlette app: static page, sign-in, ``/api`` proxy.
- ``sessions``: sign-in sessions (credential kept server-side) and CSRF tokens.
- ``proxy``: which gateway calls each role may make, and the streaming relay.
- ``headers``: security headers (content security policy) on every response.
- ``runner``: serving it beside the gateway from ``hybridinference serve``.
- ``static/``: the page: ``index.html``, ``app.css``, ``js/*.js`` (ES modules), and the
  vendored Chart.js UMD build (``vendor/``, with its license).
"""

from hybridinference.dashboard.server import DashboardSettings, create_dashboard_app

__all__ = ["DashboardSettings", "create_dashboard_app"]
