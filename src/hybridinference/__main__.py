"""``python -m hybridinference`` runs the CLI."""

from hybridinference.cli import main

main()
