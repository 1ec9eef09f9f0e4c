"""The IMAP server for practice software and mail clients (issue 15): pymap over our store.

``server`` runs pymap's connection loop with our rules (TLS before login, bounds, French
refusals); ``backend`` answers pymap from the store; ``store`` is the Django side;
``commands`` adds NAMESPACE and ENABLE to pymap's parser; ``idle`` is the watcher idle
clients wait on; ``patterns`` matches LIST patterns.
"""
