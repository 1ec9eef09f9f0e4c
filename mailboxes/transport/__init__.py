"""SMTP between operators: the inbound gateway, outbound delivery, routes, delivery reports.

Protocol code lives here, out of the views; every database write still goes
through a service (``mailboxes.services.inbound.receive_message`` for what
arrives, the functions of ``outbound`` for what leaves).
"""
