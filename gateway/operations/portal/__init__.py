"""The customers' portal: each customer sees and acts on their own data from their own laptop
or phone (issue #16).

A process of its own (``einblick portal``; started by ``einblick run`` when ``portal:`` is
configured, and by the demo) serving a small server-rendered web app over HTTPS:

- ``store``: ``portal.db`` — accounts, one-time invitations, sessions, lockouts, receipts,
  erasure requests (schema-versioned);
- ``credentials``: scrypt password hashes, tokens (stored as SHA-256), TOTP;
- ``server``: the app, its middlewares (language, session, CSRF, security headers) and TLS;
- ``auth``: login, invitation, logout, TOTP set-up; ``pages``: the customer's pages;
  ``live``: the live log as Server-Sent Events; ``actions``: withdrawal over the gateway's
  control socket; ``reports``: the access report, built once per change of a customer's log;
  ``texts``: the words, German and English.

It opens the log read-only through a reader bound to the session's customer and never holds
the signing key: what changes state is asked of the running gateway.
"""
