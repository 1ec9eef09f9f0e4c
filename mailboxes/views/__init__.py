"""Webmail views: thin; reads through selectors, writes through services."""

from mailboxes.views.messages import webmail_home

__all__ = ["webmail_home"]
