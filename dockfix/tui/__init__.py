"""The Textual app: launch, the app shell and its scan thread. Imported only when the app runs."""
