"""The kubernetes runtime (Team Spaces): a namespace per space, a Helm release per service.

kind.py holds the settings and makes the runtime (importing the client only then);
settings.py what a server tells it; naming.py the names and the rules that keep the runtime
away from what is not its own; helm.py wraps the helm CLI (v3 or v4); client.py adds a rate
limit and a call count to the official client; errors.py turns the API's answers into
Launchbay's errors; cache.py keeps list-then-watch caches. The runtime's parts:
namespaces.py (a namespace per space) with policy.py (its quota, limits, isolation and
rights), releases.py (installing and reading releases) on release.py (what a manifest
holds), workloads.py (what the watches see of a release; sleep and wake) and status.py
(how a release stands). runtime.py is the runtime, delegating to them.
"""
