"""Shapes at the edges and the records that travel between layers.

- ``openai``: request models for validation and the OpenAPI document (unknown fields kept).
- ``usage``: token usage normalised from any provider.
- ``records``: one ``RequestRecord`` per request and its ``Attempt`` list (the log row).
- ``keys``: the API key record as stored.
"""
