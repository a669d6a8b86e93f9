"""The developer portal: server-rendered pages (Jinja2) with htmx for the live parts."""
