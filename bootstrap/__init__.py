"""Schema bootstrap: the platform's PostgreSQL schema as reviewed SQL migrations, and the runner that applies them."""
