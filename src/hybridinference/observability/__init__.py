"""Observability: what the gateway tells operators about itself.

- ``metrics``: Prometheus series per request and state gauges read at scrape time.
- ``readings``: the registry of state metrics other parts publish (``STATE_METRICS``).
- ``tracing``: OpenTelemetry request and attempt spans (off by default; OTLP export).
- ``logging``: JSON log lines with request and trace ids; secrets scrubbed.
- ``telemetry``: ``Telemetry`` (one per app) and the ASGI middleware that scopes requests.
- ``alerts``: Alertmanager webhook payloads and the ``alerts`` table (SQLite/PostgreSQL).
- ``alert_logger``: the small service that receives webhooks and lists stored alerts.

Depends only on ``schemas``, ``errors`` and ``config``.
"""
