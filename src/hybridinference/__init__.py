"""HybridInference: an LLM inference gateway.

Map of the package (imports point one way, left to right):

    gateway/ -> routing/ -> adapters/ -> (schemas/, errors, config/)
    storage/, observability/ -> (schemas/, errors, config/)

``errors``, ``background`` (stopping a background task, the low-priority thread for
blocking work) and ``sqlite_file`` (opening a shared SQLite file in WAL mode) are leaves
any module may import. ``app.create_app`` and ``cli`` are the only modules that see
everything.
"""

__version__ = "0.1.0"
