"""The resident web app: server-rendered pages over the resident's own record.

Pages are Jinja2 templates (``templates/``), every word comes from the message catalogues
(``messages/ja.json``, ``messages/en.json``), styles and the one script are static files
(``static/``) so that the Content-Security-Policy can forbid inline code. Every read of
the record goes through :class:`~phr.store.reader.RecordReader` with the signed-in resident
as actor and purpose PATRQT. See ``docs/web.md``.
"""
