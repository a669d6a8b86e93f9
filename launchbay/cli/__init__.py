"""`bay`: the command line, a client of the server's API."""
