"""The demo host, its private engine and the walkthrough lessons (no Textual here)."""
