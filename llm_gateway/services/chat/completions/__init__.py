"""Chat completions for the OpenAI-compatible API (``/v1``), on the chat's money path.

A completion has no dialog: the client sends the whole conversation. Everything else is
the chat's: the model catalog and its params, the prompt counted before the call, one hold
taken with the same ``reserve`` (and the API key's own daily limit), the same upstream
runner (retries, fallback, timeouts), one ``usage`` ledger row, the same failure table.
``planning`` decides what to ask, ``starting`` takes the hold and records the request,
``running`` streams it and ``finishing`` settles it.
"""
