"""The kubernetes runtime (Team Spaces): a namespace per space, a Helm release per service.

naming.py holds the names and the rules that keep the runtime away from what is not its
own; helm.py wraps the helm CLI (v3 or v4); client.py adds a rate limit and a call count to
the official client; cache.py keeps list-then-watch caches; runtime.py is the runtime.
"""
