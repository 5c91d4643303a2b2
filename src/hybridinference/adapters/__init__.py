"""Provider adapters: OpenAI-shaped requests in, provider protocol out, and back.

- ``base``: the ``Adapter`` protocol and ``UpstreamCall``.
- ``registry``: provider kind → factory (``build_adapter``).
- ``http``: the pooled client and the single upstream-error mapping.
- ``sse``: SSE parsing and encoding.
- ``openai_compat``, ``demo``: one module per provider protocol.
"""
