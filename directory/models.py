"""The professional directory (organisations and mailbox entries) lives here."""
