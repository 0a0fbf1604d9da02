"""dockfix: scan a Docker host against the CIS Docker Benchmark and fix it, reversibly."""

__version__ = "0.1.0"
