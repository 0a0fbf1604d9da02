"""What dockfix reads and edits: compose files, Dockerfiles, daemon configuration, JSON and YAML,
and the one secret detector. Sources know nothing of checks, fixes or the terminal."""
