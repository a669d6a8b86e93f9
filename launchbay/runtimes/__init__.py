"""Runtimes: the only code that touches processes, Docker and Kubernetes."""
