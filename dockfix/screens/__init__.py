"""The app's screens: one module per page, thin over the core (scan, plan, journal, rollback)."""
