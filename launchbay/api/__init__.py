"""The REST API (`/api/v1`): routers, authentication and the one error mapping."""
