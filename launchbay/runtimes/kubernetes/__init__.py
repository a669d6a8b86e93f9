"""The kubernetes runtime (Team Spaces): a namespace per space, a Helm release per service.

Built so far: namespace naming and the rules that keep the runtime away from what is not
its own (`naming.py`), and the helm CLI wrapper (`helm.py`). The runtime that talks to the
API server is the next step (see docs/architecture.md).
"""
