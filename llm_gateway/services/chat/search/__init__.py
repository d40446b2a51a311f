"""Full-text search over message content (``searchMessages`` and the dialog list's search).

``terms`` checks a query and words it for each engine, ``engines`` holds the SQL of
PostgreSQL and SQLite, ``snippets`` makes the excerpts safe, ``hits`` pages the results.
"""
