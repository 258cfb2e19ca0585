"""impasto's web app and HTTP API (`impasto serve`): FastAPI, a SQLite job store, a page."""
