"""Pure rules of Launchbay: names, durations, templates, phases, TTL and plans. No I/O here."""
