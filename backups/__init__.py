"""Backups and restores of an environment's data: both databases and n8n's encryption key.

The data and the key travel together: n8n's stored credentials are encrypted with the key, so a database
restored without it is a database of credentials nobody can read.
"""
